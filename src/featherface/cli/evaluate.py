"""``evaluate``: AP by WIDER FACE's protocol, or AP@IoU / recall / NME on a labelled set."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from featherface.cli.common import (
    MODEL_HELP,
    CommandError,
    class_list,
    positive_int,
    unit_float,
    warn,
    write_json,
)
from featherface.data.pseudo import TEACHER_SCORE_THRESHOLD
from featherface.evaluation.run import (
    MATCH_IOU,
    PR_PLOT,
    PREDICTIONS_DIR,
    SCORE_THRESHOLD,
    WIDER_PR_PLOT,
    evaluate,
    evaluate_on_wider,
)
from featherface.outputs import guard_outputs


def cmd_evaluate(args: argparse.Namespace) -> int:
    if args.wider_gt:
        summary = _evaluate_wider(args)
    elif args.model and args.data:
        summary = _evaluate_dataset(args)
    else:
        raise CommandError("give --model M --data D, or --wider-gt DIR with --predictions DIR / --model M --images DIR")
    write_json(args.json, summary)
    return 0


def _evaluate_dataset(args: argparse.Namespace) -> dict[str, Any]:
    plots = Path(args.plots) / PR_PLOT if args.plots else None
    guard = guard_outputs(
        {"--json": args.json, "--plots": plots}, models={"--model": args.model, "--teacher": args.teacher},
        datasets={"--data": args.data},
    )  # fmt: skip
    report = evaluate(
        args.model, args.data, classes=args.classes, iou=args.iou, conf=args.conf, teacher=args.teacher,
        teacher_conf=args.teacher_conf, strict=args.strict, save_dir=args.save_dir, plots=args.plots,
        device=args.device, threads=args.threads, guard=guard, say=print, warn=warn,
    )  # fmt: skip
    return report.to_dict()


def _evaluate_wider(args: argparse.Namespace) -> dict[str, Any]:
    plots = Path(args.plots) / WIDER_PR_PLOT if args.plots else None
    guard = guard_outputs({"--json": args.json, "--plots": plots}, models={"--model": args.model})
    result = evaluate_on_wider(
        args.wider_gt, predictions=args.predictions, model=args.model, images=args.images,
        write_predictions=args.write_predictions, plots=args.plots, device=args.device, threads=args.threads,
        guard=guard, say=print, warn=warn,
    )  # fmt: skip
    return result.to_dict()


def add_evaluate(sub: Any) -> None:
    p = sub.add_parser("evaluate", help="AP: WIDER FACE protocol (--wider-gt) or AP@0.5/recall/NME on a labelled set")
    p.add_argument("--model", help=MODEL_HELP)
    p.add_argument(
        "--data",
        help="label.txt, a folder with one, a Pascal VOC folder, sample / sample:train / sample:val; "
        "with --teacher also a folder of unlabelled images (DIR, DIR:train, DIR:holdout)",
    )
    p.add_argument("--classes", type=class_list, help="VOC data: the classes that are faces, a,b (default all)")
    p.add_argument(
        "--iou", type=unit_float, default=MATCH_IOU, help=f"IoU a detection needs to find a face (default {MATCH_IOU})"
    )
    p.add_argument("--teacher", help="score against this model's faces instead of labels (zoo name, checkpoint...)")
    p.add_argument(
        "--teacher-conf", type=unit_float, default=TEACHER_SCORE_THRESHOLD,
        help=f"teacher score that makes a face (default {TEACHER_SCORE_THRESHOLD})",
    )  # fmt: skip
    _add_wider_options(p)
    p.add_argument(
        "--conf", type=unit_float, default=SCORE_THRESHOLD,
        help=f"score for recall/precision/NME (default {SCORE_THRESHOLD})",
    )  # fmt: skip
    p.add_argument("--strict", action="store_true", help="fail on the first bad label line instead of skipping it")
    _add_output_options(p)


def _add_output_options(p: argparse.ArgumentParser) -> None:
    """Where the results and pictures go, and where the model runs."""
    p.add_argument("--json", help="write the results to this JSON file")
    p.add_argument("--plots", help="write PR-curve PNGs into this folder")
    p.add_argument(
        "--save-dir", help="write drawn copies here, mirroring the images' relative paths (never over an input)"
    )
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    p.add_argument(
        "--threads", type=positive_int,
        help="CPU threads (default: all); an ONNX model runs that many one-thread passes at once",
    )  # fmt: skip


def _add_wider_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--wider-gt", help="folder of the official wider_*_val.mat files")
    p.add_argument("--predictions", help="WIDER-layout predictions folder (<event>/<image>.txt) to score")
    p.add_argument("--images", help="WIDER_val/images (with --wider-gt --model): run the model over it")
    p.add_argument(
        "--write-predictions", default=PREDICTIONS_DIR,
        help=f"where --model writes WIDER predictions (default ./{PREDICTIONS_DIR})",
    )  # fmt: skip

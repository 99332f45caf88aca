"""``detect``, ``crop``, ``anonymize``: detection over image files, folders and videos."""

from __future__ import annotations

import argparse
from typing import Any

from featherface.align import ARCFACE_SIZE
from featherface.anonymize import (
    ANONYMIZE_MODEL,
    MODES,
    RECALL_CONF_THRESHOLD,
    SHAPES,
    AnonymizeConfig,
    anonymize_to_folder,
)
from featherface.cli.common import (
    MODEL_HELP,
    non_negative_float,
    positive_float,
    positive_int,
    print_lines,
    unit_float,
    warn_skipped,
)
from featherface.crops import CROP_MARGIN, CROP_MODEL, crop_to_folder, index_path
from featherface.detection.postprocess import PostprocessConfig
from featherface.detection.run import DEFAULT_BATCH_SIZE, DetectorChoice, detect_to_json
from featherface.outputs import guard_outputs
from featherface.weights import DEFAULT_MODEL

INPUTS_HELP = "image files, videos, folders (searched recursively)"


def detector_choice(args: argparse.Namespace) -> DetectorChoice:
    """The detector the options choose (``--backend auto``: the model's own)."""
    backend = None if args.backend == "auto" else args.backend
    return DetectorChoice(
        args.model, args.device, args.threads, backend, args.allow_untrained, args.conf, args.nms, args.batch_size
    )


def cmd_detect(args: argparse.Namespace) -> int:
    guard = guard_outputs({"--json": args.json}, models={"--model": args.model})
    report = detect_to_json(
        args.inputs, detector_choice(args), args.json, args.save_dir, guard, track=not args.no_track,
        strict=args.strict, size=args.size, min_face=args.min_face, max_face=args.max_face,
    )  # fmt: skip
    print_lines(report.lines())
    warn_skipped(report.skipped)
    return 0


def cmd_crop(args: argparse.Namespace) -> int:
    index = index_path(args.out, args.json)
    guard = guard_outputs({"--json": index}, models={"--model": args.model})
    report = crop_to_folder(
        args.inputs, args.out, detector_choice(args), args.size, args.margin, index, guard, strict=args.strict,
        min_face=args.min_face, max_face=args.max_face,
    )  # fmt: skip
    print_lines(report.lines())
    warn_skipped(report.skipped)
    return 0


def cmd_anonymize(args: argparse.Namespace) -> int:
    config = AnonymizeConfig(mode=args.mode, margin=args.margin, shape=args.shape)
    guard = guard_outputs({"--json": args.json}, models={"--model": args.model})
    report = anonymize_to_folder(
        args.inputs, args.out, detector_choice(args), config, args.json, guard, track=not args.no_track,
        strict=args.strict, min_face=args.min_face, max_face=args.max_face,
    )  # fmt: skip
    warn_skipped(report.skipped)
    return 0


def add_detect(sub: Any) -> None:
    p = sub.add_parser("detect", help="detect faces in images, folders and videos")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help=INPUTS_HELP)
    p.add_argument("--model", default=DEFAULT_MODEL, help=MODEL_HELP + f" (default {DEFAULT_MODEL})")
    p.add_argument("--allow-untrained", action="store_true", help="run a zoo model whose heads were never trained")
    p.add_argument("--json", help="write detections to this JSON file (as they come: F.partial until finished)")
    p.add_argument(
        "--save-dir", help="write drawn copies here, mirroring the inputs' relative paths (never over an input)"
    )
    p.add_argument(
        "--size", type=positive_int,
        help="resize the long side to this (default: original size; larger than 4096 px: tiled)",
    )  # fmt: skip
    p.add_argument("--no-track", action="store_true", help="videos: no track_id, boxes as detected frame by frame")
    conf = PostprocessConfig.conf_threshold
    _add_detection_tuning(p, conf, f"score threshold (default {conf})")


def add_crop(sub: Any) -> None:
    p = sub.add_parser("crop", help="one aligned (ArcFace 112x112 template) crop per face, and a JSON index")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help=INPUTS_HELP)
    p.add_argument("--out", required=True, help="folder for the crops (mirroring the inputs' relative paths)")
    p.add_argument(
        "--size", type=positive_int, default=ARCFACE_SIZE, help=f"crop side in pixels (default {ARCFACE_SIZE})"
    )
    p.add_argument(
        "--margin", type=non_negative_float, default=CROP_MARGIN,
        help="context around the template's frame, a fraction of its side per edge (default 0: ArcFace's crop)",
    )  # fmt: skip
    p.add_argument("--json", help="the index: crop -> image, box, score, landmarks (default OUT/crops.json)")
    conf = PostprocessConfig.conf_threshold
    _add_detection_options(p, CROP_MODEL, conf, f"score threshold (default {conf})")


def add_anonymize(sub: Any) -> None:
    defaults = AnonymizeConfig()
    p = sub.add_parser("anonymize", help="hide every face in images, folders and videos (inputs untouched)")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help=INPUTS_HELP)
    p.add_argument("--out", required=True, help="folder for the anonymised copies (mirroring relative paths)")
    p.add_argument("--mode", choices=MODES, default=defaults.mode, help=f"how (default {defaults.mode})")
    p.add_argument(
        "--margin", type=non_negative_float, default=defaults.margin,
        help=f"grow each box by this fraction per side (default {defaults.margin}: the ellipse then covers the whole "
        "box)",
    )  # fmt: skip
    p.add_argument("--shape", choices=SHAPES, default=defaults.shape, help=f"hidden region (default {defaults.shape})")
    p.add_argument("--json", help="write per-file face counts to this JSON file")
    p.add_argument(
        "--no-track", action="store_true",
        help="videos: hide only the faces detected in each frame (no tracker predictions for missed frames)",
    )  # fmt: skip
    conf_help = f"score threshold (default {RECALL_CONF_THRESHOLD}: favours recall; a false positive costs a blur)"
    _add_detection_options(p, ANONYMIZE_MODEL, RECALL_CONF_THRESHOLD, conf_help)


def _add_detection_options(p: argparse.ArgumentParser, model: str, conf: float, conf_help: str) -> None:
    """Model, thresholds, face sizes and running options of crop and anonymize."""
    p.add_argument("--model", default=model, help=f"{MODEL_HELP} (default {model})")
    p.add_argument("--allow-untrained", action="store_true", help="run a zoo model whose heads were never trained")
    _add_detection_tuning(p, conf, conf_help)


def _add_detection_tuning(p: argparse.ArgumentParser, conf: float, conf_help: str) -> None:
    """Thresholds, face sizes and running options shared by detect, crop and anonymize."""
    nms = PostprocessConfig.nms_threshold
    p.add_argument("--conf", type=unit_float, default=conf, help=conf_help)
    p.add_argument("--nms", type=unit_float, default=nms, help=f"NMS IoU threshold (default {nms})")
    p.add_argument(
        "--min-face", type=positive_float,
        help="smallest face to find (pixels): picks the inference scale (16-px anchors: x 16/min-face, at most 4)",
    )  # fmt: skip
    p.add_argument(
        "--max-face", type=positive_float,
        help="largest face of interest (pixels): larger faces are dropped; sets the tiles' overlap",
    )  # fmt: skip
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    p.add_argument(
        "--backend", choices=["auto", "onnxruntime", "torch"], default="auto",
        help="auto (default): a zoo model's shipped ONNX in onnxruntime on the CPU, torch on CUDA or where no ONNX "
        "ships; torch needs the training extra",
    )  # fmt: skip
    p.add_argument(
        "--threads", type=positive_int,
        help="CPU threads (default: all); an ONNX model over several images runs that many one-thread passes at once",
    )  # fmt: skip
    p.add_argument(
        "--batch-size", type=positive_int, default=DEFAULT_BATCH_SIZE, help="images of one size (or frames) per pass"
    )
    p.add_argument(
        "--strict", action="store_true", help="stop at the first unreadable file (default: skip it, count, list it)"
    )

"""``featherface`` command line: a thin shell over the Python API (SPEC section 8)."""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

from featherface import __version__
from featherface.models.config import STUDENT_INITS
from featherface.weights import DEFAULT_MODEL


class CommandError(Exception):
    """Bad input from the command line: printed as one line, exit status 2."""


def _write_json(path: str | None, data: Any, line_per_item: bool = False) -> None:
    """``line_per_item``: a list written one compact item per line (json's C encoder, ~4x faster than indenting
    when there are thousands of faces)."""
    if path:
        from featherface.fileio import atomic_write_bytes

        text = "[\n" + ",\n".join(map(json.dumps, data)) + "\n]" if line_per_item else json.dumps(data, indent=1)
        atomic_write_bytes(Path(path), (text + "\n").encode())


def _guard_outputs(outputs: dict[str, str | Path | None], guard: Any = None, **inputs: Any) -> Any:
    """Each output (``{"--json": path}``) claimed from an output guard over the command's inputs (``models=``,
    ``configs=``, ``datasets=``, ``images=``: :func:`featherface.outputs.guard_inputs`), before any work: one over
    an input raises ``ValueError`` naming the file. Returns the guard, for outputs claimed later."""
    from featherface.fileio import OutputGuard
    from featherface.outputs import guard_inputs

    guard = guard_inputs(guard or OutputGuard(), **inputs)
    for flag, path in outputs.items():
        if path:
            guard.claim(Path(path), flag)
    return guard


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _float_between(text: str, low: float, high: float, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not low <= value <= high:  # NaN fails too
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def _unit_float(text: str) -> float:
    return _float_between(text, 0.0, 1.0, "a number in [0, 1]")


def _non_negative_float(text: str) -> float:
    return _float_between(text, 0.0, math.inf, "a number >= 0")


def _positive_float(text: str) -> float:
    value = _float_between(text, 0.0, math.inf, "a number > 0")
    if value == 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


# ---------------------------------------------------------------------------------------------- info
def cmd_info(args: argparse.Namespace) -> int:
    if args.model is None:  # the zoo's list needs no torch
        return _list_zoo(args)
    from featherface.detection.runners import OnnxRunner
    from featherface.models.detector_net import DetectorNet
    from featherface.models.loader import load_model
    from featherface.profiling import format_info_table, model_info

    _guard_outputs({"--json": args.json}, models={"--model": args.model})
    net = DetectorNet(OnnxRunner(args.model).config) if args.model.endswith(".onnx") else load_model(args.model)
    info = model_info(net, args.size)
    info["model"] = args.model
    print(format_info_table(info))
    _write_json(args.json, info)
    return 0


def _list_zoo(args: argparse.Namespace) -> int:
    from featherface.detection.api import runs_in
    from featherface.extras import TRAIN_EXTRA_INSTALL, has_torch
    from featherface.models.zoo import ZOO

    torch_installed = has_torch()
    rows = [{"name": name, "trained": entry.trained, "default": name == DEFAULT_MODEL,
             "backend": runs_in(name, "cpu"), "description": entry.description}
            for name, entry in ZOO.items()]  # fmt: skip
    for row in rows:
        mark = "*" if row["default"] else " "
        state = "trained" if row["trained"] else "untrained heads"
        print(f"{mark} {row['name']:<20} {state:<16} {row['backend']:<12} {row['description']}")
    print("* the default of `featherface detect` and Detector.load(); `featherface info NAME` for its table")
    print("backend: what the model runs in on the CPU (onnxruntime: its shipped ONNX; torch: needs torch)")
    if torch_installed:
        print("torch: installed (torch models, CUDA, training and export available)")
    else:
        print(f"torch: not installed (models marked torch need the training extra: {TRAIN_EXTRA_INSTALL})")
    _write_json(args.json, {"models": rows, "torch_installed": torch_installed})
    return 0


# -------------------------------------------------------------------------------------------- detect
def _face_size_options(args: argparse.Namespace, size: int | None = None) -> dict[str, Any]:
    """``size`` (the inference size) / ``min_face`` / ``max_face`` for :meth:`Detector.detect_batch`, checked first."""
    if size is not None and (args.min_face is not None or args.max_face is not None):
        raise CommandError("--size and --min-face/--max-face exclude each other: the face sizes choose the scale")
    if args.min_face is not None and args.max_face is not None and args.max_face < args.min_face:
        raise CommandError(f"--max-face {args.max_face:g} is below --min-face {args.min_face:g}")
    return {"size": size, "min_face": args.min_face, "max_face": args.max_face}


def _load_detector(args: argparse.Namespace, sources: list[Any]) -> tuple[Any, int]:
    """The detector of ``--model`` and how many batches of ``sources``' images it runs at once (``--threads``
    spent across forward passes or inside each: :func:`featherface.detection.api.split_threads`)."""
    from featherface.detection.api import Detector, split_threads
    from featherface.detection.postprocess import PostprocessConfig

    images = len(sources) if all(source.kind == "image" for source in sources) else 0
    backend = None if args.backend == "auto" else args.backend
    per_pass, at_once = split_threads(args.model, args.device, args.threads, images, args.batch_size, backend)
    detector = Detector.load(
        args.model, device=args.device, threads=per_pass, allow_untrained=args.allow_untrained, backend=backend,
        postprocess_config=PostprocessConfig(args.conf, args.nms),
    )  # fmt: skip
    return detector, at_once


def _warn_skipped(skipped: Any) -> None:
    """The end of a run's :class:`~featherface.detection.stream.SkippedFiles`: a warning line when files were
    skipped (its ``InputError`` when none could be read)."""
    summary = skipped.finish()
    if summary:
        print(f"warning: skipped {summary}; listed in the JSON output", file=sys.stderr)


@contextmanager
def _result_log(path: str | Path | None) -> Iterator[Any]:
    """A :class:`~featherface.resultlog.ResultLog` that says where the finished results are when interrupted."""
    from featherface.resultlog import ResultLog

    log = ResultLog(path)
    try:
        with log:
            yield log
    except KeyboardInterrupt:
        if log.partial is not None and log.count:
            print(f"interrupted: {log.count} finished result(s) kept in {log.partial}", file=sys.stderr)
        raise


def _progress(sources: Sequence[Any]) -> Any:
    """A progress bar over files (images) or items (with videos: their frames), on a terminal only."""
    from tqdm import tqdm

    videos = any(s.kind == "video" for s in sources)
    wanted = videos or len(sources) > 1
    # disable=None: tqdm shows the bar only when stderr is a terminal (no bar in logs and pipes)
    total, unit = (None, "item") if videos else (len(sources), "img")
    return tqdm(total=total, unit=unit, disable=None if wanted else True)


def cmd_detect(args: argparse.Namespace) -> int:
    from featherface.detection.sources import OutputGuard, collect_sources, mirror_outputs
    from featherface.detection.stream import SkippedFiles, detect_sources, write_rendered
    from featherface.visualize import draw_detections

    options = _face_size_options(args, args.size)
    save_dir = Path(args.save_dir) if args.save_dir else None
    sources = collect_sources(args.inputs, skip=[save_dir] if save_dir else [])
    guard = _guard_outputs({"--json": args.json}, OutputGuard(sources), models={"--model": args.model})
    drawn = mirror_outputs(sources, save_dir, guard) if save_dir else {}
    skipped = SkippedFiles(len(sources), args.strict, "--strict")
    videos: dict[str, list[Any]] = {}  # video -> [frames, faces, track ids]
    # the --json log first: a second process writing the same file is refused before any work (resultlog)
    with _result_log(args.json) as log:
        detector, at_once = _load_detector(args, sources)
        results = detect_sources(
            detector, sources, args.batch_size, track=not args.no_track, inference_threads=at_once, **options
        )
        if drawn:
            results = write_rendered(results, drawn, lambda r: draw_detections(r.image, r.detections))
        # closing: stopped early (--strict, Ctrl-C), the video reader's thread stops and the capture is released now
        with _progress(sources) as bar, closing(results):
            for result in results:
                log.add(result.to_json())
                bar.update()
                if not result.ok:
                    skipped.add(result.name, result.error)
                elif result.frame is None:
                    bar.write(f"{result.name}: {len(result.detections)} face(s)")
                else:
                    totals = videos.setdefault(str(result.source.path), [0, 0, set()])
                    totals[0] += 1
                    totals[1] += len(result.detections)
                    totals[2].update([] if result.track_ids is None else result.track_ids.tolist())
    for video, (frames, faces, tracks) in videos.items():
        tracked = f", {len(tracks)} track(s)" if tracks else ""
        print(f"{video}: {frames} frame(s), {faces} face(s){tracked}")
    _warn_skipped(skipped)
    return 0


def _add_detection_options(p: argparse.ArgumentParser, model: str, conf: float, conf_help: str) -> None:
    """Model, thresholds, face sizes and running options shared by detect, crop and anonymize."""
    p.add_argument("--model", default=model, help=f"zoo name, .safetensors checkpoint, run directory or .onnx file "
                   f"(default {model})")  # fmt: skip
    p.add_argument("--allow-untrained", action="store_true", help="run a zoo model whose heads were never trained")
    _add_detection_tuning(p, conf, conf_help)


def _add_detection_tuning(p: argparse.ArgumentParser, conf: float, conf_help: str) -> None:
    p.add_argument("--conf", type=_unit_float, default=conf, help=conf_help)
    p.add_argument("--nms", type=_unit_float, default=0.4, help="NMS IoU threshold (default 0.4)")
    p.add_argument(
        "--min-face", type=_positive_float,
        help="smallest face to find (pixels): picks the inference scale (16-px anchors: x 16/min-face, at most 4)",
    )  # fmt: skip
    p.add_argument(
        "--max-face", type=_positive_float,
        help="largest face of interest (pixels): larger faces are dropped; sets the tiles' overlap",
    )  # fmt: skip
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    p.add_argument(
        "--backend", choices=["auto", "onnxruntime", "torch"], default="auto",
        help="auto (default): a zoo model's shipped ONNX in onnxruntime on the CPU, torch on CUDA or where no ONNX "
        "ships; torch needs the training extra",
    )  # fmt: skip
    p.add_argument(
        "--threads", type=_positive_int,
        help="CPU threads (default: all); an ONNX model over several images runs that many one-thread passes at once",
    )  # fmt: skip
    p.add_argument("--batch-size", type=_positive_int, default=8, help="images of one size (or frames) per pass")
    p.add_argument(
        "--strict", action="store_true", help="stop at the first unreadable file (default: skip it, count, list it)"
    )


# ---------------------------------------------------------------------------------------------- crop
def cmd_crop(args: argparse.Namespace) -> int:
    from featherface.crops import crop_files
    from featherface.detection.sources import OutputGuard, collect_sources
    from featherface.detection.stream import SkippedFiles

    options = _face_size_options(args)
    out = Path(args.out)
    sources = collect_sources(args.inputs, skip=[out])
    json_path = Path(args.json) if args.json else out / "crops.json"
    guard = _guard_outputs({"--json": json_path}, OutputGuard(sources), models={"--model": args.model})
    skipped = SkippedFiles(len(sources), args.strict, "--strict")
    crops, faces_skipped = 0, {}  # faces_skipped: reason -> faces without a crop
    with _result_log(json_path) as log:  # first: a second writer of the index is refused before any work
        detector, options["inference_threads"] = _load_detector(args, sources)
        entries = crop_files(detector, sources, out, args.size, args.margin, guard, batch_size=args.batch_size,
                             **options)  # fmt: skip
        with closing(entries):
            for entry in entries:
                log.add(entry)
                if "error" in entry:
                    skipped.add(entry["image"], entry["error"])
                elif entry["crop"] is None:
                    faces_skipped[entry["skipped"]] = faces_skipped.get(entry["skipped"], 0) + 1
                else:
                    crops += 1
    print(f"{crops} aligned {args.size}x{args.size} crop(s) from {len(sources)} file(s) in {out}; index {json_path}")
    if faces_skipped:
        reasons = ", ".join(f"{count} {reason}" for reason, count in faces_skipped.items())
        print(f'{sum(faces_skipped.values())} face(s) without a crop ({reasons}): in the index with "skipped"')
    _warn_skipped(skipped)
    return 0


# ----------------------------------------------------------------------------------------- anonymize
def cmd_anonymize(args: argparse.Namespace) -> int:
    from featherface.anonymize import AnonymizeConfig, anonymize_files
    from featherface.detection.sources import OutputGuard, collect_sources
    from featherface.detection.stream import SkippedFiles

    options = _face_size_options(args)
    config = AnonymizeConfig(mode=args.mode, margin=args.margin, shape=args.shape)
    out = Path(args.out)
    sources = collect_sources(args.inputs, skip=[out])
    guard = _guard_outputs({"--json": args.json}, OutputGuard(sources), models={"--model": args.model})
    skipped = SkippedFiles(len(sources), args.strict, "--strict")
    with _result_log(args.json) as log:  # first: a second writer of the JSON is refused before any work
        detector, options["inference_threads"] = _load_detector(args, sources)
        files = anonymize_files(
            detector, sources, out, config, guard, track=not args.no_track, batch_size=args.batch_size, **options
        )
        with _progress(sources) as bar, closing(files):
            for item in files:
                log.add(item.to_json())
                bar.update()
                if item.error is not None:
                    skipped.add(str(item.input), item.error)
                else:
                    frames = "" if item.frames is None else f" over {item.frames} frame(s)"
                    predicted = f", {item.predicted} where the tracker predicted them" if item.predicted else ""
                    bar.write(f"{item.input}: {item.faces} face(s) hidden{frames}{predicted} -> {item.output}")
    _warn_skipped(skipped)
    return 0


# -------------------------------------------------------------------------------------------- export
def cmd_export(args: argparse.Namespace) -> int:
    from featherface.export.onnx import export_onnx
    from featherface.models.loader import load_model

    if not args.out.endswith(".onnx"):
        raise CommandError(f"--out {args.out}: the file name must end in .onnx")
    _guard_outputs({"--out": args.out}, models={"MODEL": args.model})
    path = export_onnx(load_model(args.model), args.out)
    print(f"wrote {path} ({path.stat().st_size:,} bytes), onnxruntime matches torch")
    return 0


# ----------------------------------------------------------------------------------------- benchmark
def cmd_benchmark(args: argparse.Namespace) -> int:
    if args.end_to_end:
        return _benchmark_end_to_end(args)
    given = {"--data": args.data, "--conf": args.conf, "--nms": args.nms, "--plots": args.plots}
    given["--max-images"] = args.max_images
    needs_end_to_end = [flag for flag, value in given.items() if value is not None]
    if needs_end_to_end:
        raise CommandError(f"{', '.join(needs_end_to_end)}: only with --end-to-end")
    from featherface.benchmark import benchmark, format_benchmark_table

    _guard_outputs({"--json": args.json}, models={"MODEL": args.models})
    size, backend, repeats = args.size or 640, args.backend or "torch", args.repeats or 30
    rows = []
    for threads in args.threads or [1]:
        timed = benchmark(args.models, size, backend, threads, repeats, args.warmup)
        print(f"backend {backend}, {threads} thread(s), 1x3x{size}x{size}, {repeats} repeats")
        print(format_benchmark_table(timed))
        rows += timed
    _write_json(args.json, rows)
    return 0


def _benchmark_end_to_end(args: argparse.Namespace) -> int:
    from featherface.benchmark_e2e import benchmark_end_to_end, format_end_to_end_table, plot_stage_shares

    if not args.data:
        raise CommandError("--end-to-end needs --data (a folder of photos, DIR:holdout, a labelled set, sample:val)")
    plots = Path(args.plots) / "end_to_end_stages.png" if args.plots else None
    outputs = {"--json": args.json, "--plots": plots}
    _guard_outputs(outputs, models={"MODEL": args.models}, datasets={"--data": args.data})
    options = {"threads": args.threads, "backend": args.backend, "conf": args.conf, "nms": args.nms}
    options.update(repeats=args.repeats, warmup=args.warmup, max_images=args.max_images)
    options = {k: v for k, v in options.items() if v is not None}  # the API's defaults for the rest
    rows = benchmark_end_to_end(args.models, args.data, size=args.size, **options)
    conf = rows[0]["conf"]
    print(f"{args.data}: {rows[0]['images']} images counted per row, conf {conf}, size {args.size or 'original'}")
    print(format_end_to_end_table(rows))
    if args.plots:
        print(f"stage shares: {plot_stage_shares(rows, plots)}")
    _write_json(args.json, rows)
    return 0


# ------------------------------------------------------------------------------------------ evaluate
def _evaluate_wider(args: argparse.Namespace) -> dict[str, Any]:
    from featherface.evaluation.plots import plot_pr_curves
    from featherface.evaluation.widerface import SETTINGS, evaluate_wider, load_wider_ground_truth, read_predictions

    inputs = sorted(Path(args.wider_gt).glob("*.mat"))
    if args.predictions:
        inputs += sorted(Path(args.predictions).rglob("*.txt"))
    plots = Path(args.plots) / "wider_pr.png" if args.plots else None
    _guard_outputs({"--json": args.json, "--plots": plots}, models={"--model": args.model}, images=inputs)
    ground_truth = load_wider_ground_truth(args.wider_gt)
    pred_dir = args.predictions
    if args.model:
        if not args.images:
            raise CommandError("--wider-gt with --model needs --images WIDER_val/images")
        from featherface.detection.api import Detector, split_threads
        from featherface.evaluation.runner import predict_wider

        pred_dir = args.write_predictions
        per_pass, at_once = split_threads(args.model, args.device, args.threads, len(ground_truth))
        detector = Detector.load(args.model, device=args.device, threads=per_pass, allow_untrained=True)
        count = predict_wider(detector, args.images, pred_dir, inference_threads=at_once)
        print(f"wrote predictions for {count} images to {pred_dir}")
    result = evaluate_wider(read_predictions(pred_dir), ground_truth)
    if result.images_without_predictions:
        print(
            f"warning: {result.images_without_predictions} ground-truth images have no prediction file", file=sys.stderr
        )
    print("  ".join(f"{s}: {result.ap[s]:.4f}" for s in SETTINGS))
    if args.plots:
        curves = {s: (result.recall[s], result.precision[s], result.ap[s]) for s in SETTINGS}
        path = plot_pr_curves(curves, plots, "WIDER FACE val")
        print(f"PR curves: {path}")
    return result.to_dict()


# above this many images, evaluate prints totals only (the rows are in --json)
_MAX_IMAGE_ROWS = 50


def _evaluate_dataset(args: argparse.Namespace) -> dict[str, Any]:
    from featherface.data.labels import LabelReport
    from featherface.data.sample import resolve_dataset
    from featherface.detection.api import Detector, split_threads
    from featherface.evaluation.plots import plot_pr_curves
    from featherface.evaluation.runner import (
        EVAL_CONF_THRESHOLD,
        EVAL_NMS_THRESHOLD,
        claim_drawn_copies,
        evaluate_detector,
        write_drawn_copies,
    )
    from featherface.evaluation.voc import format_metric

    report = LabelReport()
    if args.teacher:
        annotations = _teacher_images(args)
    else:
        annotations = resolve_dataset(args.data, strict=args.strict, report=report, classes=args.classes)
    _require_images(args, annotations, report)
    # every output claimed over every input (images skipped as unreadable too: still a user's files) before work
    images = [ann.path for ann in annotations] + [Path(f["path"]) for f in report.files if Path(f["path"]).is_file()]
    plots = Path(args.plots) / "pr.png" if args.plots else None
    guard = _guard_outputs(
        {"--json": args.json, "--plots": plots}, models={"--model": args.model, "--teacher": args.teacher},
        datasets={"--data": args.data}, images=images,
    )  # fmt: skip
    drawn = claim_drawn_copies([ann.path for ann in annotations], args.save_dir, guard=guard)
    if args.teacher:
        annotations = _teacher_references(args, annotations, report)
        _require_images(args, annotations, report)
    # evaluating an untrained model is legitimate (a baseline): its AP says what it is
    per_pass, at_once = split_threads(args.model, args.device, args.threads, len(annotations))
    detector = Detector.load(args.model, device=args.device, threads=per_pass, allow_untrained=True)
    # an image that cannot be decoded is skipped and counted (with --strict: the error, exit status 2)
    result, detections = evaluate_detector(
        detector, annotations, score_threshold=args.conf, iou_threshold=args.iou,
        report=None if args.strict else report, inference_threads=at_once,
    )  # fmt: skip
    if report.total:
        print(f"warning: skipped {report.summary()}", file=sys.stderr)
    if all(found is None for found in detections):
        raise CommandError(f"{args.data}: none of the {len(annotations)} images could be read")
    rows = result.per_image if len(result.per_image) <= _MAX_IMAGE_ROWS else []
    if rows:
        print(f"{'image':<30}{'faces':>6}{'dets':>6}{'TP':>5}{'FP':>5}{'missed':>8}")
    else:
        print(f"{len(result.per_image)} images (per-image rows in --json)")
    for row in rows:
        print(
            f"{row['image']:<30}{row['faces']:>6}{row['detections']:>6}{row['true_positives']:>5}"
            f"{row['false_positives']:>5}{row['missed']:>8}"
        )

    reference = f"teacher {args.teacher} at score >= {args.teacher_conf}" if args.teacher else "labels"
    ap, ap75, ap50_95, recall, nme = (format_metric(v) for v in (result.ap, result.ap75, result.ap50_95, result.recall,
                                                                  result.nme))  # fmt: skip
    print(
        f"AP@{args.iou:g} {ap}  AP@0.75 {ap75}  AP@[.5:.95] {ap50_95}  recall {recall}  "
        f"precision {result.precision:.4f}  NME {nme}  "
        f"({result.num_faces} faces from {reference}; recall, precision and NME at score >= {args.conf})"
    )
    if args.plots:
        curves = {args.data: (result.pr_recall, result.pr_precision, result.ap)}
        path = plot_pr_curves(curves, plots, f"{args.model} on {args.data}")
        print(f"PR curve: {path}")
    unwritten = write_drawn_copies(annotations, detections, drawn, args.conf)
    if unwritten:
        first = unwritten[0]
        print(f"warning: {len(unwritten)} drawn cop(ies) not written (first: {first['where']}: "
              f"{first['reason']})", file=sys.stderr)  # fmt: skip
    settings = {
        "classes": args.classes,
        "teacher": args.teacher,
        "teacher_conf": args.teacher_conf if args.teacher else None,
        "detection_conf": EVAL_CONF_THRESHOLD,
        "detection_nms": EVAL_NMS_THRESHOLD,
        "image_size": "original",
        "skipped": dict(report.skipped),
        "skipped_at": report.examples,
        # every image left out whole, with why (missing or unreadable), then every drawn copy not written
        "errors": [{"path": f["path"], "reason": f["reason"], "where": f["where"]} for f in report.files] + unwritten,
    }
    return {"model": args.model, "data": args.data, **settings, **result.to_dict()}


def _require_images(args: argparse.Namespace, annotations: list[Any], report: Any) -> None:
    if not annotations:
        skipped = f" (skipped {report.summary()})" if report.total else ""
        raise CommandError(f"{args.data}: no labelled images{skipped}")


def _teacher_images(args: argparse.Namespace) -> list[Any]:
    """The images of ``--data`` for ``--teacher`` to label (labels there, if any, are not used)."""
    from featherface.data.sample import resolve_distillation_data

    if args.classes is not None:
        raise CommandError("--classes picks labelled VOC classes; it has no meaning with --teacher")
    images, _ = resolve_distillation_data(args.data, strict=args.strict)
    return images


def _teacher_references(args: argparse.Namespace, images: list[Any], report: Any) -> list[Any]:
    """The teacher's confident faces on ``images``."""
    from featherface.data.pseudo import teacher_annotations
    from featherface.detection.api import Detector

    teacher = Detector.load(args.teacher, device=args.device, threads=args.threads)
    paths = [ann.path for ann in images]
    return teacher_annotations(teacher, paths, args.teacher_conf, progress=True, strict=args.strict, report=report)


def _class_list(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected class names separated by commas, got {text!r}")
    return names


def cmd_evaluate(args: argparse.Namespace) -> int:
    if args.wider_gt:
        if bool(args.predictions) == bool(args.model):
            raise CommandError("--wider-gt needs exactly one of --predictions DIR or --model M --images DIR")
        summary = _evaluate_wider(args)
    else:
        if not (args.model and args.data):
            raise CommandError(
                "give --model M --data D, or --wider-gt DIR with --predictions DIR / --model M --images DIR"
            )
        summary = _evaluate_dataset(args)
    _write_json(args.json, summary)
    return 0


# --------------------------------------------------------------------------------------------- train
def _training_config(args: argparse.Namespace, data_arg: str, saved: Path | None = None, must_exist: bool = True):
    """The training options: on ``--resume`` those saved in the run (``saved``, default RUN/config.yaml) with only
    epochs/time/device/workers overridable; otherwise ``--config`` (or the sample preset for sample data) + flags."""
    from featherface.training.config import load_train_config

    overrides = {
        "data": getattr(args, data_arg),
        "val": args.val,
        "epochs": args.epochs,
        "max_minutes": args.max_minutes,
        "device": args.device,
        "seed": args.seed,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "workers": args.workers,
        "strict": args.strict or None,
    }
    if args.resume:  # (show-batch has no run: no --out)
        saved = saved or Path(args.out) / "config.yaml"
        if saved.is_file():
            return load_train_config(saved, {k: overrides[k] for k in ("epochs", "max_minutes", "device", "workers")})
        if must_exist:
            raise CommandError(f"--resume: {saved} not found (was {args.out} made by featherface?)")
    source = args.config
    if source is None and str(getattr(args, data_arg)).startswith("sample"):
        source = "sample"  # the tiny embedded set needs its own recipe; WIDER defaults would barely move
    return load_train_config(source, overrides)


def _prepare_run(args: argparse.Namespace, *input_flags: str) -> None:
    """``--out`` made ready for a training-like command: refused if it holds a run, unless --resume/--overwrite."""
    from featherface.training.rundir import prepare_run_dir

    inputs = [(f"--{flag.replace('_', '-')}", getattr(args, flag, None)) for flag in input_flags]
    prepare_run_dir(args.out, resume=args.resume, overwrite=args.overwrite, inputs=inputs)


def cmd_train(args: argparse.Namespace) -> int:
    from featherface.models.loader import load_model
    from featherface.training.trainer import Trainer

    config = _training_config(args, "data")
    config.model = args.model
    _prepare_run(args, "model", "data", "val")
    net = load_model(args.model, seed=config.seed)
    result = Trainer(net, config, args.out, resume=args.resume).fit()
    print(f"trained {_epochs_done(result)}; checkpoints in {result.out_dir} (best.safetensors, last.safetensors)")
    return 0


def _epochs_done(result) -> str:
    """``3 epoch(s)``, or ``3 epoch(s) and 5/12 steps of epoch 4`` when the time budget stopped inside one."""
    done = f"{result.epochs_done} epoch(s)"
    if result.partial_steps:
        done += f" and {result.partial_steps} step(s) of epoch {result.epochs_done + 1} (--resume continues it)"
    return done


def cmd_distill(args: argparse.Namespace) -> int:
    from featherface.models.loader import load_model
    from featherface.models.zoo import start_from_teacher_backbone
    from featherface.training.distill import DistillObjective, distillation_data
    from featherface.training.trainer import Trainer

    if str(args.teacher).endswith(".onnx"):
        raise CommandError("--teacher: distillation needs a torch model (zoo name, checkpoint or run dir), not ONNX")
    config = _training_config(args, "data")
    config.model = args.student
    distill_config = _distill_config(args)
    _prepare_run(args, "teacher", "student", "data", "val")
    teacher = load_model(args.teacher)
    annotations, val = distillation_data(
        args.data, args.val, teacher, str(args.teacher), distill_config, Path(args.out) / "teacher-labels",
        strict=config.strict,
    )  # fmt: skip
    student = load_model(args.student, seed=config.seed)
    if args.student_init == "teacher-backbone" and not args.resume:
        try:
            start_from_teacher_backbone(student, teacher)
        except ValueError as exc:
            raise CommandError(f"--student-init teacher-backbone: {exc}") from None
    objective = DistillObjective(teacher, student, config, distill_config)
    trainer = Trainer(
        student, config, args.out, resume=args.resume, objective=objective, train_annotations=annotations,
        val_annotations=val,
    )  # fmt: skip
    result = trainer.fit()
    print(f"distilled {_epochs_done(result)} from {args.teacher}; checkpoints in {result.out_dir}")
    return 0


def _load_teacher(spec: str | None):
    from featherface.models.loader import load_model

    if spec is None:
        return None
    if str(spec).endswith(".onnx"):
        raise CommandError("--teacher: needs a torch model (zoo name, checkpoint or run dir), not ONNX")
    return load_model(spec)


def _prune_config(args: argparse.Namespace):
    from featherface.pruning.phases import load_prune_config
    from featherface.pruning.search import SearchError, check_latency_settings

    config = load_prune_config(_config_source(args))
    if getattr(args, "trials", None):
        config.search.trials = args.trials
    if getattr(args, "target_params", None):
        config.search.target_params = args.target_params
    if getattr(args, "tolerance", None) is not None:
        config.search.tolerance = args.tolerance
    if getattr(args, "seed", None) is not None:  # the search's start points and GP follow the run's seed
        config.search.seed = args.seed
    if getattr(args, "method", None):
        config.method = args.method
    if getattr(args, "latency_exponent", None) is not None:
        config.search.latency_exponent = args.latency_exponent
    if getattr(args, "latency_target", None) is not None:
        config.search.latency_target = args.latency_target
    try:  # now, before any work, for the flags and the config file alike
        check_latency_settings(config.search)
    except SearchError as exc:
        raise CommandError(f"--latency-target: {exc} (--latency-exponent)") from None
    if getattr(args, "mask", None):
        config.mask = args.mask
    if args.epochs:  # --epochs sets the phase's own length: SFP epochs (prune) or fine-tune epochs (finetune)
        if args.func is cmd_prune:
            config.sfp_epochs = args.epochs
        else:
            config.finetune_epochs = args.epochs
    return config


def _guard_training_json(args: argparse.Namespace) -> None:
    """``--json`` of prune / finetune refused over any of their inputs."""
    _guard_outputs(
        {"--json": args.json}, models={"--model": args.model, "--teacher": args.teacher},
        configs={"--config": _config_source(args)}, datasets={"--data": args.data, "--val": args.val},
    )  # fmt: skip


def cmd_prune(args: argparse.Namespace) -> int:
    from featherface.data.sample import resolve_dataset
    from featherface.models.loader import load_model
    from featherface.pruning.phases import prune

    if args.val is None:
        if not str(args.data).startswith("sample"):
            raise CommandError("--val is required: the BO objective is the validation loss")
        args.val = "sample:val"
    train = _training_config(args, "data", saved=Path(args.out) / "sfp" / "config.yaml", must_exist=False)
    config = _prune_config(args)
    _guard_training_json(args)
    _prepare_run(args, "model", "teacher", "data", "val")
    net = load_model(args.model, seed=train.seed)
    teacher = _load_teacher(args.teacher)
    summary = prune(
        net,
        train,
        config,
        args.out,
        resolve_dataset(args.val, strict=train.strict),
        teacher=teacher,
        storage=args.storage,
        resume=args.resume,
        distill=_distill_config(args),
    )
    print(
        f"pruned {summary['params_unpruned']:,} -> {summary['params_pruned']:,} parameters; "
        f"{len(summary['trials'])} trials; {args.out}/soft_pruned.safetensors"
    )
    _write_json(args.json, summary)
    return 0


def cmd_finetune(args: argparse.Namespace) -> int:
    from featherface.data.sample import resolve_dataset
    from featherface.pruning.phases import finetune

    train = _training_config(args, "data")
    config = _prune_config(args)
    _guard_training_json(args)
    _prepare_run(args, "model", "teacher", "data", "val")
    val = resolve_dataset(args.val, strict=train.strict) if args.val else None
    summary = finetune(
        args.model, train, config, args.out, val, teacher=_load_teacher(args.teacher), resume=args.resume,
        distill=_distill_config(args),
    )  # fmt: skip
    print(
        f"deployed model: {summary['deployed']} ({summary['params']:,} parameters; "
        f"max |masked - deployed| = {summary['max_output_difference']:.1e})"
    )
    _write_json(args.json, summary)
    return 0


def cmd_pipeline(args: argparse.Namespace) -> int:
    from featherface.pipeline import load_pipeline_config, run_pipeline

    pipe = load_pipeline_config(args.config)
    datasets = {f"pipeline {name}": spec for name, spec in (("data", pipe.data), ("val", pipe.val))}
    datasets.update({f"pipeline report_data {spec}": spec for spec in pipe.report_data})
    _guard_outputs({"--json": args.json}, configs={"--config": args.config or "sample"}, datasets=datasets)
    report = run_pipeline(args.config, args.out)
    _write_json(args.json, report)
    return 0


def cmd_show_batch(args: argparse.Namespace) -> int:
    from featherface.training.preview import write_batch_preview

    config = _training_config(args, "data")
    outputs = {"--out-png": args.out_png}
    _guard_outputs(outputs, configs={"--config": _config_source(args)}, datasets={"--data": args.data})
    path = write_batch_preview(config, args.out_png, count=args.count, epoch=args.epoch)
    print(f"wrote {path}")
    return 0


def _add_training_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="run directory (checkpoints, metrics.csv, config.yaml)")
    p.add_argument("--val", help="validation data (label.txt or sample:val): best checkpoint by its AP@0.5")
    p.add_argument("--config", help="YAML file or preset (sample, widerface); default: sample for sample data")
    p.add_argument("--epochs", type=_positive_int)
    p.add_argument("--max-minutes", type=float, help="stop cleanly at this budget: finish the step, evaluate, save")
    p.add_argument("--resume", action="store_true", help="continue from RUN/trainer_state.pt")
    p.add_argument(
        "--overwrite", action="store_true",
        help="replace the run already in --out (its checkpoints, metrics, study); without it, or --resume, refused",
    )  # fmt: skip
    p.add_argument("--device", help="cpu, cuda, cuda:N or auto (default)")
    p.add_argument("--seed", type=int)
    p.add_argument("--batch-size", type=_positive_int, help="per process")
    p.add_argument("--lr", type=float)
    p.add_argument("--workers", type=int, help="data-loading processes")
    p.add_argument("--strict", action="store_true", help="stop at the first bad label or image (default: skip, count)")


def _add_distill_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--alpha", type=_unit_float, help="distillation share of the loss (default: config, else 0.7)")
    p.add_argument("--temperature", type=_positive_float, help="softmax temperature T (default: config, else 4)")
    p.add_argument(
        "--confident", type=_unit_float,
        help="teacher face probability that gives a prior box/landmark targets (default: config, else 0.5)",
    )  # fmt: skip
    p.add_argument(
        "--feature-weight", type=_non_negative_float,
        help="weight of feature distillation (teacher's head inputs through 1x1 adapters; default: config, else 0)",
    )  # fmt: skip


def _distill_config(args: argparse.Namespace):
    from featherface.training.distill import load_distill_config

    return load_distill_config(
        _config_source(args), temperature=args.temperature, alpha=args.alpha, confident=args.confident,
        feature_weight=getattr(args, "feature_weight", None),
    )  # fmt: skip


def _config_source(args: argparse.Namespace) -> str | None:
    """``--config``, or the sample preset for the embedded set (its tiny data needs its own recipe)."""
    if args.config is None and str(args.data).startswith("sample"):
        return "sample"
    return args.config


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="featherface", description="Ultra-lightweight face detection.")
    parser.add_argument("--version", action="version", version=f"featherface {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    model_help = "zoo name, .safetensors checkpoint, run directory or .onnx file"

    p = sub.add_parser("info", help="the zoo's models; a model's parameters per module vs the seed's budget, GFLOPs")
    p.add_argument("model", nargs="?", help=model_help + " (none: list the zoo)")
    p.add_argument("--size", type=_positive_int, default=640, help="square input size for GFLOPs (default 640)")
    p.add_argument("--json", help="write the figures to this JSON file")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("detect", help="detect faces in images, folders and videos")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, videos, folders (searched recursively)")
    p.add_argument("--model", default=DEFAULT_MODEL, help=model_help + f" (default {DEFAULT_MODEL})")
    p.add_argument("--allow-untrained", action="store_true", help="run a zoo model whose heads were never trained")
    p.add_argument("--json", help="write detections to this JSON file (as they come: F.partial until finished)")
    p.add_argument(
        "--save-dir", help="write drawn copies here, mirroring the inputs' relative paths (never over an input)"
    )
    p.add_argument(
        "--size", type=_positive_int,
        help="resize the long side to this (default: original size; larger than 4096 px: tiled)",
    )  # fmt: skip
    p.add_argument("--no-track", action="store_true", help="videos: no track_id, boxes as detected frame by frame")
    _add_detection_tuning(p, 0.5, "score threshold (default 0.5)")
    p.set_defaults(func=cmd_detect)

    p = sub.add_parser("crop", help="one aligned (ArcFace 112x112 template) crop per face, and a JSON index")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, videos, folders (searched recursively)")
    p.add_argument("--out", required=True, help="folder for the crops (mirroring the inputs' relative paths)")
    p.add_argument("--size", type=_positive_int, default=112, help="crop side in pixels (default 112)")
    p.add_argument(
        "--margin", type=_non_negative_float, default=0.0,
        help="context around the template's frame, a fraction of its side per edge (default 0: ArcFace's crop)",
    )  # fmt: skip
    p.add_argument("--json", help="the index: crop -> image, box, score, landmarks (default OUT/crops.json)")
    # crops for recognition want the most precise landmarks: the WIDER-trained reference model by default
    _add_detection_options(p, "retinaface-mnet025", 0.5, "score threshold (default 0.5)")
    p.set_defaults(func=cmd_crop)

    p = sub.add_parser("anonymize", help="hide every face in images, folders and videos (inputs untouched)")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, videos, folders (searched recursively)")
    p.add_argument("--out", required=True, help="folder for the anonymised copies (mirroring relative paths)")
    p.add_argument("--mode", choices=["blur", "pixelate", "solid"], default="blur", help="how (default blur)")
    p.add_argument(
        "--margin", type=_non_negative_float, default=0.25,
        help="grow each box by this fraction per side (default 0.25: the ellipse then covers the whole box)",
    )  # fmt: skip
    p.add_argument("--shape", choices=["ellipse", "rect"], default="ellipse", help="hidden region (default ellipse)")
    p.add_argument("--json", help="write per-file face counts to this JSON file")
    p.add_argument(
        "--no-track", action="store_true",
        help="videos: hide only the faces detected in each frame (no tracker predictions for missed frames)",
    )  # fmt: skip
    # a missed face is a privacy failure: the most accurate shipped model and a low threshold by default
    _add_detection_options(
        p, "retinaface-mnet025", 0.3, "score threshold (default 0.3: favours recall; a false positive costs a blur)"
    )
    p.set_defaults(func=cmd_anonymize)

    p = sub.add_parser("export", help="export to ONNX (dynamic batch/H/W), checked against torch")
    p.add_argument("model", help="zoo name, .safetensors checkpoint or run directory")
    p.add_argument("--out", required=True, help="output .onnx file")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("train", help="train a model with the task (MultiBox) loss")
    p.add_argument("--model", required=True, help="zoo name (ImageNet backbone) or a checkpoint to continue from")
    p.add_argument("--data", required=True, help="label.txt, WIDER FACE root, or sample / sample:train")
    _add_training_options(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("distill", help="phase 1: distil a teacher into a student (labelled or unlabelled images)")
    p.add_argument("--teacher", required=True, help="zoo name, checkpoint or run dir (e.g. retinaface-mnet025)")
    p.add_argument("--student", required=True, help="zoo name (e.g. nano-b) or a checkpoint")
    p.add_argument(
        "--student-init", choices=STUDENT_INITS, default="own",
        help="where the student's backbone starts: its own weights (ImageNet's for nano-b, the shipped ones for "
        "nano-b-distilled), or the teacher's trained backbone where the layers match (nano-b from retinaface-mnet025)",
    )  # fmt: skip
    p.add_argument("--data", required=True, help="label.txt, WIDER root, sample / sample:train, or a folder of images")
    _add_distill_options(p)
    _add_training_options(p)
    p.set_defaults(func=cmd_distill)

    p = sub.add_parser("prune", help="phase 2: B-FPGM (FPGM soft pruning, Bayesian-optimised rates)")
    p.add_argument("--model", required=True, help="the model to prune (checkpoint, run dir or zoo name)")
    p.add_argument("--teacher", help="keep distillation on during pruning (zoo name, checkpoint or run dir)")
    p.add_argument("--data", required=True, help="training data")
    p.add_argument("--trials", type=_positive_int, help="BO trials (default 25)")
    p.add_argument("--target-params", type=_positive_int, help="deployed parameter target (default 150000)")
    p.add_argument(
        "--latency-exponent", type=_non_negative_float, default=None,
        help="hardware-aware search: scale each trial's loss by (its onnxruntime time / the unpruned one's) to this "
        "power (default 0, as in the shipped configs: the B-FPGM authors' objective)",
    )  # fmt: skip
    p.add_argument(
        "--latency-target", type=_positive_float, default=None,
        help="with --latency-exponent: penalise only time above this fraction of the unpruned model's (e.g. 0.6)",
    )  # fmt: skip
    p.add_argument("--tolerance", type=_unit_float, help="deployed params within target x (1 +- this) (default 0.1)")
    p.add_argument("--mask", choices=["hard", "smooth"], help="soft-pruning mask: zero filters, or sigmoid-shrink")
    p.add_argument(
        "--method", choices=["sfp", "oneshot"],
        help="sfp: filters zeroed each epoch, free to recover (default); oneshot: masks fixed first (ablation)",
    )  # fmt: skip
    p.add_argument("--storage", help="Optuna storage URL (default sqlite:///RUN/study.db); share it between machines")
    p.add_argument("--json", help="write rates and trials to this JSON file")
    _add_distill_options(p)
    _add_training_options(p)
    p.set_defaults(func=cmd_prune)

    p = sub.add_parser("finetune", help="phase 3: fine-tune with fixed masks, then hard-prune to the deployed model")
    p.add_argument("--model", required=True, help="a prune run directory")
    p.add_argument("--teacher", help="keep distillation on while fine-tuning")
    p.add_argument("--data", required=True, help="training data")
    p.add_argument("--json", help="write the summary to this JSON file")
    _add_distill_options(p)
    _add_training_options(p)
    p.set_defaults(func=cmd_finetune)

    p = sub.add_parser("pipeline", help="the main job: teacher -> distil -> B-FPGM -> fine-tune -> report")
    p.add_argument("--config", help="YAML file or preset (default: sample, the embedded set)")
    p.add_argument("--out", required=True, help="run directory (resumable: rerun to continue)")
    p.add_argument("--json", help="also write report.json's content here")
    p.set_defaults(func=cmd_pipeline)

    p = sub.add_parser("show-batch", help="PNG grid of augmented training samples with boxes and landmarks")
    p.add_argument("--data", required=True, help="label.txt, WIDER FACE root, or sample / sample:train")
    p.add_argument("--out-png", required=True, help="output PNG")
    p.add_argument("--count", type=_positive_int, default=16)
    p.add_argument("--epoch", type=int, default=0, help="which epoch's augmentation to show")
    p.add_argument("--config", help="YAML file or preset (sample, widerface)")
    p.set_defaults(
        func=cmd_show_batch, val=None, epochs=None, max_minutes=None, device="cpu", seed=None, batch_size=None,
        lr=None, workers=None, strict=False, resume=False, out=None,
    )  # fmt: skip

    p = sub.add_parser("evaluate", help="AP: WIDER FACE protocol (--wider-gt) or AP@0.5/recall/NME on a labelled set")
    p.add_argument("--model", help=model_help)
    p.add_argument(
        "--data",
        help="label.txt, a folder with one, a Pascal VOC folder, sample / sample:train / sample:val; "
        "with --teacher also a folder of unlabelled images (DIR, DIR:train, DIR:holdout)",
    )
    p.add_argument("--classes", type=_class_list, help="VOC data: the classes that are faces, a,b (default all)")
    p.add_argument("--iou", type=_unit_float, default=0.5, help="IoU a detection needs to find a face (default 0.5)")
    p.add_argument("--teacher", help="score against this model's faces instead of labels (zoo name, checkpoint...)")
    p.add_argument(
        "--teacher-conf", type=_unit_float, default=0.5, help="teacher score that makes a face (default 0.5)"
    )
    p.add_argument("--wider-gt", help="folder of the official wider_*_val.mat files")
    p.add_argument("--predictions", help="WIDER-layout predictions folder (<event>/<image>.txt) to score")
    p.add_argument("--images", help="WIDER_val/images (with --wider-gt --model): run the model over it")
    p.add_argument(
        "--write-predictions",
        default="wider_predictions",
        help="where --model writes WIDER predictions (default ./wider_predictions)",
    )
    p.add_argument("--conf", type=_unit_float, default=0.5, help="score for recall/precision/NME (default 0.5)")
    p.add_argument("--strict", action="store_true", help="fail on the first bad label line instead of skipping it")
    p.add_argument("--json", help="write the results to this JSON file")
    p.add_argument("--plots", help="write PR-curve PNGs into this folder")
    p.add_argument(
        "--save-dir", help="write drawn copies here, mirroring the images' relative paths (never over an input)"
    )
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    p.add_argument(
        "--threads", type=_positive_int,
        help="CPU threads (default: all); an ONNX model runs that many one-thread passes at once",
    )  # fmt: skip
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("benchmark", help="latency of several models, interleaved in one run")
    p.add_argument("models", nargs="+", metavar="MODEL", help=model_help)
    p.add_argument(
        "--size", type=_positive_int,
        help="square input size (default 640); with --end-to-end: resize the long side to it (default: original)",
    )  # fmt: skip
    p.add_argument(
        "--backend", choices=["torch", "onnxruntime"],
        help="default torch; with --end-to-end onnxruntime (torch models exported first; .onnx files always ORT)",
    )  # fmt: skip
    p.add_argument(
        "--threads", type=_positive_int, action="append",
        help="CPU threads; repeat for several counts (--threads 1 --threads 2), a set of rows each "
        "(default 1; with --end-to-end 1 and 2)",
    )  # fmt: skip
    p.add_argument(
        "--repeats", type=_positive_int, help="timed runs per model (default 30); with --end-to-end passes (default 1)"
    )
    p.add_argument(
        "--warmup", type=int, default=3,
        help="untimed runs per model first; with --end-to-end: first images not counted (default 3)",
    )  # fmt: skip
    p.add_argument("--json", help="write the rows to this JSON file")
    p.add_argument(
        "--end-to-end", action="store_true",
        help="time imread -> preprocess -> forward -> postprocess per image over --data, each stage's share",
    )  # fmt: skip
    p.add_argument("--data", help="--end-to-end: a folder of photos (subfolders too), DIR:holdout, a labelled set")
    p.add_argument("--conf", type=_unit_float, help="--end-to-end: score threshold (default 0.02, as evaluation)")
    p.add_argument("--nms", type=_unit_float, help="--end-to-end: NMS IoU threshold (default 0.4)")
    p.add_argument("--max-images", type=_positive_int, help="--end-to-end: only the first N images")
    p.add_argument("--plots", help="--end-to-end: write a stacked-bar PNG of the stage shares into this folder")
    p.set_defaults(func=cmd_benchmark)
    return parser


_ONE_LINE_ERRORS = {  # module -> its bad-input exception (those not already a ValueError or OSError)
    "featherface.export.onnx": "ExportError",
    "featherface.training.trainer": "TrainingError",
}


def _one_line_errors() -> tuple[type[Exception], ...]:
    """Exceptions reported as one line: bad input, from the modules the command loaded (a command never imports
    one only to catch its errors: `detect` on an ONNX file runs without torch)."""
    loaded = [getattr(sys.modules[m], name) for m, name in _ONE_LINE_ERRORS.items() if m in sys.modules]
    return (CommandError, ValueError, OSError, *loaded)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except _one_line_errors() as exc:  # evaluated only once an exception is raised
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"featherface {args.command}: error: {message}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        # commands import torch & co. where they need them: a missing one means the inference-only install
        from featherface.extras import training_extra_error

        missing = training_extra_error(exc)
        if missing is None:
            raise
        print(f"featherface {args.command}: {missing}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("featherface: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

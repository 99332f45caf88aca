"""``featherface`` command line: a thin shell over the Python API (SPEC section 8)."""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from featherface import __version__


class CommandError(Exception):
    """Bad input from the command line: printed as one line, exit status 2."""


def _write_json(path: str | None, data: Any, line_per_item: bool = False) -> None:
    """``line_per_item``: a list written one compact item per line (json's C encoder, ~4x faster than indenting
    when there are thousands of faces)."""
    if path:
        from featherface.fileio import atomic_write_bytes

        text = "[\n" + ",\n".join(map(json.dumps, data)) + "\n]" if line_per_item else json.dumps(data, indent=1)
        atomic_write_bytes(Path(path), (text + "\n").encode())


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
    from featherface.checkpoint import load_model
    from featherface.detection.runners import OnnxRunner
    from featherface.models.detector_net import DetectorNet
    from featherface.profiling import format_info_table, model_info

    net = DetectorNet(OnnxRunner(args.model).config) if args.model.endswith(".onnx") else load_model(args.model)
    info = model_info(net, args.size)
    info["model"] = args.model
    print(format_info_table(info))
    _write_json(args.json, info)
    return 0


# -------------------------------------------------------------------------------------------- detect
def _collect_inputs(inputs: Sequence[str]) -> list[Path]:
    from featherface.detection.image import list_images

    paths: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = list_images(path)
            if not found:
                raise CommandError(f"{path}: folder holds no images")
            paths.extend(found)
        elif path.is_file():
            paths.append(path)
        else:
            raise CommandError(f"{path}: no such file or folder")
    return paths


VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")


def _detect_video(detector, path: Path, args: argparse.Namespace, save_dir: Path | None) -> list[dict[str, Any]]:
    import cv2
    from tqdm import tqdm

    from featherface.visualize import draw_detections

    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise CommandError(f"{path}: not a readable video")
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    writer = None
    results = []
    with tqdm(total=frames, desc=path.name, unit="frame") as bar:
        index = 0
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            found = detector.detect(frame, size=args.size)
            results.append(
                {"image": f"{path}#frame={index}", "width": frame.shape[1], "height": frame.shape[0],
                 "faces": found.faces()}
            )  # fmt: skip
            if save_dir is not None:
                if writer is None:
                    out = save_dir / f"{path.stem}.mp4"
                    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, frame.shape[1::-1])
                writer.write(draw_detections(frame, found))
            index += 1
            bar.update(1)
    capture.release()
    if writer is not None:
        writer.release()
    if not results:
        raise CommandError(f"{path}: video has no readable frames")
    return results


def cmd_detect(args: argparse.Namespace) -> int:
    import cv2
    from tqdm import tqdm

    from featherface.detection.api import Detector
    from featherface.detection.image import read_image
    from featherface.detection.postprocess import PostprocessConfig
    from featherface.visualize import draw_detections

    videos = [Path(i) for i in args.inputs if Path(i).is_file() and Path(i).suffix.lower() in VIDEO_SUFFIXES]
    paths = _collect_inputs([i for i in args.inputs if Path(i) not in videos]) if len(videos) < len(args.inputs) else []
    detector = Detector.load(
        args.model, device=args.device, threads=args.threads, postprocess_config=PostprocessConfig(args.conf, args.nms)
    )
    save_dir = Path(args.save_dir) if args.save_dir else None
    if save_dir:
        save_dir.mkdir(parents=True, exist_ok=True)
    results = []
    # images of one size go through the network together; mixed sizes are never padded into one batch, so a
    # face's result does not depend on its neighbours
    pending: list[tuple[Path, Any]] = []

    def flush() -> None:
        found = detector.detect_batch([image for _, image in pending], size=args.size)
        for (path, image), detections in zip(pending, found, strict=True):
            results.append(
                {"image": str(path), "width": image.shape[1], "height": image.shape[0], "faces": detections.faces()}
            )
            if save_dir:
                out = save_dir / f"{path.stem}.jpg"
                if not cv2.imwrite(str(out), draw_detections(image, detections)):
                    raise CommandError(f"{out}: could not write the drawn image")
        pending.clear()

    for path in tqdm(paths, desc="detect", unit="img", disable=len(paths) < 2):
        image = read_image(path)
        if pending and (len(pending) >= args.batch_size or pending[0][1].shape != image.shape):
            flush()
        pending.append((path, image))
    if pending:
        flush()
    for entry in results:
        print(f"{entry['image']}: {len(entry['faces'])} face(s)")
    for video in videos:
        frames = _detect_video(detector, video, args, save_dir)
        print(f"{video}: {len(frames)} frame(s), {sum(len(f['faces']) for f in frames)} face(s)")
        results.extend(frames)
    _write_json(args.json, results, line_per_item=True)
    return 0


# -------------------------------------------------------------------------------------------- export
def cmd_export(args: argparse.Namespace) -> int:
    from featherface.checkpoint import load_model
    from featherface.export.onnx import export_onnx

    if not args.out.endswith(".onnx"):
        raise CommandError(f"--out {args.out}: the file name must end in .onnx")
    path = export_onnx(load_model(args.model), args.out)
    print(f"wrote {path} ({path.stat().st_size:,} bytes), onnxruntime matches torch")
    return 0


# ----------------------------------------------------------------------------------------- benchmark
def cmd_benchmark(args: argparse.Namespace) -> int:
    from featherface.benchmark import benchmark, format_benchmark_table

    rows = benchmark(args.models, args.size, args.backend, args.threads, args.repeats, args.warmup)
    print(f"backend {args.backend}, {args.threads} thread(s), 1x3x{args.size}x{args.size}, {args.repeats} repeats")
    print(format_benchmark_table(rows))
    _write_json(args.json, rows)
    return 0


# ------------------------------------------------------------------------------------------ evaluate
def _evaluate_wider(args: argparse.Namespace) -> dict[str, Any]:
    from featherface.evaluation.plots import plot_pr_curves
    from featherface.evaluation.widerface import SETTINGS, evaluate_wider, load_wider_ground_truth, read_predictions

    ground_truth = load_wider_ground_truth(args.wider_gt)
    pred_dir = args.predictions
    if args.model:
        if not args.images:
            raise CommandError("--wider-gt with --model needs --images WIDER_val/images")
        from featherface.detection.api import Detector
        from featherface.evaluation.runner import predict_wider

        pred_dir = args.write_predictions
        detector = Detector.load(args.model, device=args.device, threads=args.threads)
        count = predict_wider(detector, args.images, pred_dir)
        print(f"wrote predictions for {count} images to {pred_dir}")
    result = evaluate_wider(read_predictions(pred_dir), ground_truth)
    if result.images_without_predictions:
        print(
            f"warning: {result.images_without_predictions} ground-truth images have no prediction file", file=sys.stderr
        )
    print("  ".join(f"{s}: {result.ap[s]:.4f}" for s in SETTINGS))
    if args.plots:
        curves = {s: (result.recall[s], result.precision[s], result.ap[s]) for s in SETTINGS}
        path = plot_pr_curves(curves, Path(args.plots) / "wider_pr.png", "WIDER FACE val")
        print(f"PR curves: {path}")
    return result.to_dict()


# above this many images, evaluate prints totals only (the rows are in --json)
_MAX_IMAGE_ROWS = 50


def _evaluate_dataset(args: argparse.Namespace) -> dict[str, Any]:
    import cv2

    from featherface.data.labels import LabelReport
    from featherface.data.sample import resolve_dataset
    from featherface.detection.api import Detector
    from featherface.detection.image import read_image
    from featherface.evaluation.plots import plot_pr_curves
    from featherface.evaluation.runner import EVAL_CONF_THRESHOLD, EVAL_NMS_THRESHOLD, evaluate_detector
    from featherface.visualize import draw_detections

    report = LabelReport()
    if args.teacher:
        annotations = _teacher_references(args, report)
    else:
        annotations = resolve_dataset(args.data, strict=args.strict, report=report, classes=args.classes)
    if report.total:
        print(f"warning: skipped {report.summary()}", file=sys.stderr)
    if not annotations:
        raise CommandError(f"{args.data}: no labelled images")
    detector = Detector.load(args.model, device=args.device, threads=args.threads)
    result, detections = evaluate_detector(detector, annotations, score_threshold=args.conf, iou_threshold=args.iou)
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
    nme = "n/a" if result.nme is None else f"{result.nme:.4f}"
    reference = f"teacher {args.teacher} at score >= {args.teacher_conf}" if args.teacher else "labels"
    print(
        f"AP@{args.iou:g} {result.ap:.4f}  AP@0.75 {result.ap75:.4f}  AP@[.5:.95] {result.ap50_95:.4f}  "
        f"recall {result.recall:.4f}  precision {result.precision:.4f}  NME {nme}  "
        f"({result.num_faces} faces from {reference}; recall, precision and NME at score >= {args.conf})"
    )
    if args.plots:
        curves = {args.data: (result.pr_recall, result.pr_precision, result.ap)}
        path = plot_pr_curves(curves, Path(args.plots) / "pr.png", f"{args.model} on {args.data}")
        print(f"PR curve: {path}")
    if args.save_dir:
        save_dir = Path(args.save_dir)
        save_dir.mkdir(parents=True, exist_ok=True)
        for ann, found in zip(annotations, detections, strict=True):
            confident = found.scores >= args.conf
            found = type(found)(found.boxes[confident], found.scores[confident], found.landmarks[confident])
            cv2.imwrite(str(save_dir / f"{ann.path.stem}.png"), draw_detections(read_image(ann.path), found))
    settings = {
        "classes": args.classes,
        "teacher": args.teacher,
        "teacher_conf": args.teacher_conf if args.teacher else None,
        "detection_conf": EVAL_CONF_THRESHOLD,
        "detection_nms": EVAL_NMS_THRESHOLD,
        "image_size": "original",
        "skipped": dict(report.skipped),
    }
    return {"model": args.model, "data": args.data, **settings, **result.to_dict()}


def _teacher_references(args: argparse.Namespace, report: Any) -> list[Any]:
    """The teacher's confident faces on the images of ``--data`` (labels there, if any, are not used)."""
    from featherface.data.pseudo import teacher_annotations
    from featherface.data.sample import resolve_distillation_data
    from featherface.detection.api import Detector

    if args.classes is not None:
        raise CommandError("--classes picks labelled VOC classes; it has no meaning with --teacher")
    images, _ = resolve_distillation_data(args.data, strict=args.strict)
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
    saved = saved or Path(args.out) / "config.yaml"
    if args.resume and saved.is_file():
        return load_train_config(saved, {k: overrides[k] for k in ("epochs", "max_minutes", "device", "workers")})
    if args.resume and must_exist:
        raise CommandError(f"--resume: {saved} not found (was {args.out} made by featherface?)")
    source = args.config
    if source is None and str(getattr(args, data_arg)).startswith("sample"):
        source = "sample"  # the tiny embedded set needs its own recipe; WIDER defaults would barely move
    return load_train_config(source, overrides)


def cmd_train(args: argparse.Namespace) -> int:
    from featherface.checkpoint import load_model
    from featherface.training.trainer import Trainer

    config = _training_config(args, "data")
    config.model = args.model
    net = load_model(args.model)
    result = Trainer(net, config, args.out, resume=args.resume).fit()
    print(
        f"trained {result.epochs_done} epoch(s); checkpoints in {result.out_dir} (best.safetensors, last.safetensors)"
    )
    return 0


def cmd_distill(args: argparse.Namespace) -> int:
    from featherface.checkpoint import load_model
    from featherface.training.distill import DistillObjective, distillation_data
    from featherface.training.trainer import Trainer

    if str(args.teacher).endswith(".onnx"):
        raise CommandError("--teacher: distillation needs a torch model (zoo name, checkpoint or run dir), not ONNX")
    config = _training_config(args, "data")
    config.model = args.student
    distill_config = _distill_config(args)
    teacher = load_model(args.teacher)
    annotations, val = distillation_data(
        args.data, args.val, teacher, str(args.teacher), distill_config, Path(args.out) / "teacher-labels",
        strict=config.strict,
    )  # fmt: skip
    student = load_model(args.student)
    objective = DistillObjective(teacher, student, config, distill_config)
    trainer = Trainer(
        student, config, args.out, resume=args.resume, objective=objective, train_annotations=annotations,
        val_annotations=val,
    )  # fmt: skip
    result = trainer.fit()
    print(f"distilled {result.epochs_done} epoch(s) from {args.teacher}; checkpoints in {result.out_dir}")
    return 0


def _load_teacher(spec: str | None):
    from featherface.checkpoint import load_model

    if spec is None:
        return None
    if str(spec).endswith(".onnx"):
        raise CommandError("--teacher: needs a torch model (zoo name, checkpoint or run dir), not ONNX")
    return load_model(spec)


def _prune_config(args: argparse.Namespace):
    from featherface.pruning.phases import load_prune_config

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
    if getattr(args, "mask", None):
        config.mask = args.mask
    if args.epochs:  # --epochs sets the phase's own length: SFP epochs (prune) or fine-tune epochs (finetune)
        if args.func is cmd_prune:
            config.sfp_epochs = args.epochs
        else:
            config.finetune_epochs = args.epochs
    return config


def cmd_prune(args: argparse.Namespace) -> int:
    from featherface.checkpoint import load_model
    from featherface.data.sample import resolve_dataset
    from featherface.pruning.phases import prune

    if args.val is None:
        if not str(args.data).startswith("sample"):
            raise CommandError("--val is required: the BO objective is the validation loss")
        args.val = "sample:val"
    train = _training_config(args, "data", saved=Path(args.out) / "sfp" / "config.yaml", must_exist=False)
    config = _prune_config(args)
    net = load_model(args.model)
    teacher = _load_teacher(args.teacher)
    summary = prune(
        net,
        train,
        config,
        args.out,
        resolve_dataset(args.val),
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
    val = resolve_dataset(args.val) if args.val else None
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
    from featherface.pipeline import run_pipeline

    report = run_pipeline(args.config, args.out)
    _write_json(args.json, report)
    return 0


def cmd_show_batch(args: argparse.Namespace) -> int:
    from featherface.training.preview import write_batch_preview

    config = _training_config(args, "data")
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


def _distill_config(args: argparse.Namespace):
    from featherface.training.distill import load_distill_config

    return load_distill_config(
        _config_source(args), temperature=args.temperature, alpha=args.alpha, confident=args.confident
    )


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

    p = sub.add_parser("info", help="parameters per module vs the seed's budget, GFLOPs")
    p.add_argument("model", help=model_help)
    p.add_argument("--size", type=_positive_int, default=640, help="square input size for GFLOPs (default 640)")
    p.add_argument("--json", help="write the figures to this JSON file")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("detect", help="detect faces in images, folders and videos")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders of images, or videos")
    p.add_argument("--model", default="retinaface-mnet025", help=model_help + " (default retinaface-mnet025)")
    p.add_argument("--json", help="write detections to this JSON file")
    p.add_argument("--save-dir", help="write copies with boxes and landmarks drawn here")
    p.add_argument("--conf", type=_unit_float, default=0.5, help="score threshold (default 0.5)")
    p.add_argument("--nms", type=_unit_float, default=0.4, help="NMS IoU threshold (default 0.4)")
    p.add_argument("--size", type=_positive_int, help="resize the long side to this (default: original size)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    p.add_argument("--threads", type=_positive_int, help="CPU threads")
    p.add_argument("--batch-size", type=_positive_int, default=8, help="images of one size per forward pass")
    p.set_defaults(func=cmd_detect)

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
        "power (0 = the B-FPGM authors' objective; the shipped configs use 0.5)",
    )  # fmt: skip
    p.add_argument("--tolerance", type=_unit_float, help="deployed params within target x (1 +- this) (default 0.05)")
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
    p.add_argument("--save-dir", help="write the images with detections drawn here")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    p.add_argument("--threads", type=_positive_int, help="CPU threads")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("benchmark", help="latency of several models, interleaved in one run")
    p.add_argument("models", nargs="+", metavar="MODEL", help=model_help)
    p.add_argument("--size", type=_positive_int, default=640, help="square input size (default 640)")
    p.add_argument("--backend", choices=["torch", "onnxruntime"], default="torch")
    p.add_argument("--threads", type=_positive_int, default=1, help="CPU threads (default 1)")
    p.add_argument("--repeats", type=_positive_int, default=30, help="timed runs per model (default 30)")
    p.add_argument("--warmup", type=int, default=3, help="untimed runs per model first (default 3)")
    p.add_argument("--json", help="write the rows to this JSON file")
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
    except KeyboardInterrupt:
        print("featherface: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

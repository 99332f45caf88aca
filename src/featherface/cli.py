"""``featherface`` command line: a thin shell over the Python API (SPEC section 8)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from featherface import __version__


class CommandError(Exception):
    """Bad input from the command line: printed as one line, exit status 2."""


def _write_json(path: str | None, data: Any) -> None:
    if path:
        from featherface.checkpoint import atomic_write_bytes

        atomic_write_bytes(Path(path), (json.dumps(data, indent=1) + "\n").encode())


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _unit_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}")
    return value


# ---------------------------------------------------------------------------------------------- info
def cmd_info(args: argparse.Namespace) -> int:
    from featherface.benchmark import _load_net
    from featherface.detection.runners import OnnxRunner
    from featherface.models.detector_net import DetectorNet
    from featherface.profiling import format_info_table, model_info

    net = DetectorNet(OnnxRunner(args.model).config) if args.model.endswith(".onnx") else _load_net(args.model)
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


def cmd_detect(args: argparse.Namespace) -> int:
    import cv2

    from featherface.detection.api import Detector
    from featherface.detection.image import read_image
    from featherface.detection.postprocess import PostprocessConfig
    from featherface.visualize import draw_detections

    paths = _collect_inputs(args.inputs)
    detector = Detector.load(
        args.model, device=args.device, threads=args.threads, postprocess_config=PostprocessConfig(args.conf, args.nms)
    )
    save_dir = Path(args.save_dir) if args.save_dir else None
    if save_dir:
        save_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for path in paths:
        image = read_image(path)
        detections = detector.detect(image, size=args.size)
        results.append(
            {"image": str(path), "width": image.shape[1], "height": image.shape[0], "faces": detections.faces()}
        )
        print(f"{path}: {len(detections)} face(s)")
        if save_dir:
            out = save_dir / f"{path.stem}.jpg"
            if not cv2.imwrite(str(out), draw_detections(image, detections)):
                raise CommandError(f"{out}: could not write the drawn image")
    _write_json(args.json, results)
    return 0


# -------------------------------------------------------------------------------------------- export
def cmd_export(args: argparse.Namespace) -> int:
    from featherface.benchmark import _load_net
    from featherface.export.onnx import export_onnx

    if not args.out.endswith(".onnx"):
        raise CommandError(f"--out {args.out}: the file name must end in .onnx")
    path = export_onnx(_load_net(args.model), args.out)
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

    p = sub.add_parser("detect", help="detect faces in images and folders")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders of images")
    p.add_argument("--model", default="retinaface-mnet025", help=model_help + " (default retinaface-mnet025)")
    p.add_argument("--json", help="write detections to this JSON file")
    p.add_argument("--save-dir", help="write copies with boxes and landmarks drawn here")
    p.add_argument("--conf", type=_unit_float, default=0.5, help="score threshold (default 0.5)")
    p.add_argument("--nms", type=_unit_float, default=0.4, help="NMS IoU threshold (default 0.4)")
    p.add_argument("--size", type=_positive_int, help="resize the long side to this (default: original size)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    p.add_argument("--threads", type=_positive_int, help="CPU threads")
    p.set_defaults(func=cmd_detect)

    p = sub.add_parser("export", help="export to ONNX (dynamic batch/H/W), checked against torch")
    p.add_argument("model", help="zoo name, .safetensors checkpoint or run directory")
    p.add_argument("--out", required=True, help="output .onnx file")
    p.set_defaults(func=cmd_export)

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


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from featherface.checkpoint import CheckpointError
    from featherface.detection.image import ImageError
    from featherface.export.onnx import ExportError

    try:
        return args.func(args)
    except (CommandError, CheckpointError, ImageError, ExportError, ValueError, OSError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"featherface {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("featherface: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""``info``, ``export``, ``benchmark``: what a model is, its ONNX, how fast it runs."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from featherface.cli.common import (
    MODEL_HELP,
    CommandError,
    given,
    positive_int,
    unit_float,
    write_json,
)
from featherface.outputs import guard_outputs


def cmd_info(args: argparse.Namespace) -> int:
    if args.model is None:  # the zoo's list needs no torch
        from featherface.catalog import format_zoo_listing, zoo_listing

        listing = zoo_listing()
        print(format_zoo_listing(listing))
        write_json(args.json, listing)
        return 0
    from featherface.catalog import describe_model
    from featherface.profiling import format_info_table

    guard_outputs({"--json": args.json}, models={"--model": args.model})
    info = describe_model(args.model, **given(size=args.size))
    print(format_info_table(info))
    write_json(args.json, info)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from featherface.export.onnx import export_onnx
    from featherface.models.loader import load_model

    if not args.out.endswith(".onnx"):
        raise CommandError(f"--out {args.out}: the file name must end in .onnx")
    guard_outputs({"--out": args.out}, models={"MODEL": args.model})
    path = export_onnx(load_model(args.model), args.out)
    print(f"wrote {path} ({path.stat().st_size:,} bytes), onnxruntime matches torch")
    return 0


def cmd_benchmark(args: argparse.Namespace) -> int:
    if args.end_to_end:
        return _benchmark_end_to_end(args)
    end_to_end_only = {"--data": args.data, "--conf": args.conf, "--nms": args.nms, "--plots": args.plots}
    misplaced = given(**end_to_end_only, **{"--max-images": args.max_images})
    if misplaced:
        raise CommandError(f"{', '.join(misplaced)}: only with --end-to-end")
    from featherface.benchmark import benchmark_threads

    guard_outputs({"--json": args.json}, models={"MODEL": args.models})
    options = given(size=args.size, backend=args.backend, threads=args.threads, repeats=args.repeats)
    write_json(args.json, benchmark_threads(args.models, **options, **given(warmup=args.warmup)))
    return 0


def _benchmark_end_to_end(args: argparse.Namespace) -> int:
    from featherface.benchmark_e2e import STAGES_PLOT, run_end_to_end

    if not args.data:
        raise CommandError("--end-to-end needs --data (a folder of photos, DIR:holdout, a labelled set, sample:val)")
    plots = Path(args.plots) / STAGES_PLOT if args.plots else None
    guard_outputs(
        {"--json": args.json, "--plots": plots}, models={"MODEL": args.models}, datasets={"--data": args.data}
    )
    options = given(threads=args.threads, backend=args.backend, conf=args.conf, nms=args.nms, repeats=args.repeats)
    options.update(given(warmup=args.warmup, max_images=args.max_images))
    write_json(args.json, run_end_to_end(args.models, args.data, args.plots, size=args.size, **options))
    return 0


def add_info(sub: Any) -> None:
    p = sub.add_parser("info", help="the zoo's models; a model's parameters per module vs the seed's budget, GFLOPs")
    p.add_argument("model", nargs="?", help=MODEL_HELP + " (none: list the zoo)")
    p.add_argument("--size", type=positive_int, help="square input size for GFLOPs (default 640)")
    p.add_argument("--json", help="write the figures to this JSON file")


def add_export(sub: Any) -> None:
    p = sub.add_parser("export", help="export to ONNX (dynamic batch/H/W), checked against torch")
    p.add_argument("model", help="zoo name, .safetensors checkpoint or run directory")
    p.add_argument("--out", required=True, help="output .onnx file")


def add_benchmark(sub: Any) -> None:
    p = sub.add_parser("benchmark", help="latency of several models, interleaved in one run")
    p.add_argument("models", nargs="+", metavar="MODEL", help=MODEL_HELP)
    p.add_argument(
        "--size", type=positive_int,
        help="square input size (default 640); with --end-to-end: resize the long side to it (default: original)",
    )  # fmt: skip
    p.add_argument(
        "--backend", choices=["torch", "onnxruntime"],
        help="default torch; with --end-to-end onnxruntime (torch models exported first; .onnx files always ORT)",
    )  # fmt: skip
    p.add_argument(
        "--threads", type=positive_int, action="append",
        help="CPU threads; repeat for several counts (--threads 1 --threads 2), a set of rows each "
        "(default 1; with --end-to-end 1 and 2)",
    )  # fmt: skip
    p.add_argument(
        "--repeats", type=positive_int, help="timed runs per model (default 30); with --end-to-end passes (default 1)"
    )
    p.add_argument(
        "--warmup",
        type=int,
        help="untimed runs per model first; with --end-to-end: first images not counted (default 3)",
    )
    p.add_argument("--json", help="write the rows to this JSON file")
    _add_end_to_end_options(p)


def _add_end_to_end_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--end-to-end", action="store_true",
        help="time imread -> preprocess -> forward -> postprocess per image over --data, each stage's share",
    )  # fmt: skip
    p.add_argument("--data", help="--end-to-end: a folder of photos (subfolders too), DIR:holdout, a labelled set")
    p.add_argument("--conf", type=unit_float, help="--end-to-end: score threshold (default 0.02, as evaluation)")
    p.add_argument("--nms", type=unit_float, help="--end-to-end: NMS IoU threshold (default 0.4)")
    p.add_argument("--max-images", type=positive_int, help="--end-to-end: only the first N images")
    p.add_argument("--plots", help="--end-to-end: write a stacked-bar PNG of the stage shares into this folder")

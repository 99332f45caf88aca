"""What each rewrite of the exported graph buys: onnxruntime latency with one rewrite off at a time.

Usage: python benchmarks/deploy_ablation.py MODEL [MODEL...] [--size 640] [--threads 1 2] [--repeats 40]
MODEL is anything `featherface` accepts (zoo name, checkpoint, run dir). Every variant is exported (and checked
against torch) and timed round-robin with the others in one process; the figures are medians in ms.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import numpy as np

from featherface.detection.runners import onnx_session
from featherface.export.onnx import export_onnx
from featherface.latency import session_runs, time_round_robin
from featherface.models.loader import load_model

VARIANTS = {
    "all rewrites": {},
    "no stem padding": {"pad_stem_channels": False},
    "no dense SSH": {"dense_ssh": False},
    "no fused heads": {"fuse_heads": False},
    "none": {"pad_stem_channels": False, "dense_ssh": False, "fuse_heads": False},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("models", nargs="+")
    parser.add_argument("--size", type=int, default=640)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=40)
    parser.add_argument(
        "--spin",
        action="store_true",
        help="let idle worker threads spin (onnxruntime's default); off by default "
        "because a dozen sessions' spinning threads disturb each other's timings",
    )
    args = parser.parse_args()
    batch = np.random.default_rng(0).uniform(-120, 150, (1, 3, args.size, args.size)).astype(np.float32)
    sessions = {}
    with tempfile.TemporaryDirectory() as tmp:
        for m, spec in enumerate(args.models):
            net = load_model(spec)
            for v, (variant, switches) in enumerate(VARIANTS.items()):
                path = export_onnx(net, Path(tmp) / f"{m}-{v}.onnx", rewrites=switches)
                for threads in args.threads:
                    sessions[(spec, variant, threads)] = onnx_session(path, threads, spin=args.spin)
    times = time_round_robin(session_runs(sessions, batch), args.repeats)
    for spec in args.models:
        for threads in args.threads:
            base = statistics.median(times[(spec, "all rewrites", threads)])
            for variant in VARIANTS:
                t = times[(spec, variant, threads)]
                print(
                    f"{spec:<24} {threads} thr  {variant:<16} median {statistics.median(t):6.2f}  "
                    f"min {min(t):6.2f}  ({statistics.median(t) - base:+.2f} vs all)"
                )


if __name__ == "__main__":
    main()

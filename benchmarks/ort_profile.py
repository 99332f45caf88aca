"""Where an ONNX model's time goes in onnxruntime: per module group (from node names), median of N runs.

Usage: python benchmarks/ort_profile.py MODEL [MODEL...] [--size 640] [--threads 2] [--runs 30] [--by group|op|node]
MODEL is anything `featherface` accepts (zoo name, checkpoint, run dir) or an .onnx file.
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort

from featherface.export.onnx import export_onnx
from featherface.models.loader import load_model

GROUPS = ("backbone", "attention_in", "neck", "attention_out", "context", "shuffle", "heads")


def group_of(node_name: str) -> str:
    for group in GROUPS:
        if f"/{group}/" in node_name or node_name.startswith(f"/{group}"):
            return group
    return "other"


def _key(event: dict, by: str) -> str:
    if by == "op":  # after onnxruntime's own rewrites: ReorderInput/ReorderOutput are its NCHWc layout changes
        return f"{group_of(event['name'])}:{event['args'].get('op_name', '?')}"
    if by == "node":
        return event["name"].removesuffix("_kernel_time")
    return group_of(event["name"])


def profile(path: Path, size: int, threads: int, runs: int, trace_dir: Path, by: str = "group") -> dict[str, float]:
    """Median ms per key over ``runs``; onnxruntime's trace goes to ``trace_dir`` (a temporary folder: beside a
    given ``.onnx`` would write into a folder that is not ours)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.enable_profiling = True
    options.profile_file_prefix = str(trace_dir / path.stem)
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).uniform(-120, 150, (1, 3, size, size)).astype(np.float32)
    for _ in range(3):
        session.run(None, {"images": x})
    for _ in range(runs):
        session.run(None, {"images": x})
    events = json.loads(Path(session.end_profiling()).read_text())
    per_run: dict[str, list[float]] = collections.defaultdict(lambda: [0.0] * (runs + 3))
    run_index = -1
    for event in events:
        if event.get("cat") == "Session" and event.get("name") == "model_run":
            run_index += 1
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            per_run[_key(event, by)][max(run_index, 0)] += event["dur"] / 1000
    return {g: statistics.median(v[3:]) for g, v in sorted(per_run.items())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("models", nargs="+")
    parser.add_argument("--size", type=int, default=640)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--by", choices=("group", "op", "node"), default="group")
    parser.add_argument("--top", type=int, default=25, help="with --by op/node: the N costliest entries")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for i, spec in enumerate(args.models):
            path = Path(spec) if spec.endswith(".onnx") else export_onnx(load_model(spec), Path(tmp) / f"{i}.onnx")
            times = profile(path, args.size, args.threads, args.runs, Path(tmp), args.by)
            if args.by == "group":
                parts = "  ".join(f"{g} {t:.2f}" for g, t in times.items())
                print(f"{spec}: total {sum(times.values()):.2f} ms  |  {parts}")
                continue
            print(f"{spec}: total {sum(times.values()):.2f} ms")
            for key, t in sorted(times.items(), key=lambda kv: -kv[1])[: args.top]:
                print(f"  {t:6.3f}  {key}")


if __name__ == "__main__":
    main()

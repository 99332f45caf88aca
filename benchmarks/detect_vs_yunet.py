"""`featherface detect` against a plain YuNet-n script (benchmarks/yunet_script.py) on one folder: whole processes.

Each round runs every command once, in alternating order (forward, then reversed), as fresh processes (start-up,
imports, model load, reading every image, detection at conf 0.02, writing the JSON), on the CPU; one warm-up round
is discarded (page cache). ``--backends`` runs `featherface detect --backend B` once per backend, so a zoo model's
torch network (its safetensors) and its shipped ONNX are timed in the same run; ``--no-yunet`` leaves the script out.
Prints the median wall time of each command, and each one's ratio to the last (YuNet's, else the last backend's),
per thread count.
Usage: python benchmarks/detect_vs_yunet.py [FOLDER] [--model nano-b-pretrained] [--threads 1 2] [--rounds 5]
       python benchmarks/detect_vs_yunet.py FOLDER --model retinaface-mnet025 --backends torch auto --no-yunet
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCRIPT = Path(__file__).with_name("yunet_script.py")


def featherface_command() -> list[str]:
    entry_point = Path(sys.executable).with_name("featherface")  # the console script a user runs
    return [str(entry_point)] if entry_point.is_file() else [sys.executable, "-m", "featherface.cli"]


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", default="../shared/data/facemask/images")
    parser.add_argument("--model", default="nano-b-pretrained", help="what `featherface detect --model` runs")
    parser.add_argument(
        "--backends", nargs="+", choices=["auto", "onnxruntime", "torch"], default=["auto"],
        help="one `featherface detect --backend B` command per backend (default: auto only)",
    )  # fmt: skip
    parser.add_argument("--no-yunet", action="store_true", help="time the featherface commands only")
    parser.add_argument("--yunet", default="../shared/weights/peers/yunet_n_dynamic.onnx")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=6, help="timed rounds (even: each command goes first as often)")
    parser.add_argument("--conf", type=float, default=0.02)
    parser.add_argument("--json", type=Path, help="write the times here")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds: at least 1")
    if args.no_yunet and len(args.backends) < 2:
        parser.error("--no-yunet leaves one command: give two --backends to compare")
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for threads in args.threads:
            common = ["--conf", str(args.conf), "--threads", str(threads)]
            commands = {
                f"featherface detect --model {args.model}" + ("" if backend == "auto" else f" --backend {backend}"): [
                    *featherface_command(), "detect", args.folder, "--model", args.model, "--device", "cpu",
                    "--backend", backend, *common, "--json", f"{scratch}/featherface-{backend}-{threads}.json",
                ]
                for backend in args.backends
            }  # fmt: skip
            if not args.no_yunet:
                commands["yunet_script.py"] = [
                    sys.executable, str(SCRIPT), args.folder, "--model", args.yunet, *common,
                    "--json", f"{scratch}/yunet-{threads}.json",
                ]  # fmt: skip
            times: dict[str, list[float]] = {name: [] for name in commands}
            for round_ in range(args.rounds + 1):
                order = list(commands) if round_ % 2 == 0 else list(reversed(commands))
                for name in order:
                    elapsed = timed(commands[name])
                    if round_ > 0:
                        times[name].append(elapsed)
                if round_ > 0:
                    print(f"threads {threads}, round {round_}/{args.rounds}: "
                          + ", ".join(f"{n} {t[-1]:.2f} s" for n, t in times.items()), flush=True)  # fmt: skip
            medians = {name: statistics.median(t) for name, t in times.items()}
            last = list(medians.values())[-1]
            ratios = {name: median / last for name, median in list(medians.items())[:-1]}
            rows.append({"threads": threads, "median_s": medians, "times_s": times, "ratio_to_last": ratios})
    names = list(rows[0]["median_s"])
    print("| threads | " + " | ".join(f"{name}, median s" for name in names)
          + "".join(f" | {name} / {names[-1]}" for name in names[:-1]) + " |")  # fmt: skip
    print("|---:|" + "---:|" * (2 * len(names) - 1))
    for row in rows:
        print(f"| {row['threads']} | " + " | ".join(f"{s:.2f}" for s in row["median_s"].values())
              + "".join(f" | {r:.2f}" for r in row["ratio_to_last"].values()) + " |")  # fmt: skip
    if args.json:
        summary = {"folder": args.folder, "model": args.model, "backends": args.backends, "rows": rows}
        args.json.write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()

"""The AP-latency curve of hardware-aware B-FPGM: one deployed Nano-B per latency target, beside the peers.

Each point starts from the same distilled student (default: the shipped ``nano-b-distilled``) and runs the pool
recipe's pruning at the ablation's budget (benchmarks/compare_pruning.py: a seeded subset of pool images, one-shot
masks, fine-tune, hard prune), with the search made hardware-aware: each trial's onnxruntime time (1 thread, on
this machine) over the unpruned student's, and only time above the target costs
(``loss x max(1, ratio / target) ** exponent``). ``off`` as a target is the authors' objective (no latency term).
Then, in one run: facemask AP at IoU 0.5 and 0.3 (conf 0.02) and 1-thread onnxruntime latency at 640² (all models
interleaved) for every point, RetinaFace-mnet0.25 and YuNet-n. Writes OUT/results.json, OUT/ap_latency.png and a
markdown table on stdout. Resumable: finished points are kept, a killed one continues.

    .venv/bin/python benchmarks/ap_latency_curve.py --targets 0.55 0.62 0.70   # into runs/ap-latency
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from pool_pruning import FACEMASK, pool_pruning

from featherface.benchmark import benchmark
from featherface.data.sample import resolve_dataset
from featherface.detection.api import Detector
from featherface.evaluation.runner import evaluate_detector
from featherface.evaluation.voc import evaluate_dataset, format_metric
from featherface.fileio import save_figure
from featherface.models.loader import load_model
from featherface.pruning.phases import finetune, prune

PEERS = ("retinaface-mnet025", "../shared/weights/peers/yunet_n_dynamic.onnx")
SIZE = 640


def target_value(text: str) -> float | None:
    if text == "off":
        return None
    value = float(text)
    if not 0 < value <= 1.5:
        raise argparse.ArgumentTypeError(f"a fraction of the unpruned model's time (e.g. 0.6) or off, got {text}")
    return value


def point_name(target: float | None) -> str:
    return "no-latency-term" if target is None else f"target-{target:.2f}"


def facemask_scores(spec: str, facemask: list) -> dict[str, float | None]:
    detector = Detector.load(spec, device="cpu")
    at_05, detections = evaluate_detector(detector, facemask, progress=False)
    return {"facemask_ap50": at_05.ap, "facemask_ap30": evaluate_dataset(facemask, detections, 0.3).ap}


def plot(rows: dict[str, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    ours = sorted((row["latency_ms"], row["facemask_ap50"] or 0.0, name) for name, row in rows.items()
                  if row["kind"] == "nano-b")  # fmt: skip
    ax.plot([p[0] for p in ours], [p[1] for p in ours], "o-", label="Nano-B, hardware-aware B-FPGM")
    labels: list[tuple[float, float, str]] = []  # points within 2 % of time and 0.002 AP share one label
    for ms, ap, name in ours:
        near = next((i for i, (m, a, _) in enumerate(labels) if abs(m - ms) < 0.02 * ms and abs(a - ap) < 2e-3), None)
        if near is None:
            labels.append((ms, ap, name))
        else:
            labels[near] = (*labels[near][:2], f"{labels[near][2]} = {name}")
    for i, (ms, ap, name) in enumerate(labels):  # alternately below and above the line
        ax.annotate(name, (ms, ap), textcoords="offset points", xytext=(4, -12 if i % 2 == 0 else 6), fontsize=7)
    for name, row in rows.items():
        if row["kind"] != "nano-b":
            label = name if row["kind"] == "start" else Path(name).stem.replace("_dynamic", "")
            ax.plot(row["latency_ms"], row["facemask_ap50"] or 0.0, "s" if row["kind"] == "peer" else "D", label=label)
    ax.set_xlabel("onnxruntime ms, 1 thread, 640x640")
    ax.set_ylabel("facemask AP@0.5")
    ax.set_title("AP vs latency (facemask; one run)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    save_figure(fig, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/ap-latency"))
    parser.add_argument("--start", default="nano-b-distilled", help="distilled student: zoo name or checkpoint")
    parser.add_argument("--targets", type=target_value, nargs="+", default=[0.55, 0.62, 0.70],
                        help="latency targets: fractions of the start's time, or off")  # fmt: skip
    parser.add_argument("--exponent", type=float, default=4.0, help="latency exponent of the search")
    parser.add_argument("--images", type=int, default=1000, help="seeded subset of pool images each point trains on")
    parser.add_argument("--sfp-epochs", type=int, default=3, help="training epochs with the one-shot masks")
    parser.add_argument("--finetune-epochs", type=int, default=2)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--labels-dir", type=Path, default=Path("runs/teacher-labels"), help="teacher-label cache")
    parser.add_argument("--eval-images", type=int, help="score on the first N facemask images (a quick check)")
    parser.add_argument("--repeats", type=int, default=30, help="timed runs per model (interleaved)")
    args = parser.parse_args()
    names = [point_name(target) for target in args.targets]
    if len(set(names)) < len(names):
        parser.error(f"--targets: two targets give the same point ({', '.join(names)}); use 2 decimals")
    if args.exponent <= 0 and any(target is not None for target in args.targets):
        parser.error("--exponent: must be > 0 for a latency target")
    settings_keys = ("start", "exponent", "images", "sfp_epochs", "finetune_epochs", "trials", "seed")
    point_settings = {key: getattr(args, key) for key in settings_keys}

    recipe = pool_pruning(args.seed, args.images, args.labels_dir)
    train, base, common = recipe.train, recipe.prune, recipe.common
    start = load_model(args.start)
    deployed = {}
    for target in args.targets:
        name = point_name(target)
        search = dataclasses.replace(base.search, trials=args.trials, seed=args.seed,
                                     latency_exponent=0.0 if target is None else args.exponent,
                                     latency_target=target, latency_threads=1)  # fmt: skip
        config = dataclasses.replace(base, method="oneshot", mask="hard", sfp_epochs=args.sfp_epochs,
                                     finetune_epochs=args.finetune_epochs, search=search)  # fmt: skip
        prune_dir, finetune_dir = args.out / name / "prune", args.out / name / "finetune"
        point_file = args.out / name / "point.json"  # what the point was made with: a resume must match it
        made_with = {**point_settings, "target": target}
        if point_file.is_file() and json.loads(point_file.read_text()) != made_with:
            raise SystemExit(f"{point_file}: made with {point_file.read_text()}, not {made_with}; use another --out")
        point_file.parent.mkdir(parents=True, exist_ok=True)
        point_file.write_text(json.dumps(made_with))
        if not (prune_dir / "rates.json").is_file():
            print(f"== {name}: search and one-shot pruning", flush=True)
            prune(start, train, config, prune_dir, **common)
        deployed[name] = finetune_dir / "deployed.safetensors"
        if not deployed[name].is_file():
            print(f"== {name}: fine-tuning", flush=True)
            finetune(prune_dir, train, config, finetune_dir, **common)

    facemask = resolve_dataset(FACEMASK)[: args.eval_images]
    specs = {**{name: str(path) for name, path in deployed.items()}, "unpruned start": args.start}
    specs.update({peer: peer for peer in PEERS})
    timed = benchmark(list(specs.values()), SIZE, "onnxruntime", 1, args.repeats, 5)
    rows = {}
    for (name, spec), timing in zip(specs.items(), timed, strict=True):
        print(f"scoring {name}", flush=True)
        kind = "nano-b" if name in deployed else "start" if name == "unpruned start" else "peer"
        rows[name] = {"kind": kind, "params": timing["params"],
                      "latency_ms": timing["median_ms"], **facemask_scores(spec, facemask)}  # fmt: skip
        if name in deployed:
            summary = json.loads((args.out / name / "prune" / "rates.json").read_text())
            rows[name]["rates"] = summary["rates"]
    settings = {key: str(value) if isinstance(value, Path) else value for key, value in vars(args).items()}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps({"settings": settings, "rows": rows}, indent=1))
    plot(rows, args.out / "ap_latency.png")
    print("| model | params | ORT ms, 1 thread, 640² | facemask AP@0.5 | facemask AP@0.3 |")
    print("|---|---:|---:|---:|---:|")
    for name, row in rows.items():
        aps = " | ".join(format_metric(row[k]) for k in ("facemask_ap50", "facemask_ap30"))
        print(f"| {name} | {row['params']:,} | {row['latency_ms']:.1f} | {aps} |")


if __name__ == "__main__":
    main()

"""The B-FPGM ablation: BO rates vs uniform rates at equal params, SFP vs one-shot FPGM, hard vs smooth masks.

Every arm starts from the same distilled student (default: the shipped ``nano-b-distilled``, distilled on the photo
pool by ``featherface pipeline --config pool``), prunes it with the pool recipe's distillation objective on the same
seeded subset of pool images for the same number of epochs, fine-tunes it with fixed masks, and hard-prunes it:
- ``bo-sfp-hard``: the B-FPGM search (its trials on the subset), then soft filter pruning at the rates it found;
- ``uniform-sfp-hard``: one rate for every group (within each group's bounds), the highest whose deployed model
  has no more parameters than the BO arm's, same SFP;
- ``bo-oneshot-hard``: the BO rates, masks fixed once before training (pruned filters frozen: no recovery);
- ``bo-sfp-smooth``: the BO rates, SFP with smooth (sigmoid-annealed) masks.
Scored on data no arm trained or selected on: facemask AP at IoU 0.5 and 0.3 (848 labelled real photos), and
on the pool hold-out (teacher-agreement AP; fine-tuning picks its best epoch there, as the pipeline does).

    .venv/bin/python benchmarks/compare_pruning.py --seed 0   # into runs/prune-ablation-s0

Resumable (finished arms are kept; a killed one continues its SFP or fine-tune). Writes OUT/ARM/{prune,finetune},
OUT/results.json, OUT/ablation.png, and prints a markdown table.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from pool_pruning import FACEMASK, RECIPE, pool_pruning

from featherface.data.sample import resolve_dataset
from featherface.detection.api import Detector
from featherface.evaluation.runner import evaluate_detector
from featherface.evaluation.voc import evaluate_dataset, format_metric
from featherface.fileio import save_figure
from featherface.models.checkpoint import load_checkpoint
from featherface.models.detector_net import DetectorNet, count_parameters
from featherface.models.loader import load_model
from featherface.pruning.phases import PruneConfig, finetune, prune, soft_prune
from featherface.pruning.search import SearchConfig, probe_rates

ARMS = ("bo-sfp-hard", "uniform-sfp-hard", "bo-oneshot-hard", "bo-sfp-smooth")


def arm_config(base: PruneConfig, arm: str) -> PruneConfig:
    method = "oneshot" if "oneshot" in arm else "sfp"
    return dataclasses.replace(base, method=method, mask="smooth" if arm.endswith("smooth") else "hard")


def uniform_rates(net: DetectorNet, params: int) -> dict[str, float]:
    """The one rate (clamped to each group's bounds) whose deployed model has at most ``params`` parameters."""
    return probe_rates(net, SearchConfig(target_params=params, tolerance=0.0))


def score(net: DetectorNet, facemask: list, holdout: list) -> dict[str, float | int | None]:
    detector = Detector.from_net(net, device="cpu")
    at_05, detections = evaluate_detector(detector, facemask, progress=False)
    agreement, _ = evaluate_detector(detector, holdout, progress=False)
    return {
        "params": count_parameters(net),
        "facemask_ap50": at_05.ap,
        "facemask_ap30": evaluate_dataset(facemask, detections, 0.3).ap,
        "teacher_agreement_ap": agreement.ap,
    }


def plot(rows: dict[str, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [("facemask_ap50", "facemask AP@0.5"), ("facemask_ap30", "facemask AP@0.3"),
            ("teacher_agreement_ap", "teacher-agreement AP")]  # fmt: skip
    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.8 / len(rows)
    for i, (arm, row) in enumerate(rows.items()):
        ax.bar([k + i * width for k in range(len(keys))], [row[key] or 0.0 for key, _ in keys], width, label=arm)
    ax.set_xticks([k + 0.4 - width / 2 for k in range(len(keys))], [label for _, label in keys])
    ax.set_ylabel("AP")
    ax.set_title("B-FPGM ablation (facemask; pool hold-out)")
    ax.legend(fontsize=8)
    save_figure(fig, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="run folder (default runs/prune-ablation-sSEED)")
    parser.add_argument("--start", default="nano-b-distilled", help="distilled student: zoo name or checkpoint")
    parser.add_argument("--images", type=int, default=1000, help="seeded subset of pool images every arm trains on")
    parser.add_argument("--sfp-epochs", type=int, default=3)
    parser.add_argument("--finetune-epochs", type=int, default=2)
    parser.add_argument("--trials", type=int, default=20, help="B-FPGM trials of the BO arm")
    parser.add_argument("--seed", type=int, default=0, help="the subset, the training order and the search's seed")
    parser.add_argument("--labels-dir", type=Path, default=Path("runs/teacher-labels"), help="teacher-label cache")
    parser.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS))
    parser.add_argument("--eval-images", type=int, help="score on the first N facemask images (a quick check)")
    args = parser.parse_args()
    args.out = args.out or Path(f"runs/prune-ablation-s{args.seed}")

    recipe = pool_pruning(args.seed, args.images, args.labels_dir)
    train, holdout, subset, common = recipe.train, recipe.holdout, recipe.subset, recipe.common
    base = dataclasses.replace(
        recipe.prune, sfp_epochs=args.sfp_epochs, finetune_epochs=args.finetune_epochs,
        search=dataclasses.replace(recipe.prune.search, trials=args.trials, seed=args.seed),
    )  # fmt: skip
    start = load_model(args.start)
    bo_dir = args.out / "bo-sfp-hard" / "prune"
    rows, rates_by_arm = {}, {}
    facemask = resolve_dataset(FACEMASK)[: args.eval_images]
    for arm in ["bo-sfp-hard", *[a for a in args.arms if a != "bo-sfp-hard"]]:  # the others need the BO rates
        config = arm_config(base, arm)
        prune_dir = args.out / arm / "prune"
        if not (prune_dir / "rates.json").is_file():
            print(f"== {arm}: pruning", flush=True)
            if arm == "bo-sfp-hard":
                prune(start, train, config, prune_dir, **common)
            else:
                bo = json.loads((bo_dir / "rates.json").read_text())
                rates = bo["rates"] if arm.startswith("bo-") else uniform_rates(start, bo["params_pruned"])
                soft_prune(start, rates, train, config, prune_dir, **common)
        summary = json.loads((prune_dir / "rates.json").read_text())
        rates_by_arm[arm] = summary["rates"]
        deployed = args.out / arm / "finetune" / "deployed.safetensors"
        if not deployed.is_file():
            print(f"== {arm}: fine-tuning", flush=True)
            finetune(prune_dir, train, config, args.out / arm / "finetune", **common)
        if arm in args.arms:
            rows[arm] = {**score(load_checkpoint(deployed)[0], facemask, holdout), "rates": summary["rates"]}
            print(f"{arm}: {json.dumps({k: v for k, v in rows[arm].items() if k != 'rates'})}", flush=True)
    rows["unpruned (start)"] = {**score(start, facemask, holdout), "rates": {}}  # what pruning starts from
    settings = {"start": args.start, "images": len(subset), "sfp_epochs": args.sfp_epochs,
                "finetune_epochs": args.finetune_epochs, "trials": args.trials, "seed": args.seed,
                "recipe": RECIPE}  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps({"settings": settings, "rows": rows}, indent=1))
    plot(rows, args.out / "ablation.png")
    print("| arm | deployed params | facemask AP@0.5 | facemask AP@0.3 | teacher-agreement AP (pool hold-out) "
          "| rates (be, bl, cbam, bifpn, ssh, heads) |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---|")
    for arm, row in rows.items():
        rates = ", ".join(f"{r:.2f}" for r in row["rates"].values()) or "-"
        aps = " | ".join(format_metric(row[k]) for k in ("facemask_ap50", "facemask_ap30", "teacher_agreement_ap"))
        print(f"| {arm} | {row['params']:,} | {aps} | {rates} |")


if __name__ == "__main__":
    main()

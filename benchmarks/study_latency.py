"""How much speed a parameter budget leaves to choose: onnxruntime latency of every trial architecture of B-FPGM
studies, after the fact.

Each completed trial's applied rates give its deployed architecture; its deployment graph (random weights: time does
not depend on them) is timed against the unpruned network's, alternately (:class:`featherface.latency.
RelativeLatency`, 1 thread, 640²). Prints per study the latency range of its trials, the chosen (best feasible)
trial's, and the fastest trial within a given share of the best loss: what ``--latency-exponent`` could buy.

    .venv/bin/python benchmarks/study_latency.py runs/prune-ablation-s0/bo-sfp-hard/prune/study.db \
        runs/prune-ablation-s1/bo-sfp-hard/prune/study.db --json runs/study_latency.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import optuna

from featherface.latency import RelativeLatency
from featherface.models.loader import load_model
from featherface.pruning.search import best_feasible_trial, completed_trials, kept_widths, pruned_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("studies", nargs="+", type=Path, help="study.db files of `prune` runs")
    parser.add_argument("--model", default="nano-b-distilled", help="the unpruned network the studies pruned")
    parser.add_argument("--loss-margin", type=float, default=0.05, help="fastest trial within this share of the best")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    net = load_model(args.model)
    probe = RelativeLatency(net.config, threads=1, repeats=args.repeats)
    report = {}
    for path in args.studies:
        storage = f"sqlite:///{path.resolve()}"
        for name in optuna.get_all_study_names(storage):
            study = optuna.load_study(study_name=name, storage=storage)
            rows = []
            for trial in completed_trials(study):
                ratio = probe(pruned_config(net, kept_widths(net, trial.user_attrs["rates"])))
                rows.append({"trial": trial.number, "params": trial.user_attrs["params"],
                             "feasible": trial.user_attrs["feasible"], "val_loss": trial.user_attrs["val_loss"],
                             "latency_ratio": ratio})  # fmt: skip
            feasible = [r for r in rows if r["feasible"]]
            chosen = next(r for r in rows if r["trial"] == best_feasible_trial(study).number)
            near = [r for r in feasible if r["val_loss"] <= chosen["val_loss"] * (1 + args.loss_margin)]
            fastest_near = min(near, key=lambda r: r["latency_ratio"])
            report[f"{path}:{name}"] = {"trials": rows, "chosen": chosen, "fastest_near_best": fastest_near}
            ratios = [r["latency_ratio"] for r in feasible]
            print(f"{path}: {len(feasible)} feasible trials, latency {min(ratios):.3f}-{max(ratios):.3f}x unpruned; "
                  f"chosen trial {chosen['trial']} {chosen['latency_ratio']:.3f}x (val loss {chosen['val_loss']:.2f}); "
                  f"fastest within {args.loss_margin:.0%} of its loss: trial {fastest_near['trial']} "
                  f"{fastest_near['latency_ratio']:.3f}x (val loss {fastest_near['val_loss']:.2f})")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()

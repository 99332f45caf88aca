"""PNG figures of a pruning run: BO convergence and the rates per layer group."""

from __future__ import annotations

from pathlib import Path

import optuna

from featherface.fileio import save_figure as _save
from featherface.pruning.groups import LAYER_GROUPS


def plot_convergence(study: optuna.Study, path: str | Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    trials = [t for t in study.trials if t.value is not None]
    numbers = [t.number for t in trials]
    values = [t.value for t in trials]
    best, running = [], float("-inf")
    for v in values:
        running = max(running, v)
        best.append(running)
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    ax.scatter(numbers, values, s=14, label="trial objective")
    ax.plot(numbers, best, color="C1", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel("-val loss - 5 x penalty")
    finite = [v for v in values if v > -50]
    if finite:
        ax.set_ylim(min(finite) - 0.1 * (abs(min(finite)) + 1e-3), max(finite) + 0.1 * (abs(max(finite)) + 1e-3))
    ax.set_title("B-FPGM: Bayesian optimisation of the pruning rates")
    ax.legend()
    return _save(fig, Path(path))


def plot_rates(rates: dict[str, float], path: str | Path, title: str = "pruning rate per layer group") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = list(LAYER_GROUPS)
    fig, ax = plt.subplots(figsize=(6.5, 3.8), dpi=120)
    lows = [LAYER_GROUPS[g][0] for g in groups]
    highs = [LAYER_GROUPS[g][1] for g in groups]
    ax.bar(groups, [h - lo for lo, h in zip(lows, highs, strict=True)], bottom=lows, color="0.85", label="bounds")
    ax.scatter(groups, [rates[g] for g in groups], color="C3", zorder=3, label="chosen")
    ax.set_ylabel("fraction of filters pruned")
    ax.set_ylim(0, 0.7)
    ax.set_title(title)
    ax.legend()
    plt.setp(ax.get_xticklabels(), rotation=20)
    return _save(fig, Path(path))

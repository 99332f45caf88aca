"""PNG figures: precision-recall curves."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def plot_pr_curves(
    curves: dict[str, tuple[np.ndarray, np.ndarray, float | None]], path: str | Path, title: str
) -> Path:
    """One figure, one line per ``label -> (recall, precision, ap)`` (ap None: undefined, a set without faces);
    written atomically as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from featherface.fileio import save_figure

    fig, ax = plt.subplots(figsize=(5.5, 4.5), dpi=120)
    for label, (recall, precision, ap) in curves.items():
        ax.plot(recall, precision, label=f"{label} (AP {'n/a' if ap is None else f'{ap:.3f}'})", linewidth=1.6)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.set_title(title)
    ax.legend(loc="lower left")
    return save_figure(fig, path)

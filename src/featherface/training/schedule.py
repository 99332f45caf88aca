"""Learning-rate schedules as a multiplier of the base rate, per optimisation step (resumable via LambdaLR)."""

from __future__ import annotations

import math
from collections.abc import Callable

# Linear warm-up starts from this fraction of the base rate (Pytorch_Retinaface starts at 1e-6 absolute).
WARMUP_START = 1e-3


def lr_multiplier(
    schedule: str,
    steps_per_epoch: int,
    epochs: int,
    warmup_epochs: float,
    lr_steps: list[int],
    lr_gamma: float,
    min_lr_ratio: float,
) -> Callable[[int], float]:
    """``step -> factor``: linear warm-up, then step decay at ``lr_steps`` epochs or cosine to ``min_lr_ratio``."""
    if schedule not in ("step", "cosine"):
        raise ValueError(f"schedule must be step or cosine, not {schedule!r}")
    warmup = max(0, round(warmup_epochs * steps_per_epoch))
    total = max(1, epochs * steps_per_epoch)

    def factor(step: int) -> float:
        if step < warmup:
            return WARMUP_START + (1 - WARMUP_START) * step / warmup
        if schedule == "step":
            epoch = step // steps_per_epoch
            return lr_gamma ** sum(epoch >= boundary for boundary in lr_steps)
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor

"""FPGM filter importance (He et al., CVPR 2019): filters near the geometric median are the most replaceable."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def fpgm_importance(filters: Tensor) -> Tensor:
    """``(n, ...)`` filters -> ``(n,)`` importance: the sum of Euclidean distances to all other filters.

    The filter minimising this sum is the (sample) geometric median of the set; low scores mark filters whose
    information the others already carry, so they are pruned first.
    """
    flat = filters.detach().reshape(filters.shape[0], -1).double()
    return torch.cdist(flat, flat).sum(dim=1).float()


def kept_per_group(per_group: int, rate: float, unit: int = 1) -> int:
    """Channels a group keeps at ``rate``: ``per_group - floor(rate * per_group)``, rounded to the nearest
    multiple of ``unit`` (vector-friendly widths run much faster in onnxruntime's blocked layouts); a group of
    at most ``unit`` channels is kept whole."""
    if unit > 1 and per_group <= unit:
        return per_group
    keep = per_group - int(rate * per_group + 1e-9)
    if unit > 1:
        keep = max(unit, min(per_group, unit * math.floor(keep / unit + 0.5)))
    return max(1, keep)


def select_pruned(importance: Tensor, rate: float, balance: int = 1, align: int = 1) -> Tensor:
    """Bool mask ``(n,)`` of the channels to keep: in each of ``balance`` contiguous groups, the least
    important are dropped so that the group keeps :func:`kept_per_group` channels (``align`` is the total
    width's multiple, shared evenly by the groups; at least one channel per group survives)."""
    n = importance.shape[0]
    if n % balance:
        raise ValueError(f"{n} channels do not split into {balance} equal groups")
    per_group = n // balance
    drop = per_group - kept_per_group(per_group, rate, max(1, align // balance))
    keep = torch.ones(n, dtype=torch.bool)
    if drop <= 0:
        return keep
    for g in range(balance):
        part = importance[g * per_group : (g + 1) * per_group]
        order = torch.argsort(part, stable=True)
        keep[g * per_group + order[:drop]] = False
    return keep

"""Soft filter pruning: masks from FPGM at per-group rates, applied by zeroing (or shrinking) filters.

The masked network is still the full network: pruned filters are zero and may grow back while training goes on
(He et al.'s soft filter pruning); masks are recomputed each epoch. The smooth variant scales filters by a sigmoid
of their importance margin instead of zeroing them, with a temperature that decays polynomially so the masks
harden over the phase.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from featherface.models.detector_net import DetectorNet
from featherface.pruning.fpgm import fpgm_importance, select_pruned
from featherface.pruning.groups import ChannelSpace, channel_spaces

Masks = dict[str, Tensor]  # space name -> bool (size,), True = kept


def _is_statistic(key: str) -> bool:
    return key.endswith(("running_mean", "running_var", "num_batches_tracked"))


def space_importance(net: DetectorNet, space: ChannelSpace) -> Tensor:
    """FPGM importance of a space's channels, over the concatenated filters of every conv producing them."""
    params = dict(net.named_parameters())
    rows = torch.cat([params[key].detach().reshape(space.size, -1) for key in space.filters], dim=1)
    return fpgm_importance(rows)


# Kept widths are multiples of this: onnxruntime's blocked (NCHWc) kernels take channels in blocks of 16 on
# AVX-512 (8 on AVX2), and a depthwise conv whose width is not whole blocks falls back to a slow kernel with
# layout changes on both sides. 16 suits both; spaces narrower than this are not pruned (their convs are padded
# to one block anyway, so fewer channels would save no time). Measured in benchmarks/deploy_ablation.py.
DEFAULT_CHANNEL_ALIGN = 16


def compute_masks(
    net: DetectorNet,
    rates: dict[str, float],
    spaces: list[ChannelSpace] | None = None,
    align: int = DEFAULT_CHANNEL_ALIGN,
) -> Masks:
    """Keep-masks for every space, dropping the least important filters at its layer group's rate."""
    masks = {}
    for space in spaces or channel_spaces(net):
        rate = rates.get(space.layer_group, 0.0)
        masks[space.name] = select_pruned(space_importance(net, space), rate, space.balance, align)
    return masks


@torch.no_grad()
def apply_masks(net: DetectorNet, masks: Masks, scale: dict[str, Tensor] | None = None) -> None:
    """Zero the pruned channels' filters, BN scales/shifts and depthwise partners (so their outputs are 0), and
    point CBAM's channel reductions at the kept channels. ``scale`` (smooth variant) multiplies instead."""
    params = dict(net.named_parameters())
    modules = dict(net.named_modules())
    for space in channel_spaces(net):
        if space.name not in masks:
            continue
        keep = masks[space.name]
        factor = scale[space.name] if scale is not None else keep.float()
        for key in space.produced:
            if key in params and not _is_statistic(key):
                p = params[key]
                p.mul_(factor.to(p.device, p.dtype).reshape(-1, *([1] * (p.dim() - 1))))
        for path in space.cbam:
            modules[f"{path}.spatial"].channel_mask = keep.clone()


def clear_cbam_masks(net: DetectorNet) -> None:
    for module in net.modules():
        if hasattr(module, "channel_mask"):
            module.channel_mask = None


def smooth_scale(net: DetectorNet, masks: Masks, progress: float, power: float = 2.0) -> dict[str, Tensor]:
    """Per-channel factors in (0, 1]: kept channels 1, pruned ones ``sigmoid(margin / T)`` with
    ``T = (1 - progress) ** power`` of the importance spread, reaching 0 at the end of the phase."""
    temperature = (1.0 - min(max(progress, 0.0), 1.0)) ** power
    factors = {}
    for space in channel_spaces(net):
        keep = masks[space.name]
        if keep.all() or temperature <= 0:
            factors[space.name] = keep.float()
            continue
        importance = space_importance(net, space)
        threshold = importance[~keep].max()
        spread = (importance.max() - importance.min()).clamp(min=1e-12)
        margin = (importance - threshold) / spread  # <= 0 for pruned channels
        soft = torch.sigmoid(margin / temperature - math.log(1.0 / temperature + 1.0))
        factors[space.name] = torch.where(keep, torch.ones_like(soft), soft)
    return factors


def kept_fraction(masks: Masks) -> float:
    total = sum(m.numel() for m in masks.values())
    return sum(int(m.sum()) for m in masks.values()) / max(total, 1)

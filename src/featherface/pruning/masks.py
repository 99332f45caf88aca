"""Soft filter pruning: masks from FPGM at per-group rates, applied by zeroing (or shrinking) filters.

Two views of a mask. During soft filter pruning (He et al., IJCAI 2018) :func:`zero_filters` zeroes only the
pruned channels' conv filters: their BatchNorm still passes gradient, so they train on and may grow back, and
the masks are recomputed from FPGM every epoch. :func:`apply_masks` is the deployed view: filters, BN and
depthwise partners zeroed, so pruned channels output exactly 0 and hard pruning changes nothing. The smooth
variant scales filters by a sigmoid of their importance margin instead of zeroing them, with a temperature that
decays polynomially so the masks harden over the phase.
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


def compute_masks(
    net: DetectorNet,
    rates: dict[str, float],
    spaces: list[ChannelSpace] | None = None,
    align: int | None = None,
) -> Masks:
    """Keep-masks for every space, dropping the least important filters at its layer group's rate.

    Kept widths are multiples of each space's ``align`` (``align`` given here overrides it for every space: the
    width-alignment benchmark compares policies with it).
    """
    masks = {}
    for space in spaces or channel_spaces(net):
        rate = rates.get(space.layer_group, 0.0)
        unit = space.align if align is None else align
        masks[space.name] = select_pruned(space_importance(net, space), rate, space.balance, unit)
    return masks


@torch.no_grad()
def zero_filters(net: DetectorNet, masks: Masks, scale: dict[str, Tensor] | None = None) -> None:
    """Soft filter pruning's step: zero (``scale``: shrink) the pruned channels' conv filters and nothing else.

    Their BatchNorm scale and shift stay, so a zeroed filter still receives gradient through them and can grow
    back while training goes on (He et al., IJCAI 2018); :func:`apply_masks` is the deployed network's view.
    """
    params = dict(net.named_parameters())
    for space in channel_spaces(net):
        if space.name not in masks:
            continue
        factor = scale[space.name] if scale is not None else masks[space.name].float()
        for key in space.filters:
            p = params[key]
            p.mul_(factor.to(p.device, p.dtype).reshape(-1, *([1] * (p.dim() - 1))))


@torch.no_grad()
def apply_masks(net: DetectorNet, masks: Masks, scale: dict[str, Tensor] | None = None) -> None:
    """Make the network compute what the hard-pruned one will: zero the pruned channels' filters, BN scales and
    shifts and depthwise partners (so their outputs are exactly 0), and point CBAM's channel reductions at the
    kept channels. ``scale`` multiplies instead of zeroing."""
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

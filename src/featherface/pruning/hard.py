"""Hard pruning: remove masked channels for real, giving a plain, smaller ``DetectorNet``.

The result loads and runs without any pruning code: its widths live in its config. Its outputs equal the
masked network's (tested to 1e-4), since masked channels are exactly zero wherever they flow.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor

from featherface.models.detector_net import DetectorNet, fold_shuffle_into_heads
from featherface.pruning.groups import channel_spaces
from featherface.pruning.masks import Masks


def _slice_grouped_columns(weight: Tensor, keep: Tensor, groups: int) -> Tensor:
    """Input columns of a grouped conv weight ``(O, I/g, k, k)``: each row group keeps its own columns."""
    out, per_group_in = weight.shape[0], weight.shape[1]
    rows = weight.reshape(groups, out // groups, per_group_in, *weight.shape[2:])
    kept = [torch.nonzero(keep[g * per_group_in : (g + 1) * per_group_in]).flatten() for g in range(groups)]
    parts = [rows[g][:, kept[g]] for g in range(groups)]
    return torch.stack(parts).reshape(out, len(kept[0]), *weight.shape[2:])


def hard_prune(net: DetectorNet, masks: Masks) -> DetectorNet:
    """The network without its masked channels (the shuffle folded into the heads)."""
    net = fold_shuffle_into_heads(net)
    spaces = channel_spaces(net)
    config = copy.deepcopy(net.config)
    for space in spaces:
        keep = masks.get(space.name, torch.ones(space.size, dtype=torch.bool))
        if keep.shape != (space.size,):
            raise ValueError(f"mask for {space.name} has shape {tuple(keep.shape)}, expected ({space.size},)")
        space.set_width(config, int(keep.sum()))
    state = {k: v.clone() for k, v in net.state_dict().items()}
    # rows first (all produced tensors), then plain columns, then grouped columns, each in original coordinates
    for space in spaces:
        keep = masks.get(space.name)
        if keep is None or keep.all():
            continue
        index = torch.nonzero(keep).flatten()
        for key in space.produced:
            state[key] = state[key].index_select(0, index)
    column_plans: dict[tuple[str, int], list[tuple[int, int, Tensor]]] = {}
    for space in spaces:
        keep = masks.get(space.name, torch.ones(space.size, dtype=torch.bool))
        for consumer in space.consumers:
            if consumer.groups > 1:
                if not keep.all():
                    state[consumer.key] = _slice_grouped_columns(state[consumer.key], keep, consumer.groups)
                continue
            column_plans.setdefault((consumer.key, consumer.dim), []).append((consumer.offset, space.size, keep))
    for (key, dim), parts in column_plans.items():
        tensor = state[key]
        covered = torch.ones(tensor.shape[dim], dtype=torch.bool)
        for offset, size, keep in parts:
            covered[offset : offset + size] = keep
        state[key] = tensor.index_select(dim, torch.nonzero(covered).flatten())
    pruned = DetectorNet(config)
    pruned.load_state_dict(state, strict=True)
    return pruned.to(next(net.parameters()).device)

"""RetinaFace's top-down FPN: 1x1 laterals, nearest upsampling, 3x3 merge convs."""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from featherface.nn.layers import ConvBNAct


class FPN(nn.Module):
    """``[C3, C4, C5] -> [P3, P4, P5]``, every output ``channels`` wide and the size of its input."""

    def __init__(self, in_channels: Sequence[int], channels: int, activation: str = "leaky") -> None:
        super().__init__()
        self.lateral = nn.ModuleList(ConvBNAct(c, channels, 1, activation=activation) for c in in_channels)
        # merge[i] smooths level i after the coarser level is added; the coarsest level has none.
        self.merge = nn.ModuleList(
            ConvBNAct(channels, channels, 3, activation=activation) for _ in range(len(in_channels) - 1)
        )
        self.out_channels = channels

    def forward(self, features: Sequence[Tensor]) -> list[Tensor]:
        outs = [lateral(f) for lateral, f in zip(self.lateral, features, strict=True)]
        for level in range(len(outs) - 2, -1, -1):
            upsampled = F.interpolate(outs[level + 1], size=outs[level].shape[-2:], mode="nearest")
            outs[level] = self.merge[level](outs[level] + upsampled)
        return outs

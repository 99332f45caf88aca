"""SSH context module (Najibi et al. 2017) as RetinaFace uses it, optionally with grouped convs."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from featherface.nn.layers import ConvBNAct


class SSH(nn.Module):
    """Three receptive fields (3x3, 5x5 as two 3x3, 7x7 as three 3x3 sharing the first) concatenated.

    Widths are explicit so that a pruned module is only other numbers: ``branch3x3`` gives
    ``out3x3`` channels, the shared reduction ``branch5x5_a`` gives ``mid`` channels, then
    ``branch5x5_b`` (``out5x5``), ``branch7x7_b`` (``mid7x7``) and ``branch7x7_c`` (``out7x7``).
    The output, ``out3x3 + out5x5 + out7x7`` channels, goes through a ReLU after the concat.
    """

    def __init__(
        self,
        in_channels: int,
        out3x3: int,
        mid: int,
        out5x5: int,
        mid7x7: int,
        out7x7: int,
        groups: int = 1,
        activation: str = "leaky",
    ) -> None:
        super().__init__()
        self.branch3x3 = ConvBNAct(in_channels, out3x3, 3, groups=groups, activation="none")
        self.branch5x5_a = ConvBNAct(in_channels, mid, 3, groups=groups, activation=activation)
        self.branch5x5_b = ConvBNAct(mid, out5x5, 3, groups=groups, activation="none")
        self.branch7x7_b = ConvBNAct(mid, mid7x7, 3, groups=groups, activation=activation)
        self.branch7x7_c = ConvBNAct(mid7x7, out7x7, 3, groups=groups, activation="none")
        self.out_channels = out3x3 + out5x5 + out7x7

    @classmethod
    def uniform(cls, in_channels: int, out_channels: int, groups: int = 1) -> SSH:
        """RetinaFace's split: half the output from the 3x3 branch, a quarter from each of the others."""
        quarter = out_channels // 4
        return cls(in_channels, out_channels // 2, quarter, quarter, quarter, quarter, groups=groups)

    def forward(self, x: Tensor) -> Tensor:
        reduced = self.branch5x5_a(x)
        out = torch.cat(
            [self.branch3x3(x), self.branch5x5_b(reduced), self.branch7x7_c(self.branch7x7_b(reduced))], dim=1
        )
        return F.relu(out)

"""BiFPN (Tan et al., EfficientDet, CVPR 2020) over three levels with fast normalised fusion."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from featherface.nn.layers import ConvBNAct, SeparableConvBN

# EfficientDet's epsilon in w_i / (eps + sum_j w_j): keeps the division stable when all weights are ~0.
FUSION_EPS = 1e-4


class FastNormalizedFusion(nn.Module):
    """``sum_i relu(w_i) x_i / (eps + sum_j relu(w_j))`` -- softmax-like weights without the exp."""

    def __init__(self, num_inputs: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(num_inputs))

    def forward(self, inputs: Sequence[Tensor]) -> Tensor:
        w = F.relu(self.weight)
        w = w / (w.sum() + FUSION_EPS)
        out = inputs[0] * w[0]
        for i in range(1, len(inputs)):
            out = out + inputs[i] * w[i]
        return out


class FusionNode(nn.Module):
    """Fuse same-shaped inputs, SiLU, then a (separable or full) 3x3 conv + BN."""

    def __init__(self, num_inputs: int, channels: int, separable: bool) -> None:
        super().__init__()
        self.fuse = FastNormalizedFusion(num_inputs)
        self.act = nn.SiLU()
        if separable:
            self.conv: nn.Module = SeparableConvBN(channels, channels)
        else:
            self.conv = ConvBNAct(channels, channels, 3, activation="none")

    def forward(self, inputs: Sequence[Tensor]) -> Tensor:
        return self.conv(self.act(self.fuse(inputs)))


def upsample_to(x: Tensor, like: Tensor) -> Tensor:
    return F.interpolate(x, size=like.shape[-2:], mode="nearest")


def downsample(x: Tensor) -> Tensor:
    """3x3/2 max pool with padding 1: a ceil(H/s) map becomes ceil(H/2s), matching the next level."""
    return F.max_pool2d(x, kernel_size=3, stride=2, padding=1)


class BiFPNCell(nn.Module):
    """One top-down + bottom-up pass over (P3, P4, P5)."""

    def __init__(self, channels: int, separable: bool) -> None:
        super().__init__()
        self.td4 = FusionNode(2, channels, separable)  # P4_in + up(P5_in)
        self.out3 = FusionNode(2, channels, separable)  # P3_in + up(P4_td)
        self.out4 = FusionNode(3, channels, separable)  # P4_in + P4_td + down(P3_out)
        self.out5 = FusionNode(2, channels, separable)  # P5_in + down(P4_out)

    def forward(self, features: Sequence[Tensor]) -> list[Tensor]:
        p3, p4, p5 = features
        td4 = self.td4([p4, upsample_to(p5, p4)])
        out3 = self.out3([p3, upsample_to(td4, p3)])
        out4 = self.out4([p4, td4, downsample(out3)])
        out5 = self.out5([p5, downsample(out4)])
        return [out3, out4, out5]


class BiFPN(nn.Module):
    """1x1 conv+BN projections of the taps to ``channels``, then ``repeats`` BiFPN cells."""

    def __init__(self, in_channels: Sequence[int], channels: int, repeats: int = 1, separable: bool = True) -> None:
        super().__init__()
        if len(in_channels) != 3:
            raise ValueError(f"BiFPN is built for 3 levels, got {len(in_channels)}")
        self.project = nn.ModuleList(ConvBNAct(c, channels, 1, activation="none") for c in in_channels)
        self.cells = nn.ModuleList(BiFPNCell(channels, separable) for _ in range(repeats))
        self.out_channels = channels

    def forward(self, features: Sequence[Tensor]) -> list[Tensor]:
        outs = [project(f) for project, f in zip(self.project, features, strict=True)]
        for cell in self.cells:
            outs = cell(outs)
        return outs

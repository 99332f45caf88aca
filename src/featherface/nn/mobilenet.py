"""MobileNetV1 (Howard et al. 2017) with every width explicit, so a pruned backbone is just other numbers."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from featherface.nn.layers import ConvBNAct


class DepthwiseSeparableBlock(nn.Module):
    """Depthwise 3x3 (stride s) + BN + act, then pointwise 1x1 + BN + act."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, activation: str) -> None:
        super().__init__()
        self.dw = ConvBNAct(in_channels, in_channels, 3, stride, groups=in_channels, activation=activation)
        self.pw = ConvBNAct(in_channels, out_channels, 1, activation=activation)

    def forward(self, x: Tensor) -> Tensor:
        return self.pw(self.dw(x))


class MobileNetV1(nn.Module):
    """Stem conv then depthwise-separable blocks; returns the outputs of the ``taps`` blocks.

    ``blocks`` is a list of ``(out_channels, stride)``. Every stride-2 conv pads by 1, so a map of
    size H becomes ceil(H / 2): the taps at strides 8/16/32 are ceil(H/s) x ceil(W/s), as the priors assume.
    """

    def __init__(
        self,
        stem_channels: int,
        blocks: Sequence[tuple[int, int]],
        taps: Sequence[int],
        activation: str = "leaky",
    ) -> None:
        super().__init__()
        self.stem = ConvBNAct(3, stem_channels, 3, stride=2, activation=activation)
        layers = []
        in_channels = stem_channels
        for out_channels, stride in blocks:
            layers.append(DepthwiseSeparableBlock(in_channels, out_channels, stride, activation))
            in_channels = out_channels
        self.blocks = nn.ModuleList(layers)
        self.taps = tuple(taps)
        self.out_channels = tuple(blocks[i][0] for i in self.taps)

    def forward(self, x: Tensor) -> list[Tensor]:
        x = self.stem(x)
        outputs = []
        for index, block in enumerate(self.blocks):
            x = block(x)
            if index in self.taps:
                outputs.append(x)
            if index == self.taps[-1]:
                break
        return outputs

"""Convolution + batch-norm + activation, the unit every other block is made of."""

from __future__ import annotations

from torch import Tensor, nn

# Pytorch_Retinaface uses LeakyReLU(0.1) throughout its mobilenet0.25 backbone, FPN and SSH.
LEAKY_SLOPE = 0.1


def make_activation(name: str) -> nn.Module:
    """Activation by name: ``leaky`` (slope 0.1), ``relu``, ``silu`` or ``none``."""
    if name == "leaky":
        return nn.LeakyReLU(LEAKY_SLOPE, inplace=True)
    if name == "relu":
        return nn.ReLU(inplace=True)
    if name == "silu":
        return nn.SiLU(inplace=True)
    if name == "none":
        return nn.Identity()
    raise ValueError(f"unknown activation {name!r} (expected leaky, relu, silu or none)")


class ConvBNAct(nn.Module):
    """``Conv2d(bias=False) -> BatchNorm2d -> activation`` with 'same' padding for odd kernels."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        groups: int = 1,
        activation: str = "leaky",
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=kernel_size // 2,
            groups=groups,
            bias=False,
        )
        self.bn = nn.BatchNorm2d(out_channels)
        self.act = make_activation(activation)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.bn(self.conv(x)))


class SeparableConvBN(nn.Module):
    """Depthwise 3x3 then pointwise 1x1 + BN (EfficientDet's BiFPN node conv): ~9/C of a full conv's cost."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(in_channels, in_channels, 3, padding=1, groups=in_channels, bias=False)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.bn(self.pointwise(self.depthwise(x)))

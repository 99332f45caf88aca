"""Channel shuffle (ShuffleNet): interleave the channels of ``groups`` groups so grouped convs mix."""

from __future__ import annotations

from torch import Tensor, nn


def channel_shuffle(x: Tensor, groups: int) -> Tensor:
    """``(N, C, H, W) -> (N, C, H, W)`` with channel ``g * (C/groups) + i`` moved to ``i * groups + g``."""
    n, c, h, w = x.shape
    if groups == 1:
        return x
    return x.reshape(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class ChannelShuffle(nn.Module):
    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: Tensor) -> Tensor:
        return channel_shuffle(x, self.groups)

    def extra_repr(self) -> str:
        return f"groups={self.groups}"

"""CBAM (Woo et al., ECCV 2018): channel attention then spatial attention, both as sigmoid gates."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class ChannelAttention(nn.Module):
    """Shared MLP (1x1 convs ``C -> hidden -> C``) over global average- and max-pooled features."""

    def __init__(self, channels: int, hidden_channels: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, hidden_channels, 1, bias=False)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(hidden_channels, channels, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        avg = self.fc2(self.act(self.fc1(x.mean(dim=(2, 3), keepdim=True))))
        peak = self.fc2(self.act(self.fc1(x.amax(dim=(2, 3), keepdim=True))))
        return x * torch.sigmoid(avg + peak)


class SpatialAttention(nn.Module):
    """A ``k x k`` conv over the per-pixel channel mean and max, giving one gate per pixel.

    ``channel_mask`` (bool ``(C,)``, set only while soft pruning) restricts the mean and max to the channels
    that survive, so the masked network computes exactly what the hard-pruned one will.
    """

    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)
        self.channel_mask: Tensor | None = None

    def forward(self, x: Tensor) -> Tensor:
        if self.channel_mask is None:
            mean, peak = x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)
        else:
            keep = self.channel_mask.to(x.device)[None, :, None, None]
            mean = (x * keep).sum(dim=1, keepdim=True) / keep.sum().clamp(min=1)
            peak = x.masked_fill(~keep, float("-inf")).amax(dim=1, keepdim=True)
        pooled = torch.cat([mean, peak], dim=1)
        return x * torch.sigmoid(self.conv(pooled))


class CBAM(nn.Module):
    """Channel then spatial attention; output has the input's shape ``(N, C, H, W)``."""

    def __init__(self, channels: int, hidden_channels: int, spatial_kernel: int = 7) -> None:
        super().__init__()
        self.channel = ChannelAttention(channels, hidden_channels)
        self.spatial = SpatialAttention(spatial_kernel)

    def forward(self, x: Tensor) -> Tensor:
        return self.spatial(self.channel(x))

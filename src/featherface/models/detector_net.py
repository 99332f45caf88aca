"""The one detector network all zoo models are: its config says which blocks and how wide."""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from featherface.models.config import DetectorConfig
from featherface.nn import CBAM, FPN, SSH, BiFPN, ChannelShuffle, DetectionHead, MobileNetV1

# Module groups in forward order; `featherface info` reports parameters per group.
MODULE_GROUPS = ("backbone", "attention_in", "neck", "attention_out", "context", "shuffle", "heads")


def _attention(config, channels: list[int]) -> nn.ModuleList | None:
    if config is None:
        return None
    return nn.ModuleList(
        CBAM(c, h, config.spatial_kernel) for c, h in zip(channels, config.hidden_channels, strict=True)
    )


class DetectorNet(nn.Module):
    """Image batch ``(N, 3, H, W)`` (BGR minus mean) to raw per-prior outputs.

    ``forward`` returns ``(box_deltas (N, P, 4), class_logits (N, P, 2), landmark_deltas (N, P, 10))``
    with P priors in :class:`featherface.detection.PriorBox` order (levels, then row-major cells, then anchors).
    """

    def __init__(self, config: DetectorConfig) -> None:
        super().__init__()
        self.config = config
        bb = config.backbone
        self.backbone = MobileNetV1(bb.stem_channels, bb.blocks, bb.taps, bb.activation)
        tap_channels = bb.out_channels
        self.attention_in = _attention(config.attention_in, tap_channels)
        neck = config.neck
        if neck.kind == "fpn":
            self.neck: nn.Module = FPN(tap_channels, neck.channels)
        elif neck.kind == "bifpn":
            self.neck = BiFPN(tap_channels, neck.channels, neck.repeats, neck.separable)
        else:
            raise ValueError(f"unknown neck kind {neck.kind!r} (expected fpn or bifpn)")
        self.attention_out = _attention(config.attention_out, [neck.channels] * 3)
        ctx = config.context
        self.context = nn.ModuleList(
            SSH(neck.channels, w.out3x3, w.mid, w.out5x5, w.mid7x7, w.out7x7, groups=ctx.groups) for w in ctx.levels
        )
        self.shuffle = ChannelShuffle(config.shuffle_groups) if config.shuffle_groups > 1 else None
        anchors = config.anchors.anchors_per_cell
        self.heads = nn.ModuleList(DetectionHead(w.out_channels, anchors) for w in ctx.levels)

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        outputs = [head(f) for head, f in zip(self.heads, self.head_inputs(images), strict=True)]
        boxes, logits, landmarks = (torch.cat(parts, dim=1) for parts in zip(*outputs, strict=True))
        return boxes, logits, landmarks

    def head_inputs(self, images: Tensor) -> list[Tensor]:
        """The per-level features the heads read (strides 8, 16, 32)."""
        features = self.backbone(images)
        if self.attention_in is not None:
            features = [att(f) for att, f in zip(self.attention_in, features, strict=True)]
        features = self.neck(features)
        if self.attention_out is not None:
            features = [att(f) for att, f in zip(self.attention_out, features, strict=True)]
        features = [ssh(f) for ssh, f in zip(self.context, features, strict=True)]
        if self.shuffle is not None:
            features = [self.shuffle(f) for f in features]
        return features


def count_parameters(module: nn.Module | None) -> int:
    """Learnable parameters (BN running statistics are buffers and not counted)."""
    if module is None:
        return 0
    return sum(p.numel() for p in module.parameters())


def parameters_by_group(net: DetectorNet) -> dict[str, int]:
    return {name: count_parameters(getattr(net, name)) for name in MODULE_GROUPS}


@torch.no_grad()
def fold_shuffle_into_heads(net: DetectorNet) -> DetectorNet:
    """A copy whose heads read the unshuffled SSH output: the shuffle before 1x1 heads is a fixed permutation
    of their input columns, so it can be folded away (one fewer memory-bound op at stride 8)."""
    net = copy.deepcopy(net)
    groups = net.config.shuffle_groups
    if groups <= 1:
        return net
    for head in net.heads:
        c = head.cls.in_channels
        perm = torch.arange(c).reshape(groups, c // groups).t().reshape(-1)  # shuffled[p] = x[perm[p]]
        inverse = torch.argsort(perm)
        for conv in (head.cls, head.box, head.landmarks):
            conv.weight.copy_(conv.weight[:, inverse])
    net.config = copy.deepcopy(net.config)
    net.config.shuffle_groups = 1
    net.shuffle = None
    return net

"""Architecture configs: plain dataclasses in which every channel width is explicit.

A pruned model is only another config with smaller numbers, so loading or running it needs no
pruning code. Configs round-trip through JSON (``to_dict`` / ``from_dict``), which is how
checkpoints describe their architecture without pickling anything.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from featherface.config_schema import short_repr, short_text

# MobileNetV1 at width 0.25 (Howard et al. 2017) as in Pytorch_Retinaface: (out_channels, stride) of the
# 13 depthwise-separable blocks after an 8-channel stride-2 stem. Taps after blocks 4, 10, 12 give strides 8/16/32.
MOBILENET_025_STEM = 8
MOBILENET_025_BLOCKS: tuple[tuple[int, int], ...] = (
    (16, 1), (32, 2), (32, 1), (64, 2), (64, 1),
    (128, 2), (128, 1), (128, 1), (128, 1), (128, 1), (128, 1),
    (256, 2), (256, 1),
)  # fmt: skip
MOBILENET_025_TAPS = (4, 10, 12)


@dataclass
class BackboneConfig:
    stem_channels: int = MOBILENET_025_STEM
    blocks: list[tuple[int, int]] = field(default_factory=lambda: list(MOBILENET_025_BLOCKS))
    taps: tuple[int, ...] = MOBILENET_025_TAPS
    activation: str = "leaky"

    @property
    def out_channels(self) -> list[int]:
        return [self.blocks[i][0] for i in self.taps]


@dataclass
class AttentionConfig:
    """CBAM on each level; ``hidden_channels[i]`` is the channel-MLP width of level i."""

    hidden_channels: list[int]
    spatial_kernel: int = 7


@dataclass
class NeckConfig:
    """``fpn`` (RetinaFace, top-down) or ``bifpn`` (EfficientDet, ``repeats`` cells)."""

    kind: str
    channels: int
    repeats: int = 1
    separable: bool = True


@dataclass
class SSHWidths:
    out3x3: int
    mid: int
    out5x5: int
    mid7x7: int
    out7x7: int

    @property
    def out_channels(self) -> int:
        return self.out3x3 + self.out5x5 + self.out7x7

    @classmethod
    def uniform(cls, channels: int) -> SSHWidths:
        q = channels // 4
        return cls(channels // 2, q, q, q, q)


@dataclass
class ContextConfig:
    """One SSH per level, ``groups`` for all its convs."""

    levels: list[SSHWidths]
    groups: int = 1


@dataclass
class AnchorConfig:
    """RetinaFace priors: two square anchors per cell per level, (0.1, 0.2) variances."""

    min_sizes: list[list[int]] = field(default_factory=lambda: [[16, 32], [64, 128], [256, 512]])
    steps: list[int] = field(default_factory=lambda: [8, 16, 32])
    variances: tuple[float, float] = (0.1, 0.2)

    @property
    def anchors_per_cell(self) -> int:
        return len(self.min_sizes[0])


@dataclass
class DetectorConfig:
    """Backbone -> [CBAM] -> neck -> [CBAM] -> SSH -> [shuffle] -> heads."""

    name: str
    backbone: BackboneConfig
    neck: NeckConfig
    context: ContextConfig
    attention_in: AttentionConfig | None = None
    attention_out: AttentionConfig | None = None
    shuffle_groups: int = 1
    anchors: AnchorConfig = field(default_factory=AnchorConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DetectorConfig:
        """Rebuild from ``to_dict`` output (a checkpoint's or an ONNX file's architecture), every value checked
        against its declared range (:func:`check_architecture`) before any layer is built; a missing, unknown or
        out-of-range field raises ``ValueError`` naming it (``neck.repeats: must be in 1..16, got 10000000``)."""
        if not isinstance(data, dict):
            raise ValueError(f"model config: expected a mapping, got {short_repr(data)}")
        try:
            backbone = dict(data["backbone"])
            backbone["blocks"] = [tuple(b) for b in backbone["blocks"]]
            backbone["taps"] = tuple(backbone["taps"])
            context = dict(data["context"])
            context["levels"] = [SSHWidths(**w) for w in context["levels"]]
            anchors = dict(data.get("anchors") or {})
            if "variances" in anchors:
                anchors["variances"] = tuple(anchors["variances"])
            config = cls(
                name=data["name"],
                backbone=BackboneConfig(**backbone),
                neck=NeckConfig(**data["neck"]),
                context=ContextConfig(**context),
                attention_in=AttentionConfig(**data["attention_in"]) if data.get("attention_in") else None,
                attention_out=AttentionConfig(**data["attention_out"]) if data.get("attention_out") else None,
                shuffle_groups=int(data.get("shuffle_groups", 1)),
                anchors=AnchorConfig(**anchors),
            )
        except KeyError as exc:
            raise ValueError(f"model config is missing key {short_repr(exc.args[0])}") from None
        except (TypeError, ValueError, AttributeError) as exc:  # a list where a mapping belongs, and the like
            raise ValueError(f"model config has a bad field: {short_text(str(exc))}") from None
        check_architecture(config)
        return config


# Declared ranges of an architecture read from a file (checkpoint header or .json, ONNX metadata), checked before
# any layer is built. Every model the project makes fits with room to spare; a corrupt or hostile file cannot ask
# for minutes of building (neck.repeats 10^7) or gigabytes of weights (widths 10^9).
MAX_WIDTH = 4096  # channels of any layer: 4x MobileNetV1-1.0's widest (1024), 2x ResNet-50's (2048)
MAX_BLOCKS = 32  # backbone blocks: MobileNetV1 has 13, MobileNetV2 17
MAX_REPEATS = 16  # BiFPN cells: EfficientDet-D7, the largest, stacks 8
MAX_GROUPS = 64  # grouped SSH convs and channel shuffle: the zoo uses 1 and 2
MAX_SPATIAL_KERNEL = 15  # CBAM's spatial conv: 7 in Woo et al.
MAX_ANCHORS_PER_CELL = 8  # RetinaFace: 2
MAX_ANCHOR_SIZE = 4096  # pixels: the detector's largest input side (detection.api.DEFAULT_MAX_SIZE)
STEPS = (2, 4, 8, 16, 32, 64, 128)  # feature strides of a pyramid level: RetinaFace's 8/16/32, down to P1, up to P7
LEVELS = 3  # P3-P5: the neck, CBAM and the per-level SSH/heads are built for three levels
ACTIVATIONS = ("leaky", "relu", "silu", "none")
NECKS = ("fpn", "bifpn")


def _whole(value: Any, key: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{key}: expected a whole number, got {short_repr(value)}")
    if not low <= value <= high:
        raise ValueError(f"{key}: must be in {low}..{high}, got {short_repr(value)}")
    return value


def _number(value: Any, key: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low < value <= high:
        raise ValueError(f"{key}: must be a number in ({low:g}, {high:g}], got {short_repr(value)}")
    return float(value)


def _items(value: Any, key: str, low: int, high: int) -> list[Any]:
    if not isinstance(value, list | tuple):
        raise ValueError(f"{key}: expected a list, got {short_repr(value)}")
    if not low <= len(value) <= high:
        count = str(low) if low == high else f"{low}..{high}"
        raise ValueError(f"{key}: expected {count} items, got {len(value)}")
    return list(value)


def _one_of(value: Any, key: str, choices: tuple[Any, ...]) -> None:
    kind = type(choices[0])  # exactly: True is no stride, 1 no "separable"
    if type(value) is not kind or value not in choices:
        raise ValueError(f"{key}: must be one of {', '.join(map(str, choices))}, got {short_repr(value)}")


def check_architecture(config: DetectorConfig) -> None:
    """Every width, count, stride and anchor of ``config`` within its declared range (:data:`MAX_WIDTH`,
    :data:`MAX_REPEATS`, :data:`STEPS`...) and consistent with the others (three levels throughout, group counts
    that divide the widths they split, anchor steps equal to the backbone's strides at its taps), or ``ValueError``
    naming the field. Pure arithmetic on the numbers: nothing is allocated."""
    if not isinstance(config.name, str):
        raise ValueError(f"name: expected text, got {short_repr(config.name)}")
    bb = config.backbone
    _whole(bb.stem_channels, "backbone.stem_channels", 1, MAX_WIDTH)
    blocks = _items(bb.blocks, "backbone.blocks", 1, MAX_BLOCKS)
    strides = []
    for i, block in enumerate(blocks):
        width, stride = _items(block, f"backbone.blocks[{i}]", 2, 2)
        _whole(width, f"backbone.blocks[{i}][0]", 1, MAX_WIDTH)
        _one_of(stride, f"backbone.blocks[{i}][1]", (1, 2))
        strides.append(stride)
    taps = _items(bb.taps, "backbone.taps", LEVELS, LEVELS)
    for i, tap in enumerate(taps):
        _whole(tap, f"backbone.taps[{i}]", 0 if i == 0 else taps[i - 1] + 1, len(blocks) - 1)
    _one_of(bb.activation, "backbone.activation", ACTIVATIONS)
    neck = config.neck
    _one_of(neck.kind, "neck.kind", NECKS)
    channels = _whole(neck.channels, "neck.channels", 1, MAX_WIDTH)
    _whole(neck.repeats, "neck.repeats", 1, MAX_REPEATS)
    _one_of(neck.separable, "neck.separable", (True, False))
    for which in ("attention_in", "attention_out"):
        attention = getattr(config, which)
        if attention is None:
            continue
        for i, hidden in enumerate(_items(attention.hidden_channels, f"{which}.hidden_channels", LEVELS, LEVELS)):
            _whole(hidden, f"{which}.hidden_channels[{i}]", 1, MAX_WIDTH)
        kernel = _whole(attention.spatial_kernel, f"{which}.spatial_kernel", 1, MAX_SPATIAL_KERNEL)
        if kernel % 2 == 0:
            raise ValueError(f"{which}.spatial_kernel: must be odd, got {kernel}")
    context = config.context
    groups = _whole(context.groups, "context.groups", 1, MAX_GROUPS)
    shuffle = _whole(config.shuffle_groups, "shuffle_groups", 1, MAX_GROUPS)
    if channels % groups:
        raise ValueError(f"context.groups: {groups} does not divide neck.channels {channels}")
    for level, widths in enumerate(_items(context.levels, "context.levels", LEVELS, LEVELS)):
        for name in ("out3x3", "mid", "out5x5", "mid7x7", "out7x7"):
            width = _whole(getattr(widths, name), f"context.levels[{level}].{name}", 1, MAX_WIDTH)
            if width % groups:
                raise ValueError(
                    f"context.levels[{level}].{name}: {width} is not a multiple of context.groups {groups}"
                )
        if widths.out_channels % shuffle:
            raise ValueError(
                f"shuffle_groups: {shuffle} does not divide context.levels[{level}]'s {widths.out_channels} channels"
            )
    anchors = config.anchors
    sizes = _items(anchors.min_sizes, "anchors.min_sizes", LEVELS, LEVELS)
    per_cell = len(_items(sizes[0], "anchors.min_sizes[0]", 1, MAX_ANCHORS_PER_CELL))
    for level, level_sizes in enumerate(sizes):
        for i, size in enumerate(_items(level_sizes, f"anchors.min_sizes[{level}]", per_cell, per_cell)):
            _whole(size, f"anchors.min_sizes[{level}][{i}]", 1, MAX_ANCHOR_SIZE)
    for level, step in enumerate(_items(anchors.steps, "anchors.steps", LEVELS, LEVELS)):
        _one_of(step, f"anchors.steps[{level}]", STEPS)
        stride = 2 * math.prod(strides[: taps[level] + 1])  # the stem halves, then each stride-2 block
        if step != stride:
            raise ValueError(f"anchors.steps[{level}]: {step} is not the backbone's stride {stride} at that level")
    for i, variance in enumerate(_items(anchors.variances, "anchors.variances", 2, 2)):
        _number(variance, f"anchors.variances[{i}]", 0.0, 1.0)


# Where a distilled student's weights start (SPEC section 4): its own ("own": ImageNet's backbone for nano-b, the
# shipped weights for nano-b-distilled), or the teacher's trained backbone where the layers match.
STUDENT_INITS = ("own", "teacher-backbone")


def retinaface_mnet025_config() -> DetectorConfig:
    """RetinaFace-mnet0.25 as trained by Pytorch_Retinaface: FPN 64, SSH 64, 426,608 parameters."""
    return DetectorConfig(
        name="retinaface-mnet025",
        backbone=BackboneConfig(),
        neck=NeckConfig(kind="fpn", channels=64),
        context=ContextConfig(levels=[SSHWidths.uniform(64) for _ in range(3)]),
    )


# FeatherFace V1 (the seed's teacher). The seed fixes only its total, 487,103 parameters (+- 1 % by SPEC):
# BiFPN 72 (as Nano-B, three EfficientDet-D0 cells) and SSH 80 land at 488,103 (+0.2 %).
FEATHERFACE_V1_CHANNELS = 72
FEATHERFACE_V1_SSH_CHANNELS = 80
FEATHERFACE_V1_BIFPN_REPEATS = 3
FEATHERFACE_V1_CBAM_REDUCTION = 16  # Woo et al.'s default


def featherface_v1_config() -> DetectorConfig:
    """The teacher: MobileNetV1-0.25 -> CBAM -> BiFPN (separable, 3 cells) -> CBAM -> SSH -> shuffle -> heads."""
    backbone = BackboneConfig()
    c = FEATHERFACE_V1_CHANNELS
    r = FEATHERFACE_V1_CBAM_REDUCTION
    return DetectorConfig(
        name="featherface-v1",
        backbone=backbone,
        attention_in=AttentionConfig(hidden_channels=[w // r for w in backbone.out_channels]),
        neck=NeckConfig(kind="bifpn", channels=c, repeats=FEATHERFACE_V1_BIFPN_REPEATS, separable=True),
        attention_out=AttentionConfig(hidden_channels=[c // r] * 3),
        context=ContextConfig(levels=[SSHWidths.uniform(FEATHERFACE_V1_SSH_CHANNELS) for _ in range(3)], groups=1),
        shuffle_groups=2,
    )


# Nano-B (SPEC section 2): efficient CBAM with reduction 8, BiFPN 72 channels, grouped SSH and shuffle (groups 2).
NANO_B_CHANNELS = 72
NANO_B_CBAM_REDUCTION = 8
NANO_B_GROUPS = 2


def nano_b_config() -> DetectorConfig:
    """The student before pruning; B-FPGM shrinks these widths into the deployed 120k-180k model."""
    backbone = BackboneConfig()
    c = NANO_B_CHANNELS
    r = NANO_B_CBAM_REDUCTION
    return DetectorConfig(
        name="nano-b",
        backbone=backbone,
        attention_in=AttentionConfig(hidden_channels=[w // r for w in backbone.out_channels]),
        neck=NeckConfig(kind="bifpn", channels=c, repeats=1, separable=True),
        attention_out=AttentionConfig(hidden_channels=[c // r] * 3),
        context=ContextConfig(levels=[SSHWidths.uniform(c) for _ in range(3)], groups=NANO_B_GROUPS),
        shuffle_groups=NANO_B_GROUPS,
    )

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

from featherface.config_schema import Config, FieldError, build, rule

# MobileNetV1 at width 0.25 (Howard et al. 2017) as in Pytorch_Retinaface: (out_channels, stride) of the
# 13 depthwise-separable blocks after an 8-channel stride-2 stem. Taps after blocks 4, 10, 12 give strides 8/16/32.
MOBILENET_025_STEM = 8
MOBILENET_025_BLOCKS: tuple[tuple[int, int], ...] = (
    (16, 1), (32, 2), (32, 1), (64, 2), (64, 1),
    (128, 2), (128, 1), (128, 1), (128, 1), (128, 1), (128, 1),
    (256, 2), (256, 1),
)  # fmt: skip
MOBILENET_025_TAPS = (4, 10, 12)

# Declared ranges of an architecture, checked whenever a config is made (a checkpoint's header or .json, ONNX
# metadata) and so before any layer is built. Every model the project makes fits with room to spare; a corrupt or
# hostile file cannot ask for minutes of building (neck.repeats 10^7) or gigabytes of weights (widths 10^9).
MAX_WIDTH = 4096  # channels of any layer: 4x MobileNetV1-1.0's widest (1024), 2x ResNet-50's (2048)
MAX_BLOCKS = 32  # backbone blocks: MobileNetV1 has 13, MobileNetV2 17
MAX_REPEATS = 16  # BiFPN cells: EfficientDet-D7, the largest, stacks 8
MAX_GROUPS = 64  # grouped SSH convs and channel shuffle: the zoo uses 1 and 2
MAX_SPATIAL_KERNEL = 15  # CBAM's spatial conv: 7 in Woo et al.
MAX_ANCHORS_PER_CELL = 8  # RetinaFace: 2
MAX_ANCHOR_SIZE = 4096  # pixels: the detector's largest input side (detection.api.DEFAULT_MAX_SIZE)
STEPS = (2, 4, 8, 16, 32, 64, 128)  # feature strides of a pyramid level: RetinaFace's 8/16/32, down to P1, up to P7
STRIDES = (1, 2)  # of a backbone block
LEVELS = 3  # P3-P5: the neck, CBAM and the per-level SSH/heads are built for three levels
ACTIVATIONS = ("leaky", "relu", "silu", "none")
NECKS = ("fpn", "bifpn")
WIDTH = rule(ge=1, le=MAX_WIDTH)  # channels


@dataclass
class BackboneConfig(Config):
    stem_channels: int = field(default=MOBILENET_025_STEM, metadata=WIDTH)
    # (out_channels, stride) per block: both within WIDTH here, the stride one of STRIDES (check_architecture)
    blocks: list[tuple[int, int]] = field(default_factory=lambda: list(MOBILENET_025_BLOCKS), metadata=WIDTH)
    taps: tuple[int, ...] = field(default=MOBILENET_025_TAPS, metadata=rule(ge=0))  # blocks whose outputs are levels
    activation: str = field(default="leaky", metadata=rule(choices=ACTIVATIONS))

    @property
    def out_channels(self) -> list[int]:
        return [self.blocks[i][0] for i in self.taps]


@dataclass
class AttentionConfig(Config):
    """CBAM on each level; ``hidden_channels[i]`` is the channel-MLP width of level i."""

    hidden_channels: list[int] = field(metadata=WIDTH)
    spatial_kernel: int = field(default=7, metadata=rule(ge=1, le=MAX_SPATIAL_KERNEL))  # odd (check_architecture)


@dataclass
class NeckConfig(Config):
    """``fpn`` (RetinaFace, top-down) or ``bifpn`` (EfficientDet, ``repeats`` cells)."""

    kind: str = field(metadata=rule(choices=NECKS))
    channels: int = field(metadata=WIDTH)
    repeats: int = field(default=1, metadata=rule(ge=1, le=MAX_REPEATS))
    separable: bool = True


@dataclass
class SSHWidths(Config):
    out3x3: int = field(metadata=WIDTH)
    mid: int = field(metadata=WIDTH)
    out5x5: int = field(metadata=WIDTH)
    mid7x7: int = field(metadata=WIDTH)
    out7x7: int = field(metadata=WIDTH)

    @property
    def out_channels(self) -> int:
        return self.out3x3 + self.out5x5 + self.out7x7

    @classmethod
    def uniform(cls, channels: int) -> SSHWidths:
        q = channels // 4
        return cls(channels // 2, q, q, q, q)


@dataclass
class ContextConfig(Config):
    """One SSH per level, ``groups`` for all its convs."""

    levels: list[SSHWidths]
    groups: int = field(default=1, metadata=rule(ge=1, le=MAX_GROUPS))


@dataclass
class AnchorConfig(Config):
    """RetinaFace priors: two square anchors per cell per level, (0.1, 0.2) variances."""

    min_sizes: list[list[int]] = field(
        default_factory=lambda: [[16, 32], [64, 128], [256, 512]], metadata=rule(ge=1, le=MAX_ANCHOR_SIZE)
    )
    steps: list[int] = field(default_factory=lambda: [8, 16, 32], metadata=rule(choices=STEPS))
    variances: tuple[float, float] = field(default=(0.1, 0.2), metadata=rule(gt=0, le=1))

    @property
    def anchors_per_cell(self) -> int:
        return len(self.min_sizes[0])


@dataclass
class DetectorConfig(Config):
    """Backbone -> [CBAM] -> neck -> [CBAM] -> SSH -> [shuffle] -> heads.

    Each field is checked against its declared range when the config is made, and the whole against the others
    (:func:`check_architecture`): a config that exists can be built."""

    name: str
    backbone: BackboneConfig
    neck: NeckConfig
    context: ContextConfig
    attention_in: AttentionConfig | None = None
    attention_out: AttentionConfig | None = None
    shuffle_groups: int = field(default=1, metadata=rule(ge=1, le=MAX_GROUPS))
    anchors: AnchorConfig = field(default_factory=AnchorConfig)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_architecture(self)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> DetectorConfig:
        """Rebuild from ``to_dict`` output (a checkpoint's or an ONNX file's architecture), every value checked
        against its declared range before any layer is built; a missing, unknown or out-of-range field raises a
        ``ValueError`` (:class:`~featherface.config_schema.ConfigError`) naming it
        (``neck.repeats: must be <= 16, got 10000000``)."""
        return build(cls, data, where="")


def _in_range(value: int, key: str, low: int, high: int) -> None:
    if not low <= value <= high:
        raise FieldError(key, f"must be in {low}..{high}, got {value}")


def _count(items: list[Any] | tuple[Any, ...], key: str, low: int, high: int) -> list[Any]:
    if not low <= len(items) <= high:
        count = str(low) if low == high else f"{low}..{high}"
        raise FieldError(key, f"expected {count} items, got {len(items)}")
    return list(items)


def check_architecture(config: DetectorConfig) -> None:
    """The fields of ``config`` consistent with each other (each within its own range is checked by its rule):
    three levels throughout, backbone taps in order, group counts that divide the widths they split, anchor steps
    equal to the backbone's strides at its taps; or :class:`~featherface.config_schema.FieldError` naming the field.
    Pure arithmetic on the numbers: nothing is allocated."""
    bb = config.backbone
    blocks = _count(bb.blocks, "backbone.blocks", 1, MAX_BLOCKS)
    for i, (_, stride) in enumerate(blocks):
        if stride not in STRIDES:
            raise FieldError(f"backbone.blocks[{i}][1]", f"must be one of 1, 2, got {stride}")
    taps = _count(bb.taps, "backbone.taps", LEVELS, LEVELS)
    for i, tap in enumerate(taps):
        _in_range(tap, f"backbone.taps[{i}]", 0 if i == 0 else taps[i - 1] + 1, len(blocks) - 1)
    for which in ("attention_in", "attention_out"):
        attention = getattr(config, which)
        if attention is not None:
            _count(attention.hidden_channels, f"{which}.hidden_channels", LEVELS, LEVELS)
            if attention.spatial_kernel % 2 == 0:
                raise FieldError(f"{which}.spatial_kernel", f"must be odd, got {attention.spatial_kernel}")
    channels, groups, shuffle = config.neck.channels, config.context.groups, config.shuffle_groups
    if channels % groups:
        raise FieldError("context.groups", f"{groups} does not divide neck.channels {channels}")
    for level, widths in enumerate(_count(config.context.levels, "context.levels", LEVELS, LEVELS)):
        for name in ("out3x3", "mid", "out5x5", "mid7x7", "out7x7"):
            width = getattr(widths, name)
            if width % groups:
                raise FieldError(
                    f"context.levels[{level}].{name}", f"{width} is not a multiple of context.groups {groups}"
                )
        if widths.out_channels % shuffle:
            raise FieldError(
                "shuffle_groups", f"{shuffle} does not divide context.levels[{level}]'s {widths.out_channels} channels"
            )
    anchors = config.anchors
    sizes = _count(anchors.min_sizes, "anchors.min_sizes", LEVELS, LEVELS)
    per_cell = len(_count(sizes[0], "anchors.min_sizes[0]", 1, MAX_ANCHORS_PER_CELL))
    for level, level_sizes in enumerate(sizes):
        _count(level_sizes, f"anchors.min_sizes[{level}]", per_cell, per_cell)
    for level, step in enumerate(_count(anchors.steps, "anchors.steps", LEVELS, LEVELS)):
        stride = 2 * math.prod(s for _, s in blocks[: taps[level] + 1])  # the stem halves, then each stride-2 block
        if step != stride:
            raise FieldError(f"anchors.steps[{level}]", f"{step} is not the backbone's stride {stride} at that level")


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

"""Architecture configs: plain dataclasses in which every channel width is explicit.

A pruned model is only another config with smaller numbers, so loading or running it needs no
pruning code. Configs round-trip through JSON (``to_dict`` / ``from_dict``), which is how
checkpoints describe their architecture without pickling anything.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

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
        """Rebuild from ``to_dict`` output; a missing or unknown key raises ``ValueError`` naming it."""
        try:
            backbone = dict(data["backbone"])
            backbone["blocks"] = [tuple(b) for b in backbone["blocks"]]
            backbone["taps"] = tuple(backbone["taps"])
            context = dict(data["context"])
            context["levels"] = [SSHWidths(**w) for w in context["levels"]]
            anchors = dict(data.get("anchors") or {})
            if "variances" in anchors:
                anchors["variances"] = tuple(anchors["variances"])
            return cls(
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
            raise ValueError(f"model config is missing key {exc}") from None
        except TypeError as exc:
            raise ValueError(f"model config has a bad field: {exc}") from None


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

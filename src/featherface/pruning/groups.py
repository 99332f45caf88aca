"""Channel spaces: the sets of channels that must be pruned together, and B-FPGM's six layer groups.

A *channel space* is one tensor dimension shared by several parameters: the conv that produces the channels
(its filters are what FPGM ranks), the BatchNorm that follows, a depthwise conv that carries the channels on,
and every conv or attention MLP that consumes them (input columns). Removing channel ``c`` from a space removes
it from all of these at once. Spaces are declared explicitly for our detector family (MobileNetV1 -> CBAM ->
FPN/BiFPN -> CBAM -> SSH (grouped) -> shuffle -> heads) because torch-pruning 1.6's dependency graph fails on
the grouped SSH; a test checks the declaration against hard pruning for every group.

Grouped convolutions keep the same number of channels in each group (``balance``); the shuffle before the heads
is folded into the heads' input columns before hard pruning (a fixed permutation feeding 1x1 convs).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from featherface.models.config import DetectorConfig
from featherface.models.detector_net import DetectorNet

# B-FPGM's six layer groups with the seed's bounds on their pruning rate (SPEC section 5).
LAYER_GROUPS: dict[str, tuple[float, float]] = {
    "backbone_early": (0.0, 0.4),
    "backbone_late": (0.1, 0.5),
    "cbam": (0.1, 0.5),
    "bifpn": (0.15, 0.6),
    "ssh": (0.1, 0.5),
    "heads": (0.0, 0.3),
}


@dataclass
class Consumer:
    """A parameter that reads the space's channels along ``dim``, starting at ``offset``.

    ``groups`` > 1: a grouped conv's weight (O, I/g, k, k) whose input columns are per group.
    """

    key: str
    dim: int = 1
    offset: int = 0
    groups: int = 1


@dataclass
class ChannelSpace:
    name: str
    layer_group: str
    size: int
    filters: list[str]  # conv weights whose rows (dim 0) are the channels' filters (FPGM ranks them)
    produced: list[str]  # every parameter/buffer indexed by the channel along dim 0 (filters, BN, depthwise)
    consumers: list[Consumer] = field(default_factory=list)
    cbam: list[str] = field(default_factory=list)  # CBAM modules whose spatial reductions see the channels
    balance: int = 1  # channels are kept in equal numbers in each of this many contiguous groups
    set_width: Callable[[DetectorConfig, int], None] | None = None
    align: int = 1  # kept widths are multiples of this (see DEPTHWISE_CHANNEL_ALIGN)


# Kept widths of spaces that flow through a depthwise conv are multiples of this: onnxruntime's blocked (NCHWc)
# kernels take channels in blocks of 16 on AVX-512 (8 on AVX2), and a depthwise conv whose width is not whole
# blocks falls back to a slow kernel with layout changes on both sides (benchmarks/width_alignment.py). Spaces
# without a depthwise conv (CBAM's hidden layers, the SSH's inner widths, the heads' inputs) gain nothing from
# it and are pruned channel by channel, so every layer group's rate moves the network across its whole range.
DEPTHWISE_CHANNEL_ALIGN = 16


def _conv_bn(prefix: str) -> list[str]:
    return [f"{prefix}.conv.weight"] + [f"{prefix}.bn.{k}" for k in ("weight", "bias", "running_mean", "running_var")]


def _bn(prefix: str) -> list[str]:
    return [f"{prefix}.{k}" for k in ("weight", "bias", "running_mean", "running_var")]


def _set_block_width(index: int) -> Callable[[DetectorConfig, int], None]:
    def apply(config: DetectorConfig, width: int) -> None:
        stride = config.backbone.blocks[index][1]
        config.backbone.blocks[index] = (width, stride)

    return apply


def _set_stem(config: DetectorConfig, width: int) -> None:
    config.backbone.stem_channels = width


def _set_hidden(which: str, level: int) -> Callable[[DetectorConfig, int], None]:
    def apply(config: DetectorConfig, width: int) -> None:
        getattr(config, which).hidden_channels[level] = width

    return apply


def _set_neck(config: DetectorConfig, width: int) -> None:
    config.neck.channels = width


def _set_ssh(level: int, attr: str) -> Callable[[DetectorConfig, int], None]:
    def apply(config: DetectorConfig, width: int) -> None:
        setattr(config.context.levels[level], attr, width)

    return apply


def _backbone_spaces(config: DetectorConfig) -> list[ChannelSpace]:
    bb = config.backbone
    first_tap, last_tap = bb.taps[0], bb.taps[-1]
    spaces = []
    # the stem feeds block 0; block i feeds block i + 1 and, if it is a tap, the level's CBAM and neck input
    producers = [("stem", "backbone.stem", bb.stem_channels, _set_stem, -1)]
    producers += [
        (f"block{i}", f"backbone.blocks.{i}.pw", w, _set_block_width(i), i) for i, (w, _) in enumerate(bb.blocks)
    ]
    for name, prefix, width, setter, index in producers:
        if index > last_tap:
            break
        produced = _conv_bn(prefix)
        consumers = []
        cbam = []
        nxt = index + 1
        if nxt <= last_tap:
            produced += [f"backbone.blocks.{nxt}.dw.conv.weight", *_bn(f"backbone.blocks.{nxt}.dw.bn")]
            consumers.append(Consumer(f"backbone.blocks.{nxt}.pw.conv.weight"))
        if index in bb.taps:
            level = bb.taps.index(index)
            if config.attention_in is not None:
                consumers += [
                    Consumer(f"attention_in.{level}.channel.fc1.weight", dim=1),
                    Consumer(f"attention_in.{level}.channel.fc2.weight", dim=0),
                ]
                cbam.append(f"attention_in.{level}")
            neck_in = "project" if config.neck.kind == "bifpn" else "lateral"
            consumers.append(Consumer(f"neck.{neck_in}.{level}.conv.weight"))
        group = "backbone_early" if index <= first_tap else "backbone_late"
        spaces.append(
            ChannelSpace(
                name, group, width, [f"{prefix}.conv.weight"], produced, consumers, cbam, 1, setter,
                align=DEPTHWISE_CHANNEL_ALIGN,
            )
        )  # fmt: skip
    return spaces


def _attention_spaces(config: DetectorConfig) -> list[ChannelSpace]:
    spaces = []
    for which in ("attention_in", "attention_out"):
        attention = getattr(config, which)
        if attention is None:
            continue
        for level, hidden in enumerate(attention.hidden_channels):
            prefix = f"{which}.{level}.channel"
            spaces.append(
                ChannelSpace(
                    f"{which}{level}_hidden",
                    "cbam",
                    hidden,
                    [f"{prefix}.fc1.weight"],
                    [f"{prefix}.fc1.weight"],
                    [Consumer(f"{prefix}.fc2.weight", dim=1)],
                    set_width=_set_hidden(which, level),
                )
            )
    return spaces


def _neck_space(config: DetectorConfig) -> ChannelSpace:
    neck, levels, groups = config.neck, len(config.context.levels), config.context.groups
    filters, produced, consumers, cbam = [], [], [], []
    if neck.kind == "bifpn":
        for level in range(levels):
            filters.append(f"neck.project.{level}.conv.weight")
            produced += _conv_bn(f"neck.project.{level}")
        for cell in range(neck.repeats):
            for node in ("td4", "out3", "out4", "out5"):
                prefix = f"neck.cells.{cell}.{node}.conv"
                if neck.separable:
                    filters.append(f"{prefix}.pointwise.weight")
                    produced += [f"{prefix}.pointwise.weight", f"{prefix}.depthwise.weight", *_bn(f"{prefix}.bn")]
                    consumers.append(Consumer(f"{prefix}.pointwise.weight"))
                else:
                    filters.append(f"{prefix}.conv.weight")
                    produced += _conv_bn(prefix)
                    consumers.append(Consumer(f"{prefix}.conv.weight"))
    else:
        for level in range(levels):
            filters.append(f"neck.lateral.{level}.conv.weight")
            produced += _conv_bn(f"neck.lateral.{level}")
        for level in range(levels - 1):
            filters.append(f"neck.merge.{level}.conv.weight")
            produced += _conv_bn(f"neck.merge.{level}")
            consumers.append(Consumer(f"neck.merge.{level}.conv.weight"))
    for level in range(levels):
        if config.attention_out is not None:
            consumers += [
                Consumer(f"attention_out.{level}.channel.fc1.weight", dim=1),
                Consumer(f"attention_out.{level}.channel.fc2.weight", dim=0),
            ]
            cbam.append(f"attention_out.{level}")
        for branch in ("branch3x3", "branch5x5_a"):
            consumers.append(Consumer(f"context.{level}.{branch}.conv.weight", groups=groups))
    group = "bifpn" if neck.kind == "bifpn" else "fpn"
    align = DEPTHWISE_CHANNEL_ALIGN if neck.kind == "bifpn" and neck.separable else 1
    return ChannelSpace("neck", group, neck.channels, filters, produced, consumers, cbam, groups, _set_neck, align)


def _ssh_space(
    level: int, groups: int, name: str, group: str, width: int, branch: str, consumers: list
) -> ChannelSpace:
    prefix = f"context.{level}.{branch}"
    return ChannelSpace(
        f"ssh{level}_{name}", group, width, [f"{prefix}.conv.weight"], _conv_bn(prefix), consumers, [], groups,
        _set_ssh(level, name),
    )  # fmt: skip


def _context_spaces(config: DetectorConfig) -> list[ChannelSpace]:
    """Per level: the SSH's inner widths (group ``ssh``) and its three outputs, the heads' input (``heads``)."""
    g = config.context.groups
    spaces = []
    for level, w in enumerate(config.context.levels):
        p = f"context.{level}"
        heads = [f"heads.{level}.{k}.weight" for k in ("cls", "box", "landmarks")]
        mid_readers = [
            Consumer(f"{p}.branch5x5_b.conv.weight", groups=g),
            Consumer(f"{p}.branch7x7_b.conv.weight", groups=g),
        ]
        mid7x7_readers = [Consumer(f"{p}.branch7x7_c.conv.weight", groups=g)]
        spaces += [
            _ssh_space(level, g, "mid", "ssh", w.mid, "branch5x5_a", mid_readers),
            _ssh_space(level, g, "mid7x7", "ssh", w.mid7x7, "branch7x7_b", mid7x7_readers),
            _ssh_space(level, g, "out3x3", "heads", w.out3x3, "branch3x3", [Consumer(k, offset=0) for k in heads]),
            _ssh_space(
                level, g, "out5x5", "heads", w.out5x5, "branch5x5_b", [Consumer(k, offset=w.out3x3) for k in heads]
            ),
            _ssh_space(
                level, g, "out7x7", "heads", w.out7x7, "branch7x7_c",
                [Consumer(k, offset=w.out3x3 + w.out5x5) for k in heads],
            ),
        ]  # fmt: skip
    return spaces


def channel_spaces(net: DetectorNet | DetectorConfig) -> list[ChannelSpace]:
    """Every prunable channel space of a detector, in forward order."""
    config = net.config if isinstance(net, DetectorNet) else net
    return [*_backbone_spaces(config), *_attention_spaces(config), _neck_space(config), *_context_spaces(config)]

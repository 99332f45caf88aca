"""The inference graph we export: the same function as the trained network, in shapes onnxruntime runs fastest.

Every rewrite here is exact (up to fp32 rounding; ``export_onnx`` checks parity against the trained network)
and aimed at onnxruntime's CPU kernels, whose fast path is the blocked NCHWc layout: channels in blocks of
``NCHWC_BLOCK`` (16 with AVX-512, 8 with AVX2). A conv leaves that path, and pays a layout change on each
side, when its widths do not fit the blocks. Measured on the deployed Nano-B (640², 2-core AVX-512 EPYC), see
``benchmarks/deploy_ablation.py``:

* ``pad_stem``: the 8-channel stem and block-0 depthwise at 320² get zero channels up to one block. The
  stem costs the same (the runtime already pads its 8 filters to 16), but block 0 then runs in NCHWc instead
  of the plain depthwise kernel plus two layout changes.
* ``dense_context``: a grouped SSH conv whose per-group widths do not fill whole blocks runs as two narrow
  convs outside NCHWc; as one dense conv with block-diagonal weights it does twice the multiply-adds in less
  time. Convs whose groups fit the blocks stay grouped.
* the channel shuffle before the heads is folded into their input columns (a fixed permutation).
* ``FusedHeads``: the class, box and landmark 1x1 convs of a level become one conv (``A * 16`` outputs, a
  whole number of blocks) and one reshape: one read of the level's features instead of three.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from featherface.models.detector_net import DetectorNet, fold_shuffle_into_heads

NCHWC_BLOCK = 16  # AVX-512's block; a width that fills 16-blocks fills AVX2's 8-blocks too
HEAD_OUTPUTS = (4, 2, 10)  # per anchor: box deltas, class logits, landmark deltas


def _fits_blocks(conv: nn.Conv2d) -> bool:
    """Whether onnxruntime runs this grouped conv in NCHWc (its rule: every group's widths are whole blocks)."""
    per_group_in = conv.in_channels // conv.groups
    per_group_out = conv.out_channels // conv.groups
    return per_group_in % NCHWC_BLOCK == 0 and per_group_out % NCHWC_BLOCK == 0


def _dense_copy(conv: nn.Conv2d) -> nn.Conv2d:
    """A dense conv computing the grouped ``conv``: block-diagonal weights, zeros across groups."""
    dense = nn.Conv2d(
        conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, bias=conv.bias is not None
    )
    weight = torch.zeros_like(dense.weight)
    rows, cols = conv.out_channels // conv.groups, conv.in_channels // conv.groups
    for g in range(conv.groups):
        weight[g * rows : (g + 1) * rows, g * cols : (g + 1) * cols] = conv.weight[g * rows : (g + 1) * rows]
    dense.weight.copy_(weight)
    if conv.bias is not None:
        dense.bias.copy_(conv.bias)
    return dense


@torch.no_grad()
def dense_context(net: DetectorNet) -> None:
    """Replace, in place, the SSH's grouped convs that do not fit NCHWc blocks by dense block-diagonal ones."""
    for ssh in net.context:
        for name, module in list(ssh.named_modules()):
            if isinstance(module, nn.Conv2d) and module.groups > 1 and not _fits_blocks(module):
                parent = ssh.get_submodule(name.rsplit(".", 1)[0])
                setattr(parent, name.rsplit(".", 1)[1], _dense_copy(module))


def _grow_outputs(conv: nn.Conv2d, width: int) -> nn.Conv2d:
    depthwise = conv.groups == conv.in_channels == conv.out_channels and conv.groups > 1
    grown = nn.Conv2d(
        width if depthwise else conv.in_channels,
        width,
        conv.kernel_size,
        conv.stride,
        conv.padding,
        groups=width if depthwise else conv.groups,
        bias=conv.bias is not None,
    )
    grown.weight.zero_()
    grown.weight[: conv.out_channels] = conv.weight
    if conv.bias is not None:
        grown.bias.zero_()
        grown.bias[: conv.out_channels] = conv.bias
    return grown


def _grow_batchnorm(bn: nn.BatchNorm2d, width: int) -> nn.BatchNorm2d:
    """Extra channels normalise to exactly 0 (scale 0, shift 0), so any activation keeps them at 0."""
    grown = nn.BatchNorm2d(width, eps=bn.eps).eval()
    grown.weight.zero_()
    grown.bias.zero_()
    for key in ("weight", "bias", "running_mean", "running_var"):
        getattr(grown, key)[: bn.num_features] = getattr(bn, key)
    return grown


@torch.no_grad()
def pad_stem(net: DetectorNet) -> None:
    """Give the stem and block 0's depthwise conv zero channels up to one NCHWc block, in place."""
    backbone = net.backbone
    width = backbone.stem.conv.out_channels
    if width >= NCHWC_BLOCK or not backbone.blocks:
        return
    block = backbone.blocks[0]
    backbone.stem.conv = _grow_outputs(backbone.stem.conv, NCHWC_BLOCK)
    backbone.stem.bn = _grow_batchnorm(backbone.stem.bn, NCHWC_BLOCK)
    block.dw.conv = _grow_outputs(block.dw.conv, NCHWC_BLOCK)
    block.dw.bn = _grow_batchnorm(block.dw.bn, NCHWC_BLOCK)
    pointwise = block.pw.conv
    wider = nn.Conv2d(NCHWC_BLOCK, pointwise.out_channels, 1, bias=pointwise.bias is not None)
    wider.weight.zero_()
    wider.weight[:, :width] = pointwise.weight
    if pointwise.bias is not None:
        wider.bias.copy_(pointwise.bias)
    block.pw.conv = wider


class FusedHeads(nn.Module):
    """One 1x1 conv per level whose outputs are, for each anchor, box (4), class (2) and landmarks (10)."""

    def __init__(self, net: DetectorNet) -> None:
        super().__init__()
        self.convs = nn.ModuleList(self._fuse(head) for head in net.heads)

    @staticmethod
    @torch.no_grad()
    def _fuse(head: nn.Module) -> nn.Conv2d:
        parts = (head.box, head.cls, head.landmarks)
        anchors, channels = head.num_anchors, head.box.in_channels
        fused = nn.Conv2d(channels, anchors * sum(HEAD_OUTPUTS), 1)
        fused.weight.copy_(
            torch.cat([p.weight.reshape(anchors, -1, channels) for p in parts], 1).reshape(-1, channels, 1, 1)
        )
        fused.bias.copy_(torch.cat([p.bias.reshape(anchors, -1) for p in parts], 1).reshape(-1))
        return fused

    def forward(self, features: list[Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        per_prior = sum(HEAD_OUTPUTS)
        flat = [
            conv(f).permute(0, 2, 3, 1).reshape(f.shape[0], -1, per_prior)
            for conv, f in zip(self.convs, features, strict=True)
        ]
        joined = torch.cat(flat, dim=1)
        box, cls = HEAD_OUTPUTS[0], HEAD_OUTPUTS[0] + HEAD_OUTPUTS[1]
        return joined[..., :box], joined[..., box:cls], joined[..., cls:]


class DeploymentGraph(nn.Module):
    """``net``'s function with the rewrites above (each can be switched off, for ablations); what ``export_onnx``
    traces."""

    def __init__(
        self, net: DetectorNet, pad_stem_channels: bool = True, dense_ssh: bool = True, fuse_heads: bool = True
    ) -> None:
        super().__init__()
        body = fold_shuffle_into_heads(net).eval().cpu()
        if pad_stem_channels:
            pad_stem(body)
        if dense_ssh:
            dense_context(body)
        self.heads: nn.Module | None = FusedHeads(body) if fuse_heads else None
        self.body = body

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        if self.heads is None:
            return self.body(images)
        return self.heads(self.body.head_inputs(images))

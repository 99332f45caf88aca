"""The shipped weight files and the mapping from their published tensor names onto our modules.

Kept apart from the model code (as timm does): a model never loads weights inside ``__init__``. torch is imported
by the loaders only: the zoo that names them is listed without it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from featherface.weights import SHIPPED, verified_path
from featherface.weights import shipped_path as weights_path

if TYPE_CHECKING:
    import torch

RETINAFACE_MNET025_WIDERFACE = "retinaface_mnet025_widerface.safetensors"
MOBILENET_025_IMAGENET = "mobilenetv1_025_imagenet.safetensors"

# Pytorch_Retinaface's MobileNetV1 is three nn.Sequential stages; ours is one flat list of blocks.
# stage1.0 is the stem; stage1.1-5 -> blocks 0-4, stage2.0-5 -> blocks 5-10, stage3.0-1 -> blocks 11-12.
_STAGE_BLOCK_OFFSET = {1: -1, 2: 5, 3: 11}
# Inside conv_dw: 0 depthwise conv, 1 its BN, 3 pointwise conv, 4 its BN (2 and 5 are activations).
_DW_PART = {"0": "dw.conv", "1": "dw.bn", "3": "pw.conv", "4": "pw.bn"}
_CONV_BN_PART = {"0": "conv", "1": "bn"}
_SSH_BRANCH = {
    "conv3X3": "branch3x3",
    "conv5X5_1": "branch5x5_a",
    "conv5X5_2": "branch5x5_b",
    "conv7X7_2": "branch7x7_b",
    "conv7x7_3": "branch7x7_c",
}
_HEAD = {"ClassHead": "cls", "BboxHead": "box", "LandmarkHead": "landmarks"}


def _rename_backbone(key: str) -> str | None:
    m = re.fullmatch(r"stage1\.0\.([01])\.(.+)", key)
    if m:
        return f"backbone.stem.{_CONV_BN_PART[m[1]]}.{m[2]}"
    m = re.fullmatch(r"stage(\d)\.(\d+)\.([0134])\.(.+)", key)
    if m:
        block = int(m[2]) + _STAGE_BLOCK_OFFSET[int(m[1])]
        return f"backbone.blocks.{block}.{_DW_PART[m[3]]}.{m[4]}"
    return None


def _rename_retinaface(key: str) -> str | None:
    if key.startswith("body."):
        return _rename_backbone(key.removeprefix("body."))
    m = re.fullmatch(r"fpn\.output(\d)\.([01])\.(.+)", key)
    if m:
        return f"neck.lateral.{int(m[1]) - 1}.{_CONV_BN_PART[m[2]]}.{m[3]}"
    m = re.fullmatch(r"fpn\.merge(\d)\.([01])\.(.+)", key)
    if m:
        return f"neck.merge.{int(m[1]) - 1}.{_CONV_BN_PART[m[2]]}.{m[3]}"
    m = re.fullmatch(r"ssh(\d)\.(\w+?)\.([01])\.(.+)", key)
    if m and m[2] in _SSH_BRANCH:
        return f"context.{int(m[1]) - 1}.{_SSH_BRANCH[m[2]]}.{_CONV_BN_PART[m[3]]}.{m[4]}"
    m = re.fullmatch(r"(ClassHead|BboxHead|LandmarkHead)\.(\d)\.conv1x1\.(.+)", key)
    if m:
        return f"heads.{m[2]}.{_HEAD[m[1]]}.{m[3]}"
    return None


def convert_pytorch_retinaface(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A Pytorch_Retinaface mobilenet0.25 state dict (``module.`` prefix allowed) in our names.

    Raises ``ValueError`` on a key it does not know, so a wrong file is never half-loaded.
    """
    out = {}
    for key, value in state.items():
        name = _rename_retinaface(key.removeprefix("module."))
        if name is None:
            raise ValueError(f"not a Pytorch_Retinaface mobilenet0.25 tensor: {key!r}")
        out[name] = value
    return out


def convert_mobilenet_imagenet(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The ImageNet MobileNetV1-0.25 weights as ``backbone.*`` entries (the classifier ``fc`` is dropped)."""
    out = {}
    for key, value in state.items():
        key = key.removeprefix("module.")
        if key.startswith("fc."):
            continue
        name = _rename_backbone(key)
        if name is None:
            raise ValueError(f"not a MobileNetV1 tensor: {key!r}")
        out[name] = value
    return out


def load_retinaface_mnet025_widerface() -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    shipped = SHIPPED["retinaface-mnet025"]
    return convert_pytorch_retinaface(load_file(verified_path(shipped.checkpoint, shipped.checkpoint_sha256)))


def load_mobilenet_imagenet() -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return convert_mobilenet_imagenet(load_file(weights_path(MOBILENET_025_IMAGENET)))

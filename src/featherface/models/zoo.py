"""Model zoo: names -> architecture configs and the weights each starts from."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from featherface.models.config import (
    DetectorConfig,
    featherface_v1_config,
    nano_b_config,
    retinaface_mnet025_config,
)
from featherface.models.detector_net import DetectorNet
from featherface.models.pretrained import load_mobilenet_imagenet, load_retinaface_mnet025_widerface


@dataclass(frozen=True)
class ZooEntry:
    config: Callable[[], DetectorConfig]
    description: str
    # Full detector weights (the model is ready to detect) ...
    weights: Callable[[], dict[str, torch.Tensor]] | None = None
    # ... or only the backbone's ImageNet initialisation (the model must be trained).
    backbone_weights: Callable[[], dict[str, torch.Tensor]] | None = None


ZOO: dict[str, ZooEntry] = {
    "retinaface-mnet025": ZooEntry(
        retinaface_mnet025_config,
        "RetinaFace MobileNetV1-0.25 trained on WIDER FACE (Pytorch_Retinaface weights)",
        weights=load_retinaface_mnet025_widerface,
    ),
    "featherface-v1": ZooEntry(
        featherface_v1_config,
        "FeatherFace V1 teacher: CBAM + BiFPN + SSH + shuffle, ImageNet backbone (untrained heads)",
        backbone_weights=load_mobilenet_imagenet,
    ),
    "nano-b": ZooEntry(
        nano_b_config,
        "FeatherFace Nano-B student before pruning, ImageNet backbone (untrained heads)",
        backbone_weights=load_mobilenet_imagenet,
    ),
}


def zoo_names() -> list[str]:
    return list(ZOO)


def create_model(name: str, pretrained: bool = True) -> DetectorNet:
    """Build a zoo model; with ``pretrained`` load its shipped weights (full detector or ImageNet backbone)."""
    if name not in ZOO:
        raise ValueError(f"unknown model {name!r}; the zoo has {', '.join(ZOO)}")
    entry = ZOO[name]
    net = DetectorNet(entry.config())
    if pretrained and entry.weights is not None:
        net.load_state_dict(entry.weights(), strict=True)
    elif pretrained and entry.backbone_weights is not None:
        missing, unexpected = net.load_state_dict(entry.backbone_weights(), strict=False)
        not_backbone = [k for k in missing if k.startswith("backbone.")]
        if unexpected or not_backbone:
            raise ValueError(f"ImageNet backbone does not fit {name}: {unexpected[:3] or not_backbone[:3]}")
    return net

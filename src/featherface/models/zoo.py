"""Model zoo: names -> architecture configs and the weights each starts from.

Importing it needs no torch (``featherface info`` lists the zoo in the inference install); building a network does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from featherface.models.checkpoint import load_checkpoint, read_checkpoint_config
from featherface.models.config import (
    DetectorConfig,
    featherface_v1_config,
    nano_b_config,
    retinaface_mnet025_config,
)
from featherface.models.pretrained import load_mobilenet_imagenet, load_retinaface_mnet025_widerface
from featherface.weights import SHIPPED, verified_path

if TYPE_CHECKING:
    import torch

    from featherface.models.detector_net import DetectorNet


@dataclass(frozen=True)
class ZooEntry:
    config: Callable[[], DetectorConfig]
    description: str
    # Full detector weights (the model is ready to detect) ...
    weights: Callable[[], dict[str, torch.Tensor]] | None = None
    # ... or only the backbone's ImageNet initialisation (the model must be trained) ...
    backbone_weights: Callable[[], dict[str, torch.Tensor]] | None = None
    # ... or a checkpoint of ours shipped in featherface/weights (its architecture, e.g. pruned widths, inside).
    shipped: str | None = None

    @property
    def trained(self) -> bool:
        """Whether the model detects faces as built (False: ImageNet backbone and untrained heads)."""
        return self.weights is not None or self.shipped is not None


class UntrainedModelError(ValueError):
    """A zoo model whose heads were never trained was asked to detect faces."""


def _shipped_config(name: str) -> Callable[[], DetectorConfig]:
    def config() -> DetectorConfig:
        shipped = SHIPPED[name]
        return read_checkpoint_config(verified_path(shipped.checkpoint, shipped.checkpoint_sha256))[0]

    return config


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
    "nano-b-pretrained": ZooEntry(
        _shipped_config("nano-b-pretrained"),
        "FeatherFace Nano-B deployed (B-FPGM-pruned), distilled from retinaface-mnet025 on 3,689 real photos; "
        "runs from its ONNX without torch (model card: featherface/weights/README.md)",
        shipped="nano-b-pretrained",
    ),
    "nano-b-distilled": ZooEntry(
        _shipped_config("nano-b-distilled"),
        "FeatherFace Nano-B unpruned student of nano-b-pretrained (phase 1 output): to prune or fine-tune further",
        shipped="nano-b-distilled",
    ),
}


def zoo_names() -> list[str]:
    return list(ZOO)


def create_model(name: str, pretrained: bool = True, seed: int | None = None) -> DetectorNet:
    """Build a zoo model; with ``pretrained`` load its shipped weights (full detector or ImageNet backbone).

    ``seed``: the layers that start random (heads, necks: all of an untrained model but its ImageNet backbone) are
    drawn from torch's generator seeded with it, so the model is the same whatever was drawn before, and torch's
    global generator is left as it was; None draws them from the global generator."""
    import torch

    from featherface.models.detector_net import DetectorNet

    if name not in ZOO:
        raise ValueError(f"unknown model {name!r}; the zoo has {', '.join(ZOO)}")
    entry = ZOO[name]
    if entry.shipped is not None and pretrained:
        return _load_shipped(entry.shipped)
    if seed is None:
        net = DetectorNet(entry.config())
    else:
        with torch.random.fork_rng(devices=[]):  # CPU only: the layers are made on the CPU
            torch.manual_seed(seed)
            net = DetectorNet(entry.config())
    if entry.shipped is not None:
        return net
    if pretrained and entry.weights is not None:
        net.load_state_dict(entry.weights(), strict=True)
    elif pretrained and entry.backbone_weights is not None:
        missing, unexpected = net.load_state_dict(entry.backbone_weights(), strict=False)
        not_backbone = [k for k in missing if k.startswith("backbone.")]
        if unexpected or not_backbone:
            raise ValueError(f"ImageNet backbone does not fit {name}: {unexpected[:3] or not_backbone[:3]}")
    return net


def _load_shipped(name: str) -> DetectorNet:
    shipped = SHIPPED[name]
    net, _ = load_checkpoint(verified_path(shipped.checkpoint, shipped.checkpoint_sha256))
    return net


def require_trained(name: str) -> None:
    """Refuse to detect with a zoo model whose heads were never trained: its boxes would be noise."""
    if name in ZOO and not ZOO[name].trained:
        trained = ", ".join(n for n, e in ZOO.items() if e.trained)
        raise UntrainedModelError(
            f"{name} has an ImageNet backbone and untrained heads: it finds no faces until trained "
            f"(featherface train/distill/pipeline). Trained models: {trained}; or allow it explicitly "
            "(--allow-untrained, Detector.load(..., allow_untrained=True))"
        )


def start_from_teacher_backbone(student: DetectorNet, teacher: DetectorNet) -> int:
    """Copy the teacher's trained backbone into the student (SPEC section 4: an initialisation; the student's
    architecture is unchanged). Nano-B and RetinaFace-mnet0.25 share MobileNetV1-0.25 layer for layer, so the
    student starts from WIDER-trained face features instead of ImageNet's. Every backbone tensor (weights and BN
    statistics) must exist in both with the same shape; returns how many were copied."""
    import torch

    teacher_state = {k: v for k, v in teacher.state_dict().items() if k.startswith("backbone.")}
    student_state = {k: v for k, v in student.state_dict().items() if k.startswith("backbone.")}
    misfits = sorted(
        k for k in student_state.keys() | teacher_state.keys()
        if k not in teacher_state or k not in student_state or teacher_state[k].shape != student_state[k].shape
    )  # fmt: skip
    if misfits or not student_state:
        raise ValueError(
            f"the teacher's backbone does not fit the student's ({len(misfits)} tensor(s) differ, first "
            f"{misfits[:3]}); start the student from its own weights (student_init: own) instead"
        )
    with torch.no_grad():
        for name, tensor in student_state.items():
            tensor.copy_(teacher_state[name])
    return len(student_state)

"""The trained detectors shipped in this folder: files and checksums (provenance and figures: README.md here).

torch-free on purpose: ``Detector.load("retinaface-mnet025")`` runs the shipped ONNX through onnxruntime without
importing torch, and reads which file to open from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from featherface.fileio import sha256_of


@dataclass(frozen=True)
class ShippedModel:
    """A trained detector in this folder: its weights (a checkpoint of ours, ``.safetensors`` + its ``.json``, or
    published tensors the zoo converts at load: ``retinaface-mnet025``) and optionally the same network exported to
    ONNX by ``featherface export`` (parity-checked against torch when it was shipped)."""

    name: str  # the zoo name
    checkpoint: str
    checkpoint_sha256: str
    onnx: str | None = None
    onnx_sha256: str | None = None


SHIPPED: dict[str, ShippedModel] = {
    model.name: model
    for model in (
        ShippedModel(
            "retinaface-mnet025",
            "retinaface_mnet025_widerface.safetensors",
            "b5aff35b93b8b94a74aee73cd82d2c599ef71d437eb7195109b373d74886686d",
            "retinaface_mnet025_widerface.onnx",
            "b9f3bcfe3ce5b30f7cc610ef5af879da4c631ce63d9e278165baaf46621a2b40",
        ),
        ShippedModel(
            "nano-b-pretrained",
            "nano_b_pretrained.safetensors",
            "f1b56bf16b2ed8ab14274409bf7fd823ba49c8cea16b7bcfb6f54b51787739c2",
            "nano_b_pretrained.onnx",
            "d67f192362bde7c7682e9c606595817dd86beeaa33d72fa7e93bdbeefc51957c",
        ),
        ShippedModel(
            "nano-b-distilled",
            "nano_b_distilled.safetensors",
            "bd7d5dfd86c167143fb9c8d9bc249de04e6943827d70da642a259423b7c8c8d8",
            "nano_b_distilled.onnx",
            "27bd025b0efc25ff1a310b0e705e5eb65528360081008f04137da9a12ac5d1a1",
        ),
    )
}

# What `featherface detect` and `Detector.load()` run when no model is named. It stays the WIDER-trained
# RetinaFace until the pretrained Nano-B meets issue 21's figures (weights/README.md: agreement, unmasked AP,
# recall at 0.5, latency); then "nano-b-pretrained". Both run from their ONNX, without torch, on the CPU.
DEFAULT_MODEL = "retinaface-mnet025"


class ShippedWeightsError(OSError):
    """A shipped file is missing or differs from the checksum recorded for it (a broken install)."""


def shipped_path(filename: str) -> Path:
    """Path of a file shipped in this folder."""
    return Path(str(resources.files(__name__).joinpath(filename)))


def verified_path(filename: str, sha256: str) -> Path:
    """The shipped file, after checking it is there and is the file recorded here (not a truncated download or
    a file swapped in place)."""
    path = shipped_path(filename)
    if not path.is_file():
        raise ShippedWeightsError(f"{path}: shipped weights missing; reinstall featherface")
    if sha256_of(path) != sha256:
        raise ShippedWeightsError(f"{path}: sha256 differs from the one recorded in featherface.weights")
    return path

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
            "2708a1f9a72f2f04e0f08e590ba6fcfb45c25fd4231104896cc771285d1875f1",
            "nano_b_pretrained.onnx",
            "7b5991064956a8e1a7df83dee1ad74def0e98e2f3fcccfefd02a6b402d90b1f3",
        ),
        ShippedModel(
            "nano-b-distilled",
            "nano_b_distilled.safetensors",
            "e6891a6ee3bc249d6781b092b60c723723e1b031468a5c64e284cc5c9c1dbc1d",
            "nano_b_distilled.onnx",
            "86a3ac50c606d4b730336c9cc4eb59b50e638bf46cd181bd55e6bdfb7c781a64",
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

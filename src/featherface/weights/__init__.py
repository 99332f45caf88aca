"""The trained detectors shipped in this folder: files and checksums (provenance and figures: README.md here).

torch-free on purpose: ``Detector.load("nano-b-pretrained")`` runs the shipped ONNX through onnxruntime without
importing torch, and reads which file to open from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from featherface.fileio import sha256_of


@dataclass(frozen=True)
class ShippedModel:
    """A trained detector in this folder: a checkpoint (``.safetensors`` + its ``.json``) and optionally the same
    network exported to ONNX (parity-checked against the checkpoint when it was shipped)."""

    name: str  # the zoo name
    checkpoint: str
    checkpoint_sha256: str
    onnx: str | None = None
    onnx_sha256: str | None = None


SHIPPED: dict[str, ShippedModel] = {
    model.name: model
    for model in (
        ShippedModel(
            "nano-b-pretrained",
            "nano_b_pretrained.safetensors",
            "526e88652b44569108327faed333a2056a777d677c6b8a1d73d4a4b7282227a6",
            "nano_b_pretrained.onnx",
            "baeca09bfbc5ba6c6cda486994d671f10fd4177d9afb6e973a81ded9d03a07b8",
        ),
        ShippedModel(
            "nano-b-distilled",
            "nano_b_distilled.safetensors",
            "b392ed33d28b34e7715eb51e878f4cb0d6fe701856582784dd7522396c09faba",
        ),
    )
}

# What `featherface detect` and `Detector.load()` run when no model is named. It stays the WIDER-trained
# RetinaFace until the pretrained Nano-B reaches 0.9x its facemask AP (today 0.39x: weights/README.md); then
# "nano-b-pretrained", which runs from its ONNX without torch.
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

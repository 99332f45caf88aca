"""Checkpoints: ``NAME.safetensors`` (tensors only) + ``NAME.json`` (architecture and metadata).

Loading never executes code. Files are written atomically (temp file + rename), and the JSON records the
weights' sha256 so a weights/config pair from two different saves is detected instead of half-loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from featherface.models.config import DetectorConfig
from featherface.models.detector_net import DetectorNet

CHECKPOINT_FORMAT = "featherface-checkpoint"
CHECKPOINT_VERSION = 1
# A run directory holds several checkpoints; the first of these that exists is "the" model of the run.
RUN_DIR_PREFERENCE = ("deployed.safetensors", "best.safetensors", "last.safetensors")


class CheckpointError(ValueError):
    """A checkpoint that cannot be read: the message names the file and what is wrong."""


def config_path_for(weights: Path) -> Path:
    return weights.with_suffix(".json")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader sees the old file or the new one, never a torn one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_checkpoint(net: DetectorNet, path: str | Path, metadata: dict[str, Any] | None = None) -> Path:
    """Save ``net`` as ``path`` (``.safetensors``) plus its ``.json`` config; returns the weights path."""
    path = Path(path)
    if path.suffix != ".safetensors":
        raise CheckpointError(f"{path}: checkpoint files end in .safetensors")
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        save_file(state, tmp)
        sha = _sha256(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    doc = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "architecture": net.config.to_dict(),
        "weights_sha256": sha,
        "metadata": metadata or {},
    }
    atomic_write_bytes(config_path_for(path), json.dumps(doc, indent=1).encode())
    return path


def read_checkpoint_config(path: str | Path) -> tuple[DetectorConfig, dict[str, Any]]:
    """The architecture and metadata of a checkpoint, from its JSON alone."""
    path = Path(path)
    cfg_path = config_path_for(path)
    if not cfg_path.is_file():
        raise CheckpointError(f"{path}: no architecture file {cfg_path.name} beside it")
    try:
        doc = json.loads(cfg_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{cfg_path}: not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{cfg_path}: not a featherface checkpoint config (format != {CHECKPOINT_FORMAT!r})")
    try:
        config = DetectorConfig.from_dict(doc["architecture"])
    except (KeyError, ValueError) as exc:
        raise CheckpointError(f"{cfg_path}: {exc}") from None
    return config, doc


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> tuple[DetectorNet, dict[str, Any]]:
    """Build the network its JSON describes and load its tensors strictly; returns ``(net, metadata)``."""
    path = resolve_checkpoint(path)
    config, doc = read_checkpoint_config(path)
    expected = doc.get("weights_sha256")
    if expected and _sha256(path) != expected:
        raise CheckpointError(f"{path}: weights do not match {config_path_for(path).name} (sha256 differs)")
    try:
        state = load_file(path, device=str(map_location))
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{path}: unreadable safetensors file ({exc})") from None
    net = DetectorNet(config)
    try:
        missing, unexpected = net.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches
        raise CheckpointError(
            f"{path}: tensors do not fit the architecture ({str(exc).splitlines()[-1].strip()})"
        ) from None
    if missing or unexpected:
        raise CheckpointError(
            f"{path}: tensors do not fit the architecture (missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    return net.to(map_location), doc.get("metadata", {})


def resolve_checkpoint(path: str | Path) -> Path:
    """A ``.safetensors`` file as given, or a run directory's deployed/best/last checkpoint."""
    path = Path(path)
    if path.is_dir():
        for name in RUN_DIR_PREFERENCE:
            if (path / name).is_file():
                return path / name
        raise CheckpointError(f"{path}: run directory holds none of {', '.join(RUN_DIR_PREFERENCE)}")
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    if path.suffix != ".safetensors":
        raise CheckpointError(f"{path}: expected a .safetensors checkpoint")
    return path


def load_model(spec: str | Path) -> DetectorNet:
    """A torch model from a zoo name (with its shipped weights), a ``.safetensors`` checkpoint or a run directory."""
    from featherface.models.zoo import ZOO, create_model

    if str(spec) in ZOO:
        return create_model(str(spec))
    if str(spec).endswith(".onnx"):
        raise CheckpointError(f"{spec}: an ONNX file runs in onnxruntime only; this needs a torch model")
    if not Path(spec).exists():
        raise CheckpointError(
            f"{spec}: no such model: give a zoo name ({', '.join(ZOO)}), a .safetensors checkpoint or a run directory"
        )
    net, _ = load_checkpoint(spec)
    return net

"""Checkpoints: ``NAME.safetensors`` (tensors, with the architecture embedded in its header) + ``NAME.json``
(the same architecture and metadata, readable by people and tools, with the weights' sha256).

Loading never executes code: safetensors holds plain tensors and strings. Files are written atomically (temp file +
rename). Weights without an embedded architecture (converted from elsewhere) are described by their JSON alone,
whose sha256 detects a pair from two different saves instead of half-loading it.

Checkpoint files only: which file a MODEL argument names (zoo name, run directory, ``.onnx``) is
:mod:`featherface.models.loader`'s business. torch is imported by the functions that build or read tensors, so
:func:`resolve_checkpoint` (which file of a run directory) runs in the inference install too.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from safetensors import SafetensorError, safe_open

from featherface.fileio import atomic_write_bytes, default_file_mode, sha256_of, temp_file_beside
from featherface.models.config import DetectorConfig

if TYPE_CHECKING:
    import torch

    from featherface.models.detector_net import DetectorNet

CHECKPOINT_FORMAT = "featherface-checkpoint"
CHECKPOINT_VERSION = 1
# safetensors header key under which the architecture JSON is embedded in the weights file itself
EMBEDDED_KEY = "featherface"
# A run directory holds several checkpoints; the first of these that exists is "the" model of the run.
RUN_DIR_PREFERENCE = ("deployed.safetensors", "best.safetensors", "last.safetensors")
# An architecture document (embedded or beside the weights) is about 2 KB; a larger one is refused unparsed.
MAX_ARCHITECTURE_BYTES = 1 << 20


class CheckpointError(ValueError):
    """A checkpoint that cannot be read: the message names the file and what is wrong."""


def config_path_for(weights: Path) -> Path:
    return weights.with_suffix(".json")


def save_checkpoint(net: DetectorNet, path: str | Path, metadata: dict[str, Any] | None = None) -> Path:
    """Save ``net`` as ``path`` (``.safetensors``) plus its ``.json`` config; returns the weights path.

    The architecture and metadata are also embedded in the safetensors header, so the weights file alone is
    complete and each save is one atomic rename: a process killed between the two renames leaves a readable
    checkpoint (the JSON beside it may then describe the previous save and is ignored for that file).
    """
    from safetensors.torch import save_file

    path = Path(path)
    if path.suffix != ".safetensors":
        raise CheckpointError(f"{path}: checkpoint files end in .safetensors")
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    doc = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "architecture": net.config.to_dict(),
        "metadata": metadata or {},
    }
    fd, tmp = temp_file_beside(path)
    os.close(fd)
    try:
        save_file(state, tmp, metadata={EMBEDDED_KEY: json.dumps(doc)})
        os.chmod(tmp, default_file_mode())  # safetensors writes a new file, private to its writer
        sha = sha256_of(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    atomic_write_bytes(config_path_for(path), json.dumps({**doc, "weights_sha256": sha}, indent=1).encode())
    return path


def _parse_doc(doc: Any, where: str) -> tuple[DetectorConfig, dict[str, Any]]:
    if not isinstance(doc, dict) or doc.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{where}: not a featherface checkpoint config (format != {CHECKPOINT_FORMAT!r})")
    try:
        return DetectorConfig.from_dict(doc["architecture"]), doc
    except (KeyError, ValueError) as exc:
        raise CheckpointError(f"{where}: {exc}") from None


def _embedded_doc(path: Path) -> dict[str, Any] | None:
    """The architecture document stored in the safetensors header, if the file has one."""
    try:
        with safe_open(str(path), "pt") as f:
            text = (f.metadata() or {}).get(EMBEDDED_KEY)
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{path}: unreadable safetensors file ({exc})") from None
    if text is None:
        return None
    if len(text) > MAX_ARCHITECTURE_BYTES:
        raise CheckpointError(
            f"{path}: embedded architecture of {len(text):,} bytes (at most {MAX_ARCHITECTURE_BYTES:,})"
        )
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise CheckpointError(f"{path}: corrupt embedded architecture") from None


def read_checkpoint_config(path: str | Path) -> tuple[DetectorConfig, dict[str, Any]]:
    """The architecture and metadata of a checkpoint: from the weights file's header when it carries them,
    else from the ``.json`` beside it (weights converted from elsewhere), checked against its sha256."""
    path = Path(path)
    embedded = _embedded_doc(path)
    if embedded is not None:
        return _parse_doc(embedded, str(path))
    cfg_path = config_path_for(path)
    if not cfg_path.is_file():
        raise CheckpointError(f"{path}: no architecture file {cfg_path.name} beside it")
    if cfg_path.stat().st_size > MAX_ARCHITECTURE_BYTES:
        raise CheckpointError(f"{cfg_path}: {cfg_path.stat().st_size:,} bytes (at most {MAX_ARCHITECTURE_BYTES:,})")
    try:
        doc = json.loads(cfg_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{cfg_path}: not valid JSON ({exc})") from None
    config, doc = _parse_doc(doc, str(cfg_path))
    expected = doc.get("weights_sha256")
    if expected and sha256_of(path) != expected:
        raise CheckpointError(f"{path}: weights do not match {cfg_path.name} (sha256 differs)")
    return config, doc


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> tuple[DetectorNet, dict[str, Any]]:
    """Build the network the checkpoint describes (a ``.safetensors`` file, or a run directory's
    :func:`resolve_checkpoint`) and load its tensors strictly; returns ``(net, metadata)``."""
    from safetensors.torch import load_file

    from featherface.models.detector_net import DetectorNet

    path = resolve_checkpoint(path)
    config, doc = read_checkpoint_config(path)
    check_tensor_shapes(path, config)
    try:
        state = load_file(path, device=str(map_location))
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{path}: unreadable safetensors file ({exc})") from None
    net = DetectorNet(config)
    net.load_state_dict(state)
    return net.to(map_location), doc.get("metadata", {})


def check_tensor_shapes(path: Path, config: DetectorConfig) -> None:
    """The tensors ``config`` declares (its network built on the meta device: shapes only, no memory) against
    those in the file's header (no tensor read), or :class:`CheckpointError`. After it, loading allocates what the
    file holds and no more: an architecture cannot ask for more weights than its file carries."""
    import torch

    from featherface.models.detector_net import DetectorNet

    with torch.device("meta"):
        declared = {name: tuple(t.shape) for name, t in DetectorNet(config).state_dict().items()}
    try:
        with safe_open(str(path), "pt") as f:
            stored = {name: tuple(f.get_slice(name).get_shape()) for name in f.keys()}  # noqa: SIM118 - not a dict
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{path}: unreadable safetensors file ({exc})") from None
    missing = [name for name in declared if name not in stored]
    unexpected = [name for name in stored if name not in declared]
    if missing or unexpected:
        raise CheckpointError(
            f"{path}: tensors do not fit the architecture (missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    for name, shape in declared.items():
        if stored[name] != shape:
            raise CheckpointError(
                f"{path}: tensors do not fit the architecture ({name}: {list(stored[name])} in the file, "
                f"{list(shape)} in the architecture)"
            )


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

"""Backends that turn a preprocessed batch into raw numpy outputs: a torch network or an ONNX file.

torch is imported only by the torch backend, so running an ONNX file needs onnxruntime and numpy alone.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from featherface.models.config import DetectorConfig

if TYPE_CHECKING:
    import torch

    from featherface.models.detector_net import DetectorNet

# torch's thread count is per process: runners with their own count switch it under this lock (see TorchRunner)
_TORCH_THREADS_LOCK = threading.Lock()
ONNX_INPUT = "images"
ONNX_OUTPUTS = ("box_deltas", "class_logits", "landmark_deltas")
# ONNX metadata key holding the architecture JSON (the anchors come from there).
ONNX_CONFIG_KEY = "featherface_config"

RawOutputs = tuple[
    np.ndarray, np.ndarray, np.ndarray
]  # box deltas (N, P, 4), class logits (N, P, 2), landmarks (N, P, 10)


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None``/``"auto"`` -> CUDA when present, else CPU; anything else as torch reads it."""
    import torch

    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda asked for, but CUDA is not available here")
    return device


class TorchRunner:
    """A torch network on ``device``; ``threads``: torch's CPU threads while this runner runs (torch's setting is
    per process, so it is set for each call and restored after, under a lock: other models keep theirs, and
    runners with their own count called from several threads take turns)."""

    def __init__(self, net: DetectorNet, device: str | torch.device | None = None, threads: int | None = None) -> None:
        self.device = resolve_device(device)
        self.net = net.to(self.device).eval()
        self.config = net.config
        self.threads = threads

    def __call__(self, batch: np.ndarray) -> RawOutputs:
        import torch

        if not self.threads:
            return self._run(batch)
        with _TORCH_THREADS_LOCK:  # one runner at a time holds the process-wide setting
            previous = torch.get_num_threads()
            torch.set_num_threads(self.threads)
            try:
                return self._run(batch)
            finally:
                torch.set_num_threads(previous)

    def _run(self, batch: np.ndarray) -> RawOutputs:
        import torch

        with torch.inference_mode():
            outputs = self.net(torch.from_numpy(batch).to(self.device))
        return tuple(o.float().cpu().numpy() for o in outputs)  # type: ignore[return-value]


def onnx_session(
    model: str | Path | bytes, threads: int | None = None, device: str | None = None, spin: bool = True
) -> Any:
    """An onnxruntime session (CPU unless CUDA's provider is installed and asked for) with ``threads`` intra-op
    threads; ``spin=False`` stops idle worker threads from busy-waiting between runs (steadier timings on small
    shared machines, and several sessions in one process do not disturb each other)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    if not spin:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    providers = ["CPUExecutionProvider"]
    if device and str(device).startswith("cuda"):
        providers.insert(0, "CUDAExecutionProvider")
    return ort.InferenceSession(model if isinstance(model, bytes) else str(model), options, providers=providers)


def open_onnx(path: str | Path, threads: int | None = None, device: str | None = None) -> Any:
    """:func:`onnx_session` for a file, raising ``ValueError`` naming the file when onnxruntime cannot load it."""
    try:
        return onnx_session(path, threads, device)
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ValueError(f"{path}: onnxruntime cannot load it ({str(exc).splitlines()[0]})") from None


class OnnxRunner:
    """A featherface-exported model in onnxruntime (CPU unless CUDA's provider is installed and asked for);
    ``session``: one already open on ``path`` (then ``threads`` and ``device`` are its own)."""

    def __init__(
        self, path: str | Path, threads: int | None = None, device: str | None = None, session: Any = None
    ) -> None:
        self.session = session or open_onnx(path, threads, device)
        meta = self.session.get_modelmeta().custom_metadata_map
        if ONNX_CONFIG_KEY not in meta:
            raise ValueError(f"{path}: not exported by featherface (no {ONNX_CONFIG_KEY} metadata)")
        self.config = DetectorConfig.from_dict(json.loads(meta[ONNX_CONFIG_KEY]))

    def __call__(self, batch: np.ndarray) -> RawOutputs:
        outputs = self.session.run(list(ONNX_OUTPUTS), {ONNX_INPUT: np.ascontiguousarray(batch, np.float32)})
        return tuple(outputs)  # type: ignore[return-value]

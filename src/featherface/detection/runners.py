"""Backends that turn a preprocessed batch into raw numpy outputs: a torch network or an ONNX file.

A runner also says what its model family takes and gives (:class:`Runner`): its input (mean, size multiple) and
how its raw outputs decode into faces; :class:`~featherface.detection.api.Detector` composes one. torch is imported
only by the torch backend, so running an ONNX file needs onnxruntime and numpy alone.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from featherface.detection.postprocess import Detections, PostprocessConfig, postprocess
from featherface.detection.priors import PriorBox
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
# What OnnxRunner feeds and reads: a float batch (N, 3, H, W) of any N, H, W; per-prior outputs (N, P, k).
ONNX_OUTPUT_WIDTHS = {"box_deltas": 4, "class_logits": 2, "landmark_deltas": 10}
# Run once at load to count the graph's priors against the metadata's: small, not square, sides no multiple of 8
# (the count's rounding up is checked too).
ONNX_PROBE_SIZE = (76, 108)
MAX_ONNX_CONFIG_BYTES = 1 << 20  # the architecture JSON is about 2 KB

RawOutputs = tuple[
    np.ndarray, np.ndarray, np.ndarray
]  # box deltas (N, P, 4), class logits (N, P, 2), landmarks (N, P, 10)
# SPEC section 1: BGR minus this per-channel mean, no scaling (Pytorch_Retinaface's preprocessing).
IMAGE_MEAN_BGR = np.array([104.0, 117.0, 123.0], dtype=np.float32)


class Runner(Protocol):
    """A model family's backend as :class:`~featherface.detection.api.Detector` drives it: called on a batch
    ``(N, 3, H, W)`` (BGR minus ``input_mean``, H and W padded bottom/right to multiples of ``size_multiple``), it
    gives raw outputs, which :meth:`decode` turns into each image's faces. ``anchor_range``: the smallest and largest
    face side (network-input pixels) the model finds best."""

    input_mean: np.ndarray
    size_multiple: int

    @property
    def anchor_range(self) -> tuple[float, float]: ...

    def __call__(self, batch: np.ndarray) -> tuple[np.ndarray, ...]: ...

    def decode(
        self,
        outputs: tuple[np.ndarray, ...],
        input_size: tuple[int, int],
        scales: list[tuple[float, float]],
        config: PostprocessConfig,
    ) -> list[Detections]: ...


class RetinaFaceLayout:
    """The :class:`Runner` side of a RetinaFace-layout network (SPEC section 1): BGR minus
    :data:`IMAGE_MEAN_BGR` at any size in, per-prior :data:`RawOutputs` out, decoded against the priors of its
    ``config``'s anchors."""

    config: DetectorConfig
    input_mean: np.ndarray = IMAGE_MEAN_BGR
    size_multiple: int = 1

    @property
    def anchor_range(self) -> tuple[float, float]:
        sizes = [size for level in self.config.anchors.min_sizes for size in level]
        return float(min(sizes)), float(max(sizes))

    def decode(
        self,
        outputs: RawOutputs,
        input_size: tuple[int, int],
        scales: list[tuple[float, float]],
        config: PostprocessConfig,
    ) -> list[Detections]:
        """Raw outputs of a batch of ``input_size`` (H, W) -> each image's faces in its own pixels (``scales[i]``:
        the input's width and height in image i's pixels)."""
        anchors = self.config.anchors
        priors = PriorBox(anchors).array(*input_size)
        return postprocess(*outputs, priors, anchors.variances, scales, config)


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None``/``"auto"`` -> CUDA when present, else CPU; anything else as torch reads it."""
    import torch

    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda asked for, but CUDA is not available here")
    return device


class TorchRunner(RetinaFaceLayout):
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


class OnnxRunner(RetinaFaceLayout):
    """A featherface-exported model in onnxruntime (CPU unless CUDA's provider is installed and asked for);
    ``session``: one already open on ``path`` (then ``threads`` and ``device`` are its own).

    Checked when loaded, with a one-line ``ValueError`` naming the file: its input and outputs are those this runner
    feeds and reads (names, ranks, any batch and image size), its architecture metadata is within the declared
    ranges (:func:`featherface.models.config.check_architecture`), and the graph gives as many priors as the
    metadata's anchors describe (a disagreement would decode every box against the wrong anchor)."""

    def __init__(
        self, path: str | Path, threads: int | None = None, device: str | None = None, session: Any = None
    ) -> None:
        self.path = Path(path)
        self.session = session or open_onnx(path, threads, device)
        check_onnx_signature(self.session, self.path)
        meta = self.session.get_modelmeta().custom_metadata_map
        if ONNX_CONFIG_KEY not in meta:
            raise ValueError(f"{path}: not exported by featherface (no {ONNX_CONFIG_KEY} metadata)")
        text = meta[ONNX_CONFIG_KEY]
        if len(text) > MAX_ONNX_CONFIG_BYTES:
            raise ValueError(f"{path}: {ONNX_CONFIG_KEY} metadata of {len(text):,} bytes (at most 1 MiB)")
        try:
            self.config = DetectorConfig.from_dict(json.loads(text))
        except ValueError as exc:  # json's errors are ValueErrors too
            raise ValueError(f"{path}: {ONNX_CONFIG_KEY} metadata: {str(exc).splitlines()[0]}") from None
        self.priors = PriorBox(self.config.anchors)
        self(np.zeros((1, 3, *ONNX_PROBE_SIZE), np.float32))  # the prior count, checked in __call__

    def __call__(self, batch: np.ndarray) -> RawOutputs:
        outputs = self.session.run(list(ONNX_OUTPUTS), {ONNX_INPUT: np.ascontiguousarray(batch, np.float32)})
        expected = self.priors.num_priors(*batch.shape[2:])
        if any(output.shape[1] != expected for output in outputs):
            height, width = batch.shape[2:]
            raise ValueError(
                f"{self.path}: the graph gives {outputs[0].shape[1]} priors for a {height}x{width} input, its "
                f"{ONNX_CONFIG_KEY} anchors {expected} (steps {self.config.anchors.steps}, "
                f"{self.config.anchors.anchors_per_cell} per cell): metadata and graph disagree"
            )
        return tuple(outputs)  # type: ignore[return-value]


def check_onnx_signature(session: Any, path: Path) -> None:
    """``ValueError`` naming ``path`` unless the session takes one float input :data:`ONNX_INPUT` of shape
    ``(N, 3, H, W)`` with N, H and W free, and gives :data:`ONNX_OUTPUTS` of shape ``(N, P, k)`` (k from
    :data:`ONNX_OUTPUT_WIDTHS`)."""
    inputs = session.get_inputs()
    if [i.name for i in inputs] != [ONNX_INPUT]:
        names = ", ".join(i.name for i in inputs)
        raise ValueError(f"{path}: takes input(s) {names}; featherface feeds one, {ONNX_INPUT!r} (N, 3, H, W)")
    (image,) = inputs
    shape = list(image.shape)
    three_channels = len(shape) == 4 and (shape[1] == 3 or not isinstance(shape[1], int))  # 3, or left free
    if image.type != "tensor(float)" or not three_channels:
        raise ValueError(f"{path}: input {ONNX_INPUT!r} is {image.type} {shape}; featherface feeds float (N, 3, H, W)")
    fixed = [f"{name} {size}" for name, size in zip(("batch", "height", "width"), (shape[0], *shape[2:]), strict=True)
             if isinstance(size, int)]  # fmt: skip
    if fixed:
        raise ValueError(
            f"{path}: input {ONNX_INPUT!r} has a fixed {', '.join(fixed)}; featherface feeds batches of any size "
            "at any image size (`featherface export` leaves them free)"
        )
    outputs = {o.name: o for o in session.get_outputs()}
    missing = [name for name in ONNX_OUTPUTS if name not in outputs]
    if missing:
        raise ValueError(
            f"{path}: no output(s) {', '.join(missing)} (it has {', '.join(outputs) or 'none'}); featherface reads "
            f"{', '.join(ONNX_OUTPUTS)}"
        )
    for name, width in ONNX_OUTPUT_WIDTHS.items():
        shape = list(outputs[name].shape)
        if len(shape) != 3 or (isinstance(shape[2], int) and shape[2] != width):
            raise ValueError(f"{path}: output {name!r} has shape {shape}; featherface reads (N, P, {width})")

"""``Detector``: images in, faces out, for any model the project can load.

Importing this module, running an ``.onnx`` file or a zoo model's shipped ONNX does not import torch: zoo names
without one, checkpoints and networks bring it in when they are asked for (the training extra).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from featherface.detection.image import to_bgr_uint8
from featherface.detection.peers import YuNetRunner
from featherface.detection.postprocess import Detections, PostprocessConfig, suppress
from featherface.detection.runners import IMAGE_MEAN_BGR, OnnxRunner, Runner, TorchRunner, open_onnx
from featherface.detection.scaling import FaceSizeConfig, check_size, inference_factor, plan_tiles
from featherface.detection.sources import Source, collect_sources
from featherface.detection.stream import Result, detect_sources, detect_video
from featherface.extras import require_torch
from featherface.models.loader import ModelSpec, load_model, model_kind, resolve_model
from featherface.models.zoo import ZOO, require_trained
from featherface.weights import DEFAULT_MODEL, SHIPPED, verified_path

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from featherface.models.detector_net import DetectorNet

# The largest network input side: detect() tiles larger images (an 8000x8000 photo in one pass needs ~10 GB of
# activations); prepare(), called on its own, downscales to it instead.
DEFAULT_MAX_SIZE = 4096


def preprocess(image: np.ndarray, mean: np.ndarray = IMAGE_MEAN_BGR) -> np.ndarray:
    """BGR uint8 ``(H, W, 3)`` -> float32 ``(3, H, W)`` minus ``mean``."""
    return (image.astype(np.float32) - mean).transpose(2, 0, 1)


def inference_scale(height: int, width: int, size: int | None, max_size: int) -> float:
    """Resize factor: long side to ``size`` if given, and never above ``max_size``."""
    check_size(size)
    scale = 1.0 if size is None else size / max(height, width)
    return min(scale, max_size / max(height, width))


BACKENDS = ("onnxruntime", "torch")


def _has_onnxruntime() -> bool:
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None


def _runs_shipped_onnx(model: str, device: str | None, backend: str | None = None) -> bool:
    """Whether :meth:`Detector.load` runs the shipped model ``model`` from its ONNX file (not its checkpoint)."""
    shipped = SHIPPED.get(model)
    if shipped is None or not shipped.onnx or backend == "torch":
        return False
    return backend == "onnxruntime" or (not str(device or "").startswith("cuda") and _has_onnxruntime())


def runs_in(model: str | Path | ModelSpec, device: str | None = None, backend: str | None = None) -> str:
    """The backend :meth:`Detector.load` runs ``model`` in (``"onnxruntime"`` or ``"torch"``): a shipped model's ONNX
    on the CPU (every trained zoo model that ships one, ``featherface info`` says which), an ``.onnx`` file, else
    torch. ``backend`` (``None``: choose as said) insists on one. Read from the argument's text: no file is opened."""
    if backend is not None and backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)} or None (chosen by the model), not {backend!r}")
    spec = str(model)
    if model_kind(model) == "onnx":
        if backend == "torch":
            raise ValueError(f"{spec}: an ONNX file runs in onnxruntime only, not in torch")
        return "onnxruntime"
    if _runs_shipped_onnx(spec, device, backend):
        return "onnxruntime"
    if backend == "onnxruntime":
        raise ValueError(
            f"{spec}: no ONNX shipped for it; export one (featherface export {spec} --out MODEL.onnx) and run that"
        )
    return "torch"


def open_runner(
    model: str | Path | ModelSpec,
    device: str | None = None,
    threads: int | None = None,
    allow_untrained: bool = False,
    backend: str | None = None,
) -> Runner:
    """The runner :meth:`Detector.load` composes for a MODEL argument (:func:`~featherface.models.resolve_model`:
    its refusals): an ONNX file in onnxruntime (:class:`OnnxRunner`, or a peer's recognised by its outputs:
    :class:`~featherface.detection.peers.YuNetRunner`), a shipped model's ONNX, or else the torch network
    (:func:`~featherface.models.load_model`; a zoo model whose heads were never trained refused unless
    ``allow_untrained``)."""
    runs_in_onnxruntime = runs_in(model, device, backend) == "onnxruntime"  # the backend's refusals come first
    spec = resolve_model(model)
    if runs_in_onnxruntime:
        if spec.kind == "onnx":
            path = spec.path
        else:
            shipped = SHIPPED[spec.argument]
            path = verified_path(shipped.onnx, shipped.onnx_sha256)
        session = open_onnx(path, threads, device)
        if YuNetRunner.recognises(session):
            return YuNetRunner(path, session=session)
        return OnnxRunner(path, session=session)
    require_torch(f"{spec} runs in torch")
    if spec.kind == "zoo" and not allow_untrained:
        require_trained(spec.argument)
    return TorchRunner(load_model(spec), device, threads)


def cpu_threads() -> int:
    """The CPU threads this process may run on (its affinity, where the OS says)."""
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


# Side-by-side forward passes at most: each holds a batch of decoded images and its network input in memory.
MAX_PASSES_AT_ONCE = 4


def split_threads(
    model: str | Path,
    device: str | None,
    threads: int | None,
    images: int,
    batch_size: int = 1,
    backend: str | None = None,
) -> tuple[int | None, int]:
    """How to spend ``threads`` CPU threads (None: all of them) running ``model`` over ``images`` image files
    (0 when videos are among the inputs: their frames go one pass at a time) in batches of up to ``batch_size``:
    ``(threads of each forward pass, forward passes at once)``, for :meth:`Detector.load` and
    :func:`~featherface.detection.stream.detect_images` (``backend``: as :meth:`Detector.load` takes it).

    A model that runs in onnxruntime on the CPU, given several batches, runs passes side by side (up to
    :data:`MAX_PASSES_AT_ONCE`, threads shared among them): a small detector scales poorly inside one pass
    (onnxruntime's worker threads wait on each other at every thin layer) and well across passes (each releases
    the GIL). On 2 cores, detecting the 848 facemask photos with ``nano-b-pretrained`` (decoding and JSON
    included, medians of 3) took 3.8 s with two one-thread passes at once, 5.0 s with one two-thread pass and
    6.3 s with one one-thread pass. Anything else (torch, CUDA, one batch, videos) runs one pass at a time with
    all ``threads``.
    """
    on_cpu = not str(device or "").startswith("cuda")
    in_onnxruntime = runs_in(model, device, backend) == "onnxruntime" and on_cpu
    batches = -(-images // max(1, batch_size))
    total = threads or cpu_threads()
    at_once = min(total, batches, MAX_PASSES_AT_ONCE)
    if not in_onnxruntime or at_once < 2:
        return threads, 1
    return total // at_once, at_once


def round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


class Detector:
    """Face detector over a model family's runner (:class:`~featherface.detection.runners.Runner`): a torch network
    or an ONNX file of the RetinaFace layout (priors, SPEC section 1), or a peer's ONNX (YuNet).

    >>> detector = Detector.load("nano-b-pretrained")  # its ONNX, no torch; or a zoo name, checkpoint, .onnx
    >>> faces = detector.detect(cv2.imread("photo.jpg"))  # Detections, original-image pixels

    The runner sets the network input (``input_mean``, ``size_multiple``) and decodes its outputs.
    """

    face_size_config: FaceSizeConfig = FaceSizeConfig()  # limits of min_face / max_face and of tiling

    def __init__(
        self,
        runner: Runner,
        postprocess_config: PostprocessConfig | None = None,
        max_size: int = DEFAULT_MAX_SIZE,
    ) -> None:
        self.runner = runner
        self.postprocess_config = postprocess_config or PostprocessConfig()
        self.max_size = max_size

    @classmethod
    def load(
        cls,
        model: str | Path | ModelSpec = DEFAULT_MODEL,
        device: str | None = None,
        threads: int | None = None,
        allow_untrained: bool = False,
        backend: str | None = None,
        **kwargs,
    ) -> Detector:
        """The one way to a runnable detector: a zoo name, a ``.safetensors`` checkpoint, a run directory or an
        ``.onnx`` file (featherface's export, or a peer recognised by its outputs: YuNet). ``threads`` applies to
        this detector only; ``kwargs``: ``postprocess_config``, ``max_size``.

        A shipped model with an ONNX file (``retinaface-mnet025``, ``nano-b-pretrained``) runs in onnxruntime,
        without torch, unless CUDA is asked for; others run in torch (the training extra). ``backend``
        (``"onnxruntime"`` or ``"torch"``) insists on one (:func:`runs_in`). Zoo models whose heads were never
        trained (``nano-b``, ``featherface-v1``) are refused unless ``allow_untrained`` (:func:`open_runner`)."""
        return cls(open_runner(model, device, threads, allow_untrained, backend), **kwargs)

    @classmethod
    def from_pretrained(
        cls,
        name: str = DEFAULT_MODEL,
        device: str | None = None,
        threads: int | None = None,
        allow_untrained: bool = False,
        **kwargs,
    ) -> Detector:
        """A zoo model's torch network: :meth:`load` with ``backend="torch"``, for zoo names only. Needs torch (the
        training extra); :meth:`load` runs a zoo model's shipped ONNX without it."""
        require_torch(f"Detector.from_pretrained({name!r})")
        if name not in ZOO:
            raise ValueError(f"unknown model {name!r}; the zoo has {', '.join(ZOO)}")
        return cls.load(name, device, threads, allow_untrained, backend="torch", **kwargs)

    @classmethod
    def from_net(cls, net: DetectorNet, device: str | None = None, threads: int | None = None, **kwargs) -> Detector:
        """A detector over a torch network already in memory (being trained, distilled or calibrated)."""
        return cls(TorchRunner(net, device, threads), **kwargs)

    @property
    def input_mean(self) -> np.ndarray:
        """Subtracted from the BGR pixels (the runner's model family says)."""
        return self.runner.input_mean

    @property
    def size_multiple(self) -> int:
        """The network input is padded (bottom/right) to a multiple of this."""
        return self.runner.size_multiple

    def prepare(
        self, images: list[np.ndarray], size: int | None = None
    ) -> tuple[np.ndarray, list[tuple[float, float]]]:
        """Resize and pad (bottom/right) to one batch ``(N, 3, H, W)``; returns it and each image's scale:
        the padded input's width and height in original-image pixels."""
        factors = [inference_scale(*image.shape[:2], size, self.max_size) for image in images]
        return self.prepare_scaled(images, factors)

    def prepare_scaled(
        self, images: list[np.ndarray], factors: list[float]
    ) -> tuple[np.ndarray, list[tuple[float, float]]]:
        """:meth:`prepare` with each image's resize factor given (no ``max_size`` cap)."""
        resized, actual = [], []
        for image, factor in zip(images, factors, strict=True):
            h, w = image.shape[:2]
            if factor != 1.0:
                new_size = (max(1, round(w * factor)), max(1, round(h * factor)))
                image = cv2.resize(image, new_size, interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR)
            resized.append(image)
            actual.append((image.shape[1] / w, image.shape[0] / h))
        height = round_up(max(image.shape[0] for image in resized), self.size_multiple)
        width = round_up(max(image.shape[1] for image in resized), self.size_multiple)
        batch = np.zeros((len(resized), 3, height, width), dtype=np.float32)  # pads with the input_mean colour
        for i, image in enumerate(resized):
            # preprocess() written straight into the batch: one pass over the pixels
            np.subtract(
                image.transpose(2, 0, 1),
                self.input_mean[:, None, None],
                out=batch[i, :, : len(image), : image.shape[1]],
            )
        scales = [(width / fx, height / fy) for fx, fy in actual]
        return batch, scales

    def decode(
        self, outputs: tuple[np.ndarray, ...], input_size: tuple[int, int], scales: list[tuple[float, float]]
    ) -> list[Detections]:
        """Raw outputs of a batch of ``input_size`` (H, W) -> each image's faces in its own pixels."""
        return self.runner.decode(outputs, input_size, scales, self.postprocess_config)

    @property
    def anchor_range(self) -> tuple[float, float]:
        """The smallest and largest anchor side (network-input pixels): the face sizes the model finds best."""
        return self.runner.anchor_range

    def detect_batch(
        self,
        images: list[np.ndarray],
        size: int | None = None,
        *,
        min_face: float | None = None,
        max_face: float | None = None,
    ) -> list[Detections]:
        """Detect faces in several images at once (padded to a common size).

        The inference scale: the original size, or the long side at ``size``, or chosen from the face sizes of
        interest (pixels): ``min_face`` (smallest face to find) and ``max_face`` (larger faces are dropped)
        (:func:`featherface.detection.scaling.inference_factor`). An image whose long side at that scale exceeds
        ``max_size`` is tiled (:meth:`detect_tiled`), so a 20000x300 strip or an 8000-px photo keeps its detail.
        """
        if not images:
            return []
        images = [to_bgr_uint8(image, f"image {i}") for i, image in enumerate(images)]
        factors = [
            inference_factor(*image.shape[:2], self.anchor_range, size, min_face, max_face, self.face_size_config)
            for image in images
        ]
        results: list[Detections | None] = [None] * len(images)
        whole = [i for i, image in enumerate(images) if max(image.shape[:2]) * factors[i] <= self.max_size]
        if whole:
            batch, scales = self.prepare_scaled([images[i] for i in whole], [factors[i] for i in whole])
            for i, found in zip(whole, self.decode(self.runner(batch), batch.shape[2:], scales), strict=True):
                results[i] = found
        for i, image in enumerate(images):
            if results[i] is None:
                results[i] = self.detect_tiled(image, factors[i], max_face)
        return [found if max_face is None else drop_larger(found, max_face) for found in results]

    def detect(
        self,
        image: np.ndarray,
        size: int | None = None,
        *,
        min_face: float | None = None,
        max_face: float | None = None,
    ) -> Detections:
        """Faces in one BGR image (any of gray/BGR/BGRA, 8 or 16 bit), in its own pixel coordinates
        (``size``, ``min_face``, ``max_face``: see :meth:`detect_batch`)."""
        return self.detect_batch([image], size, min_face=min_face, max_face=max_face)[0]

    def detect_tiled(self, image: np.ndarray, factor: float, max_face: float | None = None) -> Detections:
        """Faces in ``image`` resized by ``factor``, run as tiles of at most ``max_size`` (network-input pixels)
        overlapping by the largest face of interest (``max_face``, else the largest anchor), merged so each face
        is reported once (:mod:`featherface.detection.scaling`)."""
        height, width = image.shape[:2]
        tile = int(self.max_size / factor)  # original pixels: the tile at ``factor`` fits max_size
        largest_face = max_face if max_face is not None else self.anchor_range[1] / factor
        overlap = min(math.ceil(largest_face), int(tile * self.face_size_config.max_overlap_fraction))
        boxes, scores, landmarks = [], [], []
        for part in plan_tiles(height, width, tile, overlap):
            window = image[part.y0 : part.y1, part.x0 : part.x1]
            batch, scales = self.prepare_scaled([window], [factor])
            found = self.decode(self.runner(batch), batch.shape[2:], scales)[0]
            offset = np.array([part.x0, part.y0], dtype=np.float32)
            moved = found.boxes + np.tile(offset, 2)
            owned = part.owns((moved[:, :2] + moved[:, 2:]) / 2)
            boxes.append(moved[owned])
            scores.append(found.scores[owned])
            landmarks.append(found.landmarks[owned] + offset)
        merged = (np.concatenate(parts) for parts in (boxes, scores, landmarks))
        return suppress(*merged, self.postprocess_config)

    def detect_files(self, inputs: str | Path | Sequence[str | Path], **options) -> Iterator[Result]:
        """Results for image files, folders (recursively) and videos, in order (one ``str`` or ``Path`` is one
        input); a file that cannot be read gives a result with its ``error`` instead of raising
        (:func:`featherface.detection.stream.detect_sources`)."""
        return detect_sources(self, collect_sources(inputs), **options)

    def detect_video(self, path: str | Path, **options) -> Iterator[Result]:
        """One result per frame of a video, in batches, with ``track_ids`` unless ``track=False``
        (:func:`featherface.detection.stream.detect_video`)."""
        return detect_video(self, Source.video(path), **options)


def drop_larger(found: Detections, max_face: float) -> Detections:
    """The faces of ``found`` whose box's longer side is at most ``max_face`` pixels."""
    sides = np.maximum(found.boxes[:, 2] - found.boxes[:, 0], found.boxes[:, 3] - found.boxes[:, 1])
    keep = sides <= max_face
    return Detections(found.boxes[keep], found.scores[keep], found.landmarks[keep])

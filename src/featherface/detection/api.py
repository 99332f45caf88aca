"""``Detector``: images in, faces out, for any model the project can load."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from featherface.checkpoint import load_checkpoint
from featherface.detection.image import to_bgr_uint8
from featherface.detection.postprocess import Detections, PostprocessConfig, postprocess
from featherface.detection.priors import PriorBox
from featherface.detection.runners import OnnxRunner, TorchRunner
from featherface.models.detector_net import DetectorNet
from featherface.models.zoo import ZOO, create_model

# SPEC section 1: BGR minus this per-channel mean, no scaling (Pytorch_Retinaface's preprocessing).
IMAGE_MEAN_BGR = np.array([104.0, 117.0, 123.0], dtype=np.float32)
# Larger images are downscaled to this long side: an 8000x8000 photo at full size needs ~10 GB of activations.
DEFAULT_MAX_SIZE = 4096


def preprocess(image: np.ndarray) -> np.ndarray:
    """BGR uint8 ``(H, W, 3)`` -> float32 ``(3, H, W)`` minus the mean."""
    return (image.astype(np.float32) - IMAGE_MEAN_BGR).transpose(2, 0, 1)


def inference_scale(height: int, width: int, size: int | None, max_size: int) -> float:
    """Resize factor: long side to ``size`` if given, and never above ``max_size``."""
    scale = 1.0 if size is None else size / max(height, width)
    return min(scale, max_size / max(height, width))


class Detector:
    """Face detector over a torch network or an ONNX file.

    >>> detector = Detector.from_pretrained("retinaface-mnet025")
    >>> faces = detector.detect(cv2.imread("photo.jpg"))  # Detections, original-image pixels
    """

    def __init__(
        self,
        runner: TorchRunner | OnnxRunner,
        postprocess_config: PostprocessConfig | None = None,
        max_size: int = DEFAULT_MAX_SIZE,
    ) -> None:
        self.runner = runner
        self.config = runner.config
        self.priors = PriorBox(self.config.anchors)
        self.postprocess_config = postprocess_config or PostprocessConfig()
        self.max_size = max_size

    @classmethod
    def from_pretrained(cls, name: str, device: str | None = None, **kwargs) -> Detector:
        return cls(TorchRunner(create_model(name), device), **kwargs)

    @classmethod
    def from_net(cls, net: DetectorNet, device: str | None = None, **kwargs) -> Detector:
        return cls(TorchRunner(net, device), **kwargs)

    @classmethod
    def load(cls, model: str | Path, device: str | None = None, threads: int | None = None, **kwargs) -> Detector:
        """A zoo name, a ``.safetensors`` checkpoint, a run directory or an ``.onnx`` file."""
        spec = str(model)
        if spec in ZOO:
            return cls.from_pretrained(spec, device, **kwargs)
        if spec.endswith(".onnx"):
            if not Path(spec).is_file():
                raise ValueError(f"{spec}: no such file")
            return cls(OnnxRunner(spec, threads, device), **kwargs)
        if threads:
            torch.set_num_threads(threads)
        net, _ = load_checkpoint(spec)
        return cls(TorchRunner(net, device), **kwargs)

    def prepare(
        self, images: list[np.ndarray], size: int | None = None
    ) -> tuple[np.ndarray, list[tuple[float, float]]]:
        """Resize and pad (bottom/right) to one batch ``(N, 3, H, W)``; returns it and each image's scale."""
        tensors, factors = [], []
        for image in images:
            h, w = image.shape[:2]
            factor = inference_scale(h, w, size, self.max_size)
            if factor != 1.0:
                new_size = (max(1, round(w * factor)), max(1, round(h * factor)))
                image = cv2.resize(image, new_size, interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR)
            tensors.append(preprocess(image))
            factors.append((image.shape[1] / w, image.shape[0] / h))
        height = max(t.shape[1] for t in tensors)
        width = max(t.shape[2] for t in tensors)
        batch = np.zeros((len(tensors), 3, height, width), dtype=np.float32)  # zero = the mean colour
        for i, t in enumerate(tensors):
            batch[i, :, : t.shape[1], : t.shape[2]] = t
        scales = [(width / fx, height / fy) for fx, fy in factors]
        return batch, scales

    def detect_batch(self, images: list[np.ndarray], size: int | None = None) -> list[Detections]:
        """Detect faces in several images at once (padded to a common size)."""
        if not images:
            return []
        images = [to_bgr_uint8(image, f"image {i}") for i, image in enumerate(images)]
        batch, scales = self.prepare(images, size)
        outputs = self.runner(batch)
        priors = self.priors(batch.shape[2], batch.shape[3], outputs[0].device)
        return postprocess(*outputs, priors, self.config.anchors.variances, scales, self.postprocess_config)

    def detect(self, image: np.ndarray, size: int | None = None) -> Detections:
        """Faces in one BGR image (any of gray/BGR/BGRA, 8 or 16 bit), in its own pixel coordinates."""
        return self.detect_batch([image], size)[0]

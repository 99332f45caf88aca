"""``Detector``: images in, faces out, for any model the project can load.

Importing this module, or running an ``.onnx`` file, does not import torch: zoo names, checkpoints and
networks bring it in when they are asked for.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from featherface.detection.image import to_bgr_uint8
from featherface.detection.postprocess import Detections, PostprocessConfig, postprocess
from featherface.detection.priors import PriorBox
from featherface.detection.runners import OnnxRunner, RawOutputs, TorchRunner, open_onnx

if TYPE_CHECKING:
    from featherface.models.detector_net import DetectorNet

# SPEC section 1: BGR minus this per-channel mean, no scaling (Pytorch_Retinaface's preprocessing).
IMAGE_MEAN_BGR = np.array([104.0, 117.0, 123.0], dtype=np.float32)
# Larger images are downscaled to this long side: an 8000x8000 photo at full size needs ~10 GB of activations.
DEFAULT_MAX_SIZE = 4096


def preprocess(image: np.ndarray, mean: np.ndarray = IMAGE_MEAN_BGR) -> np.ndarray:
    """BGR uint8 ``(H, W, 3)`` -> float32 ``(3, H, W)`` minus ``mean``."""
    return (image.astype(np.float32) - mean).transpose(2, 0, 1)


def inference_scale(height: int, width: int, size: int | None, max_size: int) -> float:
    """Resize factor: long side to ``size`` if given, and never above ``max_size``."""
    scale = 1.0 if size is None else size / max(height, width)
    return min(scale, max_size / max(height, width))


def round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


class Detector:
    """Face detector over a torch network or an ONNX file (RetinaFace layout: priors, SPEC section 1).

    >>> detector = Detector.from_pretrained("retinaface-mnet025")
    >>> faces = detector.detect(cv2.imread("photo.jpg"))  # Detections, original-image pixels

    Other model families subclass it and set their own input (``input_mean``, ``size_multiple``) and
    :meth:`decode` (e.g. :class:`featherface.detection.peers.YuNetDetector`).
    """

    input_mean: np.ndarray = IMAGE_MEAN_BGR  # subtracted from the BGR pixels
    size_multiple: int = 1  # the network input is padded (bottom/right) to a multiple of this

    def __init__(
        self,
        runner: TorchRunner | OnnxRunner,
        postprocess_config: PostprocessConfig | None = None,
        max_size: int = DEFAULT_MAX_SIZE,
    ) -> None:
        self.runner = runner
        self.postprocess_config = postprocess_config or PostprocessConfig()
        self.max_size = max_size

    @classmethod
    def from_pretrained(cls, name: str, device: str | None = None, **kwargs) -> Detector:
        from featherface.models.zoo import create_model

        return cls(TorchRunner(create_model(name), device), **kwargs)

    @classmethod
    def from_net(cls, net: DetectorNet, device: str | None = None, **kwargs) -> Detector:
        return cls(TorchRunner(net, device), **kwargs)

    @classmethod
    def load(cls, model: str | Path, device: str | None = None, threads: int | None = None, **kwargs) -> Detector:
        """A zoo name, a ``.safetensors`` checkpoint, a run directory or an ``.onnx`` file (featherface's
        export, or a peer recognised by its outputs: YuNet)."""
        spec = str(model)
        if spec.endswith(".onnx"):
            if not Path(spec).is_file():
                raise ValueError(f"{spec}: no such file")
            from featherface.detection.peers import YuNetDetector, YuNetRunner

            session = open_onnx(spec, threads, device)
            if YuNetRunner.recognises(session):
                return YuNetDetector(YuNetRunner(spec, session=session), **kwargs)
            return cls(OnnxRunner(spec, session=session), **kwargs)
        import torch

        from featherface.checkpoint import load_checkpoint
        from featherface.models.zoo import ZOO

        if spec in ZOO:
            return cls.from_pretrained(spec, device, **kwargs)
        if threads:
            torch.set_num_threads(threads)
        net, _ = load_checkpoint(spec)
        return cls(TorchRunner(net, device), **kwargs)

    def prepare(
        self, images: list[np.ndarray], size: int | None = None
    ) -> tuple[np.ndarray, list[tuple[float, float]]]:
        """Resize and pad (bottom/right) to one batch ``(N, 3, H, W)``; returns it and each image's scale:
        the padded input's width and height in original-image pixels."""
        resized, factors = [], []
        for image in images:
            h, w = image.shape[:2]
            factor = inference_scale(h, w, size, self.max_size)
            if factor != 1.0:
                new_size = (max(1, round(w * factor)), max(1, round(h * factor)))
                image = cv2.resize(image, new_size, interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR)
            resized.append(image)
            factors.append((image.shape[1] / w, image.shape[0] / h))
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
        scales = [(width / fx, height / fy) for fx, fy in factors]
        return batch, scales

    def decode(
        self, outputs: RawOutputs, input_size: tuple[int, int], scales: list[tuple[float, float]]
    ) -> list[Detections]:
        """Raw outputs of a batch of ``input_size`` (H, W) -> each image's faces in its own pixels."""
        anchors = self.runner.config.anchors
        priors = PriorBox(anchors).array(*input_size)
        return postprocess(*outputs, priors, anchors.variances, scales, self.postprocess_config)

    def detect_batch(self, images: list[np.ndarray], size: int | None = None) -> list[Detections]:
        """Detect faces in several images at once (padded to a common size)."""
        if not images:
            return []
        images = [to_bgr_uint8(image, f"image {i}") for i, image in enumerate(images)]
        batch, scales = self.prepare(images, size)
        return self.decode(self.runner(batch), batch.shape[2:], scales)

    def detect(self, image: np.ndarray, size: int | None = None) -> Detections:
        """Faces in one BGR image (any of gray/BGR/BGRA, 8 or 16 bit), in its own pixel coordinates."""
        return self.detect_batch([image], size)[0]

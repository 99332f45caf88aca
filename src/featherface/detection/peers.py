"""Peer detectors run through the same API, for side-by-side comparisons: YuNet, as a runner that
:class:`~featherface.detection.api.Detector` composes (:class:`~featherface.detection.runners.Runner`).

YuNet (Wu, Peng, Yu, "YuNet: A Tiny Millisecond-level Face Detector", 2023) comes from ShiqiYu's
libfacedetection.train, licensed under the Apache License 2.0 (its LICENSE file). We ship no YuNet weights:
point :meth:`Detector.load` at an ``.onnx`` export of it (e.g. its ``onnx/yunet_n_dynamic.onnx``).
Its output contract, as OpenCV's ``FaceDetectorYN`` reads it (``modules/objdetect/src/face_detect.cpp``):

- input ``input (N, 3, H, W)``: BGR float 0-255, no mean or scale, H and W padded (bottom/right, zeros) to
  multiples of 32;
- per stride s in 8/16/32, over the ``(H/s) x (W/s)`` cells in row-major order: ``cls_s``, ``obj_s (N, C, 1)``
  probabilities, ``bbox_s (N, C, 4)``, ``kps_s (N, C, 10)``;
- anchor-free decoding of cell (row r, column c): score = sqrt(cls * obj) (both clipped to [0, 1]);
  centre = ((c, r) + bbox[:2]) * s; size = exp(bbox[2:]) * s; landmark k = ((c, r) + kps[2k : 2k + 2]) * s.
  Landmarks come in our order (the eye at the image's left first, then the other eye, nose, mouth corners).

Thresholds, top-k and NMS are ours (:class:`PostprocessConfig`: score > conf, greedy NMS at 0.4 by default),
so results can differ slightly from ``FaceDetectorYN``'s (score >= conf, NMS on integer boxes, 0.3).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from featherface.detection.postprocess import Detections, PostprocessConfig, select_candidates, suppress
from featherface.detection.runners import open_onnx

YUNET_INPUT = "input"
YUNET_STRIDES = (8, 16, 32)
YUNET_HEADS = ("cls", "obj", "bbox", "kps")
YUNET_OUTPUTS = tuple(f"{head}_{stride}" for head in YUNET_HEADS for stride in YUNET_STRIDES)


class YuNetRunner:
    """A YuNet ``.onnx`` in onnxruntime; ``session``: one already open on ``path``.

    Called on a batch ``(N, 3, H, W)`` (raw BGR, H, W multiples of 32), returns its outputs over all cells of all
    strides: ``scores (N, C)``, ``bbox (N, C, 4)``, ``kps (N, C, 10)``; :meth:`decode` turns them into faces.
    """

    input_mean = np.zeros(3, dtype=np.float32)  # raw BGR 0-255
    size_multiple = YUNET_STRIDES[-1]
    # anchor-free, but at RetinaFace's strides (8/16/32): the same face-size reach is assumed for min_face/max_face
    anchor_range = (2.0 * YUNET_STRIDES[0], 16.0 * YUNET_STRIDES[-1])

    def __init__(
        self, path: str | Path, threads: int | None = None, device: str | None = None, session: Any = None
    ) -> None:
        self.session = session or open_onnx(path, threads, device)
        if not self.recognises(self.session):
            raise ValueError(f"{path}: not a YuNet model (outputs {', '.join(YUNET_OUTPUTS)} expected)")

    @staticmethod
    def recognises(session: Any) -> bool:
        """Whether an onnxruntime session has YuNet's input and outputs."""
        inputs = {i.name for i in session.get_inputs()}
        outputs = {o.name for o in session.get_outputs()}
        return YUNET_INPUT in inputs and set(YUNET_OUTPUTS) <= outputs

    def __call__(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        raw = dict(
            zip(
                YUNET_OUTPUTS,
                self.session.run(list(YUNET_OUTPUTS), {YUNET_INPUT: np.ascontiguousarray(batch, np.float32)}),
                strict=True,
            )
        )
        cls, obj, bbox, kps = (
            np.concatenate([raw[f"{head}_{s}"] for s in YUNET_STRIDES], axis=1) for head in YUNET_HEADS
        )
        scores = np.sqrt(np.clip(cls[..., 0], 0, 1) * np.clip(obj[..., 0], 0, 1))
        return scores, bbox, kps

    def decode(
        self,
        outputs: tuple[np.ndarray, np.ndarray, np.ndarray],
        input_size: tuple[int, int],
        scales: list[tuple[float, float]],
        config: PostprocessConfig,
    ) -> list[Detections]:
        return yunet_postprocess(*outputs, input_size, scales, config)


@lru_cache(maxsize=32)
def yunet_cells(height: int, width: int) -> np.ndarray:
    """``(C, 3)`` float32 rows ``(column, row, stride)`` of every cell, strides 8/16/32 in turn, row-major."""
    levels = []
    for stride in YUNET_STRIDES:
        rows, cols = np.meshgrid(np.arange(height // stride), np.arange(width // stride), indexing="ij")
        levels.append(np.stack([cols.ravel(), rows.ravel(), np.full(rows.size, stride)], axis=1))
    cells = np.concatenate(levels).astype(np.float32)
    cells.flags.writeable = False
    return cells


def yunet_postprocess(
    scores: np.ndarray,
    bbox: np.ndarray,
    kps: np.ndarray,
    input_size: tuple[int, int],
    scales: list[tuple[float, float]],
    config: PostprocessConfig,
) -> list[Detections]:
    """:class:`YuNetRunner`'s outputs for a batch of ``input_size`` (H, W) -> each image's faces in its own
    pixels (``scales[i]``: the input's width and height in image i's pixels)."""
    height, width = input_size
    cells = yunet_cells(height, width)
    results = []
    for i, (sx, sy) in enumerate(scales):
        candidates = select_candidates(scores[i], config)
        cell, stride = cells[candidates, :2], cells[candidates, 2:]
        to_image = np.array([sx / width, sy / height], dtype=np.float32)
        centre = (cell + bbox[i, candidates, :2]) * stride
        half = np.exp(bbox[i, candidates, 2:]) * stride / 2
        boxes = np.concatenate([centre - half, centre + half], axis=1) * np.tile(to_image, 2)
        points = (cell[:, None] + kps[i, candidates].reshape(-1, 5, 2)) * stride[:, None] * to_image
        results.append(suppress(boxes, scores[i, candidates], points, config))
    return results

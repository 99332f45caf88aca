"""A detector whose faces are written in the test, and synthetic videos: the video pipeline (reading ahead,
tracking, anonymising) tested on exact, hand-made detections instead of a network's."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from featherface.align import ARCFACE_SIZE, ARCFACE_TEMPLATE
from featherface.detection.postprocess import Detections


def faces_in(boxes: np.ndarray) -> Detections:
    """Detections for ``boxes (K, 4)`` xyxy: score 0.9, landmarks where the ArcFace template puts them in each
    box."""
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    size = boxes[:, None, 2:] - boxes[:, None, :2]
    landmarks = boxes[:, None, :2] + size * (ARCFACE_TEMPLATE / ARCFACE_SIZE).astype(np.float32)
    return Detections(boxes, np.full(len(boxes), 0.9, np.float32), landmarks.astype(np.float32))


class ScriptedDetector:
    """Stands in for a :class:`~featherface.detection.api.Detector` on video: the i-th image it is given has the
    faces ``script[i]`` (xyxy boxes), whatever its pixels."""

    def __init__(self, script: list[np.ndarray]) -> None:
        self.script = script
        self.seen = 0  # images given so far

    def detect_batch(self, images: list[np.ndarray], **options) -> list[Detections]:
        found = [faces_in(self.script[self.seen + i]) for i in range(len(images))]
        self.seen += len(images)
        return found


def write_video(path: Path, frames: list[np.ndarray], fps: float = 10.0) -> Path:
    """``frames`` (BGR uint8, one size) as an mp4v video."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, frames[0].shape[1::-1])
    for frame in frames:
        writer.write(np.ascontiguousarray(frame))
    writer.release()
    return path

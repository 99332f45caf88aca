"""From raw per-prior outputs to faces: face score, threshold and top-k, decode only those candidates, greedy NMS.

Plain numpy, shared by every backend (torch outputs are converted once), so the cost follows the candidates kept
rather than the priors, and running an ONNX model needs no torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from featherface.config_schema import Config, rule
from featherface.detection.boxes import decode_boxes, decode_landmarks, nms


@dataclass
class PostprocessConfig(Config):
    """Defaults are Pytorch_Retinaface's test settings (pre-NMS top 5000, keep 750)."""

    conf_threshold: float = field(default=0.5, metadata=rule(ge=0, le=1))  # face probability
    nms_threshold: float = field(default=0.4, metadata=rule(ge=0, le=1))  # IoU
    pre_nms_top_k: int = field(default=5000, metadata=rule(ge=1))
    keep_top_k: int = field(default=750, metadata=rule(ge=1))


@dataclass
class Detections:
    """Faces of one image, sorted by score: ``boxes (K, 4)`` xyxy, ``scores (K,)``, ``landmarks (K, 5, 2)``.

    Coordinates are pixels of the original image.
    """

    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    scores: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.float32))
    landmarks: np.ndarray = field(default_factory=lambda: np.zeros((0, 5, 2), np.float32))

    def __len__(self) -> int:
        return len(self.scores)

    def faces(self) -> list[dict[str, Any]]:
        """JSON-ready faces: ``{"box": [x1, y1, x2, y2], "score", "landmarks": [[x, y] x 5]}``, pixels to 0.01."""
        boxes = np.round(self.boxes.astype(np.float64), 2).tolist()
        scores = np.round(self.scores.astype(np.float64), 5).tolist()
        landmarks = np.round(self.landmarks.astype(np.float64), 2).tolist()
        return [
            {"box": box, "score": score, "landmarks": points}
            for box, score, points in zip(boxes, scores, landmarks, strict=True)
        ]


def face_scores(class_logits: np.ndarray) -> np.ndarray:
    """Softmax probability of the face class: logits ``(..., 2)`` -> ``(...)`` float32."""
    logits = class_logits.astype(np.float32, copy=False)
    exp = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return exp[..., 1] / exp.sum(axis=-1)


def select_candidates(scores: np.ndarray, config: PostprocessConfig) -> np.ndarray:
    """Indices into ``scores (P,)`` above ``conf_threshold``, best first (ties: lower index first), at most
    ``pre_nms_top_k`` of them."""
    above = np.flatnonzero(scores > config.conf_threshold)
    return above[np.argsort(-scores[above], kind="stable")[: config.pre_nms_top_k]]


def suppress(boxes: np.ndarray, scores: np.ndarray, landmarks: np.ndarray, config: PostprocessConfig) -> Detections:
    """Greedy NMS at ``nms_threshold`` over candidates ``boxes (K, 4)``, ``scores (K,)``, ``landmarks (K, 5, 2)``,
    keeping at most ``keep_top_k``."""
    kept = nms(boxes, scores, config.nms_threshold, config.keep_top_k)
    return Detections(boxes=boxes[kept], scores=scores[kept], landmarks=landmarks[kept])


def kept_priors(
    box_deltas: np.ndarray,
    scores: np.ndarray,
    priors: np.ndarray,
    variances: tuple[float, float],
    scale: np.ndarray,
    config: PostprocessConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """One image's box deltas ``(P, 4)`` and face scores ``(P,)`` -> the indices of the priors whose faces survive the
    threshold, top-k and NMS, best first, and their boxes ``(K, 4)`` in original-image pixels (``scale`` = (sx, sy),
    as :func:`postprocess`; NMS runs on those)."""
    candidates = select_candidates(scores, config)
    boxes = decode_boxes(box_deltas[candidates].astype(np.float32), priors[candidates], variances) * np.tile(scale, 2)
    kept = nms(boxes, scores[candidates], config.nms_threshold, config.keep_top_k)
    return candidates[kept], boxes[kept]


def postprocess(
    box_deltas: np.ndarray,
    class_logits: np.ndarray,
    landmark_deltas: np.ndarray,
    priors: np.ndarray,
    variances: tuple[float, float],
    scales: list[tuple[float, float]],
    config: PostprocessConfig | None = None,
) -> list[Detections]:
    """Raw outputs ``(N, P, 4)``, ``(N, P, 2)``, ``(N, P, 10)`` over ``priors (P, 4)`` -> one result per image.

    ``scales[i] = (sx, sy)`` maps the normalised coordinates of image i to original-image pixels
    (the network input's width and height divided by the resize factor).
    """
    config = config or PostprocessConfig()
    scores = face_scores(class_logits)
    results = []
    for i, (sx, sy) in enumerate(scales):
        scale = np.array([sx, sy], dtype=np.float32)
        kept, boxes = kept_priors(box_deltas[i], scores[i], priors, variances, scale, config)
        points = decode_landmarks(landmark_deltas[i, kept].astype(np.float32), priors[kept], variances)
        results.append(Detections(boxes=boxes, scores=scores[i, kept], landmarks=points.reshape(-1, 5, 2) * scale))
    return results

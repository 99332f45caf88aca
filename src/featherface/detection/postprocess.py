"""From raw per-prior outputs to faces: softmax, threshold, decode, NMS, top-k."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from featherface.detection.boxes import decode_boxes, decode_landmarks, nms


@dataclass
class PostprocessConfig:
    """Defaults are Pytorch_Retinaface's test settings (pre-NMS top 5000, keep 750)."""

    conf_threshold: float = 0.5
    nms_threshold: float = 0.4
    pre_nms_top_k: int = 5000
    keep_top_k: int = 750


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
        """JSON-ready faces: ``{"box": [x1, y1, x2, y2], "score", "landmarks": [[x, y] x 5]}``."""
        return [
            {
                "box": [round(float(v), 2) for v in box],
                "score": round(float(score), 5),
                "landmarks": [[round(float(x), 2), round(float(y), 2)] for x, y in points],
            }
            for box, score, points in zip(self.boxes, self.scores, self.landmarks, strict=True)
        ]


def postprocess(
    box_deltas: Tensor,
    class_logits: Tensor,
    landmark_deltas: Tensor,
    priors: Tensor,
    variances: tuple[float, float],
    scales: list[tuple[float, float]],
    config: PostprocessConfig | None = None,
) -> list[Detections]:
    """Raw outputs ``(N, P, 4)``, ``(N, P, 2)``, ``(N, P, 10)`` over ``priors (P, 4)`` -> one result per image.

    ``scales[i] = (sx, sy)`` maps the normalised coordinates of image i to original-image pixels
    (the network input's width and height divided by the resize factor).
    """
    config = config or PostprocessConfig()
    scores_all = torch.softmax(class_logits.float(), dim=-1)[..., 1]
    results = []
    for i in range(box_deltas.shape[0]):
        scores = scores_all[i]
        candidates = torch.nonzero(scores > config.conf_threshold).squeeze(1)
        if candidates.numel() > config.pre_nms_top_k:
            top = torch.topk(scores[candidates], config.pre_nms_top_k).indices
            candidates = candidates[top]
        sx, sy = scales[i]
        scale = torch.tensor([sx, sy], dtype=torch.float32, device=priors.device)
        selected = priors[candidates]
        boxes = decode_boxes(box_deltas[i, candidates].float(), selected, variances) * scale.repeat(2)
        points = decode_landmarks(landmark_deltas[i, candidates].float(), selected, variances)
        points = points.reshape(len(candidates), 5, 2) * scale
        kept = nms(boxes, scores[candidates], config.nms_threshold)[: config.keep_top_k]
        results.append(
            Detections(
                boxes=boxes[kept].cpu().numpy(),
                scores=scores[candidates][kept].cpu().numpy(),
                landmarks=points[kept].cpu().numpy(),
            )
        )
    return results

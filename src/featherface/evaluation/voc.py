"""AP@0.5 (VOC all-point), recall and landmark NME on any labelled set (RetinaFace label layout)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from featherface.data.labels import ImageAnnotation
from featherface.detection.postprocess import Detections
from featherface.evaluation.widerface import voc_ap


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Continuous-coordinate IoU matrix of xyxy boxes ``(A, 4)`` x ``(B, 4)``."""
    w = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    h = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = w * h
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def match_detections(
    gt_boxes: np.ndarray, det_boxes: np.ndarray, det_scores: np.ndarray, iou_threshold: float = 0.5
) -> np.ndarray:
    """For each detection, the index of the face it finds, or -1 (a false positive).

    Detections are visited by decreasing score; each takes its highest-IoU face, and is a false positive if that
    IoU is below the threshold or the face was already found (VOC's rule).
    """
    matches = np.full(len(det_boxes), -1, dtype=np.int64)
    if len(det_boxes) == 0 or len(gt_boxes) == 0:
        return matches
    overlaps = _iou(det_boxes, gt_boxes)
    taken = np.zeros(len(gt_boxes), dtype=bool)
    for d in np.argsort(-det_scores, kind="stable"):
        g = int(overlaps[d].argmax())
        if overlaps[d, g] >= iou_threshold and not taken[g]:
            taken[g] = True
            matches[d] = g
    return matches


@dataclass
class DatasetResult:
    """``ap`` over all detections given; ``recall``, ``precision`` and ``nme`` at ``score_threshold``."""

    ap: float
    ap75: float
    ap50_95: float
    recall: float
    precision: float
    nme: float | None
    num_faces: int
    score_threshold: float
    pr_precision: np.ndarray
    pr_recall: np.ndarray
    per_image: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ap": round(self.ap, 6),
            "ap75": round(self.ap75, 6),
            "ap50_95": round(self.ap50_95, 6),
            "recall": round(self.recall, 6),
            "precision": round(self.precision, 6),
            "nme": None if self.nme is None else round(self.nme, 6),
            "num_faces": self.num_faces,
            "score_threshold": self.score_threshold,
            "per_image": self.per_image,
        }


# COCO's localisation-sensitive summary: AP averaged over IoU thresholds 0.50, 0.55, ..., 0.95.
COCO_IOUS = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))


def pr_curve(scores: list[np.ndarray], hits: list[np.ndarray], num_faces: int) -> tuple[float, np.ndarray, np.ndarray]:
    """VOC all-point AP of pooled detections ``(ap, recall, precision)``: per image, scores and whether each
    detection found a face."""
    all_scores = np.concatenate(scores) if scores else np.zeros(0)
    all_hits = np.concatenate(hits) if hits else np.zeros(0, dtype=bool)
    order = np.argsort(-all_scores, kind="stable")
    tp_cum = np.cumsum(all_hits[order])
    fp_cum = np.cumsum(~all_hits[order])
    recall = tp_cum / max(num_faces, 1)
    precision = tp_cum / np.maximum(tp_cum + fp_cum, 1)
    return (voc_ap(recall, precision) if len(order) else 0.0), recall, precision


def average_precision(annotations: list[ImageAnnotation], detections: list[Detections], iou_threshold: float) -> float:
    """VOC all-point AP at one IoU threshold."""
    hits = [
        match_detections(a.boxes, d.boxes, d.scores, iou_threshold) >= 0
        for a, d in zip(annotations, detections, strict=True)
    ]
    return pr_curve([d.scores for d in detections], hits, sum(len(a) for a in annotations))[0]


def evaluate_dataset(
    annotations: list[ImageAnnotation],
    detections: list[Detections],
    iou_threshold: float = 0.5,
    score_threshold: float = 0.5,
) -> DatasetResult:
    """Score detections (run at a low threshold, e.g. 0.02, so the PR curve is complete) against labels."""
    if len(annotations) != len(detections):
        raise ValueError(f"{len(annotations)} labelled images but {len(detections)} detection results")
    scores, hits, nme_values, per_image = [], [], [], []
    num_faces = 0
    for ann, det in zip(annotations, detections, strict=True):
        matches = match_detections(ann.boxes, det.boxes, det.scores, iou_threshold)
        num_faces += len(ann)
        scores.append(det.scores)
        hits.append(matches >= 0)
        confident = det.scores >= score_threshold
        for d in np.flatnonzero(confident & (matches >= 0)):
            g = matches[d]
            if ann.has_landmarks[g]:
                x1, y1, x2, y2 = ann.boxes[g]
                diagonal = float(np.hypot(x2 - x1, y2 - y1))
                error = np.linalg.norm(det.landmarks[d] - ann.landmarks[g], axis=1).mean()
                nme_values.append(float(error) / diagonal)
        tp = int((confident & (matches >= 0)).sum())
        per_image.append(
            {
                "image": ann.name,
                "faces": len(ann),
                "detections": int(confident.sum()),
                "true_positives": tp,
                "false_positives": int(confident.sum()) - tp,
                "missed": len(ann) - tp,
            }
        )
    all_scores = np.concatenate(scores) if scores else np.zeros(0)
    all_hits = np.concatenate(hits) if hits else np.zeros(0, dtype=bool)
    ap, pr_recall, pr_precision = pr_curve(scores, hits, num_faces)
    ap_by_iou = [ap if t == iou_threshold else average_precision(annotations, detections, t) for t in COCO_IOUS]
    confident = all_scores >= score_threshold
    tp = int((all_hits & confident).sum())
    return DatasetResult(
        ap=ap,
        ap75=ap_by_iou[COCO_IOUS.index(0.75)],
        ap50_95=float(np.mean(ap_by_iou)),
        recall=tp / max(num_faces, 1),
        precision=tp / max(int(confident.sum()), 1),
        nme=float(np.mean(nme_values)) if nme_values else None,
        num_faces=num_faces,
        score_threshold=score_threshold,
        pr_precision=pr_precision,
        pr_recall=pr_recall,
        per_image=per_image,
    )

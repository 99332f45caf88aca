"""AP@0.5 (VOC all-point), recall and landmark NME on any labelled set, with ignored faces (VOC ``difficult``)."""

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


# match_detections' verdicts besides a face index
MISSED = -1  # a false positive
IGNORED = -2  # best match is an ignored face: neither hit nor false positive


def match_detections(
    gt_boxes: np.ndarray,
    det_boxes: np.ndarray,
    det_scores: np.ndarray,
    iou_threshold: float = 0.5,
    ignored_boxes: np.ndarray | None = None,
) -> np.ndarray:
    """For each detection, the index of the face it finds, ``MISSED`` (-1, a false positive) or ``IGNORED`` (-2).

    Detections are visited by decreasing score; each takes its highest-IoU box among the faces and the ignored
    boxes ``(M, 4)``. It is ``IGNORED`` if that box is an ignored one with IoU >= the threshold, and a false
    positive if the IoU is below the threshold or the face was already found (VOC's rule, ``difficult`` included).
    """
    matches = np.full(len(det_boxes), MISSED, dtype=np.int64)
    ignored = np.zeros((0, 4), np.float32) if ignored_boxes is None else ignored_boxes
    candidates = np.concatenate([gt_boxes.reshape(-1, 4), ignored.reshape(-1, 4)]).astype(np.float32)
    if len(det_boxes) == 0 or len(candidates) == 0:
        return matches
    overlaps = _iou(det_boxes, candidates)
    num_faces = len(gt_boxes)
    taken = np.zeros(num_faces, dtype=bool)
    for d in np.argsort(-det_scores, kind="stable"):
        g = int(overlaps[d].argmax())
        if overlaps[d, g] < iou_threshold:
            continue
        if g >= num_faces:
            matches[d] = IGNORED
        elif not taken[g]:
            taken[g] = True
            matches[d] = g
    return matches


def _match(ann: ImageAnnotation, det: Detections, iou_threshold: float) -> np.ndarray:
    return match_detections(ann.boxes, det.boxes, det.scores, iou_threshold, ann.ignored_boxes)


def format_metric(value: float | None) -> str:
    """An AP, recall or NME as printed and reported: 4 decimals, or n/a where undefined (a set without faces)."""
    return "n/a" if value is None else f"{value:.4f}"


@dataclass
class DatasetResult:
    """``ap`` (at IoU ``iou_threshold``) over all detections given; ``recall``, ``precision`` and ``nme`` at
    ``score_threshold``; ``ap75`` and ``ap50_95`` at their fixed IoUs. A set without faces leaves AP and recall
    undefined: None, not 0 (which would read as "found none of them")."""

    ap: float | None
    ap75: float | None
    ap50_95: float | None
    recall: float | None
    precision: float
    nme: float | None
    num_faces: int
    score_threshold: float
    pr_precision: np.ndarray
    pr_recall: np.ndarray
    per_image: list[dict[str, Any]] = field(default_factory=list)
    iou_threshold: float = 0.5

    def to_dict(self) -> dict[str, Any]:
        def rounded(value: float | None) -> float | None:
            return None if value is None else round(value, 6)

        return {
            "ap": rounded(self.ap),
            "iou": self.iou_threshold,
            "ap75": rounded(self.ap75),
            "ap50_95": rounded(self.ap50_95),
            "recall": rounded(self.recall),
            "precision": round(self.precision, 6),
            "nme": rounded(self.nme),
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
    scores, hits = [], []
    for ann, det in zip(annotations, detections, strict=True):
        matches = _match(ann, det, iou_threshold)
        counted = matches != IGNORED
        scores.append(det.scores[counted])
        hits.append(matches[counted] >= 0)
    return pr_curve(scores, hits, sum(len(a) for a in annotations))[0]


def evaluate_dataset(
    annotations: list[ImageAnnotation],
    detections: list[Detections],
    iou_threshold: float = 0.5,
    score_threshold: float = 0.5,
) -> DatasetResult:
    """Score detections (run at a low threshold, e.g. 0.02, so the PR curve is complete) against labels.

    ``iou_threshold`` is the IoU a detection needs with a face to find it (``ap`` is AP at it); detections on a
    label's ``ignored_boxes`` are left out of every figure (``per_image`` ``detections`` included).
    """
    if len(annotations) != len(detections):
        raise ValueError(f"{len(annotations)} labelled images but {len(detections)} detection results")
    scores, hits, nme_values, per_image = [], [], [], []
    num_faces = 0
    for ann, det in zip(annotations, detections, strict=True):
        matches = _match(ann, det, iou_threshold)
        num_faces += len(ann)
        counted = matches != IGNORED
        scores.append(det.scores[counted])
        hits.append(matches[counted] >= 0)
        confident = (det.scores >= score_threshold) & counted
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
    defined = num_faces > 0
    return DatasetResult(
        ap=ap if defined else None,
        ap75=ap_by_iou[COCO_IOUS.index(0.75)] if defined else None,
        ap50_95=float(np.mean(ap_by_iou)) if defined else None,
        recall=tp / num_faces if defined else None,
        precision=tp / max(int(confident.sum()), 1),
        nme=float(np.mean(nme_values)) if nme_values else None,
        num_faces=num_faces,
        score_threshold=score_threshold,
        pr_precision=pr_precision,
        pr_recall=pr_recall,
        per_image=per_image,
        iou_threshold=iou_threshold,
    )

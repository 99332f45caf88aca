"""Box and landmark coding, IoU and NMS: the detection core as plain functions (no torchvision).

One implementation for both array kinds: every function takes numpy arrays or torch tensors and returns the
kind it was given. Training matches priors on torch tensors (on the GPU too); inference decodes and suppresses
on numpy arrays, so running an ONNX model never imports torch.

Conventions: boxes are ``(x1, y1, x2, y2)`` (``xyxy``) or ``(cx, cy, w, h)`` (``cxcywh``), continuous
coordinates (area = w * h, no +1). All functions but :func:`nms` broadcast over leading dimensions.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import TypeVar

import numpy as np

Array = TypeVar("Array")  # np.ndarray or torch.Tensor; results are of the argument's kind


def _xp(array) -> ModuleType:
    """The module that operates on ``array``: numpy, or torch (already imported by whoever made the tensor)."""
    return np if isinstance(array, np.ndarray) else sys.modules["torch"]


def cxcywh_to_xyxy(boxes: Array) -> Array:
    """``(..., 4)`` centre-size to corners."""
    half = boxes[..., 2:] / 2
    return _xp(boxes).concatenate([boxes[..., :2] - half, boxes[..., :2] + half], axis=-1)


def xyxy_to_cxcywh(boxes: Array) -> Array:
    """``(..., 4)`` corners to centre-size."""
    centre = (boxes[..., :2] + boxes[..., 2:]) / 2
    return _xp(boxes).concatenate([centre, boxes[..., 2:] - boxes[..., :2]], axis=-1)


def box_area(boxes: Array) -> Array:
    """``(..., 4)`` xyxy -> ``(...)`` areas; inverted boxes have area 0."""
    return (boxes[..., 2] - boxes[..., 0]).clip(min=0) * (boxes[..., 3] - boxes[..., 1]).clip(min=0)


def box_iou(a: Array, b: Array) -> Array:
    """IoU matrix ``(A, B)`` of xyxy boxes ``a (A, 4)`` and ``b (B, 4)``; 0 where both areas are 0."""
    xp = _xp(a)
    top_left = xp.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = xp.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (bottom_right - top_left).clip(min=0).prod(-1)
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    return xp.where(union > 0, inter / union.clip(min=xp.finfo(union.dtype).tiny), 0.0)


def encode_boxes(matched: Array, priors: Array, variances: tuple[float, float]) -> Array:
    """RetinaFace box targets: xyxy ``matched (..., 4)`` against cxcywh ``priors (..., 4)`` -> deltas."""
    xp = _xp(matched)
    centre = ((matched[..., :2] + matched[..., 2:]) / 2 - priors[..., :2]) / (variances[0] * priors[..., 2:])
    size = xp.log((matched[..., 2:] - matched[..., :2]) / priors[..., 2:]) / variances[1]
    return xp.concatenate([centre, size], axis=-1)


def decode_boxes(deltas: Array, priors: Array, variances: tuple[float, float]) -> Array:
    """Inverse of :func:`encode_boxes`: deltas ``(..., 4)`` -> xyxy in the priors' (normalised) units."""
    xp = _xp(deltas)
    centre = priors[..., :2] + deltas[..., :2] * variances[0] * priors[..., 2:]
    size = priors[..., 2:] * xp.exp(deltas[..., 2:] * variances[1])
    return xp.concatenate([centre - size / 2, centre + size / 2], axis=-1)


def encode_landmarks(landmarks: Array, priors: Array, variances: tuple[float, float]) -> Array:
    """Points ``(..., 10)`` as (x, y) x 5 -> offsets from the prior centre in units of ``var0 * prior size``."""
    points = landmarks.reshape(*landmarks.shape[:-1], landmarks.shape[-1] // 2, 2)
    offsets = (points - priors[..., None, :2]) / (variances[0] * priors[..., None, 2:])
    return offsets.reshape(landmarks.shape)


def decode_landmarks(deltas: Array, priors: Array, variances: tuple[float, float]) -> Array:
    """Inverse of :func:`encode_landmarks`: ``(..., 10)`` deltas -> points in the priors' units."""
    offsets = deltas.reshape(*deltas.shape[:-1], deltas.shape[-1] // 2, 2)
    points = priors[..., None, :2] + offsets * variances[0] * priors[..., None, 2:]
    return points.reshape(deltas.shape)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, max_kept: int | None = None) -> np.ndarray:
    """Greedy non-maximum suppression of xyxy ``boxes (N, 4)`` (numpy).

    Visits boxes by decreasing score (ties: lower index first) and keeps a box unless it overlaps a kept box
    with IoU > ``iou_threshold`` (:func:`box_iou`'s arithmetic); stops after ``max_kept`` boxes. Returns the kept
    indices ``(K,)`` in that order. Each kept box suppresses the boxes still in play in one vector step, so the
    cost is O(kept x candidates), never the O(candidates²) of a full IoU matrix.
    """
    order = np.argsort(-scores, kind="stable")
    x1, y1, x2, y2 = (np.ascontiguousarray(boxes[order, k]) for k in range(4))
    areas = box_area(boxes[order])
    tiny = np.finfo(areas.dtype).tiny
    alive = np.arange(len(order))  # positions in ``order`` still in play, best first
    limit = len(order) if max_kept is None else max_kept
    kept = []
    while alive.size and len(kept) < limit:
        best, alive = alive[0], alive[1:]
        kept.append(best)
        width = np.maximum(np.minimum(x2[best], x2[alive]) - np.maximum(x1[best], x1[alive]), 0)
        height = np.maximum(np.minimum(y2[best], y2[alive]) - np.maximum(y1[best], y1[alive]), 0)
        inter = width * height
        union = areas[best] + areas[alive] - inter
        overlaps = np.where(union > 0, inter / np.maximum(union, tiny), 0)
        alive = alive[~(overlaps > iou_threshold)]
    return order[np.array(kept, dtype=np.int64)]

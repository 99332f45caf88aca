"""Box and landmark coding, IoU and NMS: the detection core, in plain torch (no torchvision).

Conventions: boxes are ``(x1, y1, x2, y2)`` (``xyxy``) or ``(cx, cy, w, h)`` (``cxcywh``), continuous
coordinates (area = w * h, no +1). All functions broadcast over leading dimensions.
"""

from __future__ import annotations

import torch
from torch import Tensor


def cxcywh_to_xyxy(boxes: Tensor) -> Tensor:
    """``(..., 4)`` centre-size to corners."""
    half = boxes[..., 2:] / 2
    return torch.cat([boxes[..., :2] - half, boxes[..., :2] + half], dim=-1)


def xyxy_to_cxcywh(boxes: Tensor) -> Tensor:
    """``(..., 4)`` corners to centre-size."""
    return torch.cat([(boxes[..., :2] + boxes[..., 2:]) / 2, boxes[..., 2:] - boxes[..., :2]], dim=-1)


def box_area(boxes: Tensor) -> Tensor:
    return (boxes[..., 2] - boxes[..., 0]).clamp(min=0) * (boxes[..., 3] - boxes[..., 1]).clamp(min=0)


def box_iou(a: Tensor, b: Tensor) -> Tensor:
    """IoU matrix ``(A, B)`` of xyxy boxes ``a (A, 4)`` and ``b (B, 4)``; 0 where both areas are 0."""
    top_left = torch.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (bottom_right - top_left).clamp(min=0).prod(dim=-1)
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    return torch.where(union > 0, inter / union.clamp(min=torch.finfo(a.dtype).tiny), torch.zeros_like(inter))


def encode_boxes(matched: Tensor, priors: Tensor, variances: tuple[float, float]) -> Tensor:
    """RetinaFace box targets: xyxy ``matched (..., 4)`` against cxcywh ``priors (..., 4)`` -> deltas."""
    centre = ((matched[..., :2] + matched[..., 2:]) / 2 - priors[..., :2]) / (variances[0] * priors[..., 2:])
    size = torch.log((matched[..., 2:] - matched[..., :2]) / priors[..., 2:]) / variances[1]
    return torch.cat([centre, size], dim=-1)


def decode_boxes(deltas: Tensor, priors: Tensor, variances: tuple[float, float]) -> Tensor:
    """Inverse of :func:`encode_boxes`: deltas ``(..., 4)`` -> xyxy in the priors' (normalised) units."""
    centre = priors[..., :2] + deltas[..., :2] * variances[0] * priors[..., 2:]
    size = priors[..., 2:] * torch.exp(deltas[..., 2:] * variances[1])
    return torch.cat([centre - size / 2, centre + size / 2], dim=-1)


def encode_landmarks(landmarks: Tensor, priors: Tensor, variances: tuple[float, float]) -> Tensor:
    """Points ``(..., 10)`` as (x, y) x 5 -> offsets from the prior centre in units of ``var0 * prior size``."""
    points = landmarks.reshape(*landmarks.shape[:-1], landmarks.shape[-1] // 2, 2)
    offsets = (points - priors[..., None, :2]) / (variances[0] * priors[..., None, 2:])
    return offsets.reshape(landmarks.shape)


def decode_landmarks(deltas: Tensor, priors: Tensor, variances: tuple[float, float]) -> Tensor:
    """Inverse of :func:`encode_landmarks`: ``(..., 10)`` deltas -> points in the priors' units."""
    offsets = deltas.reshape(*deltas.shape[:-1], deltas.shape[-1] // 2, 2)
    points = priors[..., None, :2] + offsets * variances[0] * priors[..., None, 2:]
    return points.reshape(deltas.shape)


_NMS_CHUNK = 1024


def nms(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """Greedy non-maximum suppression.

    Visits boxes by decreasing score (ties: lower index first) and keeps a box unless it overlaps a
    kept box with IoU > ``iou_threshold``. Returns the kept indices ``(K,)`` in that order.
    """
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    order = torch.sort(scores, descending=True, stable=True).indices
    ranked = boxes[order]
    # Row chunks bound the float temporaries to ~(chunk x n) while the bool matrix stays n x n bytes.
    overlaps = torch.cat(
        [(box_iou(ranked[i : i + _NMS_CHUNK], ranked) > iou_threshold).cpu() for i in range(0, len(ranked), _NMS_CHUNK)]
    )
    n = order.numel()
    suppressed = torch.zeros(n, dtype=torch.bool)
    keep = []
    # Each kept box suppresses its later neighbours in one vector op; only kept boxes cost a Python step.
    for i in range(n):
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= overlaps[i]
    return order[torch.tensor(keep, dtype=torch.long, device=order.device)]

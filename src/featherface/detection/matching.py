"""Assigning ground-truth faces to priors (RetinaFace / SSD matching) and encoding the targets."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from featherface.detection.boxes import box_iou, cxcywh_to_xyxy, encode_boxes, encode_landmarks

# SPEC section 3: a prior is positive at IoU >= 0.35 with a face; each face also keeps its best prior,
# unless even that overlaps less than 0.2 (Pytorch_Retinaface's floor: such a face fits no anchor).
MATCH_IOU = 0.35
BEST_PRIOR_MIN_IOU = 0.2


@dataclass
class Targets:
    """One image's faces: ``boxes (G, 4)`` xyxy and ``landmarks (G, 10)`` normalised, ``has_landmarks (G,)``."""

    boxes: Tensor
    landmarks: Tensor
    has_landmarks: Tensor

    def to(self, device: torch.device | str) -> Targets:
        return Targets(self.boxes.to(device), self.landmarks.to(device), self.has_landmarks.to(device))


@dataclass
class PriorTargets:
    """Per-prior training targets for one image, ``P`` priors."""

    box: Tensor  # (P, 4) encoded deltas (meaningful where labels == 1)
    labels: Tensor  # (P,) long: 1 face, 0 background
    landmarks: Tensor  # (P, 10) encoded deltas
    landmark_mask: Tensor  # (P,) bool: positive and its face has landmarks


def assign_targets(
    boxes: Tensor,
    landmarks: Tensor,
    has_landmarks: Tensor,
    priors: Tensor,
    variances: tuple[float, float],
    iou_threshold: float = MATCH_IOU,
) -> PriorTargets:
    """Match faces ``boxes (G, 4)`` (xyxy, normalised), ``landmarks (G, 10)``, ``has_landmarks (G,)``
    to ``priors (P, 4)`` (cxcywh, normalised)."""
    num_priors = priors.shape[0]
    device = priors.device
    if boxes.numel() == 0:
        return PriorTargets(
            torch.zeros(num_priors, 4, device=device),
            torch.zeros(num_priors, dtype=torch.long, device=device),
            torch.zeros(num_priors, 10, device=device),
            torch.zeros(num_priors, dtype=torch.bool, device=device),
        )
    overlaps = box_iou(boxes, cxcywh_to_xyxy(priors))  # (G, P)
    best_prior_iou, best_prior = overlaps.max(dim=1)  # per face
    best_face_iou, best_face = overlaps.max(dim=0)  # per prior
    forced = best_prior_iou >= BEST_PRIOR_MIN_IOU
    # every face keeps its best prior (later faces win a contested prior, as in Pytorch_Retinaface)
    for g in torch.nonzero(forced).flatten().tolist():
        best_face[best_prior[g]] = g
        best_face_iou[best_prior[g]] = 2.0
    labels = (best_face_iou >= iou_threshold).long()
    matched_boxes = boxes[best_face]
    box_targets = encode_boxes(matched_boxes, priors, variances)
    landmark_targets = encode_landmarks(landmarks[best_face], priors, variances)
    landmark_mask = (labels > 0) & has_landmarks[best_face]
    return PriorTargets(box_targets, labels, landmark_targets, landmark_mask)

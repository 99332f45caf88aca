"""RetinaFace's MultiBox loss: cross-entropy with 7:1 hard negative mining, smooth-L1 boxes and landmarks."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from featherface.config_schema import Config, rule
from featherface.detection.matching import MATCH_IOU, PriorTargets, Targets, assign_targets


@dataclass
class MultiBoxConfig(Config):
    """SPEC section 3 / Pytorch_Retinaface's defaults."""

    match_iou: float = field(default=MATCH_IOU, metadata=rule(gt=0, le=1))
    neg_pos_ratio: int = field(default=7, metadata=rule(ge=1))
    box_weight: float = field(default=2.0, metadata=rule(ge=0))
    landmark_weight: float = field(default=1.0, metadata=rule(ge=0))


def stack_targets(
    targets: list[Targets], priors: Tensor, variances: tuple[float, float], match_iou: float = MATCH_IOU
) -> PriorTargets:
    """Per-prior targets for a batch: tensors ``(N, P, ...)``."""
    parts = [assign_targets(t.boxes, t.landmarks, t.has_landmarks, priors, variances, match_iou) for t in targets]
    return PriorTargets(
        torch.stack([p.box for p in parts]),
        torch.stack([p.labels for p in parts]),
        torch.stack([p.landmarks for p in parts]),
        torch.stack([p.landmark_mask for p in parts]),
    )


def hard_negative_mask(class_logits: Tensor, labels: Tensor, neg_pos_ratio: int) -> Tensor:
    """``(N, P)`` bool: per image the ``ratio x positives`` background priors with the highest loss."""
    with torch.no_grad():
        background_loss = torch.logsumexp(class_logits, dim=-1) - class_logits[..., 0]
        background_loss = background_loss.masked_fill(labels > 0, -1.0)
        order = background_loss.argsort(dim=1, descending=True)
        rank = order.argsort(dim=1)
        num_pos = (labels > 0).sum(dim=1, keepdim=True)
        num_neg = (neg_pos_ratio * num_pos).clamp(max=labels.shape[1] - 1)
        # an image without faces still contributes its hardest negatives (as many as one face would)
        num_neg = torch.where(num_pos > 0, num_neg, torch.full_like(num_neg, neg_pos_ratio))
        return (rank < num_neg) & (labels == 0)


class MultiBoxLoss(torch.nn.Module):
    """``forward(outputs, prior_targets) -> {"box", "cls", "landmarks", "total"}``, each averaged per positive."""

    def __init__(self, config: MultiBoxConfig | None = None) -> None:
        super().__init__()
        self.config = config or MultiBoxConfig()

    def forward(self, outputs: tuple[Tensor, Tensor, Tensor], targets: PriorTargets) -> dict[str, Tensor]:
        box_deltas, class_logits, landmark_deltas = outputs
        positive = targets.labels > 0
        num_pos = positive.sum().clamp(min=1).float()
        num_landmarks = targets.landmark_mask.sum().clamp(min=1).float()
        box_loss = F.smooth_l1_loss(box_deltas[positive], targets.box[positive], reduction="sum") / num_pos
        landmark_loss = (
            F.smooth_l1_loss(
                landmark_deltas[targets.landmark_mask], targets.landmarks[targets.landmark_mask], reduction="sum"
            )
            / num_landmarks
        )
        chosen = positive | hard_negative_mask(class_logits, targets.labels, self.config.neg_pos_ratio)
        cls_loss = F.cross_entropy(class_logits[chosen], targets.labels[chosen], reduction="sum") / num_pos
        total = self.config.box_weight * box_loss + cls_loss + self.config.landmark_weight * landmark_loss
        return {"box": box_loss, "cls": cls_loss, "landmarks": landmark_loss, "total": total}

"""Knowledge distillation from a frozen teacher with the same prior layout (SPEC section 4).

``L = alpha * L_distill + (1 - alpha) * L_task`` with three distillation terms per prior:

- class: ``KL(teacher_T || student_T) * T^2`` (Hinton et al.'s soft targets at temperature T, averaged over
  all priors, background included: the teacher's "this is not a face" is knowledge too);
- box and landmarks: MSE between raw deltas, on the priors where the teacher is confident
  (face probability >= ``confident``) or the prior is a positive match of a labelled face.

The three terms are combined by uncertainty weighting (Kendall et al. 2018), ``exp(-s_i) * L_i + s_i`` with
learnable ``s_i``: the ``+ s_i`` term makes a weight that runs to zero cost more than it saves, so weights cannot
collapse; ``s_i`` is clamped to ``[-S_MAX, S_MAX]`` so they also stay bounded. The landmark weight starts lower
(``exp(-s) = 0.25``), the seed's "edge optimisation".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from featherface.config_schema import Config, rule

TERMS = ("cls", "box", "landmarks")
S_MAX = 4.0


@dataclass
class DistillConfig(Config):
    temperature: float = field(default=4.0, metadata=rule(gt=0))
    alpha: float = field(default=0.7, metadata=rule(ge=0, le=1))
    # teacher face probability that makes a prior carry box/landmark targets
    confident: float = field(default=0.5, metadata=rule(ge=0, le=1))
    # cls, box, landmarks
    initial_weights: tuple[float, float, float] = field(default=(1.0, 1.0, 0.25), metadata=rule(gt=0))
    # Unlabelled images: the teacher's faces scoring at least this (at the image's original size, after NMS) are
    # hard targets for the task share of the loss, so the student learns the teacher's decisions as well as its
    # soft scores; None: soft targets alone (alpha = 1).
    teacher_label_score: float | None = field(default=0.5, metadata=rule(gt=0, le=1))
    # Those hard targets from several looks of the teacher, fused (weighted boxes fusion,
    # featherface.data.pseudo.fuse_detections): at these scales of each photo's original size, each also mirrored
    # if teacher_label_flip. Default: one look at the original size. Validation on a pool's hold-out always uses the
    # one look, so teacher-agreement AP stays comparable between runs.
    teacher_label_scales: list[float] = field(default_factory=lambda: [1.0], metadata=rule(gt=0, le=4))
    teacher_label_flip: bool = False
    # Feature distillation (FitNets, Romero et al. 2015): the weight of the loss between the teacher's head inputs
    # (its SSH outputs, strides 8/16/32) and the student's, mapped to the teacher's width by 1x1 adapters that are
    # trained with the student and dropped after training. 0 turns it off.
    feature_weight: float = field(default=0.0, metadata=rule(ge=0, le=100))


def feature_distance(student: list[Tensor], teacher: list[Tensor], adapters: nn.ModuleList) -> Tensor:
    """Mean over levels of ``||adapter(s) - t||^2 / ||t||^2`` (per element means): scale-free, so levels and
    teachers of different feature magnitudes weigh alike. Features ``(N, C, H, W)`` per level."""
    terms = []
    for s, t, adapter in zip(student, teacher, adapters, strict=True):
        t = t.detach().float()
        terms.append(F.mse_loss(adapter(s.float()), t) / t.pow(2).mean().clamp_min(1e-6))
    return torch.stack(terms).mean()


def soft_target_kl(student_logits: Tensor, teacher_logits: Tensor, temperature: float) -> Tensor:
    """``KL(teacher_T || student_T) * T^2`` averaged over priors; logits ``(..., C)``."""
    t = temperature
    student = F.log_softmax(student_logits / t, dim=-1)
    teacher = F.log_softmax(teacher_logits / t, dim=-1)
    kl = (teacher.exp() * (teacher - student)).sum(dim=-1)
    return kl.mean() * t * t


class DistillationLoss(nn.Module):
    """Distillation terms and their learnable weights; ``forward`` returns named losses, ``total`` weighted."""

    def __init__(self, config: DistillConfig | None = None) -> None:
        super().__init__()
        self.config = config or DistillConfig()
        initial = torch.tensor([-math.log(w) for w in self.config.initial_weights])
        self.log_variance = nn.Parameter(initial)

    def weights(self) -> Tensor:
        return torch.exp(-self.log_variance.clamp(-S_MAX, S_MAX))

    def forward(
        self,
        student: tuple[Tensor, Tensor, Tensor],
        teacher: tuple[Tensor, Tensor, Tensor],
        positive: Tensor | None = None,
    ) -> dict[str, Tensor]:
        s_box, s_cls, s_lmk = student
        t_box, t_cls, t_lmk = teacher
        mask = torch.softmax(t_cls.float(), dim=-1)[..., 1] >= self.config.confident
        if positive is not None:
            mask = mask | positive
        zero = s_box.sum() * 0.0
        terms = {
            "cls": soft_target_kl(s_cls.float(), t_cls.float(), self.config.temperature),
            "box": F.mse_loss(s_box[mask].float(), t_box[mask].float()) if mask.any() else zero,
            "landmarks": F.mse_loss(s_lmk[mask].float(), t_lmk[mask].float()) if mask.any() else zero,
        }
        s = self.log_variance.clamp(-S_MAX, S_MAX)
        total = sum(torch.exp(-s[i]) * terms[name] + s[i] for i, name in enumerate(TERMS))
        return {**{f"distill_{k}": v for k, v in terms.items()}, "distill": total}

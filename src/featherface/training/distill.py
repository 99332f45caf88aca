"""Phase 1: the distillation objective for the trainer (frozen teacher, task loss mixed in by alpha)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from featherface.losses.distill import TERMS, DistillationLoss, DistillConfig
from featherface.losses.multibox import Targets
from featherface.models.detector_net import DetectorNet
from featherface.training.config import TrainConfig
from featherface.training.trainer import TaskObjective


class DistillObjective(nn.Module):
    """``alpha * distillation + (1 - alpha) * task``; with ``alpha == 1`` no labels are needed."""

    def __init__(self, teacher: DetectorNet, student: DetectorNet, train: TrainConfig, config: DistillConfig) -> None:
        super().__init__()
        if teacher.config.anchors != student.config.anchors:
            raise ValueError("teacher and student must share the prior layout (anchors)")
        # Kept out of the module tree: the teacher is neither optimised nor written into training checkpoints.
        self.__dict__["teacher"] = teacher.eval()
        for p in teacher.parameters():
            p.requires_grad_(False)
        self.task = TaskObjective(student, train)
        self.distill = DistillationLoss(config)
        self.alpha = config.alpha

    def train(self, mode: bool = True) -> DistillObjective:
        super().train(mode)
        self.teacher.eval()  # frozen: BN statistics must not move
        return self

    def forward(self, net: nn.Module, images: Tensor, targets: list[Targets]) -> dict[str, Tensor]:
        student = net(images)
        if next(self.teacher.parameters()).device != images.device:
            self.teacher.to(images.device)
        with torch.no_grad():
            teacher = self.teacher(images)
        losses: dict[str, Tensor] = {}
        positive = None
        if self.alpha < 1:
            prior_targets = self.task.prior_targets(images, targets)
            task = self.task.loss(student, prior_targets)
            losses.update({f"task_{k}": v for k, v in task.items() if k != "total"})
            positive = prior_targets.labels > 0
        distill = self.distill(student, teacher, positive)
        losses.update(distill)
        total = self.alpha * distill["distill"]
        if self.alpha < 1:
            total = total + (1 - self.alpha) * task["total"]
        losses["total"] = total
        return losses

    def log_values(self) -> dict[str, float]:
        """The current learnable weights, one CSV column each."""
        weights = self.distill.weights().detach().cpu().tolist()
        return {f"weight_{name}": round(w, 5) for name, w in zip(TERMS, weights, strict=True)}

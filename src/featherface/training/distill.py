"""Phase 1: the distillation objective for the trainer (frozen teacher, task loss mixed in by alpha)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn

from featherface.losses.distill import TERMS, DistillationLoss, DistillConfig
from featherface.losses.multibox import Targets
from featherface.models.detector_net import DetectorNet
from featherface.training.config import TrainConfig, load_section_config
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


def load_distill_config(source: str | None, **overrides: float | None) -> DistillConfig:
    """The ``distill:`` section of a config file or preset (defaults without one), then non-None overrides
    (``temperature``, ``alpha``, ``confident`` from the command line)."""
    config = load_section_config(DistillConfig, source, "distill", "distillation")
    given = {k: v for k, v in overrides.items() if v is not None}
    return DistillConfig.from_dict({**dataclasses.asdict(config), **given}, "command line") if given else config


def distillation_data(
    data: str,
    val: str | None,
    teacher: DetectorNet,
    teacher_name: str,
    config: DistillConfig,
    labels_dir: Path,
    strict: bool = False,
    say: Callable[[str], None] = print,
) -> tuple[list, list | None]:
    """Training and validation annotations for distillation.

    Labelled data are read as they are. A pool of unlabelled photos (``DIR``, ``DIR:train``) is labelled by the
    teacher's faces scoring at least ``config.teacher_label_score`` at each photo's original size (cached in
    ``labels_dir``): hard targets for the task share of the loss. Without a threshold, training uses the soft
    targets alone and ``config.alpha`` becomes 1. A pool's hold-out as ``val`` (``DIR:holdout``) is always
    labelled by the teacher: validation AP there is the student's agreement with its teacher.
    """
    from featherface.data.pseudo import TEACHER_SCORE_THRESHOLD, resolve_with_teacher
    from featherface.data.sample import resolve_distillation_data
    from featherface.detection.api import Detector

    detector = Detector.from_net(teacher, device="cpu")
    if config.teacher_label_score is None:
        train, labelled = resolve_distillation_data(data, strict=strict)
        if not labelled:
            config.alpha = 1.0
            say(f"{data}: unlabelled images, distilling from soft teacher targets only (alpha = 1)")
    else:
        train, pseudo = resolve_with_teacher(data, detector, teacher_name, labels_dir, config.teacher_label_score)
        if pseudo:
            faces = sum(len(a) for a in train)
            score = config.teacher_label_score
            say(f"{data}: {len(train)} unlabelled images, {faces} teacher faces (score >= {score})")
    if val is None:
        return train, None
    threshold = config.teacher_label_score or TEACHER_SCORE_THRESHOLD
    val_annotations, pseudo = resolve_with_teacher(val, detector, teacher_name, labels_dir, threshold)
    if pseudo:
        say(f"{val}: validation against the teacher's faces (teacher-agreement AP), {len(val_annotations)} images")
    return train, val_annotations

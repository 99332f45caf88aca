"""Phase 1: the distillation objective for the trainer (frozen teacher, task loss mixed in by alpha)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from featherface.config_schema import load_config
from featherface.detection.matching import Targets
from featherface.losses.distill import TERMS, DistillationLoss, DistillConfig, feature_distance
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
        self.feature_weight = config.feature_weight
        self.adapters: nn.ModuleList | None = None
        self._features: dict[str, list[Tensor]] = {"student": [], "teacher": []}
        self._recording = False  # only this objective's forward keeps features (not validation, not other users)
        if self.feature_weight > 0:
            # 1x1 adapters from the student's head-input width to the teacher's, per level; they live in the
            # objective (saved with the trainer state for --resume), never in the student's checkpoint.
            self.adapters = nn.ModuleList(
                nn.Conv2d(s.out_channels, t.out_channels, 1)
                for s, t in zip(student.config.context.levels, teacher.config.context.levels, strict=True)
            )
            # forward pre-hooks on the heads see each level's features, under DDP too (the wrapped module's
            # forward runs the same heads)
            for name, net in (("student", student), ("teacher", teacher)):
                for head in net.heads:
                    head.register_forward_pre_hook(self._keeper(name))

    def _keeper(self, name: str):
        def keep(_module: nn.Module, inputs: tuple[Tensor, ...]) -> None:
            if self._recording:
                self._features[name].append(inputs[0])

        return keep

    def train(self, mode: bool = True) -> DistillObjective:
        super().train(mode)
        self.teacher.eval()  # frozen: BN statistics must not move
        return self

    def forward(self, net: nn.Module, images: Tensor, targets: list[Targets]) -> dict[str, Tensor]:
        self._features = {"student": [], "teacher": []}
        self._recording = self.adapters is not None
        try:
            return self._losses(net, images, targets)
        finally:
            self._recording = False
            self._features = {"student": [], "teacher": []}  # no activations kept past the step

    def _losses(self, net: nn.Module, images: Tensor, targets: list[Targets]) -> dict[str, Tensor]:
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
        if self.adapters is not None:
            features = feature_distance(self._features["student"], self._features["teacher"], self.adapters)
            losses["distill_features"] = features
            total = total + self.feature_weight * features
        losses["total"] = total
        return losses

    def log_values(self) -> dict[str, float]:
        """The current learnable weights, one CSV column each."""
        weights = self.distill.weights().detach().cpu().tolist()
        return {f"weight_{name}": round(w, 5) for name, w in zip(TERMS, weights, strict=True)}


def load_distill_config(
    source: str | Path | None, overrides: Mapping[str, Any] | None = None, **flags: float | None
) -> DistillConfig:
    """The ``distill:`` section of a config file or preset (defaults without one), then ``overrides``: dotted keys
    as in :func:`featherface.config_schema.load_config` (``{"alpha": 0.9}``, None: not given). ``flags`` are the
    same as keywords, for today's ``cli.py`` (``temperature=args.temperature``): to go once it passes ``overrides``."""
    return load_config(source, "distill", DistillConfig, {**(overrides or {}), **flags})


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
    from featherface.data.pseudo import TEACHER_SCORE_THRESHOLD, TeacherPasses, resolve_with_teacher
    from featherface.data.sample import resolve_distillation_data
    from featherface.detection.api import Detector

    detector = Detector.from_net(teacher, device="cpu")
    if config.teacher_label_score is None:
        train, labelled = resolve_distillation_data(data, strict=strict)
        if not labelled:
            config.alpha = 1.0
            say(f"{data}: unlabelled images, distilling from soft teacher targets only (alpha = 1)")
    else:
        passes = TeacherPasses(tuple(config.teacher_label_scales), config.teacher_label_flip)
        train, pseudo = resolve_with_teacher(
            data, detector, teacher_name, labels_dir, config.teacher_label_score, passes=passes
        )
        if pseudo:
            faces = sum(len(a) for a in train)
            score = config.teacher_label_score
            looks = f", {passes.count} looks fused" if passes.count > 1 else ""
            say(f"{data}: {len(train)} unlabelled images, {faces} teacher faces (score >= {score}{looks})")
    if val is None:
        return train, None
    threshold = config.teacher_label_score or TEACHER_SCORE_THRESHOLD
    val_annotations, pseudo = resolve_with_teacher(val, detector, teacher_name, labels_dir, threshold)
    if pseudo:
        say(f"{val}: validation against the teacher's faces (teacher-agreement AP), {len(val_annotations)} images")
    return train, val_annotations

"""Training losses: RetinaFace's MultiBox loss and the distillation loss."""

from featherface.losses.multibox import MultiBoxConfig, MultiBoxLoss, Targets, stack_targets

__all__ = ["MultiBoxConfig", "MultiBoxLoss", "Targets", "stack_targets"]

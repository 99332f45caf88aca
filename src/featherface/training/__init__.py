"""Training: configuration, schedules, the loop (checkpoints, resume, DDP)."""

from featherface.training.config import TrainConfig, load_train_config
from featherface.training.trainer import TaskObjective, Trainer, TrainingError, TrainResult

__all__ = ["TaskObjective", "TrainConfig", "TrainResult", "Trainer", "TrainingError", "load_train_config"]

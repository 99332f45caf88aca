"""Training configuration: one dataclass, read from YAML presets or files, every default documented."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from featherface.config_schema import Config, load_config, rule
from featherface.data.transforms import AugmentConfig
from featherface.losses.multibox import MultiBoxConfig


@dataclass
class TrainConfig(Config):
    """Defaults are the WIDER FACE recipe of Pytorch_Retinaface (SGD 1e-3, batch 32, warm-up, step decay)."""

    model: str = "nano-b"
    data: str = "sample:train"
    val: str | None = None
    # Upper bounds on what sizes memory (a batch, the sampler's index list, worker processes): far above any recipe
    # (batch 32, 8 repeats, 4 workers), low enough that a typo fails at load, not after a half-made run.
    epochs: int = field(default=250, metadata=rule(ge=1))
    batch_size: int = field(default=32, metadata=rule(ge=1, le=1024))
    dataset_repeats: int = field(default=1, metadata=rule(ge=1, le=1000))  # visits per image per epoch (tiny sets)
    optimizer: str = field(default="sgd", metadata=rule(choices=("sgd", "adamw")))
    lr: float = field(default=1e-3, metadata=rule(gt=0))
    momentum: float = field(default=0.9, metadata=rule(ge=0, lt=1))
    weight_decay: float = field(default=5e-4, metadata=rule(ge=0))
    warmup_epochs: float = field(default=5.0, metadata=rule(ge=0))
    schedule: str = field(default="step", metadata=rule(choices=("step", "cosine")))
    lr_steps: list[int] = field(default_factory=lambda: [190, 220], metadata=rule(ge=0))
    lr_gamma: float = field(default=0.1, metadata=rule(gt=0))
    min_lr_ratio: float = field(default=0.01, metadata=rule(ge=0, le=1))  # cosine floor, as a fraction of lr
    grad_clip: float | None = field(default=None, metadata=rule(gt=0))
    workers: int = field(default=2, metadata=rule(ge=0, le=256))
    seed: int = 0
    amp: bool = True  # CUDA only
    # Channels-last tensors (NHWC) for the networks and the batches: a distillation step on 2 CPU cores runs 1.2x
    # the crops/s of NCHW (benchmarks/distill_step.py); checkpoints are saved contiguous either way.
    channels_last: bool = False
    # A student whose backbone starts trained (the teacher's, issue 21) may lose what it knows in the first steps,
    # while the layers above it are still random: its learning rate as a share of ``lr`` (0 freezes its weights),
    # and whether its batch-norm statistics stay as loaded (its BN layers kept in eval mode while training).
    backbone_lr_scale: float = field(default=1.0, metadata=rule(ge=0, le=1))
    freeze_backbone_bn: bool = False
    val_every: int = field(default=1, metadata=rule(ge=1))
    val_score_threshold: float = field(default=0.5, metadata=rule(ge=0, le=1))
    max_minutes: float | None = field(default=None, metadata=rule(gt=0))
    strict: bool = False
    device: str = "auto"
    loss: MultiBoxConfig = field(default_factory=MultiBoxConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def load_train_config(source: str | Path | None, overrides: Mapping[str, Any] | None = None) -> TrainConfig:
    """A preset name (``sample``, ``widerface``, ``pool``), a YAML path (its ``train:`` section, or the whole file
    when it has no sections), or None (the dataclass defaults); then ``overrides``, dotted keys as in
    :func:`featherface.config_schema.load_config` (``{"epochs": 5, "loss.box_weight": 1.0}``, None: not given).
    Values are checked at load: errors name the file and the key."""
    return load_config(source, "train", TrainConfig, overrides)

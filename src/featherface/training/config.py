"""Training configuration: one dataclass, read from YAML presets or files, every default documented."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from featherface.data.transforms import AugmentConfig
from featherface.losses.multibox import MultiBoxConfig


@dataclass
class TrainConfig:
    """Defaults are the WIDER FACE recipe of Pytorch_Retinaface (SGD 1e-3, batch 32, warm-up, step decay)."""

    model: str = "nano-b"
    data: str = "sample:train"
    val: str | None = None
    epochs: int = 250
    batch_size: int = 32
    dataset_repeats: int = 1  # visits per image per epoch (tiny sets)
    optimizer: str = "sgd"  # sgd | adamw
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup_epochs: float = 5.0
    schedule: str = "step"  # step | cosine
    lr_steps: list[int] = field(default_factory=lambda: [190, 220])
    lr_gamma: float = 0.1
    min_lr_ratio: float = 0.01  # cosine floor, as a fraction of lr
    grad_clip: float | None = None
    workers: int = 2
    seed: int = 0
    amp: bool = True  # CUDA only
    val_every: int = 1
    val_score_threshold: float = 0.5
    max_minutes: float | None = None
    strict: bool = False
    device: str = "auto"
    loss: MultiBoxConfig = field(default_factory=MultiBoxConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        data = dict(data)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown training option(s): {', '.join(unknown)}")
        loss = MultiBoxConfig(**data.pop("loss", {}) or {})
        augment = dict(data.pop("augment", {}) or {})
        for key in ("crop_scale", "contrast_range", "saturation_range"):
            if key in augment:
                augment[key] = tuple(augment[key])
        return cls(**data, loss=loss, augment=AugmentConfig(**augment))


PRESETS = ("sample", "widerface", "pool")
CONFIG_SECTIONS = {"train", "prune", "distill", "pipeline"}


def preset_path(name: str) -> Path:
    return Path(str(resources.files("featherface.configs").joinpath(f"{name}.yaml")))


def read_config_file(source: str | Path) -> dict[str, Any]:
    """A preset name (``sample``, ``widerface``) or a YAML path, as a mapping; a clear error naming the file."""
    path = preset_path(str(source)) if str(source) in PRESETS else Path(source)
    if not path.is_file():
        raise ValueError(f"{source}: no such config file (or preset: {', '.join(PRESETS)})")
    try:
        loaded = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(loaded, dict):
        raise ValueError(f"{path}: expected a mapping of options")
    return loaded


def load_section(source: str | Path | None, section: str) -> dict[str, Any]:
    """One section (``prune``, ``distill``, ``pipeline``) of a config file or preset; empty without a source."""
    if source is None:
        return {}
    value = read_config_file(source).get(section) or {}
    if not isinstance(value, dict):
        raise ValueError(f"{source}: section {section}: expected a mapping of options")
    return value


def load_train_config(source: str | Path | None, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """A preset name (``sample``, ``widerface``), a YAML path, or None (the dataclass defaults), then overrides."""
    data: dict[str, Any] = {}
    if source is not None:
        loaded = read_config_file(source)
        # a file of sections takes its train: section; a flat mapping is the training options themselves
        data = loaded.get("train", {}) if set(loaded) & CONFIG_SECTIONS else loaded
    for key, value in (overrides or {}).items():
        if value is not None:
            data[key] = value
    try:
        return TrainConfig.from_dict(data)
    except TypeError as exc:
        raise ValueError(f"bad training option: {exc}") from None

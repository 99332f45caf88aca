"""What the pool pruning benchmarks (compare_pruning.py, ap_latency_curve.py) share: the pool recipe's teacher,
distillation objective, training settings and data, and the seeded subset of pool photos every run trains on."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from featherface.losses.distill import DistillConfig
from featherface.models.loader import load_model
from featherface.pruning.phases import PruneConfig, load_prune_config, seeded_subset
from featherface.training.config import TrainConfig, load_train_config
from featherface.training.distill import distillation_data, load_distill_config

RECIPE = "pool"  # src/featherface/configs/pool.yaml: crops, optimiser, distillation settings, search budget
POOL = "../shared/data/photos"
FACEMASK = "../shared/data/facemask"
TEACHER = "retinaface-mnet025"


@dataclass
class PoolPruning:
    """The recipe's pieces: ``common`` holds the keyword arguments every prune/soft_prune/finetune call takes."""

    train: TrainConfig
    distill: DistillConfig
    prune: PruneConfig
    subset: list
    holdout: list
    common: dict[str, Any]


def pool_pruning(seed: int, images: int, labels_dir: Path) -> PoolPruning:
    """The pool recipe with ``images`` seeded pool photos to train on (teacher labels cached in ``labels_dir``)."""
    teacher = load_model(TEACHER)
    distill = load_distill_config(RECIPE)
    train = load_train_config(RECIPE, {"data": f"{POOL}:train", "val": f"{POOL}:holdout", "seed": seed})
    pool, holdout = distillation_data(train.data, train.val, teacher, TEACHER, distill, labels_dir)
    subset = seeded_subset(pool, images, train.seed)
    common = {"val_annotations": holdout, "teacher": teacher, "resume": True, "train_annotations": subset,
              "distill": distill}  # fmt: skip
    return PoolPruning(train, distill, load_prune_config(RECIPE), subset, holdout, common)

"""Distillation on the photo pool vs on the sample set alone, at the same compute.

Both arms distil retinaface-mnet025 into a fresh nano-b with the pool recipe (configs/pool.yaml: crops, optimiser,
schedule, distillation settings) for the same number of optimiser steps: the sample arm repeats its 6 photos to the
pool's 3,689 images per epoch. Both are scored on data neither saw: facemask AP (IoU 0.5 and 0.3, all faces) and
teacher-agreement AP on the pool hold-out.

    .venv/bin/python benchmarks/pool_vs_sample.py --epochs 1 --out runs/pool-vs-sample

Writes OUT/ARM/ (the runs, resumable) and OUT/results.json; prints a markdown table.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from pathlib import Path

from featherface.data.pool import pool_images
from featherface.data.pseudo import TEACHER_SCORE_THRESHOLD, teacher_annotations
from featherface.data.sample import resolve_dataset
from featherface.detection.api import Detector
from featherface.evaluation.runner import evaluate_detector
from featherface.evaluation.voc import evaluate_dataset
from featherface.models.checkpoint import load_checkpoint
from featherface.models.zoo import create_model
from featherface.training.config import load_train_config
from featherface.training.distill import DistillObjective, distillation_data, load_distill_config
from featherface.training.trainer import Trainer

POOL = "../shared/data/photos"
ARMS = {"pool": f"{POOL}:train", "sample": "sample:train"}


def run_arm(name: str, data: str, epochs: int, out: Path, labels_dir: Path, steps_per_epoch_images: int | None) -> Path:
    teacher = create_model("retinaface-mnet025")
    distill = load_distill_config("pool")
    config = dataclasses.replace(load_train_config("pool"), data=data, val=f"{POOL}:holdout", epochs=epochs)
    run = out / name
    train, val = distillation_data(data, config.val, teacher, "retinaface-mnet025", distill, labels_dir)
    if steps_per_epoch_images:  # as many images per epoch as the pool arm: equal optimiser steps
        config = dataclasses.replace(config, dataset_repeats=math.ceil(steps_per_epoch_images / len(train)))
    student = create_model("nano-b")
    Trainer(
        student, config, run, resume=(run / "trainer_state.pt").is_file(),
        objective=DistillObjective(teacher, student, config, distill), train_annotations=train, val_annotations=val,
    ).fit()  # fmt: skip
    return run / "best.safetensors"


def score(checkpoint: Path, facemask: list, holdout: list) -> dict[str, float]:
    net, _ = load_checkpoint(checkpoint)
    detector = Detector.from_net(net, device="cpu")
    result, detections = evaluate_detector(detector, facemask, progress=False)  # one pass, scored at both IoUs
    row = {"facemask_ap50": round(result.ap, 4),
           "facemask_ap30": round(evaluate_dataset(facemask, detections, 0.3).ap, 4)}  # fmt: skip
    result, _ = evaluate_detector(detector, holdout, progress=False)
    row["teacher_agreement_ap"] = round(result.ap, 4)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=1, help="pool-sized epochs per arm (default 1)")
    parser.add_argument("--out", type=Path, default=Path("runs/pool-vs-sample"))
    parser.add_argument("--labels-dir", type=Path, default=Path("runs/teacher-labels"), help="teacher-label cache")
    args = parser.parse_args()
    pool_size = len(pool_images(POOL, "train"))
    checkpoints = {}
    for name, data in ARMS.items():
        images_per_epoch = None if name == "pool" else pool_size
        checkpoints[name] = run_arm(name, data, args.epochs, args.out, args.labels_dir, images_per_epoch)
    facemask = resolve_dataset("../shared/data/facemask")
    teacher = Detector.from_pretrained("retinaface-mnet025", device="cpu")
    holdout = teacher_annotations(teacher, pool_images(POOL, "holdout"), TEACHER_SCORE_THRESHOLD, progress=False)
    rows = {name: score(path, facemask, holdout) for name, path in checkpoints.items()}
    (args.out / "results.json").write_text(json.dumps({"epochs": args.epochs, "rows": rows}, indent=1))
    print("| distilled on | facemask AP@0.5 | facemask AP@0.3 | teacher-agreement AP (pool hold-out) |")
    print("|---|---:|---:|---:|")
    for name, row in rows.items():
        print(f"| {ARMS[name]} | {row['facemask_ap50']:.4f} | {row['facemask_ap30']:.4f} | "
              f"{row['teacher_agreement_ap']:.4f} |")  # fmt: skip


if __name__ == "__main__":
    main()

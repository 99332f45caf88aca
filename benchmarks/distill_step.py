"""Where one distillation step's time goes on the CPU, and what the cheap speed-ups buy (crops/s).

Usage: python benchmarks/distill_step.py [IMAGES_DIR] [--images 64] [--steps 8] [--threads 2] [--json F]

The pool recipe's step (`configs/pool.yaml`: 384-px crops, batch 16, AdamW, teacher retinaface-mnet025, student
nano-b, alpha 0.5 with the teacher's faces as hard targets) split into its parts, each timed alone (medians over
``--steps`` after one warm-up): decoding and augmenting a batch (the DataLoader's work, in this process), the
teacher's forward, the student's forward with the loss, backward, the optimiser step. Then whole steps under each
variant: channels-last memory format, bfloat16 autocast (where the CPU has it), the teacher under
``torch.inference_mode``. Run it on a quiet machine: its figures are only comparable within one run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from contextlib import nullcontext
from pathlib import Path

import torch

from featherface.data.dataset import FaceDataset, collate
from featherface.data.pool import list_images_recursive
from featherface.data.pseudo import teacher_annotations
from featherface.detection.api import Detector
from featherface.losses.distill import DistillConfig
from featherface.models.zoo import create_model
from featherface.training.config import load_train_config
from featherface.training.distill import DistillObjective, load_distill_config

SAMPLE = Path(__file__).resolve().parents[1] / "src" / "featherface" / "data" / "sample" / "images"


def _median_seconds(run, steps: int) -> float:
    run()  # warm-up: allocators, kernels
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("images", nargs="?", default=str(SAMPLE), help="a folder of photos (default: the sample set)")
    parser.add_argument("--images", dest="count", type=int, default=64, help="photos used (default 64)")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    train = load_train_config("pool", {"data": "unused"})
    distill: DistillConfig = load_distill_config("pool")
    teacher = create_model("retinaface-mnet025").eval()
    paths = list_images_recursive(args.images)[: args.count]
    annotations = teacher_annotations(Detector.from_net(teacher, device="cpu"), paths, distill.teacher_label_score)
    dataset = FaceDataset(annotations, train.augment, True, 0, 1, False)
    batch_size = train.batch_size
    order = iter(range(10**9))

    def load_batch():
        return collate([dataset[next(order) % len(dataset)] for _ in range(batch_size)])

    images, targets = load_batch()
    student = create_model("nano-b").train()
    objective = DistillObjective(teacher, student, train, distill)
    optimizer = torch.optim.AdamW(list(student.parameters()) + list(objective.parameters()), lr=train.lr)
    parts: dict[str, float] = {"decode + augment": _median_seconds(load_batch, args.steps)}
    with torch.no_grad():
        parts["teacher forward"] = _median_seconds(lambda: teacher(images), args.steps)
    parts["student forward + losses"] = _median_seconds(lambda: objective(student, images, targets), args.steps)

    def backward_only():
        loss = objective(student, images, targets)["total"]
        start = time.perf_counter()
        loss.backward()
        return time.perf_counter() - start

    backward_only()
    parts["backward"] = statistics.median(backward_only() for _ in range(args.steps))
    parts["student forward + losses"] -= parts["teacher forward"]  # the objective runs the teacher too
    parts["optimiser step"] = _median_seconds(optimizer.step, args.steps)

    def step(autocast=None):
        context = torch.autocast("cpu", dtype=torch.bfloat16) if autocast else nullcontext()
        with context:
            loss = objective(student, images, targets)["total"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    variants = {"baseline": lambda: step()}
    variants["bf16 autocast"] = lambda: step(autocast=True)
    rows = {}
    for name, run in variants.items():
        rows[name] = batch_size / _median_seconds(run, args.steps)
    student.to(memory_format=torch.channels_last)
    teacher.to(memory_format=torch.channels_last)
    images = images.contiguous(memory_format=torch.channels_last)
    rows["channels-last"] = batch_size / _median_seconds(lambda: step(), args.steps)

    total = sum(parts.values())
    print(f"one distillation step: batch {batch_size}, {train.augment.image_size}² crops, {args.threads} threads")
    for name, seconds in parts.items():
        print(f"  {name:26s} {seconds * 1000:8.1f} ms  {seconds / total:5.1%}")
    print(f"  {'sum':26s} {total * 1000:8.1f} ms  -> {batch_size / total:.1f} crops/s with decoding in the loop")
    for name, crops_per_s in rows.items():
        print(f"  step, {name:19s} {crops_per_s:6.1f} crops/s (decoding apart)")
    if args.json:
        Path(args.json).write_text(json.dumps({"parts_s": parts, "crops_per_s": rows}, indent=1))


if __name__ == "__main__":
    main()

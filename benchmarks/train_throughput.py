"""Training throughput (images/s) of the task-loss step at 640x640, and what one WIDER FACE epoch would take.

Usage: python benchmarks/train_throughput.py [MODEL ...] [--batch 8] [--steps 6] [--threads 2]
Synthetic images with two faces each (the cost of a step does not depend on the pixels).
"""

from __future__ import annotations

import argparse
import time

import torch

from featherface.losses.multibox import Targets
from featherface.models.zoo import create_model
from featherface.training.config import TrainConfig
from featherface.training.trainer import TaskObjective

WIDER_TRAIN_IMAGES = 12_880


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("models", nargs="*", default=["nano-b", "retinaface-mnet025"])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--size", type=int, default=640)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    images = torch.randn(args.batch, 3, args.size, args.size) * 50
    faces = Targets(
        torch.tensor([[0.1, 0.1, 0.3, 0.35], [0.5, 0.4, 0.7, 0.7]]),
        torch.rand(2, 10),
        torch.tensor([True, True]),
    )
    targets = [faces] * args.batch
    for name in args.models:
        net = create_model(name).train()
        objective = TaskObjective(net, TrainConfig())
        optimizer = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9)
        times = []
        for step in range(args.steps + 1):
            start = time.perf_counter()
            loss = objective(net, images, targets)["total"]
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if step:  # the first step warms up allocators and kernels
                times.append(time.perf_counter() - start)
        per_step = sorted(times)[len(times) // 2]
        ips = args.batch / per_step
        print(
            f"{name}: {ips:.1f} images/s ({per_step:.2f} s/step, batch {args.batch}, {args.size}², "
            f"{args.threads} threads); one WIDER epoch ({WIDER_TRAIN_IMAGES:,} images) ~ "
            f"{WIDER_TRAIN_IMAGES / ips / 3600:.2f} h"
        )


if __name__ == "__main__":
    main()

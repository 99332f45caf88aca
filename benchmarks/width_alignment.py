"""What width alignment costs in latency and in search resolution: three rate -> width policies at the same rates.

Usage: python benchmarks/width_alignment.py [--size 640] [--repeats 30] [--rate-vectors 4]
Policies: ``per space`` (the shipped one: spaces carrying a depthwise conv keep multiples of 16 channels, the
others prune channel by channel), ``16 everywhere`` (every space a multiple of 16, narrower ones kept whole) and
``none`` (channel by channel everywhere). For a few rate vectors fitted to the 150k budget, random-weight networks
are exported through the deployment graph and timed round-robin in onnxruntime (1 thread, idle threads not
spinning). Search resolution: distinct deployed sizes per layer group across its bounds (21 rates, others fixed).
"""

from __future__ import annotations

import argparse
import io
import statistics

import numpy as np
import torch

from featherface.detection.runners import onnx_session
from featherface.export.deploy import DeploymentGraph
from featherface.export.onnx import export_graph
from featherface.latency import session_runs, time_round_robin
from featherface.models.config import nano_b_config
from featherface.models.detector_net import DetectorNet, count_parameters
from featherface.pruning.groups import LAYER_GROUPS
from featherface.pruning.masks import compute_masks
from featherface.pruning.search import SearchConfig, budget_bounds, fit_to_budget, pruned_config

POLICIES = {"per space": None, "16 everywhere": 16, "none": 1}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=640)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--rate-vectors", type=int, default=4)
    args = parser.parse_args()
    torch.manual_seed(0)
    net = DetectorNet(nano_b_config())
    rng = np.random.default_rng(0)
    low, high = budget_bounds(SearchConfig())
    rate_vectors = []
    for _ in range(args.rate_vectors):
        suggested = {g: lo + rng.random() * (hi - lo) for g, (lo, hi) in LAYER_GROUPS.items()}
        rate_vectors.append(fit_to_budget(net, suggested, low, high).rates)

    print("search resolution: distinct deployed sizes across each group's bounds (others at mid-range)")
    middle = {g: (lo + hi) / 2 for g, (lo, hi) in LAYER_GROUPS.items()}
    for policy, align in POLICIES.items():
        counts = []
        for group, (lo, hi) in LAYER_GROUPS.items():
            sizes = {
                count_parameters(DetectorNet(pruned_config(net, compute_masks(net, {**middle, group: r}, align=align))))
                for r in np.linspace(lo, hi, 21)
            }
            counts.append(f"{group} {len(sizes)}")
        print(f"  {policy:<14} " + ", ".join(counts))

    batch = np.random.default_rng(0).uniform(-120, 150, (1, 3, args.size, args.size)).astype(np.float32)
    sessions, params = {}, {}
    for i, rates in enumerate(rate_vectors):
        for policy, align in POLICIES.items():
            model = DetectorNet(pruned_config(net, compute_masks(net, rates, align=align))).eval()
            params[(i, policy)] = count_parameters(model)
            buffer = io.BytesIO()
            export_graph(DeploymentGraph(model), buffer, torch.zeros(1, 3, args.size, args.size))
            sessions[(i, policy)] = onnx_session(buffer.getvalue(), 1, spin=False)
    times = time_round_robin(session_runs(sessions, batch), args.repeats)
    print(f"\nlatency, onnxruntime 1 thread, {args.size}x{args.size}, median ms (params)")
    for i in range(len(rate_vectors)):
        row = "  ".join(
            f"{policy}: {statistics.median(times[(i, policy)]):.2f} ({params[(i, policy)]:,})" for policy in POLICIES
        )
        print(f"  rates #{i}: {row}")
    for policy in POLICIES:
        mean = statistics.mean(statistics.median(times[(i, policy)]) for i in range(len(rate_vectors)))
        print(f"  mean over rate vectors, {policy}: {mean:.2f} ms")


if __name__ == "__main__":
    main()

"""How fast can a SPEC-conforming Nano-B get? Every layer group at its maximum pruning rate, with and without CBAM.

Usage: python benchmarks/latency_bound.py [--size 640] [--repeats 50]
Random-weight architectures (time does not depend on the weights) exported through the deployment graph, timed
round-robin against RetinaFace-mnet0.25 in onnxruntime on 1 and 2 threads, idle threads not spinning.
"""

from __future__ import annotations

import argparse
import copy
import io
import statistics

import numpy as np
import torch

from featherface.detection.runners import onnx_session
from featherface.export.deploy import DeploymentGraph
from featherface.export.onnx import export_graph
from featherface.latency import session_runs, time_round_robin
from featherface.models.config import nano_b_config, retinaface_mnet025_config
from featherface.models.detector_net import DetectorNet, count_parameters
from featherface.pruning.groups import LAYER_GROUPS
from featherface.pruning.masks import compute_masks
from featherface.pruning.search import pruned_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=640)
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    torch.manual_seed(0)
    net = DetectorNet(nano_b_config())
    most_pruned = pruned_config(net, compute_masks(net, {g: hi for g, (_, hi) in LAYER_GROUPS.items()}))
    without_cbam = copy.deepcopy(most_pruned)
    without_cbam.attention_in = without_cbam.attention_out = None
    configs = {
        "retinaface-mnet025": retinaface_mnet025_config(),
        "nano-b, all groups at max rate": most_pruned,
        "the same without CBAM (not SPEC)": without_cbam,
    }
    batch = np.random.default_rng(0).uniform(-120, 150, (1, 3, args.size, args.size)).astype(np.float32)
    sessions, params = {}, {}
    for name, config in configs.items():
        model = DetectorNet(config).eval()
        params[name] = count_parameters(model)
        buffer = io.BytesIO()
        export_graph(DeploymentGraph(model), buffer, torch.zeros(1, 3, args.size, args.size))
        for threads in (1, 2):
            sessions[(name, threads)] = onnx_session(buffer.getvalue(), threads, spin=False)
    times = time_round_robin(session_runs(sessions, batch), args.repeats)
    for (name, threads), t in times.items():
        ratio = statistics.median(t) / statistics.median(times[("retinaface-mnet025", threads)])
        print(f"{name:<34} {params[name]:>8,} params  {threads} thr  {statistics.median(t):6.2f} ms  {ratio:.3f}x")


if __name__ == "__main__":
    main()

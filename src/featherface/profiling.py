"""Static model facts: parameters per module group (vs the seed's budget) and multiply-accumulates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from featherface.models.detector_net import MODULE_GROUPS, DetectorNet, count_parameters, parameters_by_group

# The seed's per-module budget for the deployed Nano-B (~150k). SPEC: a budget, not a spec (its parts do not add up).
SEED_BUDGET = {
    "backbone": 60_000,
    "attention_in": 8_000,
    "neck": 45_000,
    "attention_out": 8_000,
    "context": 35_000,
    "shuffle": 0,
    "heads": 15_000,
}
SEED_TOTAL_RANGE = (120_000, 180_000)


def count_macs(net: nn.Module, height: int = 640, width: int = 640) -> int:
    """Multiply-accumulates of one forward pass on a ``height x width`` image (convs and linears only).

    FLOPs are ``2 x MACs``; attention pooling, sigmoids, additions and resizing are not counted.
    """
    total = 0

    def conv_hook(module: nn.Conv2d, _inputs: Any, output: torch.Tensor) -> None:
        nonlocal total
        kh, kw = module.kernel_size
        total += output.numel() * (module.in_channels // module.groups) * kh * kw

    def linear_hook(module: nn.Linear, _inputs: Any, output: torch.Tensor) -> None:
        nonlocal total
        total += output.numel() * module.in_features

    handles = []
    for module in net.modules():
        if isinstance(module, nn.Conv2d):
            handles.append(module.register_forward_hook(conv_hook))
        elif isinstance(module, nn.Linear):
            handles.append(module.register_forward_hook(linear_hook))
    was_training = net.training
    try:
        net.eval()
        with torch.inference_mode():
            device = next(net.parameters()).device
            net(torch.zeros(1, 3, height, width, device=device))
    finally:
        for handle in handles:
            handle.remove()
        net.train(was_training)
    return total


def gflops(net: nn.Module, size: int = 640) -> float:
    """GFLOPs (2 x MACs / 1e9) at ``size x size``."""
    return 2 * count_macs(net, size, size) / 1e9


def model_info(net: DetectorNet, size: int = 640) -> dict[str, Any]:
    """Parameters, GFLOPs and the per-group table, as ``featherface info --json`` writes them."""
    groups = parameters_by_group(net)
    return {
        "model": net.config.name,
        "params": count_parameters(net),
        "gflops": round(gflops(net, size), 4),
        "input_size": size,
        "modules": {name: {"params": groups[name], "seed_budget": SEED_BUDGET[name]} for name in MODULE_GROUPS},
        "seed_total_range": list(SEED_TOTAL_RANGE),
    }


def describe_model(model: str | Path, size: int = 640) -> dict[str, Any]:
    """:func:`model_info` of any MODEL argument (an ``.onnx`` file: of the architecture it carries), ``"model"``
    saying which."""
    if str(model).endswith(".onnx"):
        from featherface.detection.runners import OnnxRunner

        net = DetectorNet(OnnxRunner(model).config)
    else:
        from featherface.checkpoint import load_model

        net = load_model(model)
    return {**model_info(net, size), "model": str(model)}


def format_info_table(info: dict[str, Any]) -> str:
    lines = [
        f"{info['model']}: {info['params']:,} parameters, {info['gflops']:.3f} GFLOPs at {info['input_size']}²",
        "",
    ]
    lines.append(f"{'module':<14}{'params':>10}{'seed budget':>13}")
    for name, row in info["modules"].items():
        lines.append(f"{name:<14}{row['params']:>10,}{row['seed_budget']:>13,}")
    low, high = info["seed_total_range"]
    lines.append(f"{'total':<14}{info['params']:>10,}{'150,000':>13}  (deployed Nano-B range {low:,}-{high:,})")
    return "\n".join(lines)

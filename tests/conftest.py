from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from featherface.models.detector_net import DetectorNet

TESTS = Path(__file__).parent
SAMPLE_IMAGES = TESTS.parent / "src" / "featherface" / "data" / "sample" / "images"
REFERENCE_DETECTIONS = TESTS / "data" / "retinaface_mnet025_reference_detections.json"

# ../shared beside the repository: peer weights and data too large (or under other terms) to live in it. CI has it;
# a checkout without it skips the tests that need it, each with a reason naming the missing path, and the session
# summary ends with a warning (pytest's -ra lists the reasons).
SHARED = TESTS.resolve().parent.parent / "shared"
YUNET = SHARED / "weights" / "peers" / "yunet_n_dynamic.onnx"
NEEDS_SHARED = "needs ../shared"


def needs_shared(path: Path) -> pytest.MarkDecorator:
    """Skip unless ``path`` (under :data:`SHARED`) exists, saying which path is missing."""
    return pytest.mark.skipif(not path.exists(), reason=f"{NEEDS_SHARED}: {path} is missing")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    skipped = [
        report for report in terminalreporter.stats.get("skipped", [])
        if isinstance(report.longrepr, tuple) and NEEDS_SHARED in str(report.longrepr[2])
    ]  # fmt: skip
    if skipped:
        terminalreporter.write_line(
            f"WARNING: {len(skipped)} test(s) skipped because {SHARED} (../shared) is incomplete; CI runs them",
            yellow=True,
            bold=True,
        )


@pytest.fixture(scope="session")
def sample_images() -> Path:
    return SAMPLE_IMAGES


@pytest.fixture(scope="session")
def reference_detections() -> dict:
    return json.loads(REFERENCE_DETECTIONS.read_text())


def randomize_batchnorm(net: DetectorNet, seed: int = 0) -> DetectorNet:
    """Non-trivial BN statistics and affine terms after the backbone, so tests exercise them (a fresh BN is
    the identity). The backbone keeps its ImageNet statistics, which keep activations at a realistic scale."""
    generator = torch.Generator().manual_seed(seed)
    for name, module in net.named_modules():
        if isinstance(module, torch.nn.BatchNorm2d) and not name.startswith("backbone."):
            c = module.num_features
            module.running_mean.copy_(torch.randn(c, generator=generator) * 0.1)
            module.running_var.copy_(torch.rand(c, generator=generator) + 0.5)
            module.weight.data.copy_(torch.rand(c, generator=generator) + 0.5)
            module.bias.data.copy_(torch.randn(c, generator=generator) * 0.1)
    return net.eval()


def calibrate_batchnorm(net: DetectorNet, images: list) -> DetectorNet:
    """Set every BN's running statistics to those of ``images`` (a fresh BN's mean 0 / var 1 normalise
    nothing, and the untrained features then carry almost no signal)."""
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None  # cumulative average over the calibration batch
    net.train()
    with torch.no_grad():
        net(torch.from_numpy(np.stack(images)))
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = 0.1
    return net.eval()


def fit_heads_to_teacher(student: DetectorNet, teacher: DetectorNet, images: list) -> DetectorNet:
    """Least-squares fit of the student's 1x1 heads to the teacher's raw outputs on ``images``.

    An untrained head gives every prior a score near 0.5, so any detection test on it sits on the threshold;
    regressed onto a WIDER-trained teacher, the heads give scores spread like a trained model's.
    ``images`` are preprocessed ``(3, H, W)`` float arrays of one size.
    """
    from featherface.detection.priors import PriorBox

    batch = torch.from_numpy(np.stack(images))
    features: list[torch.Tensor] = []
    hooks = [head.register_forward_pre_hook(lambda _m, args: features.append(args[0])) for head in student.heads]
    with torch.no_grad():
        student.eval()(batch)
        targets = teacher.eval()(batch)
    for hook in hooks:
        hook.remove()
    sizes = PriorBox().feature_map_sizes(*batch.shape[2:])
    start = 0
    for head, feature, (h, w) in zip(student.heads, features, sizes, strict=True):
        a = head.num_anchors
        n = h * w * a
        x = feature.permute(0, 2, 3, 1).reshape(-1, feature.shape[1])
        x = torch.cat([x, torch.ones(len(x), 1)], dim=1).double()
        for conv, target in zip((head.box, head.cls, head.landmarks), targets, strict=True):
            y = target[:, start : start + n].reshape(len(batch) * h * w, -1).double()
            solution = torch.linalg.lstsq(x, y, rcond=None).solution.float()
            conv.weight.data.copy_(solution[:-1].T.reshape(conv.weight.shape))
            conv.bias.data.copy_(solution[-1])
        start += n
    return student

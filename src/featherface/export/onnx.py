"""ONNX export with dynamic batch/height/width, checked against torch before it is kept."""

from __future__ import annotations

import io
import json
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from featherface.detection.runners import ONNX_CONFIG_KEY, ONNX_INPUT, ONNX_OUTPUTS, OnnxRunner
from featherface.export.deploy import DeploymentGraph
from featherface.fileio import temp_file_beside
from featherface.models.detector_net import DetectorNet

ONNX_OPSET = 17
# Raw outputs of onnxruntime and torch (fp32, CPU) must agree to this; typical differences are ~1e-6.
PARITY_TOLERANCE = 1e-4


class ExportError(RuntimeError):
    pass


def export_graph(net: torch.nn.Module, path: Path | io.BytesIO, sample: torch.Tensor) -> None:
    """Trace ``net`` to ONNX at ``path`` (a file or buffer), with dynamic batch/height/width; no checks."""
    dynamic = {ONNX_INPUT: {0: "batch", 2: "height", 3: "width"}}
    dynamic.update({name: {0: "batch", 1: "priors"} for name in ONNX_OUTPUTS})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer chatter about shape-dependent control flow we do not have
        torch.onnx.export(
            net,
            (sample,),
            path if isinstance(path, io.BytesIO) else str(path),
            input_names=[ONNX_INPUT],
            output_names=list(ONNX_OUTPUTS),
            dynamic_axes=dynamic,
            opset_version=ONNX_OPSET,
            dynamo=False,
        )


def _attach_config(path: Path, net: DetectorNet) -> None:
    import onnx

    model = onnx.load(str(path))
    entry = model.metadata_props.add()
    entry.key = ONNX_CONFIG_KEY
    entry.value = json.dumps(net.config.to_dict())
    model.producer_name = "featherface"
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def max_output_difference(net: DetectorNet, onnx_path: str | Path, batch: np.ndarray) -> float:
    """Largest absolute difference between torch and onnxruntime raw outputs on ``batch``."""
    with torch.inference_mode():
        expected = net.eval().cpu()(torch.from_numpy(batch))
    got = OnnxRunner(onnx_path)(batch)
    return max(float(np.abs(e.numpy() - g).max()) for e, g in zip(expected, got, strict=True))


def export_onnx(
    net: DetectorNet,
    out: str | Path,
    check_sizes: tuple[tuple[int, int], ...] = ((640, 640), (480, 736)),
    rewrites: dict[str, bool] | None = None,
) -> Path:
    """Export ``net`` to ``out`` (written atomically) and check onnxruntime against torch at ``check_sizes``.

    ``rewrites`` switches :class:`DeploymentGraph`'s rewrites off one by one (all on by default; for ablations).

    Raises :class:`ExportError` when outputs differ by more than ``PARITY_TOLERANCE``.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    net = net.eval().cpu()
    fd, tmp_name = temp_file_beside(out)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        export_graph(DeploymentGraph(net, **(rewrites or {})), tmp, torch.zeros(1, 3, 640, 640))
        _attach_config(tmp, net)  # the checkpoint's architecture, whatever rewrites the graph went through
        generator = np.random.default_rng(0)
        for h, w in check_sizes:
            batch = generator.uniform(-120, 150, size=(2, 3, h, w)).astype(np.float32)
            diff = max_output_difference(net, tmp, batch)
            if diff > PARITY_TOLERANCE:
                raise ExportError(f"onnxruntime differs from torch by {diff:.2e} at {h}x{w} (> {PARITY_TOLERANCE})")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out

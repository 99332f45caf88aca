"""What ``featherface info`` shows: the zoo (each model, whether its heads are trained, what it runs in on the CPU,
and whether torch is installed: the training extra; needs no torch), and one model's size table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from featherface import extras
from featherface.detection.api import runs_in
from featherface.models.zoo import ZOO
from featherface.weights import DEFAULT_MODEL


def zoo_listing() -> dict[str, Any]:
    """``{"models": [{"name", "trained", "default", "backend", "description"}...], "torch_installed"}``, the zoo in
    its order; ``backend``: what the model runs in on the CPU (:func:`~featherface.detection.api.runs_in`)."""
    rows = [{"name": name, "trained": entry.trained, "default": name == DEFAULT_MODEL,
             "backend": runs_in(name, "cpu"), "description": entry.description}
            for name, entry in ZOO.items()]  # fmt: skip
    return {"models": rows, "torch_installed": extras.has_torch()}


def format_zoo_listing(listing: dict[str, Any]) -> str:
    """One line per model (``*`` marks the default), then what the marks and columns mean."""
    lines = []
    for row in listing["models"]:
        mark = "*" if row["default"] else " "
        state = "trained" if row["trained"] else "untrained heads"
        lines.append(f"{mark} {row['name']:<20} {state:<16} {row['backend']:<12} {row['description']}")
    lines.append("* the default of `featherface detect` and Detector.load(); `featherface info NAME` for its table")
    lines.append("backend: what the model runs in on the CPU (onnxruntime: its shipped ONNX; torch: needs torch)")
    if listing["torch_installed"]:
        lines.append("torch: installed (torch models, CUDA, training and export available)")
    else:
        lines.append(
            f"torch: not installed (models marked torch need the training extra: {extras.TRAIN_EXTRA_INSTALL})"
        )
    return "\n".join(lines)


def describe_model(model: str | Path, size: int = 640) -> dict[str, Any]:
    """:func:`model_info` of any MODEL argument (an ``.onnx`` file: of the architecture it carries), ``"model"``
    saying which. Needs torch (imported here: the zoo's list above does not)."""
    from featherface.models.detector_net import DetectorNet
    from featherface.profiling import model_info

    if str(model).endswith(".onnx"):
        from featherface.detection.runners import OnnxRunner

        net = DetectorNet(OnnxRunner(model).config)
    else:
        from featherface.models.loader import load_model

        net = load_model(model)
    return {**model_info(net, size), "model": str(model)}

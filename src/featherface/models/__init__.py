"""Model configs, the detector network, checkpoints, the zoo of named models and the one MODEL-argument loader.

The network (and torch) loads on first use of its names, so the configs alone stay importable without
torch (running an ONNX export needs only them).
"""

from importlib import import_module
from typing import Any

from featherface.models.config import DetectorConfig

_LAZY = {
    **{name: "featherface.models.detector_net" for name in ("DetectorNet", "count_parameters", "parameters_by_group")},
    **{
        name: "featherface.models.loader"
        for name in ("ModelSpec", "ModelSpecError", "load_model", "require_trainable", "resolve_model")
    },
}

__all__ = [
    "DetectorConfig",
    "DetectorNet",
    "ModelSpec",
    "ModelSpecError",
    "count_parameters",
    "load_model",
    "parameters_by_group",
    "require_trainable",
    "resolve_model",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

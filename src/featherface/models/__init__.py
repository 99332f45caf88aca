"""Model configs, the detector network and the zoo of named models.

The network (and torch) loads on first use of its names, so the configs alone stay importable without
torch (running an ONNX export needs only them).
"""

from importlib import import_module
from typing import Any

from featherface.models.config import DetectorConfig

_LAZY = {name: "featherface.models.detector_net" for name in ("DetectorNet", "count_parameters", "parameters_by_group")}

__all__ = ["DetectorConfig", "DetectorNet", "count_parameters", "parameters_by_group"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

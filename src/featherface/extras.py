"""The optional installs (pyproject.toml's extras), and the one-line error when a feature needs a missing one.

The base install detects faces from ONNX files (numpy, OpenCV, onnxruntime, safetensors, tqdm). torch and the
rest of training, export, pruning, plots and WIDER FACE's ``.mat`` ground truth come with ``featherface[train]``.
"""

from __future__ import annotations

import importlib.util

TRAIN_EXTRA_INSTALL = "pip install 'featherface[train]'"
# The top-level modules the [train] extra installs (pyproject.toml): a missing one means that extra is missing.
TRAIN_EXTRA_MODULES = frozenset({"torch", "onnx", "scipy", "optuna", "matplotlib", "yaml"})


class MissingExtraError(ModuleNotFoundError):
    """A feature needs a module of the training extra, which is not installed (its message names the extra)."""


def training_extra_error(error: ModuleNotFoundError, what: str | None = None) -> MissingExtraError | None:
    """The one-line error for ``error`` when the module it misses comes with the training extra, else None."""
    if isinstance(error, MissingExtraError):
        return error
    module = (error.name or "").partition(".")[0]
    if module not in TRAIN_EXTRA_MODULES:
        return None
    prefix = f"{what}: " if what else ""
    message = f"{prefix}needs the training extra ({module} is not installed): {TRAIN_EXTRA_INSTALL}"
    return MissingExtraError(message, name=module)


def installed(module: str) -> bool:
    """Whether the top-level ``module`` is installed (without importing it)."""
    return importlib.util.find_spec(module) is not None


def has_torch() -> bool:
    return installed("torch")


def require_torch(what: str) -> None:
    """Raise :class:`MissingExtraError` naming ``what`` and the extra to install when torch is not installed."""
    if not has_torch():
        raise training_extra_error(ModuleNotFoundError("No module named 'torch'", name="torch"), what)

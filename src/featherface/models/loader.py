"""The one reading of a MODEL argument: a zoo name, a ``.safetensors`` checkpoint, a run directory or an ``.onnx``
file (featherface's export, or a peer's such as YuNet: which one is known once onnxruntime opens it).

:func:`resolve_model` says what an argument names, with the one set of refusals (each names the argument and the
file); :func:`load_model` builds the trainable torch network it names (:func:`require_trainable` refuses an ONNX
file first); :meth:`featherface.detection.Detector.load` builds the runnable detector. Resolving needs no torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from featherface.models.checkpoint import CheckpointError, load_checkpoint, resolve_checkpoint
from featherface.models.zoo import ZOO, create_model

if TYPE_CHECKING:
    from featherface.models.detector_net import DetectorNet

ModelKind = Literal["zoo", "checkpoint", "onnx"]
# What a MODEL argument may be, as the refusals list it.
MODEL_FORMS = "a zoo name ({zoo}), a .safetensors checkpoint, a run directory or an .onnx file"
TRAINABLE_FORMS = "a zoo name, a .safetensors checkpoint or a run directory"


class ModelSpecError(ValueError):
    """A MODEL argument that names nothing loadable, or not what the caller needs: the message names the argument
    (a parameter such as ``model``, or a command-line flag) and the file."""


@dataclass(frozen=True)
class ModelSpec:
    """A resolved MODEL argument. ``argument``: as given; ``kind``: ``"zoo"`` (``argument`` is the zoo name),
    ``"checkpoint"`` (``path``: the ``.safetensors`` file, a run directory's deployed/best/last one) or ``"onnx"``
    (``path``: the file)."""

    argument: str
    kind: ModelKind
    path: Path | None = None

    @property
    def trainable(self) -> bool:
        """Whether it loads as a torch network (an ONNX file runs in onnxruntime only)."""
        return self.kind != "onnx"

    def __str__(self) -> str:
        return self.argument


def model_kind(spec: str | Path | ModelSpec) -> ModelKind:
    """What a MODEL argument names, read from its text alone (no file opened): a zoo name, an ``.onnx`` file, or
    else a checkpoint (a ``.safetensors`` file or a run directory)."""
    if isinstance(spec, ModelSpec):
        return spec.kind
    text = str(spec)
    if text in ZOO:
        return "zoo"
    return "onnx" if text.endswith(".onnx") else "checkpoint"


def resolve_model(spec: str | Path | ModelSpec, argument: str = "model") -> ModelSpec:
    """The :class:`ModelSpec` of a MODEL argument; :class:`ModelSpecError` ``"{argument} {spec}: {reason}"`` when
    it names no zoo model, no file or no checkpoint (a run directory holding none). A zoo name wins over a file or
    folder of the same name. ``argument``: the parameter or flag that gave ``spec``, for the message."""
    if isinstance(spec, ModelSpec):
        return spec
    text = str(spec)
    kind = model_kind(text)
    if kind == "zoo":
        return ModelSpec(text, "zoo")
    path = Path(text)
    if kind == "onnx":
        if not path.is_file():
            raise ModelSpecError(f"{argument} {text}: no such file")
        return ModelSpec(text, "onnx", path)
    if not path.exists():
        raise ModelSpecError(f"{argument} {text}: no such model: give {MODEL_FORMS.format(zoo=', '.join(ZOO))}")
    try:
        return ModelSpec(text, "checkpoint", resolve_checkpoint(path))
    except CheckpointError as exc:  # its message: "{path}: {reason}"
        raise ModelSpecError(f"{argument} {exc}") from None


def require_trainable(spec: str | Path | ModelSpec, argument: str = "model", purpose: str = "this") -> ModelSpec:
    """:func:`resolve_model`, refusing an ``.onnx`` file: ``purpose`` (e.g. ``"distillation"``) needs a torch
    network. For commands that train, prune, export or measure a model."""
    resolved = resolve_model(spec, argument)
    if not resolved.trainable:
        raise ModelSpecError(
            f"{argument} {resolved}: an ONNX file runs in onnxruntime only; {purpose} needs a torch model "
            f"({TRAINABLE_FORMS})"
        )
    return resolved


def load_model(
    spec: str | Path | ModelSpec, seed: int | None = None, argument: str = "model", purpose: str = "this"
) -> DetectorNet:
    """The trainable torch network a MODEL argument names: a zoo model with its shipped weights
    (:func:`~featherface.models.zoo.create_model`; ``seed``: of its layers that start random), or a checkpoint's
    (:func:`~featherface.models.checkpoint.load_checkpoint`). Refusals: :func:`require_trainable`."""
    resolved = require_trainable(spec, argument, purpose)
    if resolved.kind == "zoo":
        return create_model(resolved.argument, seed=seed)
    net, _ = load_checkpoint(resolved.path)
    return net

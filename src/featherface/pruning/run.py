"""Phases 2 and 3 from their arguments (``featherface prune``, ``finetune``): the recipe chosen as a training run's
(:func:`featherface.training.run.run_config`), the pruning options over it, the run directory made ready, the
models loaded, then :func:`~featherface.pruning.phases.prune` or :func:`~featherface.pruning.phases.finetune`.

A run's ``epochs`` (in its training ``overrides``) sets the phase's own length: SFP epochs for prune, fine-tune
epochs for finetune; its ``seed`` is also the search's (its start points and GP).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from featherface.errors import ParameterError
from featherface.pruning.phases import PruneConfig, finetune, load_prune_config, prune
from featherface.training.run import config_source, load_teacher, on_sample_set, require_torch_teacher, run_config

SAMPLE_VAL = "sample:val"  # the sample set's validation split: prune's default on the sample set


def validation_data(data: str, val: str | None) -> str:
    """The data prune's search scores trials on: ``val``, required (the BO objective is the validation loss)
    except on the sample set, whose own validation split it then takes."""
    if val is not None:
        return val
    if not on_sample_set(data):
        raise ParameterError(lambda n: f"{n('val')} is required: the BO objective is the validation loss")
    return SAMPLE_VAL


def phase_config(
    source: str | Path | None, phase_epochs: str, overrides: Mapping[str, Any], prune_overrides: Mapping[str, Any]
) -> PruneConfig:
    """The pruning options of ``source`` with ``prune_overrides`` (dotted: ``search.trials``), the run's ``epochs``
    as ``phase_epochs`` and its ``seed`` as the search's."""
    run_values = {phase_epochs: overrides.get("epochs"), "search.seed": overrides.get("seed")}
    return load_prune_config(source, {**prune_overrides, **run_values})


def _prepare(out: str | Path, resume: bool, overwrite: bool, **inputs: str | None) -> None:
    from featherface.training.rundir import prepare_run_dir

    prepare_run_dir(out, resume=resume, overwrite=overwrite, inputs=list(inputs.items()))


def prune_model(
    model: str,
    data: str,
    out: str | Path,
    *,
    val: str | None = None,
    teacher: str | None = None,
    config: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    prune_overrides: Mapping[str, Any] | None = None,
    distill_overrides: Mapping[str, float | None] | None = None,
    storage: str | None = None,
    resume: bool = False,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Phase 2 on ``model`` into ``out``: the B-FPGM search scored on ``val`` (:func:`validation_data`), then soft
    pruning at its rates; with ``teacher``, distillation stays on. ``overrides``: :class:`TrainConfig` fields,
    ``prune_overrides``: :class:`PruneConfig` fields by dotted name, ``distill_overrides``: DistillConfig fields
    (None: not given). A resumed run continues its SFP phase (the study always continues from ``storage``).
    Returns the summary (``rates``, ``trials``...)."""
    from featherface.data.sample import resolve_dataset
    from featherface.models.loader import load_model
    from featherface.training.distill import load_distill_config

    val = validation_data(data, val)
    require_torch_teacher(teacher)
    overrides = {**(overrides or {}), "val": val}
    saved = Path(out) / "sfp" / "config.yaml"
    train = run_config(data, out, config, overrides, resume, saved=saved, must_exist=False)
    source = config_source(config, data)
    prune_config = phase_config(source, "sfp_epochs", overrides, prune_overrides or {})
    distill = load_distill_config(source, **(distill_overrides or {}))
    _prepare(out, resume, overwrite, model=model, teacher=teacher, data=data, val=val)
    net = load_model(model, seed=train.seed)
    val_annotations = resolve_dataset(val, strict=train.strict)
    return prune(
        net, train, prune_config, out, val_annotations, teacher=load_teacher(teacher), storage=storage,
        resume=resume, distill=distill,
    )  # fmt: skip


def finetune_model(
    model: str,
    data: str,
    out: str | Path,
    *,
    val: str | None = None,
    teacher: str | None = None,
    config: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    distill_overrides: Mapping[str, float | None] | None = None,
    resume: bool = False,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Phase 3 on the prune run ``model`` into ``out``: fine-tune with its masks fixed, then hard-prune to the
    deployed model; ``val`` (optional) picks the best checkpoint. Options as :func:`prune_model`. Returns the
    summary (``deployed``, ``params``, ``max_output_difference``...)."""
    from featherface.data.sample import resolve_dataset
    from featherface.training.distill import load_distill_config

    require_torch_teacher(teacher)
    overrides = {**(overrides or {}), "val": val}
    train = run_config(data, out, config, overrides, resume)
    source = config_source(config, data)
    prune_config = phase_config(source, "finetune_epochs", overrides, {})
    distill = load_distill_config(source, **(distill_overrides or {}))
    _prepare(out, resume, overwrite, model=model, teacher=teacher, data=data, val=val)
    val_annotations = resolve_dataset(val, strict=train.strict) if val else None
    return finetune(
        model, train, prune_config, out, val_annotations, teacher=load_teacher(teacher), resume=resume,
        distill=distill,
    )  # fmt: skip

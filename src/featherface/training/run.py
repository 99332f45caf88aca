"""Training runs from their arguments (``featherface train``, ``distill``; :mod:`featherface.pruning.run` does
phases 2 and 3): the recipe chosen, the run directory made ready (:func:`~featherface.training.rundir.
prepare_run_dir`), the models loaded, the trainer run.

Which recipe: a YAML file or preset when given; for the embedded sample set, the sample preset (its tiny data
needs its own recipe: WIDER defaults would barely move); otherwise the dataclasses' defaults. A resumed run keeps
the options it saved, but for how long it runs and where (:data:`RESUMABLE`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from featherface.errors import ParameterError
from featherface.training.config import TrainConfig, load_train_config

if TYPE_CHECKING:
    from featherface.models.detector_net import DetectorNet
    from featherface.training.trainer import TrainResult

SAMPLE_PRESET = "sample"
# What a resumed run may change of the options it saved: its length, time budget, device and loader processes.
RESUMABLE = ("epochs", "max_minutes", "device", "workers")


def on_sample_set(data: str | Path) -> bool:
    """Whether ``data`` names the embedded sample set (``sample``, ``sample:train``, ``sample:val``)."""
    return str(data).startswith("sample")


def config_source(config: str | Path | None, data: str | None = None) -> str | Path | None:
    """The recipe of a run on ``data``: ``config`` (a YAML file or preset) when given; else the sample preset for
    the embedded set (``sample``, ``sample:train``...) or when no data is named (the pipeline, whose recipe names
    its data; an empty ``config`` there too); else None (the dataclasses' defaults)."""
    if data is None:
        return config or SAMPLE_PRESET
    if config is not None:
        return config
    return SAMPLE_PRESET if on_sample_set(data) else None


def run_config(
    data: str,
    out: str | Path | None = None,
    config: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    resume: bool = False,
    saved: str | Path | None = None,
    must_exist: bool = True,
) -> TrainConfig:
    """The training options of a run on ``data`` into ``out``, each value checked: ``config``'s recipe
    (:func:`config_source`) with ``data`` and ``overrides`` (:class:`TrainConfig` fields; None: not given). With
    ``resume``, those the run saved (``saved``, default ``out/config.yaml``) with only the :data:`RESUMABLE`
    overrides and the ``model``; a run without them is refused, or (not ``must_exist``: a phase that saves them
    later) starts as a new one."""
    given = {"data": data, **(overrides or {})}
    if resume:
        saved = Path(saved) if saved else Path(out or ".") / "config.yaml"
        if saved.is_file():
            return load_train_config(saved, {key: given.get(key) for key in (*RESUMABLE, "model")})
        if must_exist:
            raise ParameterError(lambda n: f"{n('resume')}: {saved} not found (was {out} made by featherface?)")
    return load_train_config(config_source(config, data), given)


def require_torch_teacher(teacher: str | Path | None) -> None:
    """Refuse, before any work, a teacher given as an ONNX file: distillation reads its raw outputs in torch."""
    if teacher is not None and str(teacher).endswith(".onnx"):
        raise ParameterError(
            lambda n: f"{n('teacher')}: distillation needs a torch model (zoo name, checkpoint or run dir), not ONNX"
        )


def load_teacher(teacher: str | Path | None) -> DetectorNet | None:
    """The teacher network (None without one)."""
    from featherface.models.loader import load_model

    require_torch_teacher(teacher)
    return None if teacher is None else load_model(teacher)


def train(
    model: str,
    data: str,
    out: str | Path,
    *,
    val: str | None = None,
    config: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    resume: bool = False,
    overwrite: bool = False,
) -> TrainResult:
    """Train ``model`` (a zoo name, whose ImageNet backbone it starts from, or a checkpoint to continue from) on
    ``data`` with the task loss into ``out``; ``val``: the data its best checkpoint is chosen on. Options: as
    :func:`run_config` makes them; the run directory: as :func:`~featherface.training.rundir.prepare_run_dir`
    allows (``resume`` continues it, ``overwrite`` replaces it)."""
    from featherface.models.loader import load_model
    from featherface.training.rundir import prepare_run_dir
    from featherface.training.trainer import Trainer

    options = run_config(data, out, config, {**(overrides or {}), "val": val, "model": model}, resume)
    prepare_run_dir(out, resume=resume, overwrite=overwrite, inputs=[("model", model), ("data", data), ("val", val)])
    net = load_model(model, seed=options.seed)
    return Trainer(net, options, out, resume=resume).fit()


def distill(
    teacher: str,
    student: str,
    data: str,
    out: str | Path,
    *,
    val: str | None = None,
    student_init: str = "own",
    config: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    distill_overrides: Mapping[str, float | None] | None = None,
    resume: bool = False,
    overwrite: bool = False,
) -> TrainResult:
    """Phase 1: distil ``teacher`` into ``student`` on ``data`` (labelled, or a folder of unlabelled photos that
    the teacher labels, cached in ``out/teacher-labels``). ``student_init``: where the student's backbone starts
    (:data:`~featherface.models.config.STUDENT_INITS`; the teacher's only on a new run). ``distill_overrides``:
    :class:`~featherface.losses.distill.DistillConfig` fields over the recipe's (None: not given); the rest as
    :func:`train`."""
    from featherface.models.loader import load_model
    from featherface.models.zoo import start_from_teacher_backbone
    from featherface.training.distill import DistillObjective, distillation_data, load_distill_config
    from featherface.training.rundir import prepare_run_dir
    from featherface.training.trainer import Trainer

    require_torch_teacher(teacher)
    options = run_config(data, out, config, {**(overrides or {}), "val": val, "model": student}, resume)
    distill_config = load_distill_config(config_source(config, data), **(distill_overrides or {}))
    inputs = [("teacher", teacher), ("student", student), ("data", data), ("val", val)]
    prepare_run_dir(out, resume=resume, overwrite=overwrite, inputs=inputs)
    teacher_net = load_model(teacher)
    annotations, val_annotations = distillation_data(
        data, val, teacher_net, str(teacher), distill_config, Path(out) / "teacher-labels", strict=options.strict
    )
    student_net = load_model(student, seed=options.seed)
    if student_init == "teacher-backbone" and not resume:
        try:
            start_from_teacher_backbone(student_net, teacher_net)
        except ValueError as exc:
            reason = str(exc)
            raise ParameterError(lambda n: f"{n('student_init')} teacher-backbone: {reason}") from None
    objective = DistillObjective(teacher_net, student_net, options, distill_config)
    trainer = Trainer(
        student_net, options, out, resume=resume, objective=objective, train_annotations=annotations,
        val_annotations=val_annotations,
    )  # fmt: skip
    return trainer.fit()

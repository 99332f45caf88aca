"""The files a command reads, named by its arguments, for the guard that keeps its outputs off them
(:class:`featherface.fileio.OutputGuard`): models, configs and the label files of datasets.

torch is not imported for an ONNX model or a dataset: ``detect --model x.onnx`` runs without it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from featherface.fileio import OutputGuard


def model_files(spec: str | Path | None) -> list[Path]:
    """The files a model argument reads: a ``.safetensors`` checkpoint and the architecture ``.json`` beside it, a
    run directory's checkpoints (each with its ``.json``), an ``.onnx`` file, or a shipped model's files."""
    if spec is None:
        return []
    path = Path(spec)
    if path.is_dir():
        from featherface.models.checkpoint import RUN_DIR_PREFERENCE  # a run directory is loaded in torch anyway

        files = [path / name for name in RUN_DIR_PREFERENCE]
    elif path.is_file():
        files = [path]
    else:
        from featherface.weights import SHIPPED, shipped_path

        shipped = SHIPPED.get(str(spec))
        names = [] if shipped is None else [shipped.checkpoint, shipped.onnx]
        files = [shipped_path(name) for name in names if name]
    described = [p.with_suffix(".json") for p in files if p.suffix == ".safetensors"]  # architecture beside them
    return [p for p in files + described if p.is_file()]


def config_files(source: str | Path | None) -> list[Path]:
    """The YAML file of a ``--config`` (a preset's file in the package, or the path given)."""
    if source is None:
        return []
    from featherface.config_schema import config_path

    path = config_path(source)
    return [path] if path.is_file() else []


def dataset_files(spec: str | None) -> list[Path]:
    """The label files of a dataset argument (label.txt, WIDER split file, VOC XML files); its images are named by
    them and added once the labels are read (:func:`guard_inputs`' ``images``)."""
    if spec is None:
        return []
    from featherface.data.sample import label_files

    return label_files(str(spec))


def guard_inputs(
    guard: OutputGuard,
    models: Mapping[str, str | Path | list[str] | None] | None = None,
    configs: Mapping[str, str | Path | None] | None = None,
    datasets: Mapping[str, str | None] | None = None,
    images: list[Path] | None = None,
) -> OutputGuard:
    """``guard`` told about the inputs of a command, by option: ``models={"--model": spec}`` (or a list of specs),
    ``configs={"--config": source}``, ``datasets={"--data": spec}`` (their label files) and ``images`` (read from
    those labels); returns it."""
    for flag, specs in (models or {}).items():
        for spec in specs if isinstance(specs, list) else [specs]:
            guard.add_inputs(model_files(spec), flag)
    for flag, source in (configs or {}).items():
        guard.add_inputs(config_files(source), flag)
    for flag, spec in (datasets or {}).items():
        guard.add_inputs(dataset_files(spec), f"labels of {flag}")
    guard.add_inputs(images or [])
    return guard


def pipeline_datasets(pipe: Any) -> dict[str, str]:
    """The datasets a :class:`~featherface.pipeline.PipelineConfig` names, labelled for :func:`guard_inputs`'
    ``datasets``: its data, its val and each of its report_data."""
    datasets = {f"pipeline {name}": spec for name, spec in (("data", pipe.data), ("val", pipe.val))}
    datasets.update({f"pipeline report_data {spec}": spec for spec in pipe.report_data})
    return datasets


def guard_outputs(outputs: Mapping[str, str | Path | None], **inputs: Any) -> OutputGuard:
    """A new guard told the inputs (:func:`guard_inputs`' ``models``, ``configs``, ``datasets``, ``images``), then
    each output claimed by its name (``{"--json": path}``; None: not written), before any work: one over an input
    raises ``ValueError`` naming the file. A run adds the inputs it resolves later (images, videos)."""
    guard = guard_inputs(OutputGuard(), **inputs)
    for name, path in outputs.items():
        if path:
            guard.claim(Path(path), name)
    return guard

"""The main job: teacher -> phase 1 distillation -> phase 2 B-FPGM -> phase 3 fine-tune + hard prune, with an
evaluation after every phase, ONNX export of the deployed model and a report (markdown, JSON, PNG).

Resumable phase by phase: a finished phase leaves ``phase.json`` in its folder and is skipped on a rerun; an
interrupted training phase continues from its ``trainer_state.pt``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from featherface.config_schema import Config, ConfigError, FieldError, config_path, load_config, load_section, rule
from featherface.detection.api import Detector
from featherface.detection.image import read_image
from featherface.evaluation.voc import format_metric
from featherface.fileio import atomic_write_bytes, remove_stale_temp_files, save_figure
from featherface.models.checkpoint import load_checkpoint, save_checkpoint
from featherface.models.config import STUDENT_INITS
from featherface.models.detector_net import DetectorNet, count_parameters
from featherface.models.loader import load_model
from featherface.models.zoo import ZOO, create_model, start_from_teacher_backbone
from featherface.profiling import gflops
from featherface.training.config import TrainConfig, load_train_config
from featherface.training.run import config_source as recipe

if TYPE_CHECKING:
    from featherface.losses.distill import DistillConfig
    from featherface.pruning.phases import PruneConfig

# The folders of a pipeline run (its phases, their SFP run, cached teacher labels, figures), where its saves write.
PIPELINE_FOLDERS = ("0-teacher", "1-distill", "2-prune", "2-prune/sfp", "3-finetune", "teacher-labels", "plots")


@dataclass
class PipelineConfig(Config):
    data: str = "sample:train"
    val: str = "sample:val"  # labelled data, or a pool's hold-out (DIR:holdout) labelled by the teacher
    report_data: list[str] = dataclasses.field(default_factory=list)  # more labelled sets scored in the report
    teacher: str = "retinaface-mnet025"
    student: str = "nano-b"
    # Where the student's backbone starts: its own weights ("own": ImageNet's for nano-b, the shipped ones for
    # nano-b-distilled, to continue it), or the teacher's trained backbone when both are MobileNetV1-0.25 layer
    # for layer (SPEC section 4; recorded in the distillation's phase.json).
    student_init: str = dataclasses.field(default="own", metadata=rule(choices=STUDENT_INITS))
    # Phase 4: raise the deployed student's face logits, level by level, so that at the default threshold each
    # pyramid level keeps about as many faces as the teacher's on this many training photos
    # (featherface.training.calibration); the ranking within a level is unchanged.
    calibrate: bool = False
    calibration_images: int = dataclasses.field(default=400, metadata=rule(ge=1))
    teacher_epochs: int = dataclasses.field(default=40, metadata=rule(ge=1))
    # Phase 1's length. 0 keeps the student as it is: with ``student_init: own`` on a student that ships weights
    # (nano-b-distilled), a run that re-prunes and fine-tunes the shipped distilled student and nothing more.
    distill_epochs: int = dataclasses.field(default=30, metadata=rule(ge=0))
    # Phase 1's peak learning rate (None: train.lr, which the later phases keep). Continuing a distilled student
    # wants less than it was distilled at: 2 more pool epochs at 2e-3 lowered the shipped one's hold-out AP
    # 0.818 -> 0.809.
    distill_lr: float | None = dataclasses.field(default=None, metadata=rule(gt=0))
    # No phases 2-3: phase 1's student is deployed as it is. For a student pruned before (the shipped
    # nano-b-pretrained), so that a session's spare CPU distils the deployed model further instead of pruning anew.
    skip_pruning: bool = False

    @property
    def continues_shipped_student(self) -> bool:
        """Whether phase 1 starts from a zoo student's shipped weights (to continue it), not from a fresh one."""
        return self.student_init == "own" and self.student in ZOO and ZOO[self.student].trained

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.distill_epochs == 0 and not self.continues_shipped_student:
            raise FieldError(
                "distill_epochs",
                "0 keeps the student as it is, which needs a zoo student with shipped weights and student_init: "
                f"own (got student {self.student!r}, student_init {self.student_init!r})",
            )

    benchmark_size: int = dataclasses.field(default=640, metadata=rule(ge=32, le=4096))  # as augment.image_size
    benchmark_threads: int = dataclasses.field(default=2, metadata=rule(ge=1))
    benchmark_repeats: int = dataclasses.field(default=20, metadata=rule(ge=1))


def load_pipeline_config(source: str | Path | None, overrides: Mapping[str, Any] | None = None) -> PipelineConfig:
    """The ``pipeline:`` section of a config file or preset (default: the sample preset), then ``overrides`` (dotted
    keys as in :func:`featherface.config_schema.load_config`). A config without one is an error: the pipeline would
    not know its data."""
    source = recipe(source)
    data = load_section(source, "pipeline")
    if "data" not in data:
        raise ConfigError(
            f"{config_path(source)}: no pipeline: section naming its data (pipeline: data: ..., val: ...); "
            "see src/featherface/configs/sample.yaml or pool.yaml for one"
        )
    return load_config(source, "pipeline", PipelineConfig, overrides)


def _done(folder: Path) -> dict[str, Any] | None:
    marker = folder / "phase.json"
    return json.loads(marker.read_text()) if marker.is_file() else None


def _finish(folder: Path, info: dict[str, Any]) -> dict[str, Any]:
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(folder / "phase.json", json.dumps(info, indent=1).encode())
    return info


def _say(message: str) -> None:
    print(f"[pipeline] {message}", flush=True)


@dataclass
class PipelineRun:
    """What the phases of one run share: its configs and folder, and what phase 0 gives the others (the teacher
    network, the model argument naming it, and the training / validation annotations it may have labelled)."""

    pipe: PipelineConfig
    train: TrainConfig
    prune: PruneConfig
    distill: DistillConfig
    out: Path
    teacher: DetectorNet | None = None
    teacher_spec: str = ""
    train_annotations: list = dataclasses.field(default_factory=list)
    val: list | None = None


@dataclass(frozen=True)
class Phase:
    """One phase of the pipeline. ``run(pipeline_run, folder)`` does its work in ``folder`` (``RUN/dir``) and returns
    what its ``phase.json`` records; a folder holding that file is done and skipped on a rerun. ``run`` None: nothing
    to do (a teacher with shipped weights, calibration not asked for). ``then`` gives the later phases what they
    take from this one, whether it ran now or in an earlier attempt."""

    name: str  # its key in the report's timings
    dir: str
    run: Callable[[PipelineRun, Path], dict[str, Any]] | None
    then: Callable[[PipelineRun], None] | None = None


def _teacher_ships_weights(pipe: PipelineConfig) -> bool:
    return pipe.teacher in ZOO and ZOO[pipe.teacher].weights is not None


def pipeline_phases(pipe: PipelineConfig) -> list[Phase]:
    """Phases 0-4, in the order they run."""
    return [
        Phase("teacher", "0-teacher", None if _teacher_ships_weights(pipe) else _train_teacher, then=_load_teacher),
        Phase("distill", "1-distill", _distill),
        Phase("prune", "2-prune", None if pipe.skip_pruning else _prune),
        Phase("finetune", "3-finetune", _deploy_distilled if pipe.skip_pruning else _finetune),
        Phase("calibrate", "4-calibrate", _calibrate if pipe.calibrate else None),
    ]


def run_pipeline(config_source: str | Path | None, out_dir: str | Path) -> dict[str, Any]:
    """Run (or resume) every phase into ``out_dir``; returns the report's JSON."""
    from featherface.pruning.phases import load_prune_config
    from featherface.training.distill import load_distill_config

    source = recipe(config_source)
    pipe = load_pipeline_config(source)
    train = load_train_config(source, {"data": pipe.data, "val": pipe.val})
    run = PipelineRun(pipe, train, load_prune_config(source), load_distill_config(source), Path(out_dir))
    out = run.out
    out.mkdir(parents=True, exist_ok=True)
    # temp files of saves a kill interrupted (the pipeline itself resumes by design): the run's own folders only
    stale = [path for folder in (out, *(out / name for name in PIPELINE_FOLDERS)) for path in
             remove_stale_temp_files(folder)]  # fmt: skip
    if stale:
        _say(f"removed {len(stale)} temp file(s) of an interrupted save: {', '.join(p.name for p in stale)}")
    started = time.monotonic()
    timings: dict[str, float] = {}
    for phase in pipeline_phases(pipe):
        t0 = time.monotonic()
        folder = out / phase.dir
        if phase.run is not None and _done(folder) is None:
            _finish(folder, phase.run(run, folder))
        if phase.then is not None:
            phase.then(run)
        timings[phase.name] = round(time.monotonic() - t0, 1)

    _say("evaluation, export, benchmark and report")
    t0 = time.monotonic()
    report = _report(pipe, out, run.teacher_spec, run.val)
    timings["report"] = round(time.monotonic() - t0, 1)
    report["calibration"] = (_done(out / "4-calibrate") or {}).get("calibration")
    report["timings_s"] = {**timings, "total": round(time.monotonic() - started, 1)}
    atomic_write_bytes(out / "report.json", json.dumps(report, indent=1).encode())
    atomic_write_bytes(out / "report.md", _markdown(report).encode())
    _say(f"done in {report['timings_s']['total'] / 60:.1f} min: {out / 'report.md'}")
    return report


# ------------------------------------------------------------------------------------------------------ phases
def _train_teacher(run: PipelineRun, folder: Path) -> dict[str, Any]:
    """Phase 0 for a teacher without shipped weights: trained on the task loss."""
    from featherface.training.trainer import Trainer

    _say(f"phase 0: training the teacher {run.pipe.teacher}")
    teacher_train = dataclasses.replace(run.train, epochs=run.pipe.teacher_epochs, model=run.pipe.teacher)
    resume = (folder / "trainer_state.pt").is_file()
    untrained = create_model(run.pipe.teacher, seed=teacher_train.seed)
    Trainer(untrained, teacher_train, folder, resume=resume).fit()
    return {"teacher": run.pipe.teacher}


def _load_teacher(run: PipelineRun) -> None:
    """The teacher (shipped weights, or phase 0's checkpoint) and the annotations the other phases train and
    validate on: a pool of unlabelled photos gets the teacher's confident faces as labels (cached in the run)."""
    from featherface.training.distill import distillation_data

    if _teacher_ships_weights(run.pipe):
        run.teacher, run.teacher_spec = create_model(run.pipe.teacher), run.pipe.teacher
        _say(f"phase 0: teacher = {run.pipe.teacher} (shipped weights)")
    else:
        run.teacher, _ = load_checkpoint(run.out / "0-teacher")
        run.teacher_spec = str(run.out / "0-teacher")
    run.train_annotations, run.val = distillation_data(
        run.pipe.data, run.pipe.val, run.teacher, run.teacher_spec, run.distill, run.out / "teacher-labels", say=_say
    )


def _distill(run: PipelineRun, folder: Path) -> dict[str, Any]:
    """Phase 1: the student learns from the teacher (and the labels)."""
    from featherface.training.distill import DistillObjective
    from featherface.training.trainer import Trainer

    pipe = run.pipe
    if pipe.distill_epochs == 0:
        _say(f"phase 1: {pipe.student} as shipped (distill_epochs: 0)")
        save_checkpoint(create_model(pipe.student), folder / "best.safetensors", {"model": pipe.student})
        return {"teacher": run.teacher_spec, "student": pipe.student, "student_init": "own", "epochs": 0}
    _say(f"phase 1: distilling {pipe.teacher} into {pipe.student}")
    distill_train = dataclasses.replace(
        run.train, epochs=pipe.distill_epochs, model=pipe.student, lr=pipe.distill_lr or run.train.lr
    )
    resume = (folder / "trainer_state.pt").is_file()
    student = create_model(pipe.student, seed=distill_train.seed)
    if pipe.student_init == "teacher-backbone" and not resume:
        copied = start_from_teacher_backbone(student, run.teacher)
        _say(f"phase 1: the student starts from the teacher's backbone ({copied} tensors)")
    objective = DistillObjective(run.teacher, student, distill_train, run.distill)
    Trainer(
        student, distill_train, folder, resume=resume, objective=objective,
        train_annotations=run.train_annotations, val_annotations=run.val,
    ).fit()  # fmt: skip
    return {"teacher": run.teacher_spec, "student": pipe.student, "student_init": pipe.student_init}


def _prune(run: PipelineRun, folder: Path) -> dict[str, Any]:
    """Phase 2: B-FPGM on the distilled student. A kill during SFP continues it (the study itself always resumes
    from its storage)."""
    from featherface.pruning.phases import prune

    _say("phase 2: B-FPGM (Bayesian-optimised rates, soft filter pruning)")
    distilled, _ = load_checkpoint(run.out / "1-distill")
    summary = prune(
        distilled, run.train, run.prune, folder, run.val, teacher=run.teacher, resume=True, distill=run.distill,
        train_annotations=run.train_annotations,
    )  # fmt: skip
    return {"rates": summary["rates"], "params_pruned": summary["params_pruned"]}


def _finetune(run: PipelineRun, folder: Path) -> dict[str, Any]:
    """Phase 3: fine-tune with the pruning masks fixed, then prune for real."""
    from featherface.pruning.phases import finetune

    _say("phase 3: fine-tune with fixed masks, then hard pruning")
    return finetune(
        run.out / "2-prune", run.train, run.prune, folder, run.val, teacher=run.teacher, resume=True,
        distill=run.distill, train_annotations=run.train_annotations,
    )  # fmt: skip


def _deploy_distilled(run: PipelineRun, folder: Path) -> dict[str, Any]:
    """Phase 3 without pruning (``skip_pruning``): phase 1's best checkpoint is the deployed model."""
    _say("phase 3: no pruning (skip_pruning): the distilled student is the deployed model")
    folder.mkdir(parents=True, exist_ok=True)
    _copy_checkpoint(run.out / "1-distill" / "best", folder / "deployed")
    return {"pruned": False, "deployed": "1-distill/best.safetensors"}


def _copy_checkpoint(source: Path, target: Path) -> None:
    """``source.safetensors`` and its ``.json`` copied to ``target.*`` (stems without suffix), each atomically."""
    for suffix in (".safetensors", ".json"):
        atomic_write_bytes(target.with_suffix(suffix), source.with_suffix(suffix).read_bytes())


def _calibrate(run: PipelineRun, folder: Path) -> dict[str, Any]:
    """Phase 4: the deployed model's face logits shifted, level by level, to keep the teacher's count of faces."""
    from featherface.training.calibration import apply_logit_offset, calibration_photos, fit_calibration

    _say("phase 4: calibrating the deployed model's scores against the teacher")
    net, meta = load_checkpoint(run.out / "3-finetune" / "deployed.safetensors")
    photos = calibration_photos([a.path for a in run.train_annotations], run.pipe.calibration_images)
    calibration = fit_calibration(net, run.teacher, photos)
    apply_logit_offset(net, calibration.logit_offsets)
    save_checkpoint(net, folder / "deployed.safetensors", {**meta, "calibration": calibration.to_dict()})
    per_level = zip(calibration.logit_offsets, calibration.student_faces_before, calibration.teacher_faces, strict=True)
    _say(
        "phase 4: logit offsets per level (stride 8 first) "
        + ", ".join(
            f"{offset:+.3f} (kept {kept} faces at {calibration.threshold_target}, the teacher {wanted})"
            for offset, kept, wanted in per_level
        )
        + f", over {calibration.images} photos"
    )
    return {"calibration": calibration.to_dict()}


# ------------------------------------------------------------------------------------------------------ report
def _deployed_dir(out: Path) -> Path:
    """Where the deployed checkpoint is: the calibrated one when phase 4 ran, else phase 3's."""
    calibrated = out / "4-calibrate"
    return calibrated if (calibrated / "deployed.safetensors").is_file() else out / "3-finetune"


def _phase_models(pipe: PipelineConfig, out: Path, teacher_spec: str) -> dict[str, str]:
    """The models the report scores, by label: a run that continues a shipped student scores it too (where this
    run started, on the same sets), and one without pruning has no phase 2."""
    models = {f"teacher ({pipe.teacher})": teacher_spec}
    if pipe.continues_shipped_student:
        models[f"start ({pipe.student}, shipped)"] = pipe.student
    models["phase 1: distilled"] = str(out / "1-distill" / "best.safetensors")
    if not pipe.skip_pruning:
        models["phase 2: soft-pruned"] = str(out / "2-prune" / "soft_pruned.safetensors")
    models["phase 3: deployed"] = str(_deployed_dir(out) / "deployed.safetensors")
    return models


def _report(pipe: PipelineConfig, out: Path, teacher_spec: str, val: list) -> dict[str, Any]:
    """The report's JSON: every phase's model scored, the deployed model published beside the run (checkpoint and
    ONNX), the models timed, the figures drawn in ``plots/``."""
    (out / "plots").mkdir(exist_ok=True)
    models = _phase_models(pipe, out, teacher_spec)
    phases = _score_phases(pipe, out, models, val)
    deployed_spec, onnx_path = _publish_deployed(out)
    models["phase 3: deployed"] = deployed_spec
    rows = _time_phases(pipe, models, phases, teacher_spec)
    _draw_figures(phases, out, deployed_spec, val)
    # no rates in a run without pruning (skip_pruning): the student's own provenance has those it was pruned with
    no_search = {"rates": None, "trials": []}
    rates = no_search if pipe.skip_pruning else json.loads((out / "2-prune" / "rates.json").read_text())
    return {
        "data": pipe.data,
        "val": pipe.val,
        "sample_set_figures": pipe.val.startswith("sample"),
        "phases": phases,
        "rates": rates["rates"],
        "bo_trials": len(rates["trials"]),
        "deployed": {"checkpoint": deployed_spec, "onnx": str(onnx_path), "bytes": Path(deployed_spec).stat().st_size},
        "benchmark": {"backend": "onnxruntime", "size": pipe.benchmark_size, "threads": pipe.benchmark_threads,
                      "rows": rows},
    }  # fmt: skip


def _score_phases(pipe: PipelineConfig, out: Path, models: dict[str, str], val: list) -> dict[str, dict[str, Any]]:
    """Size, GFLOPs and accuracy on ``val`` (and AP on ``pipe.report_data``) of each phase's model, by label; their
    PR curves drawn in ``plots/pr_curves.png``."""
    from featherface.data.sample import resolve_dataset
    from featherface.evaluation.plots import plot_pr_curves
    from featherface.evaluation.runner import evaluate_detector
    from featherface.pruning.masks import apply_masks
    from featherface.pruning.phases import load_masks

    extra_sets = {spec: resolve_dataset(spec) for spec in pipe.report_data}
    phases: dict[str, dict[str, Any]] = {}
    curves = {}
    for label, spec in models.items():
        net = load_model(spec)
        if "soft-pruned" in label:  # its zeroed filters still take part in CBAM's reductions unless masked
            apply_masks(net, load_masks(out / "2-prune" / "masks.safetensors"))
        detector = Detector.from_net(net, device="cpu")
        result, _ = evaluate_detector(detector, val, progress=False)
        phases[label] = {
            "model": spec,
            "params": count_parameters(net),
            "gflops": round(gflops(net, pipe.benchmark_size), 4),
            **{k: result.to_dict()[k] for k in ("ap", "ap75", "ap50_95", "recall", "nme")},
        }
        for name, extra_set in extra_sets.items():  # scored only: never trained or selected on
            extra, _ = evaluate_detector(detector, extra_set, progress=False)
            phases[label][f"ap@{name}"] = extra.ap
        curves[label] = (result.pr_recall, result.pr_precision, result.ap)
    kind = "sample-set figures" if pipe.val.startswith("sample") else "validation"
    plot_pr_curves(curves, out / "plots" / "pr_curves.png", f"{pipe.val} ({kind})")
    return phases


def _publish_deployed(out: Path) -> tuple[str, Path]:
    """The deployed checkpoint copied to the run's top (so that the run directory itself resolves to it:
    ``featherface detect --model RUN``) and exported to ONNX there; returns both paths."""
    from featherface.export.onnx import export_onnx

    _copy_checkpoint(_deployed_dir(out) / "deployed", out / "deployed")
    deployed_spec = str(out / "deployed.safetensors")
    return deployed_spec, export_onnx(load_model(deployed_spec), out / "deployed.onnx")


def _time_phases(
    pipe: PipelineConfig, models: dict[str, str], phases: dict[str, dict[str, Any]], teacher_spec: str
) -> list[dict[str, Any]]:
    """The models timed in one interleaved onnxruntime run (RetinaFace and the unpruned student as references);
    each phase's ``latency_ms`` and its ratio to RetinaFace's added to ``phases``. Returns the benchmark's rows."""
    from featherface.benchmark import benchmark

    distilled, deployed = models["phase 1: distilled"], models["phase 3: deployed"]
    bench_specs = list(dict.fromkeys(["retinaface-mnet025", teacher_spec, pipe.student, distilled, deployed]))
    rows = benchmark(bench_specs, pipe.benchmark_size, "onnxruntime", pipe.benchmark_threads, pipe.benchmark_repeats)
    latency = {spec: row for spec, row in zip(bench_specs, rows, strict=True)}
    reference_ms = latency["retinaface-mnet025"]["median_ms"]
    for label, spec in models.items():
        row = latency.get(spec) or (latency[distilled] if "soft" in label else None)
        if row is not None:
            phases[label]["latency_ms"] = row["median_ms"]
            phases[label]["latency_vs_retinaface"] = round(row["median_ms"] / reference_ms, 3)
    return rows


def _draw_figures(phases: dict[str, dict[str, Any]], out: Path, deployed_spec: str, val: list) -> None:
    """``plots/``: the phases side by side, the deployed model on the validation photos, and phase 2's search
    figures."""
    plots = out / "plots"
    _plot_phases(phases, plots / "phases.png")
    _draw_val_detections(deployed_spec, val, plots / "detections_val.png")
    for name in ("bo_convergence.png", "rates.png"):
        source = out / "2-prune" / name
        if source.is_file():
            atomic_write_bytes(plots / name, source.read_bytes())


def _plot_phases(phases: dict[str, dict[str, Any]], path: Path) -> None:

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [label.replace(": ", ":\n").replace(" (", "\n(") for label in phases]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.8), dpi=110)
    panels = [
        ("params", "parameters", 1.0),
        ("ap50_95", "AP@[.5:.95] (val)", 1.0),
        ("latency_ms", "ms (onnxruntime)", 1.0),
    ]
    for ax, (key, title, _) in zip(axes, panels, strict=True):
        values = [row.get(key) or 0 for row in phases.values()]
        ax.bar(labels, values, color=["0.6"] + [f"C{i}" for i in range(len(values) - 1)])  # the teacher in grey
        ax.set_title(title)
        ax.tick_params(axis="x", labelsize=7)
        for i, v in enumerate(values):
            ax.text(i, v, f"{v:,.3g}" if key != "params" else f"{v:,}", ha="center", va="bottom", fontsize=7)
    save_figure(fig, path)


def _draw_val_detections(spec: str, val: list, path: Path) -> None:
    import cv2
    import numpy as np

    from featherface.detection.visualize import draw_detections

    detector = Detector.load(spec, device="cpu")
    tiles = []
    for ann in val[:6]:
        image = read_image(ann.path)
        drawn = draw_detections(image, detector.detect(image))
        scale = 360 / drawn.shape[0]
        tiles.append(cv2.resize(drawn, (round(drawn.shape[1] * scale), 360)))
    strip = np.concatenate(tiles, axis=1) if tiles else np.zeros((360, 360, 3), np.uint8)
    ok, encoded = cv2.imencode(".png", strip)
    if ok:
        atomic_write_bytes(path, encoded.tobytes())


def _markdown(report: dict[str, Any]) -> str:
    sample = report["sample_set_figures"]
    lines = ["# featherface pipeline report", ""]
    if sample:
        lines += [
            f"**Sample-set figures.** AP and NME are measured on `{report['val']}` (a handful of photos), after "
            f"training on `{report['data']}`. They show that each phase works, not how the models do on WIDER FACE.",
            "",
        ]
    extra = [k for k in next(iter(report["phases"].values())) if k.startswith("ap@")]
    if not sample:
        lines += [f"AP, AP@[.5:.95] and NME on `{report['val']}`; " + "".join(
            f"{k.replace('ap@', 'AP@0.5 on `')}` (scored only, never trained or selected on); " for k in extra
        ) + "data trained on: `" + report["data"] + "`.", ""]  # fmt: skip
    lines += [
        f"| phase | params | GFLOPs ({report['benchmark']['size']}²) | AP@0.5 | AP@[.5:.95] | NME | "
        + "".join(f"{k.replace('ap@', 'AP ').rstrip('/')} | " for k in extra)
        + "latency ms (ORT) | vs RetinaFace |",
        "|---|---:|---:|---:|---:|---:|" + "---:|" * len(extra) + "---:|---:|",
    ]
    for label, row in report["phases"].items():
        nme = format_metric(row["nme"])
        latency = row.get("latency_ms")
        lat = f"{latency:.2f}" if latency is not None else "-"
        ratio = f"{row['latency_vs_retinaface']:.2f}x" if latency is not None else "-"
        lines.append(
            f"| {label} | {row['params']:,} | {row['gflops']:.3f} | {format_metric(row['ap'])} | "
            f"{format_metric(row['ap50_95'])} | "
            f"{nme} | " + "".join(f"{format_metric(row[k])} | " for k in extra) + f"{lat} | {ratio} |"
        )
    b = report["benchmark"]
    lines += [
        "",
        f"Latency: onnxruntime, 1x3x{b['size']}x{b['size']}, {b['threads']} threads, median of interleaved repeats "
        "in one run (`featherface benchmark`)"
        + (
            "."
            if report["rates"] is None
            else "; the soft-pruned model has the distilled model's shape, hence its time."
        ),
        "",
    ]
    if report["rates"] is None:
        lines += ["No pruning in this run (`skip_pruning`): the deployed model is phase 1's student.", ""]
    else:
        lines += ["## B-FPGM rates (fraction of filters pruned per layer group)", "", "| group | rate |", "|---|---:|"]
        lines += [f"| {g} | {r:.3f} |" for g, r in report["rates"].items()]
        lines += [
            "",
            f"{report['bo_trials']} Bayesian-optimisation trials (Optuna GP sampler); see `plots/bo_convergence.png` "
            "and `plots/rates.png`.",
            "",
        ]
    lines += [
        "## Files",
        "",
        f"- deployed model: `{report['deployed']['checkpoint']}` ({report['deployed']['bytes']:,} bytes) and "
        f"`{report['deployed']['onnx']}`",
        "- `plots/phases.png`: parameters, AP and latency per phase; `plots/pr_curves.png`: PR curves per phase;",
        "  `plots/detections_val.png`: the deployed model on the validation photos.",
        "",
        "Phase timings (s): " + ", ".join(f"{k} {v}" for k, v in report.get("timings_s", {}).items()),
    ]
    return "\n".join(lines) + "\n"

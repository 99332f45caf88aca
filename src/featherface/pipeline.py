"""The main job: teacher -> phase 1 distillation -> phase 2 B-FPGM -> phase 3 fine-tune + hard prune, with an
evaluation after every phase, ONNX export of the deployed model and a report (markdown, JSON, PNG).

Resumable phase by phase: a finished phase leaves ``phase.json`` in its folder and is skipped on a rerun; an
interrupted training phase continues from its ``trainer_state.pt``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from featherface.config_schema import ConfigError, build, rule
from featherface.detection.api import Detector
from featherface.detection.image import read_image
from featherface.evaluation.voc import format_metric
from featherface.fileio import atomic_write_bytes, remove_stale_temp_files, save_figure
from featherface.models.checkpoint import load_checkpoint, save_checkpoint
from featherface.models.config import STUDENT_INITS
from featherface.models.detector_net import count_parameters
from featherface.models.loader import load_model
from featherface.models.zoo import ZOO, create_model, start_from_teacher_backbone
from featherface.profiling import gflops
from featherface.training.config import config_path, load_section, load_train_config
from featherface.training.run import config_source as recipe

# The folders of a pipeline run (its phases, their SFP run, cached teacher labels, figures), where its saves write.
PIPELINE_FOLDERS = ("0-teacher", "1-distill", "2-prune", "2-prune/sfp", "3-finetune", "teacher-labels", "plots")


@dataclass
class PipelineConfig:
    data: str = "sample:train"
    val: str = "sample:val"  # labelled data, or a pool's hold-out (DIR:holdout) labelled by the teacher
    report_data: list[str] = dataclasses.field(default_factory=list)  # more labelled sets scored in the report
    teacher: str = "retinaface-mnet025"
    student: str = "nano-b"
    # Where the student's backbone starts: its own weights ("own": ImageNet's for nano-b, the shipped ones for
    # nano-b-distilled, to continue it), or the teacher's trained backbone when both are MobileNetV1-0.25 layer
    # for layer (SPEC section 4; recorded in the distillation's phase.json).
    student_init: str = dataclasses.field(default="own", metadata=rule(choices=STUDENT_INITS))
    # Phase 4: shift the deployed student's face logits so that at the default threshold it keeps as many faces as
    # the teacher on this many training photos (featherface.training.calibration); ranking unchanged.
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
    benchmark_size: int = dataclasses.field(default=640, metadata=rule(ge=32, le=4096))  # as augment.image_size
    benchmark_threads: int = dataclasses.field(default=2, metadata=rule(ge=1))
    benchmark_repeats: int = dataclasses.field(default=20, metadata=rule(ge=1))


def load_pipeline_config(source: str | Path | None) -> PipelineConfig:
    """The ``pipeline:`` section of a config file or preset (default: the sample preset). A config without one is
    an error: the pipeline would not know its data."""
    source = recipe(source)
    data = load_section(source, "pipeline")
    if "data" not in data:
        raise ConfigError(
            f"{config_path(source)}: no pipeline: section naming its data (pipeline: data: ..., val: ...); "
            "see src/featherface/configs/sample.yaml or pool.yaml for one"
        )
    pipe = build(PipelineConfig, data, str(config_path(source)), "pipeline.", what="pipeline")
    if pipe.distill_epochs == 0 and (pipe.student_init != "own" or pipe.student not in ZOO
                                     or not ZOO[pipe.student].trained):  # fmt: skip
        raise ConfigError(
            f"{config_path(source)}: pipeline.distill_epochs: 0 keeps the student as it is, which needs a zoo "
            f"student with shipped weights and student_init: own (got student {pipe.student!r}, student_init "
            f"{pipe.student_init!r})"
        )
    return pipe


def _done(folder: Path) -> dict[str, Any] | None:
    marker = folder / "phase.json"
    return json.loads(marker.read_text()) if marker.is_file() else None


def _finish(folder: Path, info: dict[str, Any]) -> dict[str, Any]:
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(folder / "phase.json", json.dumps(info, indent=1).encode())
    return info


def _say(message: str) -> None:
    print(f"[pipeline] {message}", flush=True)


def run_pipeline(config_source: str | Path | None, out_dir: str | Path) -> dict[str, Any]:
    """Run (or resume) every phase into ``out_dir``; returns the report's JSON."""
    from featherface.pruning.phases import finetune, load_prune_config, prune
    from featherface.training.distill import DistillObjective, distillation_data, load_distill_config
    from featherface.training.trainer import Trainer

    source = recipe(config_source)
    pipe = load_pipeline_config(source)
    train = load_train_config(source, {"data": pipe.data, "val": pipe.val})
    prune_config = load_prune_config(source)
    distill_config = load_distill_config(source)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # temp files of saves a kill interrupted (the pipeline itself resumes by design): the run's own folders only
    stale = [path for folder in (out, *(out / name for name in PIPELINE_FOLDERS)) for path in
             remove_stale_temp_files(folder)]  # fmt: skip
    if stale:
        _say(f"removed {len(stale)} temp file(s) of an interrupted save: {', '.join(p.name for p in stale)}")
    started = time.monotonic()
    timings: dict[str, float] = {}

    def timed(name: str, t0: float) -> None:
        timings[name] = round(time.monotonic() - t0, 1)

    # phase 0: the teacher
    t0 = time.monotonic()
    teacher_dir = out / "0-teacher"
    if pipe.teacher in ZOO and ZOO[pipe.teacher].weights is not None:
        teacher = create_model(pipe.teacher)
        teacher_spec = pipe.teacher
        _say(f"phase 0: teacher = {pipe.teacher} (shipped weights)")
    else:
        if _done(teacher_dir) is None:
            _say(f"phase 0: training the teacher {pipe.teacher}")
            teacher_train = dataclasses.replace(train, epochs=pipe.teacher_epochs, model=pipe.teacher)
            resume = (teacher_dir / "trainer_state.pt").is_file()
            untrained = create_model(pipe.teacher, seed=teacher_train.seed)
            Trainer(untrained, teacher_train, teacher_dir, resume=resume).fit()
            _finish(teacher_dir, {"teacher": pipe.teacher})
        teacher, _ = load_checkpoint(teacher_dir)
        teacher_spec = str(teacher_dir)
    # a pool of unlabelled photos gets the teacher's confident faces as labels (cached in the run)
    train_annotations, val = distillation_data(
        pipe.data, pipe.val, teacher, teacher_spec, distill_config, out / "teacher-labels", say=_say
    )
    timed("teacher", t0)

    # phase 1: distillation
    t0 = time.monotonic()
    distill_dir = out / "1-distill"
    if _done(distill_dir) is None and pipe.distill_epochs == 0:
        _say(f"phase 1: {pipe.student} as shipped (distill_epochs: 0)")
        save_checkpoint(create_model(pipe.student), distill_dir / "best.safetensors", {"model": pipe.student})
        _finish(distill_dir, {"teacher": teacher_spec, "student": pipe.student, "student_init": "own", "epochs": 0})
    if _done(distill_dir) is None:
        _say(f"phase 1: distilling {pipe.teacher} into {pipe.student}")
        distill_train = dataclasses.replace(
            train, epochs=pipe.distill_epochs, model=pipe.student, lr=pipe.distill_lr or train.lr
        )
        resume_distill = (distill_dir / "trainer_state.pt").is_file()
        student = create_model(pipe.student, seed=distill_train.seed)
        if pipe.student_init == "teacher-backbone" and not resume_distill:
            copied = start_from_teacher_backbone(student, teacher)
            _say(f"phase 1: the student starts from the teacher's backbone ({copied} tensors)")
        objective = DistillObjective(teacher, student, distill_train, distill_config)
        Trainer(
            student, distill_train, distill_dir, resume=resume_distill, objective=objective,
            train_annotations=train_annotations, val_annotations=val,
        ).fit()  # fmt: skip
        _finish(distill_dir, {"teacher": teacher_spec, "student": pipe.student, "student_init": pipe.student_init})
    timed("distill", t0)

    # phase 2: B-FPGM
    t0 = time.monotonic()
    prune_dir = out / "2-prune"
    if _done(prune_dir) is None:
        _say("phase 2: B-FPGM (Bayesian-optimised rates, soft filter pruning)")
        distilled, _ = load_checkpoint(distill_dir)
        # resume: a kill during SFP continues it (the study itself always resumes from its storage)
        summary = prune(
            distilled, train, prune_config, prune_dir, val, teacher=teacher, resume=True, distill=distill_config,
            train_annotations=train_annotations,
        )  # fmt: skip
        _finish(prune_dir, {"rates": summary["rates"], "params_pruned": summary["params_pruned"]})
    timed("prune", t0)

    # phase 3: fine-tune + hard prune
    t0 = time.monotonic()
    finetune_dir = out / "3-finetune"
    if _done(finetune_dir) is None:
        _say("phase 3: fine-tune with fixed masks, then hard pruning")
        summary = finetune(
            prune_dir, train, prune_config, finetune_dir, val, teacher=teacher, resume=True, distill=distill_config,
            train_annotations=train_annotations,
        )  # fmt: skip
        _finish(finetune_dir, summary)
    timed("finetune", t0)

    # phase 4: score calibration (optional)
    t0 = time.monotonic()
    if pipe.calibrate and _done(out / "4-calibrate") is None:
        _say("phase 4: calibrating the deployed model's scores against the teacher")
        _finish(out / "4-calibrate", _calibrate(out, teacher, train_annotations, pipe.calibration_images))
    timed("calibrate", t0)

    _say("evaluation, export, benchmark and report")
    t0 = time.monotonic()
    report = _report(pipe, out, teacher_spec, val)
    timed("report", t0)
    report["calibration"] = (_done(out / "4-calibrate") or {}).get("calibration")
    report["timings_s"] = {**timings, "total": round(time.monotonic() - started, 1)}
    atomic_write_bytes(out / "report.json", json.dumps(report, indent=1).encode())
    atomic_write_bytes(out / "report.md", _markdown(report).encode())
    _say(f"done in {report['timings_s']['total'] / 60:.1f} min: {out / 'report.md'}")
    return report


def _deployed_dir(out: Path) -> Path:
    """Where the deployed checkpoint is: the calibrated one when phase 4 ran, else phase 3's."""
    calibrated = out / "4-calibrate"
    return calibrated if (calibrated / "deployed.safetensors").is_file() else out / "3-finetune"


def _calibrate(out: Path, teacher: Any, train_annotations: list, images: int) -> dict[str, Any]:
    import numpy as np

    from featherface.models.checkpoint import save_checkpoint
    from featherface.training.calibration import apply_logit_offset, fit_calibration

    net, meta = load_checkpoint(out / "3-finetune" / "deployed.safetensors")
    paths = sorted(str(a.path) for a in train_annotations)  # training photos: the hold-out stays unseen
    chosen = np.random.default_rng(0).choice(len(paths), size=min(images, len(paths)), replace=False)
    calibration = fit_calibration(net, teacher, [paths[i] for i in sorted(chosen)])
    apply_logit_offset(net, calibration.logit_offset)
    save_checkpoint(net, out / "4-calibrate" / "deployed.safetensors", {**meta, "calibration": calibration.to_dict()})
    _say(
        f"phase 4: logit offset {calibration.logit_offset:+.3f} (the student kept {calibration.student_faces_before} "
        f"faces at 0.5 where the teacher kept {calibration.teacher_faces}, over {calibration.images} photos)"
    )
    return {"calibration": calibration.to_dict()}


def _phase_models(pipe: PipelineConfig, out: Path, teacher_spec: str) -> dict[str, str]:
    return {
        f"teacher ({pipe.teacher})": teacher_spec,
        "phase 1: distilled": str(out / "1-distill" / "best.safetensors"),
        "phase 2: soft-pruned": str(out / "2-prune" / "soft_pruned.safetensors"),
        "phase 3: deployed": str(_deployed_dir(out) / "deployed.safetensors"),
    }


def _report(pipe: PipelineConfig, out: Path, teacher_spec: str, val: list) -> dict[str, Any]:
    from featherface.benchmark import benchmark
    from featherface.data.sample import resolve_dataset
    from featherface.evaluation.plots import plot_pr_curves
    from featherface.evaluation.runner import evaluate_detector
    from featherface.export.onnx import export_onnx
    from featherface.pruning.masks import apply_masks
    from featherface.pruning.phases import load_masks

    plots = out / "plots"
    plots.mkdir(exist_ok=True)
    models = _phase_models(pipe, out, teacher_spec)
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
    plot_pr_curves(curves, plots / "pr_curves.png", f"{pipe.val} ({kind})")
    # the run directory itself resolves to the deployed model (`featherface detect --model RUN`)
    for suffix in (".safetensors", ".json"):
        source = (_deployed_dir(out) / "deployed").with_suffix(suffix)
        atomic_write_bytes((out / "deployed").with_suffix(suffix), source.read_bytes())
    deployed_spec = str(out / "deployed.safetensors")
    models["phase 3: deployed"] = deployed_spec
    onnx_path = export_onnx(load_model(deployed_spec), out / "deployed.onnx")
    bench_specs = list(dict.fromkeys(["retinaface-mnet025", teacher_spec, pipe.student, models["phase 1: distilled"],
                                      deployed_spec]))  # fmt: skip
    rows = benchmark(bench_specs, pipe.benchmark_size, "onnxruntime", pipe.benchmark_threads, pipe.benchmark_repeats)
    latency = {spec: row for spec, row in zip(bench_specs, rows, strict=True)}
    reference_ms = latency["retinaface-mnet025"]["median_ms"]
    for label, spec in models.items():
        row = latency.get(spec) or (latency[models["phase 1: distilled"]] if "soft" in label else None)
        if row is not None:
            phases[label]["latency_ms"] = row["median_ms"]
            phases[label]["latency_vs_retinaface"] = round(row["median_ms"] / reference_ms, 3)
    _plot_phases(phases, plots / "phases.png")
    _draw_val_detections(deployed_spec, val, plots / "detections_val.png")
    for name in ("bo_convergence.png", "rates.png"):
        source = out / "2-prune" / name
        if source.is_file():
            atomic_write_bytes(plots / name, source.read_bytes())
    rates = json.loads((out / "2-prune" / "rates.json").read_text())
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
        ax.bar(labels, values, color=["0.6", "C0", "C1", "C2"][: len(values)])
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
        "in one run (`featherface benchmark`); the soft-pruned model has the distilled model's shape, hence its time.",
        "",
        "## B-FPGM rates (fraction of filters pruned per layer group)",
        "",
        "| group | rate |",
        "|---|---:|",
    ]
    lines += [f"| {g} | {r:.3f} |" for g, r in report["rates"].items()]
    lines += [
        "",
        f"{report['bo_trials']} Bayesian-optimisation trials (Optuna GP sampler); see `plots/bo_convergence.png` "
        "and `plots/rates.png`.",
        "",
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

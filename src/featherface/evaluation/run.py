"""Evaluation as one call (``featherface evaluate``): a model scored on a labelled set, or against a teacher's
faces (:func:`evaluate`), or WIDER FACE's official protocol over prediction files, written by a model first if
need be (:func:`evaluate_on_wider`). Each returns what the command writes as JSON; the lines it prints go to
``say`` (stdout) and its warnings to ``warn`` (stderr) as they happen: a warning first, then the error that ends
the run.

>>> report = evaluate("nano-b-pretrained", "sample:val")  # prints the per-image table and the summary
>>> report.result.ap, report.to_dict()["per_image"][0]["true_positives"]
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from featherface.data.labels import ImageAnnotation, LabelReport
from featherface.data.pseudo import TEACHER_SCORE_THRESHOLD
from featherface.errors import ParameterError
from featherface.evaluation.runner import EVAL_CONF_THRESHOLD, EVAL_NMS_THRESHOLD
from featherface.evaluation.voc import DatasetResult, format_metric
from featherface.evaluation.widerface import WiderResult
from featherface.fileio import OutputGuard

Say = Callable[[str], None]

# above this many images, the report prints totals only (the per-image rows are in its JSON)
MAX_IMAGE_ROWS = 50
MATCH_IOU = 0.5  # the IoU a detection needs with a face to find it: VOC's (AP@0.5)
SCORE_THRESHOLD = 0.5  # recall, precision and NME count the faces detected at this score: detection's default
PREDICTIONS_DIR = "wider_predictions"  # where a model's WIDER predictions are written, unless told
PR_PLOT = "pr.png"  # the PR curve's file in the plots folder
WIDER_PR_PLOT = "wider_pr.png"
to_stderr: Say = functools.partial(print, file=sys.stderr)


@dataclass
class DatasetEvaluation:
    """A model's figures on a labelled set (``result``) with what they were measured against: the labels, or
    ``teacher``'s faces at score >= ``teacher_conf``; the label problems skipped (``report``) and the drawn copies
    not written (``unwritten``: ``errors`` entries)."""

    model: str
    data: str
    result: DatasetResult
    classes: list[str] | None = None
    teacher: str | None = None
    teacher_conf: float | None = None
    report: LabelReport = field(default_factory=LabelReport)
    unwritten: list[dict[str, str]] = field(default_factory=list)

    def table(self) -> list[str]:
        """The per-image rows under a header, or (over :data:`MAX_IMAGE_ROWS` images) one line of totals."""
        rows = self.result.per_image
        if len(rows) > MAX_IMAGE_ROWS:
            return [f"{len(rows)} images (per-image rows in --json)"]
        return [f"{'image':<30}{'faces':>6}{'dets':>6}{'TP':>5}{'FP':>5}{'missed':>8}"] + [
            f"{row['image']:<30}{row['faces']:>6}{row['detections']:>6}{row['true_positives']:>5}"
            f"{row['false_positives']:>5}{row['missed']:>8}"
            for row in rows
        ]

    def summary(self) -> str:
        """AP at the run's IoU, at 0.75 and over [.5:.95], recall, precision and NME, and what they count."""
        result = self.result
        reference = f"teacher {self.teacher} at score >= {self.teacher_conf}" if self.teacher else "labels"
        ap, ap75, ap50_95, recall, nme = (format_metric(v) for v in (result.ap, result.ap75, result.ap50_95,
                                                                      result.recall, result.nme))  # fmt: skip
        return (
            f"AP@{result.iou_threshold:g} {ap}  AP@0.75 {ap75}  AP@[.5:.95] {ap50_95}  recall {recall}  "
            f"precision {result.precision:.4f}  NME {nme}  ({result.num_faces} faces from {reference}; recall, "
            f"precision and NME at score >= {result.score_threshold})"
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON of ``featherface evaluate``: the settings, what was skipped, then the figures."""
        report = self.report
        return {
            "model": self.model,
            "data": self.data,
            "classes": self.classes,
            "teacher": self.teacher,
            "teacher_conf": self.teacher_conf if self.teacher else None,
            "detection_conf": EVAL_CONF_THRESHOLD,
            "detection_nms": EVAL_NMS_THRESHOLD,
            "image_size": "original",
            "skipped": dict(report.skipped),
            "skipped_at": report.examples,
            # every image left out whole, with why (missing or unreadable), then every drawn copy not written
            "errors": [{"path": f["path"], "reason": f["reason"], "where": f["where"]} for f in report.files]
            + self.unwritten,
            **self.result.to_dict(),
        }


def _require_images(data: str, annotations: list[ImageAnnotation], report: LabelReport) -> None:
    if not annotations:
        skipped = f" (skipped {report.summary()})" if report.total else ""
        raise ValueError(f"{data}: no labelled images{skipped}")


def _reference_images(
    data: str, classes: Sequence[str] | None, teacher: str | None, strict: bool, report: LabelReport
) -> list[ImageAnnotation]:
    """The labelled images of ``data``; with a ``teacher``, its images to be labelled by it (labels there, if any,
    are not used)."""
    from featherface.data.sample import resolve_dataset, resolve_distillation_data

    if teacher is None:
        return resolve_dataset(data, strict=strict, report=report, classes=classes)
    if classes is not None:
        raise ParameterError(
            lambda n: f"{n('classes')} picks labelled VOC classes; it has no meaning with {n('teacher')}"
        )
    images, _ = resolve_distillation_data(data, strict=strict)
    return images


def evaluate(
    model: str,
    data: str,
    *,
    classes: Sequence[str] | None = None,
    iou: float = MATCH_IOU,
    conf: float = SCORE_THRESHOLD,
    teacher: str | None = None,
    teacher_conf: float = TEACHER_SCORE_THRESHOLD,
    strict: bool = False,
    save_dir: str | Path | None = None,
    plots: str | Path | None = None,
    device: str | None = None,
    threads: int | None = None,
    guard: OutputGuard | None = None,
    say: Say = print,
    warn: Say = to_stderr,
) -> DatasetEvaluation:
    """AP at IoU ``iou`` (and at 0.75, over [.5:.95]), recall, precision and NME at score >= ``conf`` of ``model``
    on the labelled set ``data`` at original image size, the WIDER protocol's detection settings (conf 0.02, NMS
    0.4: :func:`~featherface.evaluation.runner.evaluate_detector`). ``classes``: VOC object names that are faces.
    With ``teacher``, the references are its faces at score >= ``teacher_conf`` on ``data``'s images.

    An untrained model is evaluated too (a baseline: its AP says what it is). Images that cannot be read are
    skipped and counted (``strict``: the first one raises); none readable raises ``ValueError``. ``save_dir``: drawn
    copies (faces at ``conf``) mirroring the images' paths; ``plots``: the PR curve as :data:`PR_PLOT` there.
    ``guard``: the caller's claimed outputs, told every input image before any work. The table and the summary go
    to ``say``, warnings to ``warn``."""
    from featherface.detection.api import Detector
    from featherface.detection.run import load_for_images
    from featherface.evaluation.runner import claim_drawn_copies, evaluate_detector, write_drawn_copies

    report = LabelReport()
    annotations = _reference_images(data, classes, teacher, strict, report)
    _require_images(data, annotations, report)
    guard = guard or OutputGuard()
    # every input image told to the guard (those skipped as unreadable too: still a user's files) before any work
    guard.add_inputs(
        [ann.path for ann in annotations] + [Path(f["path"]) for f in report.files if Path(f["path"]).is_file()]
    )
    drawn = claim_drawn_copies([ann.path for ann in annotations], save_dir, guard=guard)
    if teacher is not None:
        from featherface.data.pseudo import teacher_annotations

        labeller = Detector.load(teacher, device=device, threads=threads)
        paths = [ann.path for ann in annotations]
        annotations = teacher_annotations(labeller, paths, teacher_conf, progress=True, strict=strict, report=report)
        _require_images(data, annotations, report)
    detector, at_once = load_for_images(model, len(annotations), device, threads, allow_untrained=True)
    result, detections = evaluate_detector(
        detector, annotations, score_threshold=conf, iou_threshold=iou, report=None if strict else report,
        inference_threads=at_once,
    )  # fmt: skip
    if report.total:
        warn(f"warning: skipped {report.summary()}")
    if all(found is None for found in detections):
        raise ValueError(f"{data}: none of the {len(annotations)} images could be read")
    evaluation = DatasetEvaluation(model, data, result, classes and list(classes), teacher, teacher_conf, report)
    say("\n".join([*evaluation.table(), evaluation.summary()]))
    if plots:
        _plot_dataset(evaluation, Path(plots) / PR_PLOT, say)
    evaluation.unwritten = write_drawn_copies(annotations, detections, drawn, conf)
    if evaluation.unwritten:
        first = evaluation.unwritten[0]
        warn(f"warning: {len(evaluation.unwritten)} drawn cop(ies) not written (first: {first['where']}: "
             f"{first['reason']})")  # fmt: skip
    return evaluation


def _plot_dataset(evaluation: DatasetEvaluation, path: Path, say: Say) -> None:
    from featherface.evaluation.plots import plot_pr_curves

    result = evaluation.result
    curves = {evaluation.data: (result.pr_recall, result.pr_precision, result.ap)}
    say(f"PR curve: {plot_pr_curves(curves, path, f'{evaluation.model} on {evaluation.data}')}")


def evaluate_on_wider(
    wider_gt: str | Path,
    *,
    predictions: str | Path | None = None,
    model: str | None = None,
    images: str | Path | None = None,
    write_predictions: str | Path = PREDICTIONS_DIR,
    plots: str | Path | None = None,
    device: str | None = None,
    threads: int | None = None,
    guard: OutputGuard | None = None,
    say: Say = print,
    warn: Say = to_stderr,
) -> WiderResult:
    """Easy / Medium / Hard AP by WIDER FACE's protocol against the official ``wider_*_val.mat`` files in
    ``wider_gt``, of the prediction files in ``predictions`` (``<event>/<image>.txt``), or of ``model`` run over
    ``images`` (WIDER_val/images) first, its predictions written to ``write_predictions``. ``plots``: the PR
    curves as :data:`WIDER_PR_PLOT` there. ``guard``: the caller's claimed outputs, told the files read before any
    work. The figures go to ``say``, warnings to ``warn``."""
    from featherface.evaluation.widerface import SETTINGS, evaluate_wider, load_wider_ground_truth, read_predictions

    if (predictions is None) == (model is None):
        raise ParameterError(
            lambda n: f"{n('wider_gt')} needs exactly one of {n('predictions')} DIR or {n('model')} M {n('images')} DIR"
        )
    guard = guard or OutputGuard()
    guard.add_inputs(sorted(Path(wider_gt).glob("*.mat")))
    if predictions is not None:
        guard.add_inputs(sorted(Path(predictions).rglob("*.txt")))
    ground_truth = load_wider_ground_truth(wider_gt)
    if model is not None:
        predictions = write_predictions
        _predict_wider(model, images, predictions, len(ground_truth), device, threads, say)
    result = evaluate_wider(read_predictions(predictions), ground_truth)
    if result.images_without_predictions:
        warn(f"warning: {result.images_without_predictions} ground-truth images have no prediction file")
    say("  ".join(f"{s}: {result.ap[s]:.4f}" for s in SETTINGS))
    if plots:
        from featherface.evaluation.plots import plot_pr_curves

        curves = {s: (result.recall[s], result.precision[s], result.ap[s]) for s in SETTINGS}
        say(f"PR curves: {plot_pr_curves(curves, Path(plots) / WIDER_PR_PLOT, 'WIDER FACE val')}")
    return result


def _predict_wider(
    model: str, images: str | Path | None, out_dir: str | Path, count: int, device: str | None,
    threads: int | None, say: Say,
) -> None:  # fmt: skip
    """``model``'s WIDER predictions over ``images`` (``count`` of them) into ``out_dir``."""
    from featherface.detection.run import load_for_images
    from featherface.evaluation.runner import predict_wider

    if not images:
        raise ParameterError(lambda n: f"{n('wider_gt')} with {n('model')} needs {n('images')} WIDER_val/images")
    detector, at_once = load_for_images(model, count, device, threads, allow_untrained=True)
    written = predict_wider(detector, images, out_dir, inference_threads=at_once)
    say(f"wrote predictions for {written} images to {out_dir}")

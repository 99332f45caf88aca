"""End-to-end detection time over a folder of real photos, stage by stage, several models interleaved in one run.

Per image and model: ``imread`` (``cv2.imread``, through :func:`featherface.detection.image.read_image`) ->
``preprocess`` (:meth:`Detector.prepare`: resize, mean, pad) -> ``forward`` (the runner) -> ``postprocess``
(:meth:`Detector.decode`: threshold, top-k, box decoding, NMS), one image at a time at its original size, as
``featherface detect`` sees a folder. Every (model, thread count) runs image i before any runs image i + 1, so
drifts in clock speed or background load fall on all of them alike; the first ``warmup`` images are run but not
counted. ``threads`` bounds onnxruntime's (or torch's) and OpenCV's threads in each model's turn.
"""

from __future__ import annotations

import itertools
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2

from featherface.detection.api import Detector
from featherface.detection.image import read_image
from featherface.detection.postprocess import PostprocessConfig
from featherface.evaluation.runner import EVAL_CONF_THRESHOLD, EVAL_NMS_THRESHOLD
from featherface.fileio import save_figure

STAGES = ("imread", "preprocess", "forward", "postprocess")
BACKENDS = ("onnxruntime", "torch")
STAGES_PLOT = "end_to_end_stages.png"  # the stage-share figure's file in a plots folder


@dataclass
class _Entry:
    """One (model, thread count) of the run and the seconds each stage took on each counted image."""

    model: str
    backend: str
    threads: int
    detector: Detector
    seconds: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in STAGES})
    faces: list[int] = field(default_factory=list)


def image_paths(data: str, max_images: int | None = None) -> list[Path]:
    """The images of a DATA argument (SPEC section 8: a folder of photos, subfolders included, ``DIR:holdout``,
    a labelled set, ``sample:val``...), in its order, the first ``max_images`` of them."""
    from featherface.data.sample import resolve_distillation_data

    annotations, _ = resolve_distillation_data(data)
    paths = [ann.path for ann in annotations][:max_images]
    if not paths:
        raise ValueError(f"{data}: no images")
    return paths


def _load_detector(spec: str, onnx_path: str | None, threads: int, postprocess: PostprocessConfig) -> Detector:
    """The detector on ``onnx_path`` when given, else on the torch model (a zoo name's network, not the ONNX that
    ``Detector.load`` prefers for shipped models)."""
    if onnx_path is not None:
        return Detector.load(onnx_path, device="cpu", threads=threads, postprocess_config=postprocess)
    from featherface.models.zoo import ZOO

    if spec in ZOO:
        return Detector.from_pretrained(spec, device="cpu", threads=threads, postprocess_config=postprocess)
    return Detector.load(spec, device="cpu", threads=threads, postprocess_config=postprocess)


def _time_image(entry: _Entry, path: Path, size: int | None) -> tuple[list[float], int]:
    """Seconds of each stage on one image, and the faces found."""
    detector = entry.detector
    marks = [time.perf_counter()]
    image = read_image(path)
    marks.append(time.perf_counter())
    batch, scales = detector.prepare([image], size)
    marks.append(time.perf_counter())
    outputs = detector.runner(batch)
    marks.append(time.perf_counter())
    (found,) = detector.decode(outputs, batch.shape[2:], scales)
    marks.append(time.perf_counter())
    return [end - start for start, end in itertools.pairwise(marks)], len(found)


def _summary(entry: _Entry, conf: float, nms: float, size: int | None) -> dict[str, Any]:
    totals = [sum(stage) for stage in zip(*entry.seconds.values(), strict=True)]
    elapsed = sum(totals)
    row: dict[str, Any] = {
        "model": entry.model,
        "backend": entry.backend,
        "threads": entry.threads,
        "images": len(totals),
        "images_per_s": round(len(totals) / elapsed, 3),
        "median_ms": round(statistics.median(totals) * 1000, 3),
        "mean_ms": round(elapsed / len(totals) * 1000, 3),
    }
    for stage in STAGES:
        row[f"{stage}_ms"] = round(sum(entry.seconds[stage]) / len(totals) * 1000, 3)
    for stage in STAGES:
        row[f"{stage}_share"] = round(sum(entry.seconds[stage]) / elapsed, 4)
    row.update(faces_per_image=round(statistics.mean(entry.faces), 3), conf=conf, nms=nms, size=size)
    return row


def benchmark_end_to_end(
    models: Sequence[str],
    data: str,
    threads: Sequence[int] = (1, 2),
    backend: str = "onnxruntime",
    conf: float = EVAL_CONF_THRESHOLD,
    nms: float = EVAL_NMS_THRESHOLD,
    size: int | None = None,
    repeats: int = 1,
    warmup: int = 3,
    max_images: int | None = None,
) -> list[dict[str, Any]]:
    """One row per (thread count, model), thread counts in the order given, models in argument order.

    ``models``: zoo names, checkpoints, run directories or ``.onnx`` files (featherface exports or YuNet). With
    ``backend="onnxruntime"`` a model runs as :func:`featherface.benchmark.onnx_file` gives it (a shipped model's
    ONNX, others exported to a temporary ONNX first); an ``.onnx`` file always runs in onnxruntime (its row says
    so). Detectors are built by :meth:`Detector.load` (torch zoo models by :meth:`Detector.from_pretrained`), at
    score threshold ``conf`` (default 0.02, the evaluation setting) and NMS IoU ``nms``.
    ``size``: resize the long side to it (default: original size). ``repeats`` passes over the images; the first
    ``warmup`` images of the first pass are not counted.

    Row keys: ``model``, ``backend``, ``threads``, ``images`` (counted), ``images_per_s`` (counted images over
    the sum of their four stages), ``median_ms`` / ``mean_ms`` per image, ``<stage>_ms`` (mean per image) and
    ``<stage>_share`` (of the summed time, the four adding up to 1) for ``imread``, ``preprocess``, ``forward``,
    ``postprocess``, ``faces_per_image``, ``conf``, ``nms``, ``size``.
    """
    if backend not in BACKENDS:
        raise ValueError(f"--backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    if not models:
        raise ValueError("give at least one model")
    if not threads or min(threads) < 1 or repeats < 1 or warmup < 0:
        raise ValueError("--threads and --repeats must be >= 1 and --warmup >= 0")
    paths = image_paths(data, max_images)
    if warmup >= len(paths) * repeats:
        raise ValueError(f"{data}: {len(paths)} image(s) x {repeats} repeat(s) leave none after {warmup} warm-up")
    from featherface.benchmark import onnx_file

    postprocess = PostprocessConfig(conf_threshold=conf, nms_threshold=nms)
    saved_cv2_threads = cv2.getNumThreads()
    with tempfile.TemporaryDirectory() as tmp:
        entries = []
        for spec in models:
            onnx = backend == "onnxruntime" or spec.endswith(".onnx")
            onnx_path = str(onnx_file(spec, Path(tmp))) if onnx else None
            for n in threads:
                detector = _load_detector(spec, onnx_path, n, postprocess)
                entries.append(_Entry(spec, "onnxruntime" if onnx else "torch", n, detector))
        try:
            counted = 0
            for _ in range(repeats):
                for image_path in paths:
                    for entry in entries:
                        cv2.setNumThreads(entry.threads)  # resizing; the runner keeps to its own count
                        seconds, faces = _time_image(entry, image_path, size)
                        if counted >= warmup:
                            for stage, value in zip(STAGES, seconds, strict=True):
                                entry.seconds[stage].append(value)
                            entry.faces.append(faces)
                    counted += 1
        finally:
            cv2.setNumThreads(saved_cv2_threads)
    entries.sort(key=lambda e: list(threads).index(e.threads))  # stable: models stay in argument order
    return [_summary(entry, conf, nms, size) for entry in entries]


def format_end_to_end_table(rows: list[dict[str, Any]]) -> str:
    """Images/s, per-image milliseconds and each stage's share of the time, one line per row."""
    shares = "".join(f"{stage + ' % (ms)':>19}" for stage in STAGES)
    lines = [f"{'model':<34}{'backend':>12}{'thr':>4}{'images/s':>10}{'median ms':>11}{shares}"]
    for r in rows:
        cells = "".join(f"{100 * r[f'{s}_share']:>10.1f} ({r[f'{s}_ms']:>6.1f})" for s in STAGES)
        lines.append(
            f"{r['model'][-34:]:<34}{r['backend']:>12}{r['threads']:>4}{r['images_per_s']:>10.2f}"
            f"{r['median_ms']:>11.2f}{cells}"
        )
    lines.append("stage columns: share of the summed time in %, (mean ms per image)")
    return "\n".join(lines)


def plot_stage_shares(rows: list[dict[str, Any]], path: str | Path) -> Path:
    """Stacked horizontal bars of each row's stage shares, labelled with images/s; written atomically as PNG."""

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{Path(r['model']).name} ({r['backend']}, {r['threads']} thr)" for r in rows]
    fig, ax = plt.subplots(figsize=(8, 0.5 * len(rows) + 1.5), dpi=120)
    left = [0.0] * len(rows)
    for stage in STAGES:
        widths = [r[f"{stage}_share"] for r in rows]
        ax.barh(labels, widths, left=left, label=stage)
        left = [a + b for a, b in zip(left, widths, strict=True)]
    for y, r in enumerate(rows):
        ax.text(1.01, y, f"{r['images_per_s']:.1f} img/s", va="center", fontsize=8)
    ax.set_xlim(0, 1.18)
    ax.invert_yaxis()
    ax.set_xlabel("share of end-to-end time per image")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.15 - 0.5 / len(rows)), ncol=len(STAGES), fontsize=8)
    return save_figure(fig, path)


def run_end_to_end(
    models: Sequence[str],
    data: str,
    plots: str | Path | None = None,
    say: Callable[[str], None] = print,
    **options: Any,
) -> list[dict[str, Any]]:
    """:func:`benchmark_end_to_end` (``options``: its settings), its table to ``say`` under a line saying what was
    counted, and with ``plots`` the stage shares drawn there (:data:`STAGES_PLOT`)."""
    rows = benchmark_end_to_end(models, data, **options)
    size = options.get("size")
    say(f"{data}: {rows[0]['images']} images counted per row, conf {rows[0]['conf']}, size {size or 'original'}")
    say(format_end_to_end_table(rows))
    if plots:
        say(f"stage shares: {plot_stage_shares(rows, Path(plots) / STAGES_PLOT)}")
    return rows

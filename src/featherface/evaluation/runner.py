"""Running a detector over a dataset, for evaluation: labelled sets and WIDER FACE's image folders."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import closing
from pathlib import Path

from tqdm import tqdm

from featherface.data.labels import ImageAnnotation, LabelReport
from featherface.detection.api import Detector
from featherface.detection.image import ImageError, list_images, read_image
from featherface.detection.postprocess import Detections, PostprocessConfig
from featherface.detection.sources import Source
from featherface.detection.stream import detect_images
from featherface.evaluation.voc import DatasetResult, evaluate_dataset
from featherface.evaluation.widerface import write_prediction_file
from featherface.fileio import OutputGuard

# The WIDER FACE protocol's detection settings (Pytorch_Retinaface test_widerface.py): every face the model
# is at all confident of goes into the PR curve.
EVAL_CONF_THRESHOLD = 0.02
EVAL_NMS_THRESHOLD = 0.4


def evaluation_postprocess() -> PostprocessConfig:
    return PostprocessConfig(conf_threshold=EVAL_CONF_THRESHOLD, nms_threshold=EVAL_NMS_THRESHOLD)


def detect_dataset(
    detector: Detector,
    annotations: list[ImageAnnotation],
    progress: bool = True,
    report: LabelReport | None = None,
    inference_threads: int = 1,
) -> list[Detections | None]:
    """Detections for every labelled image, at its original size, one image per forward pass (images decoded
    ahead; ``inference_threads`` passes at once). An image that cannot be decoded raises :class:`ImageError`, or
    with a ``report`` is skipped (None in its place) and counted there."""
    results: list[Detections | None] = []
    sources = [Source.of(ann.path) for ann in annotations]
    found = detect_images(detector, sources, batch_size=1, inference_threads=inference_threads)
    bar = tqdm(zip(annotations, found, strict=True), total=len(annotations), desc="detect", unit="img",
               disable=not progress, leave=False)  # fmt: skip
    with closing(found):
        for ann, result in bar:
            if result.error is not None:
                detail = f"{ann.path}: {result.error}"
                if report is None:
                    raise ImageError(detail)
                report.add_file(ann.path, "unreadable image", ann.source or str(ann.path), detail)
            results.append(result.detections)
    return results


def evaluate_detector(
    detector: Detector,
    annotations: list[ImageAnnotation],
    score_threshold: float = 0.5,
    progress: bool = True,
    iou_threshold: float = 0.5,
    report: LabelReport | None = None,
    inference_threads: int = 1,
) -> tuple[DatasetResult, list[Detections | None]]:
    """AP at ``iou_threshold``, recall, precision and NME of ``detector`` at original image size (its own
    thresholds are replaced by the protocol's: conf 0.02, NMS 0.4); ``inference_threads``: forward passes at once
    (:func:`featherface.detection.api.split_threads`).

    With a ``report``, an image that cannot be decoded is skipped, counted there and left out of every figure
    (its detections are None); without one it raises :class:`ImageError`.
    """
    saved = detector.postprocess_config
    detector.postprocess_config = evaluation_postprocess()
    try:
        detections = detect_dataset(detector, annotations, progress, report, inference_threads)
    finally:
        detector.postprocess_config = saved
    read = [i for i, found in enumerate(detections) if found is not None]
    result = evaluate_dataset(
        [annotations[i] for i in read], [detections[i] for i in read], iou_threshold, score_threshold
    )
    return result, detections


def predict_wider(
    detector: Detector,
    images_dir: str | Path,
    out_dir: str | Path,
    progress: bool = True,
    inference_threads: int = 1,
) -> int:
    """Run over ``images_dir/<event>/*.jpg`` (WIDER_val/images, or its parent) writing ``out_dir/<event>/<image>.txt``.

    Original size, conf 0.02, NMS 0.4, one image per forward pass (``inference_threads`` at once). Returns the
    number of images; an image that cannot be decoded raises :class:`ImageError`.
    """
    images_dir = Path(images_dir)
    if (images_dir / "images").is_dir():
        images_dir = images_dir / "images"
    if not images_dir.is_dir():
        raise ValueError(f"{images_dir}: no such images folder")
    events = sorted(p for p in images_dir.iterdir() if p.is_dir())
    files = [(event.name, path) for event in events for path in list_images(event)]
    if not files:
        raise ValueError(f"{images_dir}: no <event>/<image> files (expected WIDER_val/images)")
    saved = detector.postprocess_config
    detector.postprocess_config = evaluation_postprocess()
    try:
        sources = [Source.of(path) for _, path in files]
        found = detect_images(detector, sources, batch_size=1, inference_threads=inference_threads)
        with closing(found):
            for (event, path), result in tqdm(zip(files, found, strict=True), total=len(files),
                                              desc="WIDER predictions", unit="img", disable=not progress):  # fmt: skip
                if result.error is not None:
                    raise ImageError(f"{path}: {result.error}")
                faces = result.detections
                write_prediction_file(Path(out_dir) / event / f"{path.stem}.txt", path.stem, faces.boxes, faces.scores)
    finally:
        detector.postprocess_config = saved
    return len(files)


def claim_drawn_copies(
    images: Sequence[Path],
    save_dir: str | Path | None,
    json_path: str | Path | None = None,
    guard: OutputGuard | None = None,
) -> dict[Path, Path]:
    """Where each image's drawn copy goes under ``save_dir`` (its path relative to the images' common folder, as
    ``detect`` mirrors it), claimed before any work: never an input image, never one file for two images; nor may
    ``json_path`` replace an input image. ``guard``: one that already holds the command's other inputs and claims
    (:func:`featherface.outputs.guard_inputs`). Raises ``ValueError`` naming the path."""
    from featherface.detection.sources import collect_sources, mirror_outputs

    if not (save_dir or json_path):
        return {}
    sources = collect_sources(list(images))
    guard = guard or OutputGuard()
    guard.add_inputs(s.path for s in sources)
    if json_path:
        guard.claim(Path(json_path), "--json")
    return mirror_outputs(sources, save_dir, guard) if save_dir else {}


def write_drawn_copies(
    annotations: Sequence[ImageAnnotation],
    detections: Sequence[Detections | None],
    targets: dict[Path, Path],
    conf: float,
) -> list[dict[str, str]]:
    """Each read image with its detections at score >= ``conf`` drawn, to ``targets[path]`` (from
    :func:`claim_drawn_copies`). A copy that cannot be written is skipped and returned as an ``errors`` entry
    (``path``, ``reason``, ``where``: the copy); the others are written."""
    from featherface.detection.sources import failure_reason, write_image
    from featherface.detection.stream import FILE_ERRORS
    from featherface.detection.visualize import draw_detections

    unwritten: list[dict[str, str]] = []
    for ann, found in zip(annotations, detections, strict=True):
        if ann.path not in targets or found is None:  # found None: unreadable, skipped and counted already
            continue
        confident = found.scores >= conf
        found = Detections(found.boxes[confident], found.scores[confident], found.landmarks[confident])
        target = targets[ann.path]
        try:
            write_image(target, draw_detections(read_image(ann.path), found))
        except FILE_ERRORS as exc:
            unwritten.append({"path": str(ann.path), "reason": f"output not written: {failure_reason(exc, target)}",
                              "where": str(target)})  # fmt: skip
    return unwritten

"""Labels from a teacher detector: its confident faces on images, as annotations (boxes and landmarks).

Used to score a student against its teacher on unlabelled images (``featherface evaluate --teacher``) and to
pseudo-label an image pool for training.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from featherface.data.labels import ImageAnnotation, LabelError, LabelReport
from featherface.detection.api import Detector
from featherface.detection.image import ImageError, read_image

# A face the teacher scores at least this is taken as a real face.
TEACHER_SCORE_THRESHOLD = 0.5


def teacher_annotations(
    detector: Detector,
    paths: Sequence[str | Path],
    score_threshold: float = TEACHER_SCORE_THRESHOLD,
    progress: bool = False,
    strict: bool = False,
    report: LabelReport | None = None,
) -> list[ImageAnnotation]:
    """The detector's faces with score >= ``score_threshold`` on each image, at its original size.

    Boxes ``(K, 4)`` xyxy and landmarks ``(K, 5, 2)`` in original-image pixels, ``has_landmarks`` all True; NMS
    as the detector's own setting. An unreadable image is skipped and counted in ``report`` (or raises
    :class:`LabelError` if ``strict``), so the result may be shorter than ``paths``: match it by ``path``.
    """
    if not 0 <= score_threshold <= 1:
        raise ValueError(f"teacher score threshold must be in [0, 1], not {score_threshold}")
    report = report if report is not None else LabelReport()
    saved = detector.postprocess_config
    detector.postprocess_config = dataclasses.replace(saved, conf_threshold=score_threshold)
    annotations = []
    try:
        for path in tqdm([Path(p) for p in paths], desc="teacher", unit="img", disable=not progress, leave=False):
            try:
                image = read_image(path)
            except ImageError as exc:
                if strict:
                    raise LabelError(str(exc)) from None
                report.add_file(path, "unreadable image", str(path), str(exc))
                continue
            found = detector.detect(image)
            keep = found.scores >= score_threshold
            k = int(keep.sum())
            annotations.append(
                ImageAnnotation(
                    path=path,
                    boxes=found.boxes[keep].astype(np.float32).reshape(k, 4),
                    landmarks=found.landmarks[keep].astype(np.float32).reshape(k, 5, 2),
                    has_landmarks=np.ones(k, dtype=bool),
                )
            )
    finally:
        detector.postprocess_config = saved
    return annotations


def _annotations_to_json(annotations: list[ImageAnnotation]) -> list[dict]:
    return [
        {"path": str(a.path), "boxes": a.boxes.round(2).tolist(), "landmarks": a.landmarks.round(2).tolist()}
        for a in annotations
    ]


def _annotations_from_json(rows: list[dict]) -> list[ImageAnnotation]:
    out = []
    for row in rows:
        k = len(row["boxes"])
        out.append(
            ImageAnnotation(
                Path(row["path"]),
                np.asarray(row["boxes"], np.float32).reshape(k, 4),
                np.asarray(row["landmarks"], np.float32).reshape(k, 5, 2),
                np.ones(k, dtype=bool),
            )
        )
    return out


def cached_teacher_annotations(
    detector: Detector,
    paths: Sequence[Path],
    cache: Path,
    teacher: str,
    score_threshold: float = TEACHER_SCORE_THRESHOLD,
    progress: bool = True,
) -> list[ImageAnnotation]:
    """:func:`teacher_annotations`, kept in the JSON file ``cache``: labelling a pool of thousands of photos
    takes minutes, and every phase and rerun reads the same labels. The file is reused only when it was made by
    the same ``teacher`` (a name or checkpoint fingerprint), threshold and list of images."""
    import hashlib
    import json

    from featherface.fileio import atomic_write_bytes

    key = {
        "teacher": teacher,
        "score_threshold": score_threshold,
        "images_sha1": hashlib.sha1("\n".join(str(p) for p in paths).encode()).hexdigest(),
    }
    if cache.is_file():
        stored = json.loads(cache.read_text())
        if stored.get("key") == key:
            return _annotations_from_json(stored["images"])
    annotations = teacher_annotations(detector, paths, score_threshold, progress=progress)
    cache.parent.mkdir(parents=True, exist_ok=True)
    payload = {"key": key, "images": _annotations_to_json(annotations)}
    atomic_write_bytes(cache, json.dumps(payload).encode())
    return annotations


def resolve_with_teacher(
    spec: str,
    detector: Detector,
    teacher: str,
    cache_dir: Path,
    score_threshold: float = TEACHER_SCORE_THRESHOLD,
    strict: bool = False,
) -> tuple[list[ImageAnnotation], bool]:
    """``(annotations, pseudo)``: a labelled dataset as it is (``pseudo`` False), or a pool of unlabelled images
    (``DIR``, ``DIR:train``, ``DIR:holdout``) labelled by the teacher's confident faces, cached in ``cache_dir``."""
    import hashlib

    from featherface.data.sample import resolve_distillation_data

    annotations, labelled = resolve_distillation_data(spec, strict=strict)
    if labelled:
        return annotations, False
    name = Path(spec.rstrip("/")).name.replace(":", "-") or "pool"
    cache = cache_dir / f"teacher_labels_{name}_{hashlib.sha1(spec.encode()).hexdigest()[:8]}.json"
    paths = [a.path for a in annotations]
    return cached_teacher_annotations(detector, paths, cache, teacher, score_threshold), True

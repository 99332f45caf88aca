"""Labels from a teacher detector: its confident faces on images, as annotations (boxes and landmarks).

Used to score a student against its teacher on unlabelled images (``featherface evaluate --teacher``) and to
pseudo-label an image pool for training.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from featherface.data.labels import ImageAnnotation, LabelError, LabelReport
from featherface.data.transforms import FLIP_LANDMARK_ORDER
from featherface.detection.api import Detector
from featherface.detection.boxes import box_iou
from featherface.detection.image import ImageError, read_image
from featherface.detection.postprocess import Detections

# A face the teacher scores at least this is taken as a real face.
TEACHER_SCORE_THRESHOLD = 0.5
# Weighted boxes fusion (Solovyev, Wang & Gabruseva 2021, "Weighted boxes fusion: ensembling boxes from different
# object detection models"): detections of one face in different passes overlap at least this much (the paper's 0.55).
FUSION_IOU = 0.55
# With several passes, each keeps faces down to this score before fusion: a face two passes score 0.45 and 0.6 is
# fused to their mean, so agreement can lift a face over the label threshold and one pass's doubt can sink it.
PASS_SCORE_FLOOR = 0.1


@dataclass(frozen=True)
class TeacherPasses:
    """How the teacher looks at each photo: at these scales of its original size, each also mirrored if ``flip``;
    several passes are fused by :func:`fuse_detections`. The default is one pass at the original size."""

    scales: tuple[float, ...] = (1.0,)
    flip: bool = False

    def __post_init__(self) -> None:
        if not self.scales or not all(0 < s <= 4 for s in self.scales):
            raise ValueError(f"teacher pass scales must be in (0, 4], at least one: {self.scales}")

    @property
    def count(self) -> int:
        return len(self.scales) * (2 if self.flip else 1)

    def describe(self) -> dict:
        """The cache key's part: empty for the single pass, so labels made before passes existed stay valid."""
        return {} if self.count == 1 and self.scales == (1.0,) else {"scales": list(self.scales), "flip": self.flip}


def mirror_detections(found: Detections, width: int) -> Detections:
    """Detections on a horizontally mirrored image, in the unmirrored image's pixels (x -> width - x; the left and
    right eyes and mouth corners swap, as :func:`featherface.data.transforms.horizontal_flip` does)."""
    boxes = found.boxes.copy()
    boxes[:, 0], boxes[:, 2] = width - found.boxes[:, 2], width - found.boxes[:, 0]
    landmarks = found.landmarks[:, FLIP_LANDMARK_ORDER].copy()
    landmarks[:, :, 0] = width - landmarks[:, :, 0]
    return Detections(boxes, found.scores.copy(), landmarks)


def fuse_detections(passes: Sequence[Detections], iou: float = FUSION_IOU) -> Detections:
    """Weighted boxes fusion of one image's detections from ``len(passes)`` passes.

    Detections are taken by descending score; each joins the cluster whose fused box overlaps it most (IoU >=
    ``iou``) or starts one. A cluster's box and landmarks are the score-weighted means of its members; its score is
    the sum of its members' scores over the number of passes (at most their mean), so a face that only some passes
    see scores lower. Sorted by fused score.
    """
    boxes = np.concatenate([p.boxes for p in passes]).astype(np.float64).reshape(-1, 4)
    scores = np.concatenate([p.scores for p in passes]).astype(np.float64)
    landmarks = np.concatenate([p.landmarks for p in passes]).astype(np.float64).reshape(-1, 5, 2)
    members: list[list[int]] = []
    fused_boxes = np.zeros((0, 4))
    for index in np.argsort(-scores, kind="stable"):
        overlaps = box_iou(boxes[index : index + 1], fused_boxes)[0] if len(members) else np.zeros(0)
        best = int(np.argmax(overlaps)) if len(overlaps) else -1
        if best >= 0 and overlaps[best] >= iou:
            members[best].append(int(index))
            weights = scores[members[best]]
            fused_boxes[best] = weights @ boxes[members[best]] / weights.sum()
        else:
            members.append([int(index)])
            fused_boxes = np.vstack([fused_boxes, boxes[index]])
    if not members:
        return Detections()
    weights = [scores[m] for m in members]
    fused_scores = np.array([w.sum() / max(len(passes), len(w)) for w in weights])
    fused_landmarks = np.stack(
        [np.tensordot(w, landmarks[m], axes=1) / w.sum() for w, m in zip(weights, members, strict=True)]
    )
    order = np.argsort(-fused_scores, kind="stable")
    return Detections(
        fused_boxes[order].astype(np.float32), fused_scores[order].astype(np.float32),
        fused_landmarks[order].astype(np.float32),
    )  # fmt: skip


def teacher_detections(detector: Detector, image: np.ndarray, passes: TeacherPasses = TeacherPasses()) -> Detections:
    """The detector's faces on one image, in its pixels: one pass at its original size, or ``passes`` fused."""
    if passes.count == 1 and passes.scales == (1.0,):
        return detector.detect(image)
    long_side = max(image.shape[:2])
    mirrored = np.ascontiguousarray(image[:, ::-1]) if passes.flip else None
    found = []
    for scale in passes.scales:
        size = None if scale == 1.0 else max(1, round(long_side * scale))
        found.append(detector.detect(image, size))
        if mirrored is not None:
            found.append(mirror_detections(detector.detect(mirrored, size), image.shape[1]))
    return fuse_detections(found)


def teacher_annotations(
    detector: Detector,
    paths: Sequence[str | Path],
    score_threshold: float = TEACHER_SCORE_THRESHOLD,
    progress: bool = False,
    strict: bool = False,
    report: LabelReport | None = None,
    passes: TeacherPasses = TeacherPasses(),
) -> list[ImageAnnotation]:
    """The detector's faces with score >= ``score_threshold`` on each image, at its original size (or fused over
    ``passes``: :func:`teacher_detections`).

    Boxes ``(K, 4)`` xyxy and landmarks ``(K, 5, 2)`` in original-image pixels, ``has_landmarks`` all True; NMS
    as the detector's own setting. An unreadable image is skipped and counted in ``report`` (or raises
    :class:`LabelError` if ``strict``), so the result may be shorter than ``paths``: match it by ``path``.
    """
    if not 0 <= score_threshold <= 1:
        raise ValueError(f"teacher score threshold must be in [0, 1], not {score_threshold}")
    report = report if report is not None else LabelReport()
    saved = detector.postprocess_config
    floor = score_threshold if passes.count == 1 else min(score_threshold, PASS_SCORE_FLOOR)
    detector.postprocess_config = dataclasses.replace(saved, conf_threshold=floor)
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
            found = teacher_detections(detector, image, passes)
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
    passes: TeacherPasses = TeacherPasses(),
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
        **({"passes": passes.describe()} if passes.describe() else {}),
    }
    if cache.is_file():
        stored = json.loads(cache.read_text())
        if stored.get("key") == key:
            return _annotations_from_json(stored["images"])
    annotations = teacher_annotations(detector, paths, score_threshold, progress=progress, passes=passes)
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
    passes: TeacherPasses = TeacherPasses(),
) -> tuple[list[ImageAnnotation], bool]:
    """``(annotations, pseudo)``: a labelled dataset as it is (``pseudo`` False), or a pool of unlabelled images
    (``DIR``, ``DIR:train``, ``DIR:holdout``) labelled by the teacher's confident faces, cached in ``cache_dir``."""
    import hashlib

    from featherface.data.sample import resolve_distillation_data

    annotations, labelled = resolve_distillation_data(spec, strict=strict)
    if labelled:
        return annotations, False
    name = Path(spec.rstrip("/")).name.replace(":", "-") or "pool"
    suffix = "" if not passes.describe() else "_" + hashlib.sha1(str(passes.describe()).encode()).hexdigest()[:6]
    cache = cache_dir / f"teacher_labels_{name}_{hashlib.sha1(spec.encode()).hexdigest()[:8]}{suffix}.json"
    paths = [a.path for a in annotations]
    return cached_teacher_annotations(detector, paths, cache, teacher, score_threshold, passes=passes), True

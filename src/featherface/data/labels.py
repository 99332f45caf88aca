"""The RetinaFace / WIDER FACE ``label.txt`` layout.

::

    # <image path relative to the image root>
    x y w h [lx1 ly1 f1 ... lx5 ly5 f5 [score]]

One face per line: (x, y) top-left, w and h in pixels; optionally five landmarks (left eye, right eye, nose,
left and right mouth corner) each as ``x y flag``, where ``-1`` coordinates mean "no landmarks" (WIDER
validation and hard faces). A trailing number (blur / labeller confidence) is accepted and kept.

Bad-data policy (every reader and every command): with ``strict=True`` the first problem raises
:class:`LabelError` naming ``file:line``; otherwise the faulty face (or image, if its file is missing) is skipped and
counted by reason in a :class:`LabelReport`, which keeps the first few places of each. Files are read as UTF-8 with
or without a byte-order mark, with any line ends. :func:`check_images` then opens every image and drops faces
wholly outside theirs, under the same policy, before any training step.

A label file is data from anywhere: an image path that leads outside the image root (``../../etc/passwd``, an
absolute path elsewhere) is skipped as ``image outside the dataset root`` unless ``allow_outside_root``; so is a
number that is not finite or beyond :data:`MAX_LABEL_VALUE` (a ``bad face line``).
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# Columns after the 4 box numbers: 15 for landmarks (x, y, flag) x 5, then an optional score.
_LANDMARK_COLUMNS = 15
_ACCEPTED_COLUMNS = (4, 5, 4 + _LANDMARK_COLUMNS, 4 + _LANDMARK_COLUMNS + 1)
# places of each skip reason a report keeps (and its summary shows)
REPORT_EXAMPLES = 3
# The largest magnitude of a label number (pixels): float32, in which boxes and landmarks are kept, holds every
# whole number up to 2^24 = 16,777,216, far beyond the side of any image the decoder accepts in practice (its pixel
# limit is 2^28). A landmark of 1e30 would be trained on as a loss of 1e28.
MAX_LABEL_VALUE = float(2**24)
OUTSIDE_ROOT = "image outside the dataset root"


class LabelError(ValueError):
    """A problem in a label file, with the file and line it is on."""


def _no_boxes() -> np.ndarray:
    return np.zeros((0, 4), dtype=np.float32)


@dataclass
class ImageAnnotation:
    """Faces of one image: ``boxes (K, 4)`` xyxy pixels, ``landmarks (K, 5, 2)``, ``has_landmarks (K,)``.

    ``ignored_boxes (M, 4)`` (xyxy pixels) are faces that are neither to be found nor a mistake to find, such as
    VOC objects of classes left out or marked ``difficult``: evaluation counts a detection whose best match is one
    of them neither as a hit nor as a false positive. They are not in ``boxes`` and not counted by ``len``.

    ``source`` and ``box_sources`` (one per box) say where the image and each face were labelled (``file:line``),
    for the messages of :func:`check_images`; empty when the annotation was made otherwise.
    """

    path: Path
    boxes: np.ndarray
    landmarks: np.ndarray
    has_landmarks: np.ndarray
    ignored_boxes: np.ndarray = field(default_factory=_no_boxes)
    source: str = ""
    box_sources: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path.name

    def __len__(self) -> int:
        return len(self.boxes)


@dataclass
class LabelReport:
    """What a lenient parse skipped, by reason, with the first ``REPORT_EXAMPLES`` places (``file:line``) of each."""

    skipped: Counter = field(default_factory=Counter)
    first_seen: dict[str, str] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)
    # every image skipped whole (missing, unreadable): {"path", "reason", "where", "detail"}, for JSON ``errors``
    files: list[dict[str, str]] = field(default_factory=list)

    def add(self, reason: str, where: str) -> None:
        self.skipped[reason] += 1
        self.first_seen.setdefault(reason, where)
        places = self.examples.setdefault(reason, [])
        if len(places) < REPORT_EXAMPLES:
            places.append(where)

    def add_file(self, path: Path | str, reason: str, where: str, detail: str = "") -> None:
        """An image skipped whole: counted under ``reason`` and listed in ``files``."""
        self.add(reason, where)
        self.files.append({"path": str(path), "reason": reason, "where": where, "detail": detail})

    @property
    def total(self) -> int:
        return sum(self.skipped.values())

    def summary(self) -> str:
        """``2 x bad face line (at label.txt:3, label.txt:9); 1 x missing image file (at label.txt:5)``."""
        if not self.skipped:
            return "no problems"
        parts = []
        for reason, n in self.skipped.items():
            places = self.examples.get(reason) or [self.first_seen[reason]]
            more = ", ..." if n > len(places) else ""
            parts.append(f"{n} x {reason} (at {', '.join(places)}{more})")
        return "; ".join(parts)


@dataclass
class BadDataPolicy:
    """The bad-data policy of every reader in one place: with ``strict`` a problem raises :class:`LabelError`
    naming where it is; otherwise it is counted in ``report`` and the reader skips what it concerns."""

    strict: bool
    report: LabelReport

    def problem(
        self, reason: str, where: str, detail: str = "", skipped_file: Path | str | None = None, error: str = ""
    ) -> None:
        """``reason`` (the report's key) found at ``where`` (``file:line``), ``detail`` saying what exactly.
        ``skipped_file``: the image skipped whole, also listed in ``report.files``. ``error``: the strict error's
        text after ``where`` (default ``reason: detail``)."""
        if self.strict:
            raise LabelError(f"{where}: {error or reason + (': ' + detail if detail else '')}") from None
        if skipped_file is None:
            self.report.add(reason, where)
        else:
            self.report.add_file(skipped_file, reason, where, detail)

    def outside_root(self, path: Path, image_root: Path, where: str) -> None:
        """An image whose path leads outside the dataset's image root: skipped whole."""
        detail = f"not inside {image_root}"
        self.problem(OUTSIDE_ROOT, where, detail, path, error=f"{OUTSIDE_ROOT}: {path} is not inside {image_root}")

    def missing_image(self, path: Path, where: str) -> None:
        """An image file that is not there: skipped whole."""
        self.problem("missing image file", where, skipped_file=path, error=f"image file {path} not found")


def check_box_size(x: float, y: float, w: float, h: float) -> None:
    """ValueError unless the box has a positive size, also once stored as float32 corners."""
    if w <= 0 or h <= 0:
        raise ValueError(f"box of non-positive size {w:g} x {h:g}")
    # a size lost to float32 rounding at huge coordinates is no box either
    if not (np.float32(x + w) > np.float32(x) and np.float32(y + h) > np.float32(y)):
        raise ValueError(f"box size {w:g} x {h:g} vanishes at coordinates ({x:g}, {y:g})")


def check_label_values(numbers: list[float]) -> None:
    """ValueError unless every number is finite and within :data:`MAX_LABEL_VALUE` of 0."""
    if not all(math.isfinite(v) for v in numbers):
        raise ValueError("non-finite number")
    too_large = [v for v in numbers if abs(v) > MAX_LABEL_VALUE]
    if too_large:
        raise ValueError(f"number {too_large[0]:g} beyond +-{MAX_LABEL_VALUE:.0f} pixels")


def inside_root(root: Path, reference: str) -> bool:
    """Whether the path ``reference`` (relative to ``root``, or absolute) names a place inside ``root``, judged on
    the names alone (``..`` resolved, symbolic links not followed: a link the dataset's owner made is theirs)."""
    root_path = os.path.normpath(os.path.abspath(root))
    target = os.path.normpath(os.path.join(root_path, reference))
    return os.path.commonpath([root_path, target]) == root_path


def _parse_face(values: list[str]) -> tuple[list[float], list[float] | None]:
    """Box ``[x1, y1, x2, y2]`` and landmark ``[x, y] * 5`` (None if absent) of one line, or ValueError."""
    if len(values) not in _ACCEPTED_COLUMNS:
        raise ValueError(f"expected {', '.join(map(str, _ACCEPTED_COLUMNS))} numbers, found {len(values)}")
    numbers = [float(v) for v in values]
    check_label_values(numbers)
    x, y, w, h = numbers[:4]
    check_box_size(x, y, w, h)
    landmarks = None
    if len(numbers) >= 4 + _LANDMARK_COLUMNS:
        points = [numbers[4 + 3 * i : 4 + 3 * i + 2] for i in range(5)]
        if not all(p[0] < 0 and p[1] < 0 for p in points):  # all -1: no landmarks
            landmarks = [c for p in points for c in p]
    return [x, y, x + w, y + h], landmarks


def parse_label_file(
    label_file: str | Path,
    image_root: str | Path | None = None,
    strict: bool = False,
    report: LabelReport | None = None,
    allow_outside_root: bool = False,
) -> list[ImageAnnotation]:
    """Read a RetinaFace-layout label file; images are looked up under ``image_root``.

    ``image_root`` defaults to ``images/`` beside the label file if that folder exists, else the label
    file's own folder. Images whose file is missing, or whose path leads outside ``image_root`` (unless
    ``allow_outside_root``), are skipped (or raise, if ``strict``).
    """
    label_file = Path(label_file)
    if not label_file.is_file():
        raise LabelError(f"{label_file}: no such label file")
    if image_root is None:
        image_root = label_file.parent / "images" if (label_file.parent / "images").is_dir() else label_file.parent
    image_root = Path(image_root)
    policy = BadDataPolicy(strict, report if report is not None else LabelReport())
    # (image, where its line is, boxes, landmarks, where each face's line is, whether the image is inside the root)
    entries: list[tuple[Path, str, list, list, list, bool]] = []

    lines = read_text_lines(label_file)
    for lineno, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            name = line[1:].strip()
            if not name:
                policy.problem("image line without a path", f"{label_file}:{lineno}")
                continue
            inside = allow_outside_root or inside_root(image_root, name)
            entries.append((image_root / name, f"{label_file}:{lineno}", [], [], [], inside))
            continue
        if not entries:
            policy.problem("face line before any '# image' line", f"{label_file}:{lineno}")
            continue
        try:
            box, landmarks = _parse_face(line.split())
        except ValueError as exc:
            policy.problem("bad face line", f"{label_file}:{lineno}", str(exc))
            continue
        entries[-1][2].append(box)
        entries[-1][3].append(landmarks)
        entries[-1][4].append(f"{label_file}:{lineno}")

    annotations = []
    for path, where, boxes, landmarks, sources, inside in entries:
        if not inside:
            policy.outside_root(path, image_root, where)
            continue
        if not is_file(path):
            policy.missing_image(path, where)
            continue
        has = np.array([lm is not None for lm in landmarks], dtype=bool)
        points = np.array([lm if lm is not None else [0.0] * 10 for lm in landmarks], dtype=np.float32)
        annotations.append(
            ImageAnnotation(
                path=path,
                boxes=np.array(boxes, dtype=np.float32).reshape(-1, 4),
                landmarks=points.reshape(-1, 5, 2),
                has_landmarks=has,
                source=where,
                box_sources=sources,
            )
        )
    return annotations


def read_text_lines(path: Path) -> list[str]:
    """The lines of a UTF-8 text file, a byte-order mark dropped, ``\\r\\n``/``\\r``/``\\n`` alike (so that
    ``file:line`` counts lines as editors do); LabelError naming the file if it is no such text."""
    try:
        with open(path, encoding="utf-8-sig", newline=None) as f:
            return f.read().split("\n")
    except UnicodeDecodeError as exc:
        raise LabelError(f"{path}: not a UTF-8 text file (byte {exc.start})") from None
    except OSError as exc:
        raise LabelError(f"{path}: cannot be read ({exc.strerror})") from None


def is_file(path: Path) -> bool:
    """Whether ``path`` is a file; False, not an error, for names the system refuses (too long, bad bytes)."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def image_size(path: Path, decode: bool = False) -> tuple[int, int]:
    """``(width, height)`` of an image file as a viewer shows it (EXIF orientation applied, as training reads it):
    from its header, or with ``decode`` by decoding it as training will
    (:func:`featherface.detection.image.read_image`). ValueError if unreadable or over the pixel limit."""
    from featherface.detection import image  # lazy: featherface.detection loads torch

    if decode:
        height, width = image.read_image(path).shape[:2]
        return width, height
    return image.image_size(path)


def check_images(
    annotations: list[ImageAnnotation],
    strict: bool = False,
    report: LabelReport | None = None,
    decode: bool | None = None,
) -> list[ImageAnnotation]:
    """The policy of :mod:`featherface.data.labels` applied to the images themselves, before any training step.

    Every image is opened (its header; ``decode`` (default: ``strict``) decodes it fully, as training will): an
    unreadable one is skipped (``unreadable image``). A face box wholly outside its image is dropped (``box outside
    the image``; one partly outside is kept, and clipped when loaded). With ``strict`` the first problem raises
    :class:`LabelError` naming the label's ``file:line``.
    """
    policy = BadDataPolicy(strict, report if report is not None else LabelReport())
    decode = strict if decode is None else decode
    kept = []
    for ann in annotations:
        where = ann.source or str(ann.path)
        try:
            width, height = image_size(ann.path, decode)
        except ValueError as exc:
            policy.problem("unreadable image", where, str(exc), ann.path, error=f"unreadable image ({exc})")
            continue
        boxes = ann.boxes
        inside = (
            (np.minimum(boxes[:, 2], width) > np.maximum(boxes[:, 0], 0))
            & (np.minimum(boxes[:, 3], height) > np.maximum(boxes[:, 1], 0))
        )  # fmt: skip
        for k in np.flatnonzero(~inside):
            place = ann.box_sources[k] if k < len(ann.box_sources) else f"{where} face {k + 1}"
            box = ", ".join(f"{v:g}" for v in boxes[k])
            policy.problem("box outside the image", place, error=f"box outside the image ({box} in {width} x {height})")
        if not inside.all():
            sources = [s for s, keep in zip(ann.box_sources, inside, strict=False) if keep]
            ann = dataclasses.replace(
                ann, boxes=boxes[inside], landmarks=ann.landmarks[inside], has_landmarks=ann.has_landmarks[inside],
                box_sources=sources,
            )  # fmt: skip
        kept.append(ann)
    return kept

"""Pascal VOC XML annotations, as labelling tools export them (LabelImg, CVAT, Roboflow, Kaggle sets).

Accepted folders (``ROOT``), one XML file per image, read in name order:

- ``ROOT/Annotations/*.xml`` + ``ROOT/JPEGImages/`` (the VOC devkit layout);
- ``ROOT/annotations/*.xml`` + ``ROOT/images/`` (e.g. the facemask set);
- ``ROOT/*.xml`` beside the images.

An XML file's image is its ``<filename>`` in the image folder, or else the image file with the XML file's stem.
``<path>`` is not read (labelling tools write the labelling machine's absolute path there). A ``<filename>`` that
leads outside the image folder (``../../etc/passwd``, an absolute path elsewhere) skips the file as ``image outside
the dataset root``, unless ``allow_outside_root``: an annotation set is data from anywhere.

::

    <annotation>
      <filename>a.jpg</filename>
      <size><width>512</width><height>366</height></size>
      <object><name>face</name><difficult>0</difficult>
        <bndbox><xmin>79</xmin><ymin>105</ymin><xmax>109</xmax><ymax>142</ymax></bndbox></object>
    </annotation>

Coordinates: VOC numbers pixels from 1 and its boxes include both end pixels, so a box becomes the continuous
xyxy pixel box ``(xmin - 1, ymin - 1, xmax, ymax)`` (the devkit's convention, which the common VOC readers
follow; for the example: ``(78, 104, 109, 142)``, 31 x 38 pixels). Boxes of a tool that writes 0-based
continuous coordinates (LabelImg, for one) grow by one pixel on the left and top; ``one_based=False`` reads the
numbers as they are. On the facemask set the choice moves AP@0.5 of retinaface-mnet025 by 0.026 (0.655 vs 0.629).

Every class is a face unless ``classes`` names the ones to find: objects of the other classes, and objects marked
``<difficult>1</difficult>``, become ``ignored_boxes`` (neither to be found nor a mistake to find, as in VOC's
protocol). There are no landmarks (``has_landmarks`` False).

Bad-data policy as in :mod:`featherface.data.labels`: with ``strict=True`` the first problem raises
:class:`LabelError` naming the XML file (and object number); otherwise the object, or the whole file, is skipped
and counted in a :class:`LabelReport` under one of these reasons: ``malformed XML``, ``not a VOC annotation``,
``image outside the dataset root``, ``missing image file``, ``unreadable image`` (no ``<size>`` and no readable
image header), ``object without bndbox``, ``non-numeric box`` (also a number not finite or beyond
:data:`~featherface.data.labels.MAX_LABEL_VALUE`), ``box of non-positive size``, ``box outside the image``. A
file skipped whole is also listed in the report's ``files`` (evaluate's JSON ``errors``) by its image, or by the
XML file itself when that names none (malformed XML, not a VOC annotation). Boxes partly outside the image are
clipped to it without a report.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from featherface.data.labels import (
    MAX_LABEL_VALUE,
    OUTSIDE_ROOT,
    BadDataPolicy,
    ImageAnnotation,
    LabelReport,
    check_box_size,
    check_label_values,
    image_size,
    inside_root,
)

# (annotation folder, image folder) pairs tried in a VOC root, before XML files beside the images
VOC_FOLDERS = (("Annotations", "JPEGImages"), ("annotations", "images"), ("Annotations", "images"))
_BOX_TAGS = ("xmin", "ymin", "xmax", "ymax")


@dataclass
class VocLayout:
    """Where a VOC folder keeps its XML files and its images."""

    annotations: Path
    images: Path

    def xml_files(self) -> list[Path]:
        with os.scandir(self.annotations) as entries:
            return sorted(Path(e.path) for e in entries if e.name.lower().endswith(".xml") and e.is_file())


def find_voc_layout(root: str | Path) -> VocLayout | None:
    """The VOC layout of ``root`` (see the module docstring), or None if it holds no VOC XML files."""
    root = Path(root)
    if not root.is_dir():
        return None
    for xml_folder, image_folder in VOC_FOLDERS:
        if (root / xml_folder).is_dir() and (root / image_folder).is_dir():
            return VocLayout(root / xml_folder, root / image_folder)
    with os.scandir(root) as entries:
        if any(e.name.lower().endswith(".xml") and e.is_file() for e in entries):
            return VocLayout(root, root)
    return None


class _Problem(Exception):
    """A data problem: ``reason`` is the report key, ``detail`` what exactly, ``path`` the image file it costs
    (for a problem that skips the whole XML file's image)."""

    def __init__(self, reason: str, detail: str = "", path: Path | None = None) -> None:
        super().__init__(reason)
        self.reason, self.detail, self.path = reason, detail, path


def _image_size(path: Path) -> tuple[int, int]:
    """``(width, height)`` in pixels as a viewer shows the image, from the file's header, or _Problem."""
    try:
        return image_size(path)
    except ValueError as exc:
        raise _Problem("unreadable image", str(exc), path) from None


def _xml_size(root: ET.Element) -> tuple[int, int] | None:
    """``(width, height)`` from ``<size>``, or None if absent, not positive or beyond
    :data:`~featherface.data.labels.MAX_LABEL_VALUE` (``1e400`` is infinite: no whole number)."""
    try:
        width = float(root.findtext("size/width", ""))
        height = float(root.findtext("size/height", ""))
    except ValueError:
        return None
    if not (0 < width <= MAX_LABEL_VALUE and 0 < height <= MAX_LABEL_VALUE):  # NaN fails too
        return None
    return (int(width), int(height)) if int(width) > 0 and int(height) > 0 else None


def _find_image(
    root: ET.Element, xml_path: Path, image_dir: Path, by_stem: dict[str, Path], allow_outside_root: bool = False
) -> Path:
    filename = (root.findtext("filename") or "").strip()
    if filename and not allow_outside_root and not inside_root(image_dir, filename):
        raise _Problem(OUTSIDE_ROOT, f"<filename>{filename}</filename> is not inside {image_dir}", image_dir / filename)
    if filename and (image_dir / filename).is_file():
        return image_dir / filename
    if xml_path.stem in by_stem:
        return by_stem[xml_path.stem]
    expected = image_dir / (filename or xml_path.stem + ".*")
    raise _Problem("missing image file", f"{expected} not found", expected)


def _object_box(obj: ET.Element, width: int, height: int, one_based: bool = True) -> list[float]:
    """The continuous xyxy pixel box of one ``<object>``, clipped to the image, or _Problem."""
    box = obj.find("bndbox")
    if box is None:
        raise _Problem("object without bndbox")
    try:
        xmin, ymin, xmax, ymax = (float(box.findtext(tag) or "") for tag in _BOX_TAGS)
    except ValueError:
        raise _Problem("non-numeric box", ", ".join(f"{t}={box.findtext(t)!r}" for t in _BOX_TAGS)) from None
    try:
        check_label_values([xmin, ymin, xmax, ymax])
    except ValueError as exc:
        raise _Problem("non-numeric box", str(exc)) from None
    shift = 1.0 if one_based else 0.0  # 1-based inclusive pixels -> continuous coordinates
    x1, y1, x2, y2 = xmin - shift, ymin - shift, xmax, ymax
    try:
        check_box_size(x1, y1, x2 - x1, y2 - y1)
    except ValueError as exc:
        raise _Problem("box of non-positive size", str(exc)) from None
    x1, x2 = min(max(x1, 0.0), width), min(max(x2, 0.0), width)
    y1, y2 = min(max(y1, 0.0), height), min(max(y2, 0.0), height)
    if x2 <= x1 or y2 <= y1:
        raise _Problem("box outside the image", f"({xmin:g}, {ymin:g}, {xmax:g}, {ymax:g}) in {width} x {height}")
    return [x1, y1, x2, y2]


def read_voc_xml(
    xml_path: str | Path,
    image_dir: str | Path | None = None,
    classes: Collection[str] | None = None,
    strict: bool = False,
    report: LabelReport | None = None,
    names: Counter | None = None,
    images_by_stem: dict[str, Path] | None = None,
    one_based: bool = True,
    allow_outside_root: bool = False,
) -> ImageAnnotation | None:
    """The faces of one VOC XML file (boxes in xyxy pixels), or None if the whole file is skipped.

    ``image_dir`` (default: the XML file's folder) holds the image; ``classes``: the object names that are faces
    (default: all); ``names`` counts the object names seen; ``images_by_stem`` maps file stems to image paths
    (:func:`parse_voc_folder` builds it once for a folder); ``one_based=False`` reads the numbers as continuous
    coordinates as they are (no 1-pixel shift of xmin/ymin); ``allow_outside_root``: a ``<filename>`` may lead
    outside ``image_dir``.
    """
    xml_path = Path(xml_path)
    image_dir = Path(image_dir) if image_dir is not None else xml_path.parent
    policy = BadDataPolicy(strict, report if report is not None else LabelReport())
    if images_by_stem is None:
        images_by_stem = _images_by_stem(image_dir)

    try:
        root = ET.parse(xml_path).getroot()
    except ET.ParseError as exc:
        line = exc.position[0]
        policy.problem("malformed XML", f"{xml_path}:{line}", str(exc), xml_path)
        return None
    try:
        if root.tag != "annotation":
            raise _Problem("not a VOC annotation", f"root element <{root.tag}>, expected <annotation>")
        image_path = _find_image(root, xml_path, image_dir, images_by_stem, allow_outside_root)
        width, height = _xml_size(root) or _image_size(image_path)
    except _Problem as exc:  # the whole file skipped: listed by its image (the XML file when none is known)
        policy.problem(exc.reason, str(xml_path), exc.detail, exc.path or xml_path)
        return None

    faces, ignored, face_sources = [], [], []
    for number, obj in enumerate(root.iter("object"), start=1):
        name = (obj.findtext("name") or "").strip()
        if names is not None:
            names[name] += 1
        try:
            box = _object_box(obj, width, height, one_based)
        except _Problem as exc:
            policy.problem(exc.reason, f"{xml_path} object {number} ({name or 'no name'})", exc.detail)
            continue
        difficult = (obj.findtext("difficult") or "0").strip() == "1"
        is_face = (classes is None or name in classes) and not difficult
        (faces if is_face else ignored).append(box)
        if is_face:
            face_sources.append(f"{xml_path} object {number} ({name or 'no name'})")
    k = len(faces)
    return ImageAnnotation(
        path=image_path,
        boxes=np.array(faces, dtype=np.float32).reshape(k, 4),
        landmarks=np.zeros((k, 5, 2), dtype=np.float32),
        has_landmarks=np.zeros(k, dtype=bool),
        ignored_boxes=np.array(ignored, dtype=np.float32).reshape(-1, 4),
        source=str(xml_path),
        box_sources=face_sources,
    )


def _images_by_stem(image_dir: Path) -> dict[str, Path]:
    """Image files of a folder by stem (the first in name order wins)."""
    from featherface.detection.image import IMAGE_SUFFIXES  # lazy: featherface.detection loads torch

    if not image_dir.is_dir():
        return {}
    with os.scandir(image_dir) as entries:
        paths = sorted(Path(e.path) for e in entries if Path(e.name).suffix.lower() in IMAGE_SUFFIXES and e.is_file())
    by_stem: dict[str, Path] = {}
    for path in paths:
        by_stem.setdefault(path.stem, path)
    return by_stem


def parse_voc_folder(
    root: str | Path,
    classes: Collection[str] | None = None,
    strict: bool = False,
    report: LabelReport | None = None,
    one_based: bool = True,
    allow_outside_root: bool = False,
) -> list[ImageAnnotation]:
    """Every XML file of a VOC folder (layouts in the module docstring), in file-name order.

    ``classes``: the object names that are faces (default: every class); each must occur in the data, else
    ValueError listing the classes found. ``one_based``, ``allow_outside_root``: see :func:`read_voc_xml`.
    """
    layout = find_voc_layout(root)
    if layout is None:
        raise ValueError(
            f"{root}: no Pascal VOC XML files (Annotations/ + JPEGImages/, annotations/ + images/, or *.xml)"
        )
    report = report if report is not None else LabelReport()
    names: Counter = Counter()
    by_stem = _images_by_stem(layout.images)
    annotations = []
    for xml_path in layout.xml_files():
        ann = read_voc_xml(
            xml_path, layout.images, classes, strict, report, names, by_stem, one_based, allow_outside_root
        )
        if ann is not None:
            annotations.append(ann)
    unknown = sorted(set(classes or ()) - set(names))
    if unknown:
        found = ", ".join(f"{n} ({c})" for n, c in sorted(names.items())) or "none"
        raise ValueError(f"{root}: no objects of class {', '.join(unknown)}; classes found: {found}")
    return annotations

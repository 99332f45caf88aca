"""The embedded sample set and the dataset names every command accepts.

Split (fixed, documented in the README): val = faceapi_sample5, faceapi_sample6, grace_hopper (10 faces,
a crowded scene, a four-person scene and a lone portrait); train = the other 6 photos (15 faces).
"""

from __future__ import annotations

import sys
from collections.abc import Collection
from importlib import resources
from pathlib import Path

from featherface.data.labels import ImageAnnotation, LabelReport, check_images, parse_label_file
from featherface.data.pool import POOL_PARTS, pool_images, unlabelled_annotations
from featherface.data.voc import find_voc_layout, parse_voc_folder
from featherface.data.widerface import find_wider_split, parse_wider_split

SAMPLE_VAL_IMAGES = frozenset({"faceapi_sample5.jpg", "faceapi_sample6.jpg", "grace_hopper_512x512.jpg"})
SAMPLE_NAMES = ("sample", "sample:train", "sample:val")


def sample_root() -> Path:
    return Path(str(resources.files("featherface.data").joinpath("sample")))


def load_sample(split: str = "all", strict: bool = True) -> list[ImageAnnotation]:
    """The embedded set: ``all``, ``train`` or ``val``."""
    if split not in ("all", "train", "val"):
        raise ValueError(f"sample split must be all, train or val, not {split!r}")
    annotations = parse_label_file(sample_root() / "label.txt", strict=strict)
    if split == "all":
        return annotations
    keep_val = split == "val"
    return [a for a in annotations if (a.name in SAMPLE_VAL_IMAGES) == keep_val]


def _split_spec(spec: str, parts: tuple[str, ...]) -> tuple[str, str | None]:
    """``("DIR", "part")`` for ``DIR:part`` when DIR is a folder and part one of ``parts``, else ``(spec, None)``."""
    head, sep, part = spec.rpartition(":")
    if sep and part in parts and Path(head).is_dir():
        return head, part
    return spec, None


def is_labelled_folder(path: Path) -> bool:
    """Whether a folder holds labels :func:`resolve_dataset` reads (label.txt, WIDER FACE root or VOC XML)."""
    return (
        (path / "label.txt").is_file()
        or find_wider_split(path, "train") is not None
        or find_wider_split(path, "val") is not None
        or find_voc_layout(path) is not None
    )


def resolve_dataset(
    spec: str,
    strict: bool = False,
    report: LabelReport | None = None,
    classes: Collection[str] | None = None,
    allow_outside_root: bool = False,
) -> list[ImageAnnotation]:
    """A dataset by name or path, its labels and images checked before anything uses them (one policy for every
    command, :mod:`featherface.data.labels`): bad lines, missing or unreadable images and boxes wholly outside their
    image are skipped and counted in ``report`` (without one, a summary goes to stderr: nothing is dropped
    silently), or with ``strict`` raise :class:`~featherface.data.labels.LabelError` naming ``file:line``.

    - ``sample``, ``sample:train``, ``sample:val``: the embedded set;
    - a RetinaFace ``label.txt`` (images beside it or in ``images/``), or a folder holding one;
    - a WIDER FACE root (``wider_face_split/`` + ``WIDER_train/images``): its train split, or ``ROOT:val``;
    - a Pascal VOC folder (``Annotations/`` + ``JPEGImages/``, ``annotations/`` + ``images/``, or XML files beside
      the images, see :mod:`featherface.data.voc`): all its files; ``classes`` picks the object names that are
      faces (the others become ignored regions), only for VOC data.

    An image path that leads outside the dataset's image folder is skipped and counted (``image outside the dataset
    root``) unless ``allow_outside_root``.
    """
    own_report = report is None
    report = LabelReport() if own_report else report
    annotations = check_images(_read_labels(spec, strict, report, classes, allow_outside_root), strict, report)
    if own_report and report.total:
        print(f"warning: {spec}: skipped {report.summary()}", file=sys.stderr)
    return annotations


def _read_labels(
    spec: str, strict: bool, report: LabelReport, classes: Collection[str] | None, allow_outside_root: bool = False
) -> list[ImageAnnotation]:
    if spec in SAMPLE_NAMES:
        _no_classes(spec, classes)
        return load_sample({"sample": "all", "sample:train": "train", "sample:val": "val"}[spec])
    spec, split = _split_spec(spec, ("train", "val"))
    path = Path(spec)
    if not path.is_dir():
        if not path.is_file():
            raise ValueError(f"{spec}: no such dataset (give a label.txt, a folder, or sample/sample:train/sample:val)")
        _no_classes(spec, classes)
        return parse_label_file(path, strict=strict, report=report, allow_outside_root=allow_outside_root)
    wider = find_wider_split(path, split or "train")
    if wider is not None:
        _no_classes(spec, classes)
        return parse_wider_split(*wider, strict=strict, report=report, allow_outside_root=allow_outside_root)
    if (path / "label.txt").is_file():
        _no_classes(spec, classes)
        return parse_label_file(path / "label.txt", strict=strict, report=report, allow_outside_root=allow_outside_root)
    if find_voc_layout(path) is not None:
        if split is not None:
            raise ValueError(f"{spec}: a Pascal VOC folder has no :{split} part; give the folder itself")
        return parse_voc_folder(path, classes, strict=strict, report=report, allow_outside_root=allow_outside_root)
    raise ValueError(
        f"{spec}: folder has no label.txt, is no WIDER FACE root (wider_face_split/, WIDER_{split or 'train'}/images) "
        "and holds no Pascal VOC XML"
    )


def label_files(spec: str) -> list[Path]:
    """The label files a dataset name or path reads (label.txt, a WIDER split file, every VOC XML file), as
    :func:`resolve_dataset` finds them, without parsing any: for the guard that keeps outputs off a command's
    inputs. None for a folder of unlabelled images, or for a name that is no dataset (resolving it fails later)."""
    if spec in SAMPLE_NAMES:
        return [sample_root() / "label.txt"]
    folder, _ = _split_spec(spec, POOL_PARTS)
    spec, split = _split_spec(folder, ("train", "val"))
    path = Path(spec)
    if path.is_file():
        return [path]
    if not path.is_dir():
        return []
    wider = find_wider_split(path, split or "train")
    if wider is not None:
        return [wider[0]]
    if (path / "label.txt").is_file():
        return [path / "label.txt"]
    layout = find_voc_layout(path)
    return layout.xml_files() if layout is not None else []


def _no_classes(spec: str, classes: Collection[str] | None) -> None:
    if classes is not None:
        raise ValueError(f"{spec}: classes apply to Pascal VOC data only")


def resolve_distillation_data(
    spec: str, strict: bool = False, report: LabelReport | None = None
) -> tuple[list[ImageAnnotation], bool]:
    """``(annotations, labelled)``: any dataset :func:`resolve_dataset` reads, or a pool of unlabelled images.

    A pool is a folder of images (subfolders included) without labels: ``DIR`` all of them, ``DIR:train`` all but
    the fixed hold-out, ``DIR:holdout`` the hold-out (:mod:`featherface.data.pool`); its annotations hold no faces.
    """
    folder, part = _split_spec(spec, POOL_PARTS)
    path = Path(folder)
    if spec not in SAMPLE_NAMES and path.is_dir() and not is_labelled_folder(path):
        images = unlabelled_annotations(pool_images(path, part or "all"))
        # strict: an unreadable photo fails now, not in a DataLoader worker (lenient: skipped when loaded)
        return (check_images(images, strict=True) if strict else images), False
    if part == "holdout":
        raise ValueError(f"{spec}: :holdout applies to folders of unlabelled images only")
    return resolve_dataset(spec, strict=strict, report=report), True

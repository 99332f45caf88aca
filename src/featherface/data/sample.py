"""The embedded sample set and the dataset names every command accepts.

Split (fixed, documented in the README): val = faceapi_sample5, faceapi_sample6, grace_hopper (10 faces,
a crowded scene, a four-person scene and a lone portrait); train = the other 6 photos (15 faces).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from featherface.data.labels import ImageAnnotation, LabelReport, parse_label_file
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


def resolve_dataset(spec: str, strict: bool = False, report: LabelReport | None = None) -> list[ImageAnnotation]:
    """A dataset by name or path.

    - ``sample``, ``sample:train``, ``sample:val``: the embedded set;
    - a RetinaFace ``label.txt`` (images beside it or in ``images/``), or a folder holding one;
    - a WIDER FACE root (``wider_face_split/`` + ``WIDER_train/images``): its train split, or ``ROOT:val``.
    """
    if spec in SAMPLE_NAMES:
        return load_sample({"sample": "all", "sample:train": "train", "sample:val": "val"}[spec])
    split = "train"
    if spec.endswith((":train", ":val")) and Path(spec.rsplit(":", 1)[0]).is_dir():
        spec, split = spec.rsplit(":", 1)
    path = Path(spec)
    if path.is_dir():
        wider = find_wider_split(path, split)
        if wider is not None:
            return parse_wider_split(*wider, strict=strict, report=report)
        if (path / "label.txt").is_file():
            path = path / "label.txt"
        else:
            raise ValueError(
                f"{spec}: folder has no label.txt and is no WIDER FACE root (wider_face_split/, WIDER_{split}/images)"
            )
    elif not path.is_file():
        raise ValueError(f"{spec}: no such dataset (give a label.txt, or sample/sample:train/sample:val)")
    return parse_label_file(path, strict=strict, report=report)


def unlabelled_images(folder: str | Path) -> list[ImageAnnotation]:
    """Every image of a folder as an annotation without faces (for distillation with teacher targets only)."""
    import numpy as np

    from featherface.detection.image import list_images

    paths = list_images(folder)
    if not paths:
        raise ValueError(f"{folder}: folder holds no images")
    empty = np.zeros((0, 4), np.float32)
    return [ImageAnnotation(p, empty, np.zeros((0, 5, 2), np.float32), np.zeros(0, bool)) for p in paths]


def resolve_distillation_data(spec: str, strict: bool = False) -> tuple[list[ImageAnnotation], bool]:
    """``(annotations, labelled)``: any dataset :func:`resolve_dataset` reads, or a folder of unlabelled images."""
    path = Path(spec)
    is_labelled_folder = (path / "label.txt").is_file() or find_wider_split(path, "train") is not None
    if spec not in SAMPLE_NAMES and path.is_dir() and not is_labelled_folder:
        return unlabelled_images(path), False
    return resolve_dataset(spec, strict=strict), True

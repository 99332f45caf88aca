"""The embedded sample set and the dataset names every command accepts.

Split (fixed, documented in the README): val = faceapi_sample5, faceapi_sample6, grace_hopper (10 faces,
a crowded scene, a four-person scene and a lone portrait); train = the other 6 photos (15 faces).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from featherface.data.labels import ImageAnnotation, LabelReport, parse_label_file

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
    """A dataset by name (``sample``, ``sample:train``, ``sample:val``) or a RetinaFace ``label.txt`` path
    (or a folder holding one)."""
    if spec in SAMPLE_NAMES:
        return load_sample({"sample": "all", "sample:train": "train", "sample:val": "val"}[spec])
    path = Path(spec)
    if path.is_dir():
        if (path / "label.txt").is_file():
            path = path / "label.txt"
        else:
            raise ValueError(f"{spec}: folder has no label.txt (give a label file, or sample/sample:train/sample:val)")
    elif not path.is_file():
        raise ValueError(f"{spec}: no such dataset (give a label.txt, or sample/sample:train/sample:val)")
    return parse_label_file(path, strict=strict, report=report)

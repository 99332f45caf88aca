"""A pool of unlabelled images (for distillation), indexed recursively, with a fixed hold-out part.

``DIR`` is every image under the folder, ``DIR:train`` all but the hold-out, ``DIR:holdout`` the hold-out.
An image belongs to the hold-out when the SHA-1 of its path relative to ``DIR`` (POSIX separators, UTF-8),
read as a number in [0, 1), is below the hold-out fraction (default 3 %): a file's side does not depend on the
other files, on listing order or on the machine, so adding images never moves an existing one. If no image
falls below the fraction, the one of smallest hash is the hold-out (at least one image; only in pools of a few
dozen images can a new file then take that place).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from featherface.data.labels import ImageAnnotation

HOLDOUT_FRACTION = 0.03
POOL_PARTS = ("all", "train", "holdout")


def list_images_recursive(folder: str | Path) -> list[Path]:
    """Image files under ``folder`` and its subfolders (by suffix; nothing is decoded), sorted by relative path.

    Hidden files and folders (name starting with ``.``) are left out; symbolic links to folders are not followed.
    """
    from featherface.detection.image import IMAGE_SUFFIXES
    from featherface.detection.sources import walk_files

    return walk_files(Path(folder), IMAGE_SUFFIXES)


def holdout_key(path: Path, root: Path) -> float:
    """The number in [0, 1) that places ``path`` (under ``root``): SHA-1 of the relative POSIX path."""
    digest = hashlib.sha1(path.relative_to(root).as_posix().encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_pool(
    paths: list[Path], root: str | Path, fraction: float = HOLDOUT_FRACTION
) -> tuple[list[Path], list[Path]]:
    """``(train, holdout)`` of images under ``root``, both in the order given (see the module docstring)."""
    if not 0 < fraction < 1:
        raise ValueError(f"hold-out fraction must be in (0, 1), not {fraction}")
    root = Path(root)
    keys = [holdout_key(p, root) for p in paths]
    held = [k < fraction for k in keys]
    if paths and not any(held):
        held[int(np.argmin(keys))] = True
    return [p for p, h in zip(paths, held, strict=True) if not h], [p for p, h in zip(paths, held, strict=True) if h]


def pool_images(folder: str | Path, part: str = "all", fraction: float = HOLDOUT_FRACTION) -> list[Path]:
    """The images of one part (``all``, ``train`` or ``holdout``) of the pool under ``folder``."""
    if part not in POOL_PARTS:
        raise ValueError(f"pool part must be one of {', '.join(POOL_PARTS)}, not {part!r}")
    folder = Path(folder)
    paths = list_images_recursive(folder)
    if not paths:
        raise ValueError(f"{folder}: folder holds no images (subfolders included)")
    if part == "all":
        return paths
    train, holdout = split_pool(paths, folder, fraction)
    return train if part == "train" else holdout


def unlabelled_annotations(paths: list[Path]) -> list[ImageAnnotation]:
    """Annotations without faces, for distillation with teacher targets only."""
    return [
        ImageAnnotation(p, np.zeros((0, 4), np.float32), np.zeros((0, 5, 2), np.float32), np.zeros(0, bool))
        for p in paths
    ]

"""WIDER FACE's official split files (``wider_face_split/wider_face_{train,val}_bbx_gt.txt``).

::

    0--Parade/0_Parade_marchingband_1_849.jpg
    1
    449 330 122 149 0 0 0 0 0 0        x y w h blur expression illumination invalid occlusion pose

An image without faces has count 0 followed by one line of zeros. Faces flagged invalid, of non-positive size
or with numbers not finite or beyond :data:`~featherface.data.labels.MAX_LABEL_VALUE`, and images whose path leads
outside the image root (unless ``allow_outside_root``), are left out of training (counted in the report;
``strict`` raises with ``file:line`` instead).
WIDER gives no landmarks: ``has_landmarks`` is False (the RetinaFace ``label.txt`` release adds them).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from featherface.data.labels import (
    BadDataPolicy,
    ImageAnnotation,
    LabelError,
    LabelReport,
    check_box_size,
    check_label_values,
    inside_root,
    is_file,
    read_text_lines,
)

_INVALID_COLUMN = 7


def parse_wider_split(
    split_file: str | Path,
    image_root: str | Path,
    strict: bool = False,
    report: LabelReport | None = None,
    allow_outside_root: bool = False,
) -> list[ImageAnnotation]:
    split_file, image_root = Path(split_file), Path(image_root)
    if not split_file.is_file():
        raise LabelError(f"{split_file}: no such WIDER split file")
    policy = BadDataPolicy(strict, report if report is not None else LabelReport())
    lines = read_text_lines(split_file)
    annotations = []
    i = 0
    while i < len(lines):
        name = lines[i].strip()
        name_line = i + 1
        i += 1
        if not name:
            continue
        try:
            count = int(lines[i].strip())
        except (IndexError, ValueError):
            raise LabelError(f"{split_file}:{i + 1}: expected the face count of {name}") from None
        i += 1
        rows = lines[i : i + max(count, 1)]
        i += max(count, 1)
        boxes, sources = [], []
        for offset, row in enumerate(rows[:count]):
            lineno = name_line + 2 + offset
            parts = row.split()
            try:
                values = [float(v) for v in parts[:10]]
                check_label_values(values)
            except ValueError:
                policy.problem("bad face line", f"{split_file}:{lineno}")
                continue
            if len(values) < 4:
                policy.problem("bad face line", f"{split_file}:{lineno}")
                continue
            x, y, w, h = values[:4]
            if len(values) > _INVALID_COLUMN and values[_INVALID_COLUMN] == 1:
                policy.report.add("face marked invalid", f"{split_file}:{lineno}")  # left out, never an error
                continue
            try:
                check_box_size(x, y, w, h)
            except ValueError:
                policy.problem("box of non-positive size", f"{split_file}:{lineno}")
                continue
            boxes.append([x, y, x + w, y + h])
            sources.append(f"{split_file}:{lineno}")
        path = image_root / name
        if not (allow_outside_root or inside_root(image_root, name)):
            policy.outside_root(path, image_root, f"{split_file}:{name_line}")
            continue
        if not is_file(path):
            policy.missing_image(path, f"{split_file}:{name_line}")
            continue
        k = len(boxes)
        annotations.append(
            ImageAnnotation(
                path=path,
                boxes=np.array(boxes, dtype=np.float32).reshape(k, 4),
                landmarks=np.zeros((k, 5, 2), dtype=np.float32),
                has_landmarks=np.zeros(k, dtype=bool),
                source=f"{split_file}:{name_line}",
                box_sources=sources,
            )
        )
    return annotations


def find_wider_split(root: Path, split: str) -> tuple[Path, Path] | None:
    """``(split file, image folder)`` of a WIDER FACE root, or None if ``root`` is not one."""
    split_file = root / "wider_face_split" / f"wider_face_{split}_bbx_gt.txt"
    images = root / f"WIDER_{split}" / "images"
    if split_file.is_file() and images.is_dir():
        return split_file, images
    return None

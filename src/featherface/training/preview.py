"""``featherface show-batch``: augmented samples drawn as a PNG grid, because augmentation is checked by eye."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from featherface.data.dataset import FaceDataset
from featherface.data.sample import resolve_dataset
from featherface.detection.api import IMAGE_MEAN_BGR
from featherface.detection.visualize import BOX_COLOUR, LANDMARK_COLOURS
from featherface.fileio import atomic_write_bytes
from featherface.training.config import TrainConfig, load_train_config

TILE = 256


def write_batch_preview(config: TrainConfig, path: str | Path, count: int = 16, epoch: int = 0) -> Path:
    """Draw the first ``count`` augmented samples of ``epoch`` (boxes green, landmarks coloured by point)."""
    dataset = FaceDataset(resolve_dataset(config.data), config.augment, True, config.seed, config.dataset_repeats)
    dataset.set_epoch(epoch)
    tiles = []
    for index in range(min(count, len(dataset))):
        image, targets = dataset[index]
        bgr = np.clip(image.numpy().transpose(1, 2, 0) + IMAGE_MEAN_BGR, 0, 255).astype(np.uint8)
        scale = TILE
        bgr = cv2.resize(bgr, (TILE, TILE), interpolation=cv2.INTER_AREA)
        for box, points, has in zip(targets.boxes, targets.landmarks, targets.has_landmarks, strict=True):
            x1, y1, x2, y2 = (round(float(v) * scale) for v in box)
            cv2.rectangle(bgr, (x1, y1), (x2, y2), BOX_COLOUR, 1)
            if has:
                for (x, y), colour in zip(points.reshape(5, 2).tolist(), LANDMARK_COLOURS, strict=True):
                    cv2.circle(bgr, (round(x * scale), round(y * scale)), 2, colour, -1)
        tiles.append(bgr)
    columns = min(4, len(tiles))
    rows = math.ceil(len(tiles) / columns)
    grid = np.full((rows * TILE, columns * TILE, 3), 255, np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        grid[r * TILE : (r + 1) * TILE, c * TILE : (c + 1) * TILE] = tile
    ok, encoded = cv2.imencode(".png", grid)
    if not ok:
        raise ValueError(f"{path}: could not encode the preview")
    path = Path(path)
    atomic_write_bytes(path, encoded.tobytes())
    return path


def preview_batch(
    data: str, path: str | Path, config: str | Path | None = None, count: int = 16, epoch: int = 0
) -> Path:
    """:func:`write_batch_preview` of ``data`` under the augmentation of ``config``'s recipe (the sample preset for
    the embedded set: :func:`featherface.training.run.config_source`)."""
    from featherface.training.run import config_source

    options = load_train_config(config_source(config, data), {"data": data})
    return write_batch_preview(options, path, count=count, epoch=epoch)

"""RetinaFace priors (anchors): square boxes centred on every cell of every pyramid level."""

from __future__ import annotations

import math
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from featherface.models.config import AnchorConfig

if TYPE_CHECKING:
    import torch


class PriorBox:
    """Priors ``(P, 4)`` as ``(cx, cy, w, h)`` normalised by the image width and height.

    Level k has a ``ceil(H/s_k) x ceil(W/s_k)`` map; cells are row-major, and each cell holds one
    prior per min size (``anchors_per_cell``), innermost. At 640x640: (80² + 40² + 20²) x 2 = 16,800.
    Computed once per input size (numpy, cached); calling the object gives them as a torch tensor.
    """

    def __init__(self, anchors: AnchorConfig | None = None) -> None:
        self.anchors = anchors or AnchorConfig()

    def feature_map_sizes(self, height: int, width: int) -> list[tuple[int, int]]:
        return [(math.ceil(height / s), math.ceil(width / s)) for s in self.anchors.steps]

    def level_sizes(self, height: int, width: int) -> list[int]:
        """Priors per pyramid level, in the order they come (stride 8 first)."""
        sizes = zip(self.feature_map_sizes(height, width), self.anchors.min_sizes, strict=True)
        return [h * w * len(min_sizes) for (h, w), min_sizes in sizes]

    def num_priors(self, height: int, width: int) -> int:
        return sum(self.level_sizes(height, width))

    def array(self, height: int, width: int) -> np.ndarray:
        """The priors as a read-only float32 numpy array ``(P, 4)``, shared between calls of one size."""
        return _priors(tuple(map(tuple, self.anchors.min_sizes)), tuple(self.anchors.steps), height, width)

    def __call__(self, height: int, width: int, device: torch.device | str | None = None) -> torch.Tensor:
        """The priors as a torch tensor ``(P, 4)`` on ``device`` (CPU by default)."""
        import torch

        return torch.tensor(self.array(height, width), device=device or "cpu")


@lru_cache(maxsize=32)
def _priors(min_sizes: tuple[tuple[int, ...], ...], steps: tuple[int, ...], height: int, width: int) -> np.ndarray:
    levels = []
    for sizes, step in zip(min_sizes, steps, strict=True):
        rows, cols = math.ceil(height / step), math.ceil(width / step)
        # float64 then float32, as Pytorch_Retinaface computes them in Python floats.
        cy, cx = np.meshgrid(
            (np.arange(rows, dtype=np.float64) + 0.5) * step / height,
            (np.arange(cols, dtype=np.float64) + 0.5) * step / width,
            indexing="ij",
        )
        per_size = [
            np.stack([cx, cy, np.full_like(cx, size / width), np.full_like(cy, size / height)], axis=-1)
            for size in sizes
        ]
        levels.append(np.stack(per_size, axis=2).reshape(-1, 4))  # (rows, cols, A, 4) -> row-major
    priors = np.concatenate(levels).astype(np.float32)
    priors.flags.writeable = False  # shared by every caller of this size
    return priors

"""RetinaFace priors (anchors): square boxes centred on every cell of every pyramid level."""

from __future__ import annotations

import math
from functools import lru_cache

import torch
from torch import Tensor

from featherface.models.config import AnchorConfig


class PriorBox:
    """Priors ``(P, 4)`` as ``(cx, cy, w, h)`` normalised by the image width and height.

    Level k has a ``ceil(H/s_k) x ceil(W/s_k)`` map; cells are row-major, and each cell holds one
    prior per min size (``anchors_per_cell``), innermost. At 640x640: (80² + 40² + 20²) x 2 = 16,800.
    """

    def __init__(self, anchors: AnchorConfig | None = None) -> None:
        self.anchors = anchors or AnchorConfig()

    def feature_map_sizes(self, height: int, width: int) -> list[tuple[int, int]]:
        return [(math.ceil(height / s), math.ceil(width / s)) for s in self.anchors.steps]

    def num_priors(self, height: int, width: int) -> int:
        a = self.anchors.anchors_per_cell
        return sum(h * w * a for h, w in self.feature_map_sizes(height, width))

    def __call__(self, height: int, width: int, device: torch.device | str | None = None) -> Tensor:
        key = (tuple(map(tuple, self.anchors.min_sizes)), tuple(self.anchors.steps), height, width)
        return _priors(*key).to(device or "cpu")


@lru_cache(maxsize=32)
def _priors(min_sizes: tuple[tuple[int, ...], ...], steps: tuple[int, ...], height: int, width: int) -> Tensor:
    levels = []
    for sizes, step in zip(min_sizes, steps, strict=True):
        rows, cols = math.ceil(height / step), math.ceil(width / step)
        # float64 then float32, as Pytorch_Retinaface computes them in Python floats.
        cy = (torch.arange(rows, dtype=torch.float64) + 0.5) * step / height
        cx = (torch.arange(cols, dtype=torch.float64) + 0.5) * step / width
        cy, cx = torch.meshgrid(cy, cx, indexing="ij")
        per_size = []
        for size in sizes:
            w = torch.full_like(cx, size / width)
            h = torch.full_like(cy, size / height)
            per_size.append(torch.stack([cx, cy, w, h], dim=-1))
        levels.append(torch.stack(per_size, dim=2).reshape(-1, 4))  # (rows, cols, A, 4) -> row-major
    return torch.cat(levels).float()

"""How an image meets the network: the inference scale chosen from the face sizes asked for, and overlapping tiles
for images too large (or too elongated) for one pass.

Scale. A RetinaFace-layout detector finds a face when its side is near one of its anchors (16 to 512 px at strides
8 to 32, SPEC section 1). Faces much smaller than the smallest anchor are missed, so to find faces of ``min_face``
pixels the image is resized by ``smallest_anchor / min_face`` (capped at :attr:`FaceSizeConfig.max_upscale`); to
keep faces up to ``max_face`` within the largest anchor, by at most ``largest_anchor / max_face``.

Tiles. An image whose long side at that scale exceeds the detector's ``max_size`` is cut into tiles of at most
``max_size`` (inference pixels) that overlap by at least the largest face of interest. Each tile *owns* a core
region: the tiles' overlaps are split at their middle lines. A tile keeps only the faces whose box centre lies in
its core. With overlap >= face size, every face lies wholly inside the tile that owns its centre (the middle line is
half an overlap from that tile's edge), and the cut-off part of a face at a tile's edge has its centre beyond the
middle line, so it is dropped: each face is found once, whole. A final NMS over all tiles is a safety net.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field

import numpy as np

from featherface.config_schema import Config, rule


@dataclass(frozen=True)
class FaceSizeConfig(Config):
    """Limits of face-size-aware inference (pixels are original-image pixels unless said otherwise)."""

    # 16-px anchors / 4 = faces of 4 px: below that a face is a few pixels of colour, beyond any detector here
    max_upscale: float = field(default=4.0, metadata=rule(ge=1))
    # tiles never overlap by more than this fraction of their side (else they would mostly repeat each other;
    # tiling needs an overlap below the tile's side)
    max_overlap_fraction: float = field(default=0.5, metadata=rule(ge=0, lt=1))


def inference_factor(
    height: int,
    width: int,
    anchor_range: tuple[float, float],
    size: int | None = None,
    min_face: float | None = None,
    max_face: float | None = None,
    config: FaceSizeConfig | None = None,
) -> float:
    """The resize factor for inference (before any tiling).

    ``size``: long side to this many pixels. ``min_face``: smallest face to find (pixels), the image is scaled so it
    reaches the smallest anchor. ``max_face`` alone: scale down (never up) only as far as needed for such faces to
    fit the largest anchor. ``size`` and the face sizes exclude each other; none of them: the original size.
    """
    config = config or FaceSizeConfig()
    smallest, largest = anchor_range
    check_size(size)
    if size is not None and (min_face is not None or max_face is not None):
        raise ValueError("give an inference size or face sizes (min_face / max_face), not both")
    for name, value in (("min_face", min_face), ("max_face", max_face)):
        if value is not None and not value > 0:
            raise ValueError(f"{name} must be > 0 pixels, got {value}")
    if min_face is not None and max_face is not None and max_face < min_face:
        raise ValueError(f"max_face ({max_face}) is below min_face ({min_face})")
    if min_face is not None:
        return min(smallest / min_face, config.max_upscale)
    if max_face is not None:
        return min(1.0, largest / max_face)
    if size is not None:
        return size / max(height, width)
    return 1.0


def check_size(size: float | None) -> None:
    """ValueError naming ``size`` unless it is None or a finite number of pixels > 0 (a size of 0 would shrink the
    image to nothing and find no face, silently)."""
    if size is None:
        return
    if isinstance(size, bool) or not isinstance(size, numbers.Real) or not math.isfinite(size) or size <= 0:
        raise ValueError(f"size must be a number of pixels > 0 (the network input's long side), got {size!r}")


@dataclass(frozen=True)
class Tile:
    """A window ``[y0, y1) x [x0, x1)`` of the image (pixels) and its core ``[cy0, cy1) x [cx0, cx1)``: the region
    whose face centres it reports (open-ended at the image's own edges)."""

    y0: int
    y1: int
    x0: int
    x1: int
    cy0: float
    cy1: float
    cx0: float
    cx1: float

    def owns(self, centres: np.ndarray) -> np.ndarray:
        """Which of ``centres (K, 2)`` (x, y, image pixels) lie in this tile's core: ``(K,)`` bool."""
        x, y = centres[:, 0], centres[:, 1]
        return (x >= self.cx0) & (x < self.cx1) & (y >= self.cy0) & (y < self.cy1)


def split_axis(length: int, tile: int, overlap: int) -> list[tuple[int, int, float, float]]:
    """Windows ``(start, end, core_start, core_end)`` covering ``[0, length)`` with windows of ``tile`` pixels
    that overlap by at least ``overlap``; the fewest windows, spread evenly. Cores meet at the overlaps' middles;
    the first and last are open-ended (``-inf`` / ``inf``)."""
    if length <= tile:
        return [(0, length, -math.inf, math.inf)]
    if not 0 <= overlap < tile - 1:
        raise ValueError(f"tile overlap {overlap} must be in [0, tile side {tile} - 1)")
    # steps of at most tile - overlap - 1, so that rounded starts still overlap by >= overlap
    count = math.ceil((length - tile) / (tile - overlap - 1)) + 1
    starts = [round(i * (length - tile) / (count - 1)) for i in range(count)]
    cuts = [(starts[i + 1] + starts[i] + tile) / 2 for i in range(count - 1)]
    bounds = [-math.inf, *cuts, math.inf]
    return [(s, s + tile, bounds[i], bounds[i + 1]) for i, s in enumerate(starts)]


def plan_tiles(height: int, width: int, tile: int, overlap: int) -> list[Tile]:
    """Tiles of at most ``tile x tile`` pixels over a ``height x width`` image, overlapping by >= ``overlap``,
    row-major."""
    return [
        Tile(y0, y1, x0, x1, cy0, cy1, cx0, cx1)
        for y0, y1, cy0, cy1 in split_axis(height, tile, overlap)
        for x0, x1, cx0, cx1 in split_axis(width, tile, overlap)
    ]

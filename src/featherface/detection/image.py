"""Reading images of any common kind into the detectors' input: 3-channel BGR uint8, upright.

:func:`read_image` is the package's one image decoder (detection, drawn, cropped and anonymised copies, evaluation,
training). It returns the pixels as a viewer shows them: the EXIF orientation of JPEG, PNG and WebP files is applied
(all 8 values), and TIFF's by OpenCV's decoder, so sizes, boxes and written copies are in the frame people see; a
copy is written without the tag, so it shows upright everywhere. Before decoding it reads the header
(:mod:`featherface.detection.image_header`) and refuses an image of more than :func:`max_image_pixels` pixels and
an animation (GIF, APNG, WebP: :func:`featherface.detection.sources.collect_sources` reads GIF and APNG files as
videos instead), so an untrusted file cannot make it allocate gigabytes.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from featherface.detection.image_header import ImageHeader, read_header

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm", ".gif")
# 2^28 = 268,435,456 pixels (16384 x 16384): above every camera's single shot (the largest, 200 MP phone sensors,
# 16320 x 12240), yet 805 MB as BGR uint8. A stitched panorama or a multi-shot composite may need more: raise it
# with the environment variable or read_image's max_pixels.
DEFAULT_MAX_PIXELS = 2**28
MAX_PIXELS_VARIABLE = "FEATHERFACE_MAX_PIXELS"
# the start of a file read for its header; a file whose header lies further in is read whole
HEADER_BYTES = 64 * 1024


class ImageError(ValueError):
    """An image that cannot be used: the message names the file and the reason."""


def to_bgr_uint8(image: np.ndarray, source: str = "image") -> np.ndarray:
    """Gray, gray+alpha, BGR or BGRA arrays of uint8/uint16/float -> contiguous ``(H, W, 3)`` BGR uint8.

    16-bit images keep their top 8 bits; float images are taken as 0-1 when their maximum is <= 1.
    Alpha is dropped (the pixels keep their colour) since faces do not depend on transparency.
    """
    if not isinstance(image, np.ndarray):
        raise ImageError(f"{source}: expected a numpy array, got {type(image).__name__}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (2, 3, 4)):
        raise ImageError(f"{source}: unsupported image shape {image.shape}")
    if image.size == 0:
        raise ImageError(f"{source}: image is empty ({image.shape})")
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype.kind == "f":
        scale = 255.0 if float(np.nanmax(image)) <= 1.0 else 1.0
        image = np.clip(np.nan_to_num(image) * scale, 0, 255).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise ImageError(f"{source}: unsupported pixel type {image.dtype}")
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    elif image.shape[2] == 2:
        image = cv2.cvtColor(np.ascontiguousarray(image[:, :, 0]), cv2.COLOR_GRAY2BGR)
    elif image.shape[2] == 4:
        image = np.ascontiguousarray(image[:, :, :3])
    return np.ascontiguousarray(image)


def max_image_pixels() -> int:
    """The pixel limit of :func:`read_image`: ``FEATHERFACE_MAX_PIXELS`` if set (a whole number > 0), else
    :data:`DEFAULT_MAX_PIXELS`."""
    text = os.environ.get(MAX_PIXELS_VARIABLE)
    if text is None:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        value = 0
    if value <= 0:
        raise ValueError(f"{MAX_PIXELS_VARIABLE}: expected a whole number of pixels > 0, got {text[:40]!r}")
    return value


def _check_header(path: Path, header: ImageHeader | None, max_pixels: int | None) -> None:
    """ImageError naming ``path`` for an image over the pixel limit or an animation."""
    limit = max_pixels or max_image_pixels()
    if header is None:
        return
    if header.pixels > limit:
        raise ImageError(
            f"{path}: {header.width} x {header.height} pixels, over the limit of {limit:,} ({MAX_PIXELS_VARIABLE})"
        )
    if header.frames > 1:
        raise ImageError(
            f"{path}: animated {header.format.upper()} of {header.frames} frames; detect, crop and anonymize read "
            "GIF and PNG animations as videos, frame by frame"
        )


def apply_orientation(image: np.ndarray, orientation: int) -> np.ndarray:
    """``image`` as a viewer shows it under EXIF ``orientation`` (1-8, see
    :mod:`featherface.detection.image_header`); 1 and unknown values leave it as it is."""
    if orientation == 2:
        return cv2.flip(image, 1)
    if orientation == 3:
        return cv2.rotate(image, cv2.ROTATE_180)
    if orientation == 4:
        return cv2.flip(image, 0)
    if orientation == 5:
        return cv2.transpose(image)
    if orientation == 6:
        return cv2.rotate(image, cv2.ROTATE_90_CLOCKWISE)
    if orientation == 7:
        return cv2.rotate(cv2.transpose(image), cv2.ROTATE_180)
    if orientation == 8:
        return cv2.rotate(image, cv2.ROTATE_90_COUNTERCLOCKWISE)
    return image


def _existing_file(path: str | Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise ImageError(f"{path}: no such file")
    if not path.is_file():
        raise ImageError(f"{path}: not a file")
    return path


def read_image(path: str | Path, max_pixels: int | None = None) -> np.ndarray:
    """Read an image file as BGR uint8, upright (its EXIF orientation applied); raises :class:`ImageError` naming
    the file if it cannot, or if its header declares more than ``max_pixels`` pixels (default
    :func:`max_image_pixels`) or an animation: checked before any pixel is allocated. A format without a header
    reader (AVIF, JPEG 2000, ...) is bounded by OpenCV's own limit while decoding (2^30 pixels) and by
    ``max_pixels`` after."""
    path = _existing_file(path)
    data = path.read_bytes()
    header = read_header(data)
    _check_header(path, header, max_pixels)
    # IMREAD_UNCHANGED keeps 16-bit, alpha and gray for to_bgr_uint8; it also ignores the orientation, applied below
    try:
        image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED) if data else None
    except cv2.error:  # a decoder that gives up by raising (OpenCV's own size limit among them)
        image = None
    if image is None:
        raise ImageError(f"{path}: not a readable image")
    if header is None:
        _check_header(path, ImageHeader("image", image.shape[1], image.shape[0]), max_pixels)
    image = to_bgr_uint8(image, str(path))
    if header is not None and not header.decoder_orients:
        image = np.ascontiguousarray(apply_orientation(image, header.orientation))
    return image


def read_image_header(path: str | Path) -> ImageHeader | None:
    """The header of an image file (:func:`~featherface.detection.image_header.read_header`), reading its first
    :data:`HEADER_BYTES` (the whole file for a GIF, whose frames are counted, or when the header lies further in);
    None for a format without a header reader. ImageError if the file cannot be read."""
    path = _existing_file(path)
    try:
        with open(path, "rb") as f:
            start = f.read(HEADER_BYTES)
            header = read_header(start)
            if len(start) == HEADER_BYTES and (header is None or header.format == "gif"):
                header = read_header(start + f.read())
    except OSError as exc:
        raise ImageError(f"{path}: cannot be read ({exc.strerror})") from None
    return header


def image_size(path: str | Path, max_pixels: int | None = None) -> tuple[int, int]:
    """``(width, height)`` of an image file as a viewer shows it (orientation applied), from its header without
    decoding (decoded, for a format without a header reader); ImageError under the rules of :func:`read_image`."""
    header = read_image_header(path)
    if header is None:
        height, width = read_image(path, max_pixels).shape[:2]
        return width, height
    _check_header(Path(path), header, max_pixels)
    return header.display_size


def list_images(folder: str | Path) -> list[Path]:
    """Image files directly in ``folder``, sorted by name."""
    folder = Path(folder)
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)

"""Aligned face crops from detection results: one ArcFace-template crop per face (:mod:`featherface.align`) and a
record that links it to its image, box, score and landmarks.

Crops mirror their image's relative path with the face's index added: ``a/x.jpg`` gives ``a/x.jpg.face0.png``,
``a/x.jpg.face1.png``...; a video frame gives ``clip.mp4.frame000012.face0.png``. PNG, so a crop is exactly the
aligned pixels. A face whose landmarks fix no alignment (all in one place, on one line, not finite:
:func:`featherface.align.landmarks_defect`) gets no crop: it is skipped and listed, and the others are cropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from featherface.align import ARCFACE_SIZE, DegenerateLandmarks, align_face

if TYPE_CHECKING:
    from featherface.detection.api import Detector
    from featherface.detection.sources import OutputGuard, Source
    from featherface.detection.stream import Result


def crop_path(out_dir: Path, result: Result, face: int) -> Path:
    """Where face ``face`` of ``result`` is written under ``out_dir``."""
    relative = result.source.relative
    frame = "" if result.frame is None else f".frame{result.frame:06d}"
    return out_dir / relative.parent / f"{relative.name}{frame}.face{face}.png"


def crop_results(
    results: Iterable[Result],
    out_dir: str | Path,
    guard: OutputGuard,
    crop_size: int = ARCFACE_SIZE,
    margin: float = 0.0,
) -> Iterator[dict[str, Any]]:
    """Write every face's aligned crop; yields per crop ``{"crop", "image", "box", "score", "landmarks"}``
    (+ ``track_id`` for tracked video); per face whose landmarks fix no alignment the same keys with ``"crop":
    None`` and ``"skipped"``: the reason (its index is not reused: crop ``faceN`` stays face N of the image); and
    the detection entry with its ``"error"`` per file that could not be read. ``guard`` refuses a crop path that is
    an input file. ``crop_size``, ``margin``: of :func:`featherface.align.template`."""
    from featherface.detection.sources import write_image
    from featherface.detection.stream import close_iterator

    out_dir = Path(out_dir)
    try:
        for result in results:
            if not result.ok:
                yield result.to_json()
                continue
            faces = result.to_json()["faces"]
            for index, (face, landmarks) in enumerate(zip(faces, result.detections.landmarks, strict=True)):
                try:
                    crop = align_face(result.image, landmarks, crop_size, margin)
                except DegenerateLandmarks as exc:
                    yield {"crop": None, "image": result.name, **face, "skipped": str(exc)}
                    continue
                path = guard.claim(crop_path(out_dir, result, index), result.source.path)
                write_image(path, crop)
                yield {"crop": str(path), "image": result.name, **face}
    finally:  # stopped early: the detections' iterator (a video's reader thread) stops now
        close_iterator(results)


def crop_files(
    detector: Detector,
    sources: Sequence[Source],
    out_dir: str | Path,
    crop_size: int = ARCFACE_SIZE,
    margin: float = 0.0,
    guard: OutputGuard | None = None,
    **options,
) -> Iterator[dict[str, Any]]:
    """:func:`crop_results` over the detections of image and video files (videos tracked, boxes unsmoothed: the
    crops follow each frame's own landmarks). ``options``: of
    :func:`featherface.detection.stream.detect_sources` (batch size, face sizes...)."""
    from featherface.detection.sources import OutputGuard
    from featherface.detection.stream import detect_sources
    from featherface.detection.tracking import TrackerConfig

    results = detect_sources(detector, sources, tracker_config=TrackerConfig(smooth=False), **options)
    return crop_results(results, out_dir, guard or OutputGuard(sources), crop_size, margin)

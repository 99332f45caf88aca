"""Aligned face crops from detection results: one ArcFace-template crop per face (:mod:`featherface.align`) and a
record that links it to its image, box, score and landmarks.

Crops mirror their image's relative path with the face's index added: ``a/x.jpg`` gives ``a/x.jpg.face0.png``,
``a/x.jpg.face1.png``...; a video frame gives ``clip.mp4.frame000012.face0.png``. PNG, so a crop is exactly the
aligned pixels. A face whose landmarks fix no alignment (all in one place, on one line, not finite:
:func:`featherface.align.landmarks_defect`) gets no crop: it is skipped and listed, and the others are cropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from featherface import fileio
from featherface.align import ARCFACE_SIZE, DegenerateLandmarks, align_face

if TYPE_CHECKING:
    from featherface.detection.api import Detector
    from featherface.detection.run import DetectorChoice
    from featherface.detection.sources import OutputGuard, Source
    from featherface.detection.stream import Result

# crops for recognition want the most precise landmarks: the WIDER-trained reference model by default
CROP_MODEL = "retinaface-mnet025"
INDEX_NAME = "crops.json"  # the index's name in the crops' folder, unless given
CROP_MARGIN = 0.0  # no context around the template's frame: ArcFace's own crop


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


def index_path(out_dir: str | Path, json_path: str | Path | None = None) -> Path:
    """Where :func:`crop_to_folder` writes its index: ``json_path``, else :data:`INDEX_NAME` in ``out_dir``."""
    return Path(json_path) if json_path else Path(out_dir) / INDEX_NAME


@dataclass
class CropReport:
    """What :func:`crop_to_folder` wrote: ``crops`` aligned crops of ``crop_size`` pixels from ``files`` input files
    into ``out_dir`` (the index at ``index``), the faces left without a crop by reason, and the files skipped (their
    summary, None when none was)."""

    out_dir: Path
    index: Path
    files: int
    crop_size: int
    crops: int = 0
    faces_without_crop: dict[str, int] = field(default_factory=dict)  # reason -> faces
    skipped: str | None = None

    def add(self, entry: dict[str, Any]) -> None:
        """Count one index entry of a readable file: a crop, or a face without one."""
        if entry["crop"] is None:
            self.faces_without_crop[entry["skipped"]] = self.faces_without_crop.get(entry["skipped"], 0) + 1
        else:
            self.crops += 1

    def lines(self) -> list[str]:
        side = f"{self.crop_size}x{self.crop_size}"
        lines = [f"{self.crops} aligned {side} crop(s) from {self.files} file(s) in {self.out_dir}; index {self.index}"]
        if self.faces_without_crop:
            reasons = ", ".join(f"{count} {reason}" for reason, count in self.faces_without_crop.items())
            faces = sum(self.faces_without_crop.values())
            lines.append(f'{faces} face(s) without a crop ({reasons}): in the index with "skipped"')
        return lines


def crop_to_folder(
    inputs: str | Path | Sequence[str | Path],
    out_dir: str | Path,
    choice: DetectorChoice | None = None,
    crop_size: int = ARCFACE_SIZE,
    margin: float = CROP_MARGIN,
    json_path: str | Path | None = None,
    guard: fileio.OutputGuard | None = None,
    strict: bool = False,
    min_face: float | None = None,
    max_face: float | None = None,
) -> CropReport:
    """One aligned crop per face of image files, folders and videos under ``out_dir`` (:func:`crop_files`), and
    the index linking each crop to its image, box, score and landmarks, written to :func:`index_path` as it
    comes. ``choice``: the detector (default: :data:`CROP_MODEL`); ``guard``: the caller's claimed outputs (the
    index among them), told the inputs before any work. A file that cannot be read keeps its index entry, with its
    ``error``, and is counted (``strict``: stops the run)."""
    from featherface.detection.run import DetectorChoice, claim_sources, face_size_options, files_run

    choice = choice or DetectorChoice(CROP_MODEL)
    options = face_size_options(None, min_face, max_face)
    guard = guard or fileio.OutputGuard()
    sources = claim_sources(inputs, guard, skip=[out_dir])
    report = CropReport(Path(out_dir), index_path(out_dir, json_path), len(sources), crop_size)
    with files_run(sources, choice, report.index, strict, progress=False) as run:
        entries = crop_files(
            run.detector, sources, out_dir, crop_size, margin, guard, batch_size=choice.batch_size,
            inference_threads=run.passes_at_once, **options,
        )  # fmt: skip
        with closing(entries):
            for entry in entries:
                run.record(entry)
                if "error" in entry:
                    run.skip(entry["image"], entry["error"])
                else:
                    report.add(entry)
    report.skipped = run.skipped.finish()
    return report

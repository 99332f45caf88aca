"""A detection run over input files (``featherface detect``; :mod:`featherface.crops` and
:mod:`featherface.anonymize` run in the same frame): the detector loaded with the threads the run can use, one JSON
entry written per result as it comes, a progress bar on a terminal, and the files that cannot be read skipped and
counted (or, ``strict``, the first one stops the run).

>>> report = detect_to_json(["photos/", "clip.mp4"], DetectorChoice("nano-b-pretrained"), "faces.json")
>>> report.lines()  # per video: frames, faces, tracks
['clip.mp4: 120 frame(s), 131 face(s), 2 track(s)']
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from featherface.detection.api import Detector, split_threads
from featherface.detection.postprocess import PostprocessConfig
from featherface.detection.sources import Source, collect_sources, mirror_outputs
from featherface.detection.stream import Result, SkippedFiles, VideoTotals, detect_sources, write_rendered
from featherface.errors import ParameterError
from featherface.fileio import OutputGuard
from featherface.weights import DEFAULT_MODEL

DEFAULT_BATCH_SIZE = 8  # images of one size (or video frames) per forward pass


def load_for_images(
    model: str | Path,
    images: int,
    device: str | None = None,
    threads: int | None = None,
    batch_size: int = 1,
    backend: str | None = None,
    **load_options: Any,
) -> tuple[Detector, int]:
    """The detector of ``model`` for a run over ``images`` image files (0 when videos are among the inputs) in
    batches of up to ``batch_size``, and how many batches it runs at once: ``threads`` (None: all) spent across
    forward passes or inside each (:func:`~featherface.detection.api.split_threads`), then
    :meth:`Detector.load` (``load_options``: its other arguments)."""
    per_pass, at_once = split_threads(model, device, threads, images, batch_size, backend)
    return Detector.load(model, device=device, threads=per_pass, backend=backend, **load_options), at_once


def image_count(sources: Sequence[Source]) -> int:
    """How many image files ``sources`` are, for :func:`load_for_images`: 0 when a video is among them (its frames
    go through one pass at a time)."""
    return len(sources) if all(source.kind == "image" for source in sources) else 0


@dataclass(frozen=True)
class DetectorChoice:
    """The model a files run loads and how it runs it: :meth:`Detector.load`'s arguments (``backend`` None: chosen
    by the model), the score and NMS thresholds, and the images (or frames) per forward pass. ``threads`` (None:
    all) is split by the run (:func:`load_for_images`)."""

    model: str | Path = DEFAULT_MODEL
    device: str | None = None
    threads: int | None = None
    backend: str | None = None
    allow_untrained: bool = False
    conf: float = PostprocessConfig.conf_threshold
    nms: float = PostprocessConfig.nms_threshold
    batch_size: int = DEFAULT_BATCH_SIZE

    def load(self, images: int) -> tuple[Detector, int]:
        """The detector for a run over ``images`` image files and its forward passes at once."""
        return load_for_images(
            self.model, images, self.device, self.threads, self.batch_size, self.backend,
            allow_untrained=self.allow_untrained, postprocess_config=PostprocessConfig(self.conf, self.nms),
        )  # fmt: skip


def face_size_options(
    size: int | None = None, min_face: float | None = None, max_face: float | None = None
) -> dict[str, Any]:
    """``size`` (the inference size) / ``min_face`` / ``max_face`` for :meth:`Detector.detect_batch`, checked
    before any work (the detector checks them per image, once the run is under way)."""
    if size is not None and (min_face is not None or max_face is not None):
        raise ParameterError(
            lambda n: (
                f"{n('size')} and {n('min_face')}/{n('max_face')} exclude each other: the face sizes choose the scale"
            )
        )
    if min_face is not None and max_face is not None and max_face < min_face:
        raise ParameterError(lambda n: f"{n('max_face')} {max_face:g} is below {n('min_face')} {min_face:g}")
    return {"size": size, "min_face": min_face, "max_face": max_face}


def progress_bar(sources: Sequence[Source], enabled: bool = True) -> Any:
    """A progress bar over files (images) or items (with videos: their frames), on a terminal only."""
    from tqdm import tqdm

    videos = any(s.kind == "video" for s in sources)
    wanted = enabled and (videos or len(sources) > 1)
    # disable=None: tqdm shows the bar only when stderr is a terminal (no bar in logs and pipes)
    total, unit = (None, "item") if videos else (len(sources), "img")
    return tqdm(total=total, unit=unit, disable=None if wanted else True)


@contextmanager
def _result_log(path: str | Path | None) -> Iterator[Any]:
    """A :class:`~featherface.resultlog.ResultLog` that says where the finished results are when interrupted."""
    from featherface.resultlog import ResultLog

    log = ResultLog(path)
    try:
        with log:
            yield log
    except KeyboardInterrupt:
        if log.partial is not None and log.count:
            print(f"interrupted: {log.count} finished result(s) kept in {log.partial}", file=sys.stderr)
        raise


@dataclass
class FilesRun:
    """One run over input files, as :func:`files_run` opens it: its ``detector``, the batches it runs at once
    (``passes_at_once``), and where each result goes (:meth:`record`, :meth:`skip`, :meth:`say`)."""

    detector: Detector
    passes_at_once: int
    log: Any  # ResultLog
    bar: Any  # tqdm
    skipped: SkippedFiles

    def record(self, entry: dict[str, Any]) -> None:
        """One result's JSON entry, written as it comes."""
        self.log.add(entry)
        self.bar.update()

    def skip(self, name: str, reason: str) -> None:
        """A file that could not be used: counted (``strict``: raises
        :class:`~featherface.detection.stream.InputError`)."""
        self.skipped.add(name, reason)

    def say(self, line: str) -> None:
        """A line about one result, printed above the progress bar."""
        self.bar.write(line)


@contextmanager
def files_run(
    sources: Sequence[Source],
    choice: DetectorChoice,
    json_path: str | Path | None = None,
    strict: bool = False,
    progress: bool = True,
) -> Iterator[FilesRun]:
    """A :class:`FilesRun` over ``sources``: the JSON log at ``json_path`` opened first (a second process writing
    the same file is refused before any work: :mod:`featherface.resultlog`), then the detector of ``choice``
    loaded for them, then the progress bar (``progress``). Leaving the block finishes the JSON; an exception
    leaves its finished entries in ``JSON.partial``."""
    skipped = SkippedFiles(len(sources), strict)
    with _result_log(json_path) as log:
        detector, at_once = choice.load(image_count(sources))
        with progress_bar(sources, progress) as bar:
            yield FilesRun(detector, at_once, log, bar, skipped)


def claim_sources(inputs: Any, guard: OutputGuard | None, skip: Sequence[str | Path | None] = ()) -> list[Source]:
    """The sources of ``inputs`` (:func:`~featherface.detection.sources.collect_sources`; folders in ``skip``, the
    run's output folders, not entered), told to ``guard`` as inputs: no output may replace one."""
    sources = collect_sources(inputs, skip=[path for path in skip if path])
    if guard is not None:
        guard.add_inputs(source.path for source in sources)
    return sources


@dataclass
class DetectReport:
    """What :func:`detect_to_json` found beyond its JSON: per video its totals, and the files skipped (their
    :meth:`~featherface.detection.stream.SkippedFiles.summary`, None when none was)."""

    videos: dict[str, VideoTotals] = field(default_factory=dict)
    skipped: str | None = None

    def add(self, result: Result) -> None:
        """Count one readable video frame."""
        self.videos.setdefault(str(result.source.path), VideoTotals()).add(result)

    def lines(self) -> list[str]:
        """``{video}: N frame(s), M face(s), K track(s)`` per video, in input order."""
        return [f"{video}: {totals.describe()}" for video, totals in self.videos.items()]


def _drawn(result: Result) -> Any:
    from featherface.detection.visualize import draw_detections

    return draw_detections(result.image, result.detections)


def detect_to_json(
    inputs: str | Path | Sequence[str | Path],
    choice: DetectorChoice | None = None,
    json_path: str | Path | None = None,
    save_dir: str | Path | None = None,
    guard: OutputGuard | None = None,
    track: bool = True,
    strict: bool = False,
    size: int | None = None,
    min_face: float | None = None,
    max_face: float | None = None,
    progress: bool = True,
) -> DetectReport:
    """Faces in image files, folders (recursively) and videos, one JSON entry per image or frame written to
    ``json_path`` as they come (SPEC section 8; a file that cannot be read keeps its entry, with its ``error``),
    each image's count printed above the progress bar, and with ``save_dir`` drawn copies mirroring the inputs'
    relative paths. ``guard``: the caller's claimed outputs (``json_path`` among them); the inputs and the drawn
    copies are added to it before any work. Video faces are tracked unless ``track`` is off. ``size`` /
    ``min_face`` / ``max_face``: the inference scale (:meth:`Detector.detect_batch`)."""
    choice = choice or DetectorChoice()
    options = face_size_options(size, min_face, max_face)
    guard = guard or OutputGuard()
    sources = claim_sources(inputs, guard, skip=[save_dir])
    drawn = mirror_outputs(sources, save_dir, guard) if save_dir else {}
    report = DetectReport()
    with files_run(sources, choice, json_path, strict, progress) as run:
        results = detect_sources(
            run.detector, sources, choice.batch_size, track=track, inference_threads=run.passes_at_once, **options
        )
        if drawn:
            results = write_rendered(results, drawn, _drawn)
        # closing: stopped early (strict, Ctrl-C), the video reader's thread stops and the capture is released now
        with closing(results):
            for result in results:
                run.record(result.to_json())
                if not result.ok:
                    run.skip(result.name, result.error)
                elif result.frame is None:
                    run.say(f"{result.name}: {len(result.detections)} face(s)")
                else:
                    report.add(result)
    report.skipped = run.skipped.finish()
    return report

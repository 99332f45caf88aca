"""Detection over many inputs, one result at a time: image files (decoded by a small thread pool while the network
runs, same-size images batched) and video frames (read ahead by a thread, batched, optionally tracked).

A file that cannot be read yields a :class:`Result` with its ``error`` (the reason) instead of raising, so one bad
file costs one entry, never the run (:class:`SkippedFiles` counts them and says so in one line). Results come in
input order.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from queue import Empty, Full, Queue
from typing import Any, Generic, Protocol, TypeVar

import cv2
import numpy as np

from featherface.detection.image import ImageError, read_image
from featherface.detection.postprocess import Detections
from featherface.detection.sources import (
    Source,
    VideoInfo,
    VideoOutput,
    VideoReader,
    failure_reason,
    write_image,
)
from featherface.detection.tracking import FaceTracker, TrackerConfig, follow_boxes
from featherface.errors import ParameterError

T = TypeVar("T")


class BatchDetector(Protocol):
    """What this module asks of a detector (:class:`featherface.detection.api.Detector` is one)."""

    def detect_batch(self, images: list[np.ndarray], **options: Any) -> list[Detections]: ...


# errors that make one file unusable (cv2.error: OpenCV's own, e.g. a decoder that gives up on a corrupt file)
FILE_ERRORS = (ImageError, OSError, ValueError, MemoryError, cv2.error)


@dataclass
class Result:
    """One image, or one video frame (``frame`` its index), and its faces; or why it could not be read (``error``,
    with ``image`` and ``detections`` None). Tracked video frames only: ``track_ids (K,)``, per face, and
    ``missed_boxes (M, 4)`` xyxy, where the tracker predicts the faces it follows (seen within its ``max_age``
    frames) that this frame's detections lack: a face the detector missed once is probably there."""

    source: Source
    image: np.ndarray | None = None
    detections: Detections | None = None
    error: str | None = None
    frame: int | None = None
    track_ids: np.ndarray | None = None
    video: VideoInfo | None = None
    missed_boxes: np.ndarray | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def name(self) -> str:
        """The file, or ``FILE#frame=N`` for a video frame (the JSON's ``image``)."""
        return str(self.source.path) if self.frame is None else f"{self.source.path}#frame={self.frame}"

    def to_json(self) -> dict[str, Any]:
        """SPEC section 8's entry: ``{"image", "width", "height", "faces": [...]}`` (faces with ``track_id`` when
        tracked); a file that could not be read keeps the same keys (no size, no faces) plus ``"error"``; one read
        and searched whose output could not be written (:func:`write_rendered`) keeps its size and faces plus
        ``"error"``."""
        if self.detections is None:
            return {"image": self.name, "width": None, "height": None, "faces": [], "error": self.error}
        faces = self.detections.faces()
        if self.track_ids is not None:
            for face, track_id in zip(faces, self.track_ids.tolist(), strict=True):
                face["track_id"] = track_id
        entry = {"image": self.name, "width": self.image.shape[1], "height": self.image.shape[0], "faces": faces}
        if self.error is not None:
            entry["error"] = self.error
        return entry


def detect_sources(
    detector: BatchDetector,
    sources: Sequence[Source],
    batch_size: int = 8,
    workers: int = 2,
    track: bool = True,
    tracker_config: TrackerConfig | None = None,
    inference_threads: int = 1,
    **options,
) -> Iterator[Result]:
    """Results for every source in order: runs of images through :func:`detect_images` (``inference_threads``
    batches at once), videos through :func:`detect_video`. ``options``: ``size``, ``min_face``, ``max_face`` of
    :meth:`Detector.detect_batch`."""
    run: list[Source] = []
    for source in [*sources, None]:
        if source is not None and source.kind == "image":
            run.append(source)
            continue
        if run:
            yield from detect_images(detector, run, batch_size, workers, inference_threads, **options)
            run = []
        if source is not None:
            yield from detect_video(detector, source, batch_size, track, tracker_config, **options)


def detect_images(
    detector: BatchDetector,
    sources: Sequence[Source],
    batch_size: int = 8,
    workers: int = 2,
    inference_threads: int = 1,
    **options,
) -> Iterator[Result]:
    """Results for image files in order. ``workers`` threads decode ahead of the network; consecutive images of
    one size go through it together (up to ``batch_size``); ``inference_threads`` batches run at once, each in its
    own thread (the network and most of the post-processing release the GIL, so on a small CPU two one-thread
    forward passes side by side beat one two-thread pass). Mixed sizes are never padded into one batch, so a
    face's result does not depend on its neighbours."""
    pending: list[tuple[Source, np.ndarray]] = []
    # in input order: (batch, future of its detections), or (source, reason) for a file that could not be read
    running: deque = deque()

    def submit() -> None:
        batch = list(pending)
        running.append((batch, inference.submit(detector.detect_batch, [image for _, image in batch], **options)))
        pending.clear()

    def collect(keep: int) -> Iterator[Result]:
        """Results from the front of ``running`` while more than ``keep`` batches are in flight, and then those
        already finished or failed (a failure, or a finished batch, never waits for later ones: ``--strict``
        stops at once, an interrupted run keeps them)."""
        in_flight = sum(not isinstance(future, str) for _, future in running)
        while running:
            batch, future = running[0]
            if isinstance(future, str):
                running.popleft()
                yield Result(batch, error=future)
                continue
            if in_flight <= keep and not future.done():
                return
            running.popleft()
            in_flight -= 1
            for (source, image), detections in zip(batch, future.result(), strict=True):
                yield Result(source, image, detections)

    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="decode")
    inference = ThreadPoolExecutor(max_workers=inference_threads, thread_name_prefix="inference")
    try:
        for source, image, error in _decode_ahead(pool, sources, depth=batch_size + 2 * workers):
            if pending and (error is not None or len(pending) >= batch_size or pending[0][1].shape != image.shape):
                submit()
                yield from collect(inference_threads)  # one more queued: no thread idles while the next forms
            if error is not None:
                running.append((source, error))  # keeps its place in the order
                yield from collect(inference_threads)
            else:
                pending.append((source, image))
        if pending:
            submit()
        yield from collect(0)
    finally:  # a consumer that stops early (Ctrl-C, --strict, an error) does not wait for decodes still queued
        inference.shutdown(wait=True, cancel_futures=True)
        pool.shutdown(wait=True, cancel_futures=True)


def _decode_ahead(
    pool: ThreadPoolExecutor, sources: Sequence[Source], depth: int
) -> Iterator[tuple[Source, np.ndarray | None, str | None]]:
    """``(source, image, None)`` or ``(source, None, reason)`` in order, with up to ``depth`` decodes in flight."""
    queued: deque = deque()
    remaining = iter(sources)
    for source in remaining:
        queued.append((source, pool.submit(read_image, source.path)))
        if len(queued) >= depth:
            break
    while queued:
        source, future = queued.popleft()
        following = next(remaining, None)
        if following is not None:
            queued.append((following, pool.submit(read_image, following.path)))
        try:
            yield source, future.result(), None
        except FILE_ERRORS as exc:
            yield source, None, failure_reason(exc, source.path)


def detect_video(
    detector: BatchDetector,
    source: Source,
    batch_size: int = 8,
    track: bool = True,
    tracker_config: TrackerConfig | None = None,
    **options,
) -> Iterator[Result]:
    """One result per frame (frames read ahead by a thread, ``batch_size`` per forward pass). With ``track``, a
    :class:`~featherface.detection.tracking.FaceTracker` gives each face a ``track_id`` (and smooths its box and
    landmarks unless ``tracker_config.smooth`` is off) and each result the ``missed_boxes`` of faces it follows that
    this frame's detections lack. An unreadable video yields one result with its ``error``. Closing this iterator
    (``close()``, or ``contextlib.closing``) stops the read-ahead thread and releases the video at once."""
    try:
        reader = VideoReader(source.path)
    except FILE_ERRORS as exc:
        yield Result(source, error=failure_reason(exc, source.path))
        return
    tracker = FaceTracker(tracker_config) if track else None
    index = 0
    # leaving this block (the last frame, or a consumer that closes this iterator early) stops the read-ahead
    # thread first, then releases the capture it reads from
    with reader, ReadAhead(reader, depth=2 * batch_size) as frames:
        for batch in batched(frames, batch_size):
            for pixels, found in zip(batch, detector.detect_batch(batch, **options), strict=True):
                ids = missed = None
                if tracker is not None:
                    ids, boxes = tracker.update(found.boxes)
                    boxes = boxes.astype(np.float32)
                    landmarks = follow_boxes(found.landmarks, found.boxes, boxes).astype(np.float32)
                    found = Detections(boxes, found.scores, landmarks)
                    missed = tracker.missing()[1].astype(np.float32)
                yield Result(source, pixels, found, frame=index, track_ids=ids, video=reader.info, missed_boxes=missed)
                index += 1
    if index == 0:
        yield Result(source, error="video has no readable frames")


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of ``size`` items (the last may be shorter)."""
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


_END = object()


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class ReadAhead(Generic[T]):
    """``items`` in order, produced by a background thread up to ``depth`` ahead of the consumer (frame decoding
    overlaps inference: OpenCV releases the GIL). Use it as a context manager: leaving the block, normally or
    early, stops the thread and waits for it, so what it reads from (a video capture) can be released right
    after, never while the thread is still reading.

    >>> with VideoReader(path) as reader, ReadAhead(reader, depth=16) as frames:
    ...     for frame in frames: ...
    """

    def __init__(self, items: Iterable[T], depth: int) -> None:
        self.items = items
        self.queue: Queue = Queue(maxsize=depth)
        self.stopping = threading.Event()
        self.finished = False
        self.thread = threading.Thread(target=self._produce, name="read-ahead", daemon=True)
        self.thread.start()

    def _put(self, item: Any) -> bool:
        """Queue ``item``; False when told to stop first."""
        while not self.stopping.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return True
            except Full:
                continue
        return False

    def _produce(self) -> None:
        try:
            for item in self.items:
                if not self._put(item):
                    return
        except BaseException as exc:  # handed to the consumer, raised there
            self._put(_Failure(exc))
        self._put(_END)

    def __iter__(self) -> ReadAhead[T]:
        return self

    def __next__(self) -> T:
        while not self.finished:
            try:
                item = self.queue.get(timeout=0.1)
            except Empty:
                self.finished = not self.thread.is_alive() and self.queue.empty()
                continue
            if item is _END:
                self.finished = True
            elif isinstance(item, _Failure):
                self.finished = True
                raise item.error
            else:
                return item
        raise StopIteration

    def close(self) -> None:
        """Stop the thread and wait for it (it finishes the item it is reading)."""
        self.stopping.set()
        self.thread.join()

    def __enter__(self) -> ReadAhead[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_rendered(
    results: Iterable[Result], outputs: Mapping[Path, Path], render: Callable[[Result], np.ndarray]
) -> Iterator[Result]:
    """Pass ``results`` through, writing ``render(result)`` for each readable one to its source's output
    (``outputs[source.path]``): images as files (by their suffix, atomically), video frames into one re-encoded
    video per source (mp4v, the source's frame rate), moved into place once its last frame is written. Results
    without an output, and failures, pass untouched. An image whose output cannot be written (no encoder for its
    suffix, a full disk) passes on as a failure, ``error`` ``"output not written: {reason}"`` and its faces kept:
    one output costs one entry, never the run. So does a video's: the frame where writing failed carries the
    error, its partial file is removed, and its later frames pass on unwritten."""
    video: VideoOutput | None = None
    video_source: Path | None = None
    unwritable: Path | None = None  # the video whose output failed: its later frames pass on, not written
    try:
        for result in results:
            target = outputs.get(result.source.path)
            if video is not None and result.source.path != video_source:
                video.close()
                video = None
            if result.ok and target is not None and result.source.path != unwritable:
                try:
                    if result.frame is None:
                        write_image(target, render(result))
                    else:
                        if video is None:
                            video, video_source = VideoOutput(target, result.video.fps), result.source.path
                        video.write(render(result))
                except FILE_ERRORS as exc:
                    if video is not None:
                        video.discard()
                        video = None
                    if result.frame is not None:
                        unwritable = result.source.path
                    result = replace(result, error=f"output not written: {failure_reason(exc, target)}")
            yield result
        if video is not None:
            video.close()
            video = None
    finally:
        if video is not None:  # stopped mid-video: no truncated file under the final name
            video.discard()
        close_iterator(results)


def close_iterator(items: Iterable[Any]) -> None:
    """Close ``items`` if it is a generator (or anything with ``close``): its ``finally`` blocks run now (a video's
    read-ahead thread stopped, its capture released), not whenever it is garbage-collected. For a pipeline stage
    that stops early."""
    close = getattr(items, "close", None)
    if close is not None:
        close()


class InputError(ParameterError):
    """The inputs as a whole are unusable: no file could be read, or (strict) one could not."""


class SkippedFiles:
    """Skip-and-count of the files of a run that could not be used: each :meth:`add`-ed with its reason, all
    reported in one line by :meth:`summary`; with ``strict``, the first one raises :class:`InputError` instead,
    naming the setting as ``strict_name`` (the CLI: ``--strict``). ``total``: the number of files in the run.

    >>> skipped = SkippedFiles(len(sources))
    >>> for result in detect_sources(detector, sources):
    ...     if not result.ok:
    ...         skipped.add(result.name, result.error)
    >>> skipped.finish()  # None when nothing was skipped; raises InputError when nothing could be read
    '1 of 6 file(s): 1 not a readable image (first: photos/b/broken.jpg)'
    """

    def __init__(self, total: int, strict: bool = False, strict_name: str = "strict") -> None:
        self.total, self.strict, self.strict_name = total, strict, strict_name
        self.by_reason: dict[str, list[str]] = {}  # reason -> files, in the order they came

    def add(self, name: str, reason: str) -> None:
        if self.strict:
            raise InputError(lambda named: f"{name}: {reason} ({named(self.strict_name)})")
        self.by_reason.setdefault(reason, []).append(name)

    @property
    def count(self) -> int:
        return sum(map(len, self.by_reason.values()))

    def summary(self) -> str:
        """``"{count} of {total} file(s): {n} {reason} (first: {name}), ..."``, reasons in the order first met."""
        reasons = ", ".join(f"{len(names)} {reason} (first: {names[0]})" for reason, names in self.by_reason.items())
        return f"{self.count} of {self.total} file(s): {reasons}"

    def finish(self) -> str | None:
        """At the end of the run: :meth:`summary` when files were skipped, None when none was. Raises
        :class:`InputError` when no file could be used (for a single file, its own ``"{name}: {reason}"``)."""
        if not self.by_reason:
            return None
        if self.count >= self.total:
            if self.total == 1:
                reason, names = next(iter(self.by_reason.items()))
                raise InputError(f"{names[0]}: {reason}")
            raise InputError(f"no input could be read: {self.summary()}")
        return self.summary()


@dataclass
class VideoTotals:
    """What a run found in one video: frames read, faces over them, and the tracks they formed."""

    frames: int = 0
    faces: int = 0
    tracks: set[int] = field(default_factory=set)

    def add(self, result: Result) -> None:
        """Count one readable frame."""
        self.frames += 1
        self.faces += len(result.detections)
        if result.track_ids is not None:
            self.tracks.update(result.track_ids.tolist())

    def describe(self) -> str:
        """``N frame(s), M face(s)``, with ``, K track(s)`` when faces were tracked."""
        tracked = f", {len(self.tracks)} track(s)" if self.tracks else ""
        return f"{self.frames} frame(s), {self.faces} face(s){tracked}"

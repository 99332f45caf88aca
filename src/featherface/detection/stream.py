"""Detection over many inputs, one result at a time: image files (decoded by a small thread pool while the network
runs, same-size images batched) and video frames (read ahead by a thread, batched, optionally tracked).

A file that cannot be read yields a :class:`Result` with its ``error`` (the reason) instead of raising, so one bad
file costs one entry, never the run. Results come in input order.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from queue import Empty, Full, Queue
from typing import TYPE_CHECKING, Any, TypeVar

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

if TYPE_CHECKING:
    from featherface.detection.api import Detector
    from featherface.tracking import TrackerConfig

T = TypeVar("T")
# errors that make one file unusable (cv2.error: OpenCV's own, e.g. a decoder that gives up on a corrupt file)
FILE_ERRORS = (ImageError, OSError, ValueError, MemoryError, cv2.error)


@dataclass
class Result:
    """One image, or one video frame (``frame`` its index), and its faces; or why it could not be read (``error``,
    with ``image`` and ``detections`` None). ``track_ids (K,)``: per face, for tracked video frames."""

    source: Source
    image: np.ndarray | None = None
    detections: Detections | None = None
    error: str | None = None
    frame: int | None = None
    track_ids: np.ndarray | None = None
    video: VideoInfo | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def name(self) -> str:
        """The file, or ``FILE#frame=N`` for a video frame (the JSON's ``image``)."""
        return str(self.source.path) if self.frame is None else f"{self.source.path}#frame={self.frame}"

    def to_json(self) -> dict[str, Any]:
        """SPEC section 8's entry: ``{"image", "width", "height", "faces": [...]}`` (faces with ``track_id`` when
        tracked); a file that could not be read keeps the same keys (no size, no faces) plus ``"error"``."""
        if self.error is not None:
            return {"image": self.name, "width": None, "height": None, "faces": [], "error": self.error}
        faces = self.detections.faces()
        if self.track_ids is not None:
            for face, track_id in zip(faces, self.track_ids.tolist(), strict=True):
                face["track_id"] = track_id
        return {"image": self.name, "width": self.image.shape[1], "height": self.image.shape[0], "faces": faces}


def detect_sources(
    detector: Detector,
    sources: Sequence[Source],
    batch_size: int = 8,
    workers: int = 2,
    track: bool = True,
    tracker_config: TrackerConfig | None = None,
    **options,
) -> Iterator[Result]:
    """Results for every source in order: runs of images through :func:`detect_images`, videos through
    :func:`detect_video`. ``options``: ``size``, ``min_face``, ``max_face`` of :meth:`Detector.detect_batch`."""
    run: list[Source] = []
    for source in [*sources, None]:
        if source is not None and source.kind == "image":
            run.append(source)
            continue
        if run:
            yield from detect_images(detector, run, batch_size, workers, **options)
            run = []
        if source is not None:
            yield from detect_video(detector, source, batch_size, track, tracker_config, **options)


def detect_images(
    detector: Detector, sources: Sequence[Source], batch_size: int = 8, workers: int = 2, **options
) -> Iterator[Result]:
    """Results for image files in order. ``workers`` threads decode ahead of the network; consecutive images of
    one size go through it together (up to ``batch_size``). Mixed sizes are never padded into one batch, so a
    face's result does not depend on its neighbours."""
    pending: list[tuple[Source, np.ndarray]] = []

    def flush() -> Iterator[Result]:
        found = detector.detect_batch([image for _, image in pending], **options)
        for (source, image), detections in zip(pending, found, strict=True):
            yield Result(source, image, detections)
        pending.clear()

    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="decode")
    try:
        for source, image, error in _decode_ahead(pool, sources, depth=batch_size + 2 * workers):
            if pending and (error is not None or len(pending) >= batch_size or pending[0][1].shape != image.shape):
                yield from flush()
            if error is not None:
                yield Result(source, error=error)
            else:
                pending.append((source, image))
        if pending:
            yield from flush()
    finally:  # a consumer that stops early (Ctrl-C, --strict, an error) does not wait for decodes still queued
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
    detector: Detector,
    source: Source,
    batch_size: int = 8,
    track: bool = True,
    tracker_config: TrackerConfig | None = None,
    **options,
) -> Iterator[Result]:
    """One result per frame (frames read ahead by a thread, ``batch_size`` per forward pass). With ``track``, a
    :class:`~featherface.tracking.FaceTracker` gives each face a ``track_id`` (and smooths its box and landmarks
    unless ``tracker_config.smooth`` is off). An unreadable video yields one result with its ``error``."""
    from featherface.tracking import FaceTracker, follow_boxes

    try:
        reader = VideoReader(source.path)
    except FILE_ERRORS as exc:
        yield Result(source, error=failure_reason(exc, source.path))
        return
    tracker = FaceTracker(tracker_config) if track else None
    index = 0
    with reader:
        for frames in batched(read_ahead(reader, depth=2 * batch_size), batch_size):
            for pixels, found in zip(frames, detector.detect_batch(frames, **options), strict=True):
                ids = None
                if tracker is not None:
                    ids, boxes = tracker.update(found.boxes)
                    boxes = boxes.astype(np.float32)
                    landmarks = follow_boxes(found.landmarks, found.boxes, boxes).astype(np.float32)
                    found = Detections(boxes, found.scores, landmarks)
                yield Result(source, pixels, found, frame=index, track_ids=ids, video=reader.info)
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


def read_ahead(items: Iterable[T], depth: int) -> Iterator[T]:
    """``items`` in order, produced by a background thread up to ``depth`` ahead of the consumer (frame decoding
    overlaps inference: OpenCV releases the GIL). Stopping early stops the thread."""
    queue: Queue = Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                queue.put(item, timeout=0.1)
                return True
            except Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
        except BaseException as exc:  # handed to the consumer, raised there
            put(_Failure(exc))
        put(_END)

    thread = threading.Thread(target=produce, name="read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            try:
                item = queue.get(timeout=0.1)
            except Empty:
                if not thread.is_alive() and queue.empty():
                    return
                continue
            if item is _END:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item
    finally:
        stop.set()
        thread.join()


def write_rendered(
    results: Iterable[Result], outputs: Mapping[Path, Path], render: Callable[[Result], np.ndarray]
) -> Iterator[Result]:
    """Pass ``results`` through, writing ``render(result)`` for each readable one to its source's output
    (``outputs[source.path]``): images as files (by their suffix, atomically), video frames into one re-encoded
    video per source (mp4v, the source's frame rate), moved into place once its last frame is written. Results
    without an output, and failures, pass untouched."""
    video: VideoOutput | None = None
    video_source: Path | None = None
    try:
        for result in results:
            target = outputs.get(result.source.path)
            if video is not None and result.source.path != video_source:
                video.close()
                video = None
            if result.ok and target is not None:
                if result.frame is None:
                    write_image(target, render(result))
                else:
                    if video is None:
                        video, video_source = VideoOutput(target, result.video.fps), result.source.path
                    video.write(render(result))
            yield result
        if video is not None:
            video.close()
            video = None
    finally:
        if video is not None:  # stopped mid-video: no truncated file under the final name
            video.discard()

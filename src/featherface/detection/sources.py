"""What a command reads and where its outputs go: image and video files found under the inputs, the relative path
each output mirrors, a guard that never lets an output replace an input, and video reading and writing (no torch).

Outputs mirror each input's path relative to the inputs' common folder (the folder itself for one folder, the
parent for one file), keeping the file name and suffix: ``a/x.jpg``, ``b/x.jpg``, ``y.png`` and ``y.jpg`` give four
distinct outputs.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from featherface import fileio
from featherface.detection.image import IMAGE_SUFFIXES, ImageError, read_image_header

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")
# animations OpenCV's video reader plays frame by frame (FFmpeg's GIF and APNG demuxers; not animated WebP)
ANIMATION_SUFFIXES = (".gif", ".png")
VIDEO_CODEC = "mp4v"  # OpenCV's built-in MPEG-4 encoder: present in every opencv-python build
DEFAULT_FPS = 25.0  # for a video that does not say its frame rate


@dataclass(frozen=True)
class Source:
    """One input file: ``kind`` is ``"image"`` or ``"video"``; ``relative`` is where its outputs go under an output
    folder."""

    path: Path
    kind: str
    relative: Path

    @classmethod
    def of(cls, path: str | Path, relative: Path | None = None) -> Source:
        """A file as an image, or a video when its suffix is one (:data:`VIDEO_SUFFIXES`)."""
        path = Path(path)
        kind = "video" if path.suffix.lower() in VIDEO_SUFFIXES else "image"
        return cls(path, kind, relative or Path(path.name))

    @classmethod
    def video(cls, path: str | Path) -> Source:
        return cls(Path(path), "video", Path(Path(path).name))

    @classmethod
    def probed(cls, path: str | Path, relative: Path | None = None) -> Source:
        """:meth:`of`, except that a GIF or PNG animation (its header says more than one frame) is a video: every
        frame is read, none dropped."""
        source = cls.of(path, relative)
        if source.kind == "image" and source.path.suffix.lower() in ANIMATION_SUFFIXES and is_animation(source.path):
            return cls(source.path, "video", source.relative)
        return source


def is_animation(path: Path) -> bool:
    """Whether an image file's header declares more than one frame (False for a file that cannot be read: the
    decoder says why later)."""
    try:
        header = read_image_header(path)
    except ImageError:
        return False
    return header is not None and header.frames > 1


def walk_files(folder: Path, suffixes: Sequence[str], skip: set[str] | frozenset[str] = frozenset()) -> list[Path]:
    """Files under ``folder`` whose lower-cased suffix is one of ``suffixes`` (recursively; hidden entries, symbolic
    links to folders and the folders in ``skip`` (real paths) left out; nothing is opened), sorted by relative
    path."""
    found: list[Path] = []
    pending = [folder]
    while pending:
        with os.scandir(pending.pop()) as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                if entry.is_dir(follow_symlinks=False):
                    if os.path.realpath(entry.path) not in skip:
                        pending.append(Path(entry.path))
                elif Path(entry.name).suffix.lower() in suffixes and entry.is_file():
                    found.append(Path(entry.path))
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


def collect_sources(inputs: str | Path | Sequence[str | Path], skip: Sequence[str | Path] = ()) -> list[Source]:
    """The files to read: each file named (an image unless its suffix is a video's, or it is a GIF or PNG
    animation: :meth:`Source.probed`), and every image and video under each folder named, recursively, in sorted
    order; one path (a ``str`` or ``Path``) is one input. Folders in ``skip`` (an output folder inside an input
    folder) are not entered. Raises ``ValueError`` naming the path for an input that does not exist or a folder
    with nothing to read: those are mistakes in the command, not bad files."""
    if isinstance(inputs, str | Path):  # a str is a sequence too: its characters are no inputs
        inputs = [inputs]
    skipped = {os.path.realpath(p) for p in skip}
    named = [Path(item) for item in inputs]
    files: list[Path] = []
    for path in named:
        if path.is_dir():
            found = walk_files(path, IMAGE_SUFFIXES + VIDEO_SUFFIXES, skipped)
            if not found:
                raise ValueError(f"{path}: folder holds no images or videos")
            files.extend(found)
        elif path.exists():
            files.append(path)
        else:
            raise ValueError(f"{path}: no such file or folder")
    if not files:
        raise ValueError("no inputs")
    # a file named twice (or named and inside a folder named) is read once: twice would write its outputs twice
    seen: set[str] = set()
    files = [path for path in files if not (os.path.realpath(path) in seen or seen.add(os.path.realpath(path)))]
    roots = [os.path.abspath(p if p.is_dir() else p.parent) for p in named]
    common = os.path.commonpath(roots)
    return [Source.probed(path, Path(os.path.relpath(os.path.abspath(path), common))) for path in files]


def failure_reason(error: BaseException, path: Path) -> str:
    """The reason in an error message, without the file name it starts with (``"{path}: reason"``); for an
    ``OSError``, its ``strerror`` alone (``"Permission denied"``): the file names it carries (temporary ones
    included) would split one reason into as many as there are files."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    message = str(error).splitlines()[0] if str(error) else type(error).__name__
    prefix = f"{path}: "
    return message[len(prefix) :] if message.startswith(prefix) else message


class OutputGuard(fileio.OutputGuard):
    """:class:`featherface.fileio.OutputGuard` over the files a command reads: ``sources`` (images and videos) and
    ``inputs`` (``(path, what)``: models, configs, label files)."""

    def __init__(self, sources: Sequence[Source] = (), inputs: Iterable[tuple[str | Path, str | None]] = ()) -> None:
        super().__init__([(s.path, None) for s in sources])
        for path, what in inputs:
            self.add_input(path, what)


def mirror_outputs(
    sources: Sequence[Source], out_dir: str | Path, guard: fileio.OutputGuard | None = None
) -> dict[Path, Path]:
    """Each source's output under ``out_dir``: its relative path (videos as ``.mp4``, :func:`video_output_path`),
    claimed from ``guard`` (a new one over ``sources`` if not given): never an input, never shared."""
    guard = guard or OutputGuard(sources)
    out_dir = Path(out_dir)
    return {
        s.path: guard.claim(out_dir / (video_output_path(s.relative) if s.kind == "video" else s.relative), s.path)
        for s in sources
    }


def write_image(path: Path, image: np.ndarray) -> None:
    """Encode ``image`` by ``path``'s suffix and write it atomically (never a torn file under the final name).
    Raises :class:`ImageError` naming ``path`` when no encoder takes the suffix (``.jfif``: OpenCV reads such a file
    by its content but writes only the suffixes it knows) or the image; ``OSError`` when the file cannot be
    written."""
    from featherface.fileio import atomic_write_bytes

    suffix = path.suffix or ".png"
    ok, data = _encode(suffix, image)
    if not ok and image.ndim == 3:  # gray-only formats (.pgm, .pbm) of an input read as BGR: write it gray
        ok, data = _encode(suffix, cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))
    if not ok:
        raise ImageError(f"{path}: could not encode the image as {suffix}")
    atomic_write_bytes(path, data.tobytes())


def _encode(suffix: str, image: np.ndarray) -> tuple[bool, np.ndarray | None]:
    """``cv2.imencode``, with its error for a suffix it has no encoder for turned into a plain failure."""
    try:
        return cv2.imencode(suffix, image)
    except cv2.error:
        return False, None


@dataclass(frozen=True)
class VideoInfo:
    fps: float
    width: int
    height: int
    frames: int | None  # as the container says (may be absent or approximate)


class VideoReader:
    """Frames of a video as BGR uint8 arrays, in order; ``info`` holds its frame rate and size.

    Frames come upright: a video whose container says it is to be shown rotated (a phone's display matrix,
    ``rotate`` metadata) is rotated as a player shows it (OpenCV's ``CAP_PROP_ORIENTATION_AUTO``, FFmpeg backend),
    and ``info`` gives the rotated size. The re-encoded copies carry no rotation, so they play upright."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ImageError(f"{path}: no such file")
        self.capture = cv2.VideoCapture(str(path))
        if not self.capture.isOpened():
            raise ImageError(f"{path}: not a readable video")
        # FFmpeg's backend rotates by default in the OpenCV tested (4.14); set here so that no version's default matters
        self.capture.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
        get = self.capture.get
        frames = int(get(cv2.CAP_PROP_FRAME_COUNT))
        self.info = VideoInfo(
            fps=get(cv2.CAP_PROP_FPS) or DEFAULT_FPS,
            width=int(get(cv2.CAP_PROP_FRAME_WIDTH)),
            height=int(get(cv2.CAP_PROP_FRAME_HEIGHT)),
            frames=frames if frames > 0 else None,
        )

    def __iter__(self) -> Iterator[np.ndarray]:
        while True:
            ok, frame = self.capture.read()
            if not ok:
                return
            yield frame

    def close(self) -> None:
        self.capture.release()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class VideoOutput:
    """Frames to an MPEG-4 (mp4v) file at a given frame rate, the size of the first frame. Written under a hidden
    temporary name and moved to ``path`` by :meth:`close`, so an interrupted write leaves no truncated video. The
    name carries the process id: two processes writing one output folder each write a whole file of their own (the
    last rename wins), never frames into the same one."""

    def __init__(self, path: Path, fps: float) -> None:
        self.path, self.fps = path, fps
        self.temporary = path.with_name(f".{path.stem}.{os.getpid()}.partial{path.suffix or '.mp4'}")
        self.writer: cv2.VideoWriter | None = None

    def write(self, frame: np.ndarray) -> None:
        if self.writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fourcc = cv2.VideoWriter_fourcc(*VIDEO_CODEC)
            writer = cv2.VideoWriter(str(self.temporary), fourcc, self.fps, frame.shape[1::-1])
            if not writer.isOpened():  # nothing of ours at the temporary path: discard() must leave it alone
                writer.release()
                raise ImageError(f"{self.path}: cannot write a {VIDEO_CODEC} video here")
            self.writer = writer
        self.writer.write(frame)

    def close(self) -> None:
        """Finish the file and move it into place (nothing is written for a video without frames)."""
        if self.writer is not None:
            self.writer.release()
            self.writer = None
            os.replace(self.temporary, self.path)

    def discard(self) -> None:
        """Remove the partial file this output wrote (none if it never opened one)."""
        if self.writer is None:
            return
        self.writer.release()
        self.writer = None
        self.temporary.unlink(missing_ok=True)


def video_output_path(relative: Path) -> Path:
    """Where a video's re-encoded copy goes: its own name, plus ``.mp4`` unless it already ends so (``clip.avi`` ->
    ``clip.avi.mp4``: a ``clip.mp4`` beside it keeps its own output)."""
    return relative if relative.suffix.lower() == ".mp4" else relative.with_name(relative.name + ".mp4")

"""A JSON list written as it grows, so an interrupted run keeps every entry it finished (no torch here).

Entries go to ``PATH.partial`` as JSON lines, each flushed as it is added. :meth:`ResultLog.finish` then writes
``PATH`` (the JSON list, one entry per line) atomically and removes the partial file. A run stopped before that
(Ctrl-C, a kill, a crash) leaves ``PATH.partial``: one complete JSON object per line, for every finished entry
(a line cut by a kill mid-write is the only one that can be incomplete).

One writer per ``PATH``: the partial file is held under an exclusive ``flock`` from the moment the log opens until
``PATH`` is written, and a second process asking for the same ``PATH`` meanwhile is refused at once
(:class:`OutputInUseError`), before it does any work. Two runs into one file cannot both be kept, so the second
is told rather than let the last to finish silently replace the other's results (which per-process partial files
and a rename would do). ``flock`` is released by the kernel when its holder dies, even by SIGKILL, so no stale lock
outlives a run. It is Linux/macOS only, as the rest of :mod:`featherface.fileio`; a lock library (``filelock``)
would add a dependency and a ``.lock`` file beside every output for no gain here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, TextIO


class OutputInUseError(ValueError):
    """Another process is writing the same result file; the message names it."""


def partial_path(path: Path) -> Path:
    return path.with_name(path.name + ".partial")


def _open_locked(partial: Path, path: Path) -> TextIO:
    """``partial`` opened for writing (emptied) under an exclusive lock, or :class:`OutputInUseError`."""
    import fcntl

    from featherface.fileio import default_file_mode

    while True:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT, default_file_mode())
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise OutputInUseError(
                f"{path}: another process is writing it (its {partial.name} is locked); wait for it to finish or "
                "choose another output"
            ) from None
        try:  # the holder before us may have finished, and removed the file, between our open and our lock
            current = os.path.samestat(os.fstat(fd), os.stat(partial))
        except FileNotFoundError:
            current = False
        if current:
            os.ftruncate(fd, 0)
            return os.fdopen(fd, "w", encoding="utf-8")
        os.close(fd)


class ResultLog:
    """``with ResultLog(path) as log: log.add(entry)``; finished on a clean exit, left partial on an exception
    (removed if it holds no entry). ``path=None``: entries are only counted. Raises :class:`OutputInUseError` when
    another process holds ``path``."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path else None
        self.count = 0
        self._file: TextIO | None = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = _open_locked(partial_path(self.path), self.path)

    @property
    def partial(self) -> Path | None:
        return None if self.path is None else partial_path(self.path)

    def add(self, entry: dict[str, Any]) -> None:
        self.count += 1
        if self._file is not None:
            self._file.write(json.dumps(entry) + "\n")
            self._file.flush()

    def finish(self) -> None:
        """Write ``path`` from the partial file and remove it, then release the lock."""
        if self._file is None:
            return
        from featherface.fileio import atomic_write_bytes

        self._file.flush()
        lines = partial_path(self.path).read_text(encoding="utf-8").splitlines()
        text = "[\n" + ",\n".join(lines) + "\n]\n" if lines else "[]\n"
        atomic_write_bytes(self.path, text.encode())
        partial_path(self.path).unlink()  # while locked: one that opened it meanwhile finds it gone once it locks
        self._file.close()
        self._file = None

    def close(self) -> None:
        """Stop writing, keeping the partial file as it is (removing it if it holds no entry), and release the
        lock."""
        if self._file is not None:
            if self.count == 0:
                partial_path(self.path).unlink(missing_ok=True)
            self._file.close()
            self._file = None

    def __enter__(self) -> ResultLog:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.finish()
        else:
            self.close()

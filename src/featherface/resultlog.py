"""A JSON list written as it grows, so an interrupted run keeps every entry it finished (no torch here).

Entries go to ``PATH.partial`` as JSON lines, each flushed as it is added. :meth:`ResultLog.finish` then writes
``PATH`` (the JSON list, one entry per line) atomically and removes the partial file. A run stopped before that
(Ctrl-C, a kill, a crash) leaves ``PATH.partial``: one complete JSON object per line, for every finished entry
(a line cut by a kill mid-write is the only one that can be incomplete).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def partial_path(path: Path) -> Path:
    return path.with_name(path.name + ".partial")


class ResultLog:
    """``with ResultLog(path) as log: log.add(entry)``; finished on a clean exit, left partial on an exception.
    ``path=None``: entries are only counted."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path else None
        self.count = 0
        self._file = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(partial_path(self.path), "w", encoding="utf-8")  # noqa: SIM115 - closed in finish/close

    @property
    def partial(self) -> Path | None:
        return None if self.path is None else partial_path(self.path)

    def add(self, entry: dict[str, Any]) -> None:
        self.count += 1
        if self._file is not None:
            self._file.write(json.dumps(entry) + "\n")
            self._file.flush()

    def finish(self) -> None:
        """Write ``path`` from the partial file and remove it."""
        if self._file is None:
            return
        from featherface.fileio import atomic_write_bytes

        self._file.close()
        self._file = None
        lines = partial_path(self.path).read_text(encoding="utf-8").splitlines()
        text = "[\n" + ",\n".join(lines) + "\n]\n" if lines else "[]\n"
        atomic_write_bytes(self.path, text.encode())
        partial_path(self.path).unlink()

    def close(self) -> None:
        """Stop writing, keeping the partial file as it is."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> ResultLog:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.finish()
        else:
            self.close()

"""Writing files so that a reader sees the old file or the new one, never a torn one (no torch here)."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path


def temp_file_beside(path: Path) -> tuple[int, str]:
    """``(fd, name)`` of a new temp file in ``path``'s folder, to be renamed onto ``path``: readable as any file the
    user creates (mkstemp's 0600 would make saved checkpoints and shipped weights private to their writer)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.fchmod(fd, default_file_mode())
    return fd, tmp


def _read_umask() -> int:
    # os.umask can only be read by setting it: done once, at import, before any worker thread exists
    umask = os.umask(0)
    os.umask(umask)
    return umask


_UMASK = _read_umask()


def default_file_mode() -> int:
    """The permissions a new file gets from ``open()`` under the process's umask (read at import)."""
    return 0o666 & ~_UMASK


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader sees the old file or the new one, never a torn one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = temp_file_beside(path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# mkstemp's names for the temp file of an atomic save: ".NAME." + 8 random characters + ".tmp"
_TEMP_NAME = re.compile(r"\..+\.[a-z0-9_]{8}\.tmp")


def remove_stale_temp_files(folder: Path) -> list[Path]:
    """Remove the temp files that saves killed before their rename left under ``folder`` (``.NAME.XXXXXXXX.tmp``,
    subfolders included); returns them. Call it when a command starts in a folder no other process writes to."""
    if not folder.is_dir():
        return []
    stale = sorted(p for p in folder.rglob(".*.tmp") if _TEMP_NAME.fullmatch(p.name) and p.is_file())
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def save_figure(fig, path: str | Path) -> Path:
    """Write a matplotlib figure to ``path`` as PNG (atomically) and close it; returns the path."""
    import io

    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    path = Path(path)
    atomic_write_bytes(path, buffer.getvalue())
    return path

"""Writing files so that a reader sees the old file or the new one, never a torn one, and never over a file the
command reads (no torch here)."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path

# Marks the temp files of this package's atomic saves: ``.NAME.featherface-XXXXXXXX.tmp``. Only names carrying it
# are ever removed as stale (a user's ``.report.docx.20240101.tmp`` looks like a bare mkstemp name, never like this).
TEMP_MARKER = "featherface-"
_TEMP_NAME = re.compile(r"\..+\." + TEMP_MARKER + r"[a-z0-9_]{8}\.tmp")


def temp_file_beside(path: Path) -> tuple[int, str]:
    """``(fd, name)`` of a new temp file in ``path``'s folder (``.NAME.featherface-XXXXXXXX.tmp``), to be renamed
    onto ``path``: readable as any file the user creates (mkstemp's 0600 would make saved checkpoints and shipped
    weights private to their writer)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{TEMP_MARKER}", suffix=".tmp")
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


def remove_stale_temp_files(folder: Path) -> list[Path]:
    """Remove the temp files that saves killed before their rename left in ``folder``, at its top only (names
    :func:`temp_file_beside` makes, carrying :data:`TEMP_MARKER`; nothing else, no subfolder); returns them.
    Call it when a command starts in a run folder it owns, that no other process writes to."""
    if not folder.is_dir():
        return []
    with os.scandir(folder) as entries:
        stale = sorted(
            Path(e.path) for e in entries if _TEMP_NAME.fullmatch(e.name) and e.is_file(follow_symlinks=False)
        )
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


class OutputGuard:
    """Claims output paths before anything is written: refuses (``ValueError`` naming the file) an output that is
    one of the command's inputs, or one that two writers would both write.

    ``inputs``: ``(path, what)`` pairs, ``what`` saying how the command came to read it (``"--config"``,
    ``"labels of --data"``; None for the images and videos it was given). Paths are compared by their real path,
    so a symbolic link or ``./`` spelling cannot slip an output past an input. Inputs and claims may come in any
    order: an input added after an output claimed at its path is refused the same way (a caller claims its
    outputs, then the API it calls adds the inputs it resolves, before any work).
    """

    def __init__(self, inputs: Iterable[tuple[str | Path, str | None]] = ()) -> None:
        self.inputs: dict[str, tuple[Path, str | None]] = {}
        self.claimed: dict[str, object] = {}
        self.outputs: dict[str, Path] = {}  # real path -> the output as claimed
        for path, what in inputs:
            self.add_input(path, what)

    def add_input(self, path: str | Path, what: str | None = None) -> None:
        real = os.path.realpath(path)
        self.inputs.setdefault(real, (Path(path), what))
        if real in self.claimed:
            self._refuse(self.outputs[real], self.claimed[real])

    def add_inputs(self, paths: Iterable[str | Path], what: str | None = None) -> None:
        for path in paths:
            self.add_input(path, what)

    def claim(self, output: str | Path, by: object) -> Path:
        """``output`` for the writer ``by`` (an option such as ``"--json"``, or the input an output mirrors)."""
        output = Path(output)
        real = os.path.realpath(output)
        if real in self.inputs:
            self._refuse(output, by)
        owner = self.claimed.setdefault(real, by)
        if owner != by:
            raise ValueError(f"{output}: both {owner} and {by} would write it")
        self.outputs.setdefault(real, output)
        return output

    def _refuse(self, output: Path, by: object) -> None:
        path, what = self.inputs[os.path.realpath(output)]
        named = f" ({what})" if what else ""
        remedy = f"write {by} elsewhere" if isinstance(by, str) else "choose an output folder apart from the inputs"
        raise ValueError(f"{output}: refusing to overwrite the input {path}{named}; {remedy}")

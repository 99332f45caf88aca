"""Who may write a run directory: a training-like command (train, distill, prune, finetune) starts a new run only
where there is none, continues one with ``--resume``, and replaces one only with ``--overwrite`` (saying what it
removes). Temp files of saves interrupted by a kill (featherface's own names, :func:`~featherface.fileio.
temp_file_beside`) are removed whenever such a command starts, at the top of the run's folders only.

``featherface pipeline`` resumes by design and does not go through :func:`prepare_run_dir`.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

from featherface.errors import ParameterError
from featherface.fileio import remove_stale_temp_files

# What the training-like commands write into a run directory (trainer, prune, finetune): the files --overwrite
# replaces. A prune's study.db alone is no finished output: the study continues by design (several workers may
# share it), so it does not make a directory "a run", but --overwrite starts it afresh too.
RUN_OUTPUTS = (
    "trainer_state.pt", "metrics.csv", "config.yaml", "last.safetensors", "last.json", "best.safetensors",
    "best.json", "tensorboard", "deployed.safetensors", "deployed.json", "soft_pruned.safetensors",
    "soft_pruned.json", "masks.safetensors", "rates.json", "bo_convergence.png", "rates.png", "sfp", "study.db",
)  # fmt: skip
_CONTINUED_BY_DESIGN = ("study.db",)
# The run's own folders besides its top, where its saves write: prune's SFP run, distill's cached teacher labels.
RUN_SUBFOLDERS = ("sfp", "teacher-labels")


class RunExistsError(ParameterError):
    """The output directory holds a run that the command would overwrite; the message names it and the way out
    (by the parameters of :func:`prepare_run_dir`, and those of ``inputs``)."""


def run_outputs(out_dir: Path) -> list[str]:
    """The names of :data:`RUN_OUTPUTS` present in ``out_dir``."""
    return [name for name in RUN_OUTPUTS if (out_dir / name).exists()]


def _inside(path: Path, target: Path) -> bool:
    """Whether ``path`` is ``target`` or lies inside it."""
    path, target = path.resolve(), target.resolve()
    return path == target or target in path.parents


def _describe(out_dir: Path, name: str) -> str:
    if name == "metrics.csv":
        with open(out_dir / name, "rb") as f:
            rows = max(0, sum(1 for _ in f) - 1)
        return f"{name} ({rows} epoch row(s))"
    return name + ("/" if (out_dir / name).is_dir() else "")


def prepare_run_dir(
    out_dir: str | Path,
    resume: bool = False,
    overwrite: bool = False,
    inputs: Iterable[tuple[str, str | None]] = (),
    say: Callable[[str], None] = print,
) -> None:
    """Make ``out_dir`` ready for a training-like command, or raise :class:`RunExistsError`.

    - stale temp files of an interrupted save are removed (said): featherface-marked names only, at the top of
      ``out_dir`` and of its :data:`RUN_SUBFOLDERS`, never a user's file nor anything deeper;
    - ``resume``: the run is continued as it is;
    - otherwise a directory holding a run (:data:`RUN_OUTPUTS`) is refused, unless ``overwrite``: then its outputs
      are removed first (said, file by file; nothing else in the directory is touched), so no checkpoint, metric
      row or study of the old run mixes with the new one. ``inputs`` (``(parameter, path)``, e.g. ``("model",
      ...)``) must not be the directory itself nor among what is removed.
    """
    out = Path(out_dir)
    if resume and overwrite:
        raise RunExistsError(
            lambda n: f"{n('resume')} continues a run and {n('overwrite')} replaces it: give one of them"
        )
    stale = [path for folder in (out, *(out / name for name in RUN_SUBFOLDERS)) for path in
             remove_stale_temp_files(folder)]  # fmt: skip
    if stale:
        say(f"{out}: removed {len(stale)} temp file(s) of an interrupted save: {', '.join(p.name for p in stale)}")
    found = run_outputs(out)
    if resume or not found:
        return
    if not overwrite:
        if [name for name in found if name not in _CONTINUED_BY_DESIGN]:
            raise RunExistsError(
                lambda n: (
                    f"{out}: already holds a run ({', '.join(found)}); add {n('resume')} to continue it, "
                    f"{n('overwrite')} to replace it, or give another {n('out')}"
                )
            )
        return
    for parameter, spec in inputs:  # a run directory given as input is read through the outputs replaced
        if spec is None or not Path(spec).exists():
            continue
        if Path(spec).resolve() == out.resolve() or any(_inside(Path(spec), out / name) for name in found):
            raise RunExistsError(
                lambda n, given=parameter, spec=spec: (
                    f"{out}: {n('overwrite')} would delete the input {n(given)} {spec}; give another {n('out')}"
                )
            )
    say(f"--overwrite: replacing the run in {out}: removing {', '.join(_describe(out, name) for name in found)}")
    for name in found:
        path = out / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()

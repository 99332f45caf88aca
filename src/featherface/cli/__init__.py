"""``featherface`` command line: a thin shell over the Python API (SPEC section 8). Each command parses its
arguments, calls one API function and prints what it returns; the API owns every loop, tally, rule and default.

Commands by module: :mod:`~featherface.cli.info` (info, export, benchmark), :mod:`~featherface.cli.detect`
(detect, crop, anonymize), :mod:`~featherface.cli.evaluate`, :mod:`~featherface.cli.train` (train, distill,
prune, finetune, pipeline, show-batch). The command ``NAME`` runs ``cmd_NAME`` of this package, looked up when it
runs (a test or a wrapper may replace one).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from featherface import __version__
from featherface.cli import detect, evaluate, info, train
from featherface.cli.common import CommandError, flag
from featherface.cli.detect import cmd_anonymize, cmd_crop, cmd_detect
from featherface.cli.evaluate import cmd_evaluate
from featherface.cli.info import cmd_benchmark, cmd_export, cmd_info
from featherface.cli.train import cmd_distill, cmd_finetune, cmd_pipeline, cmd_prune, cmd_show_batch, cmd_train
from featherface.errors import ParameterError

__all__ = [
    "build_parser", "cmd_anonymize", "cmd_benchmark", "cmd_crop", "cmd_detect", "cmd_distill", "cmd_evaluate",
    "cmd_export", "cmd_finetune", "cmd_info", "cmd_pipeline", "cmd_prune", "cmd_show_batch", "cmd_train", "main",
]  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="featherface", description="Ultra-lightweight face detection.")
    parser.add_argument("--version", action="version", version=f"featherface {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    info.add_info(sub)
    detect.add_detect(sub)
    detect.add_crop(sub)
    detect.add_anonymize(sub)
    info.add_export(sub)
    train.add_train(sub)
    train.add_distill(sub)
    train.add_prune(sub)
    train.add_finetune(sub)
    train.add_pipeline(sub)
    train.add_show_batch(sub)
    evaluate.add_evaluate(sub)
    info.add_benchmark(sub)
    return parser


_ONE_LINE_ERRORS = {  # module -> its bad-input exception (those not already a ValueError or OSError)
    "featherface.export.onnx": "ExportError",
    "featherface.training.trainer": "TrainingError",
}


def _one_line_errors() -> tuple[type[Exception], ...]:
    """Exceptions reported as one line: bad input, from the modules the command loaded (a command never imports
    one only to catch its errors: `detect` on an ONNX file runs without torch)."""
    loaded = [getattr(sys.modules[m], name) for m, name in _ONE_LINE_ERRORS.items() if m in sys.modules]
    return (CommandError, ValueError, OSError, *loaded)


def _message(exc: BaseException) -> str:
    """An error's first line, the API's parameters named by their options."""
    text = exc.named(flag) if isinstance(exc, ParameterError) else str(exc)
    return text.splitlines()[0] if text else type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = globals()["cmd_" + args.command.replace("-", "_")]
    try:
        return command(args)
    except _one_line_errors() as exc:  # evaluated only once an exception is raised
        print(f"featherface {args.command}: error: {_message(exc)}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        # commands import torch & co. where they need them: a missing one means the inference-only install
        from featherface.extras import training_extra_error

        missing = training_extra_error(exc)
        if missing is None:
            raise
        print(f"featherface {args.command}: {missing}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("featherface: interrupted", file=sys.stderr)
        return 130

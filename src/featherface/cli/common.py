"""What the commands share: argument types, output claims, JSON files, the lines they print."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any


class CommandError(Exception):
    """Bad input from the command line: printed as one line, exit status 2."""


def flag(parameter: str) -> str:
    """The option that gives an API parameter: ``min_face`` -> ``--min-face`` (how errors name it here)."""
    return "--" + parameter.replace("_", "-")


def given(**options: Any) -> dict[str, Any]:
    """The options given on the command line (not None): the API's own defaults hold for the others."""
    return {name: value for name, value in options.items() if value is not None}


def write_json(path: str | None, data: Any) -> None:
    if path:
        from featherface.fileio import atomic_write_bytes

        atomic_write_bytes(Path(path), (json.dumps(data, indent=1) + "\n").encode())


def print_lines(lines: list[str]) -> None:
    if lines:
        print("\n".join(lines))


def warn(line: str) -> None:
    print(line, file=sys.stderr)


def warn_skipped(summary: str | None) -> None:
    """A run's skipped files (their summary), if any."""
    if summary:
        warn(f"warning: skipped {summary}; listed in the JSON output")


# ------------------------------------------------------------------------------------------ argument types
def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _float_between(text: str, low: float, high: float, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not low <= value <= high:  # NaN fails too
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def unit_float(text: str) -> float:
    return _float_between(text, 0.0, 1.0, "a number in [0, 1]")


def non_negative_float(text: str) -> float:
    return _float_between(text, 0.0, math.inf, "a number >= 0")


def positive_float(text: str) -> float:
    value = _float_between(text, 0.0, math.inf, "a number > 0")
    if value == 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def class_list(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected class names separated by commas, got {text!r}")
    return names


MODEL_HELP = "zoo name, .safetensors checkpoint, run directory or .onnx file"

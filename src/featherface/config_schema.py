"""Config dataclasses checked against their own type hints: one validator for every config file and section.

A field's type hint says what it takes (``int``, ``float | None``, ``tuple[float, float]``, ``list[int]``, a nested
config dataclass); its metadata may add a range or a set of values (:func:`rule`). :func:`build` checks a mapping
read from YAML against both and builds the dataclass, or raises :class:`ConfigError` naming the file and the key.

Why not pydantic: it is not a dependency, and the configs are plain dataclasses; their hints plus one declared
range per field say all a check needs, in one small function instead of checks scattered over the loaders.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import reprlib
import types
import typing
from typing import Any


class ConfigError(ValueError):
    """A config file or value that cannot be used: the message starts with ``FILE:`` or ``FILE: key:``."""


def rule(
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    choices: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """Field metadata: the range (or the values) a config field allows, checked at load; for a tuple or a list it
    applies to each item. ``field(default=1e-3, metadata=rule(gt=0))``."""
    bounds = {"ge": ge, "gt": gt, "le": le, "lt": lt, "choices": choices}
    return {"rule": {k: v for k, v in bounds.items() if v is not None}}


_COMPARE = {
    "ge": (lambda v, b: v >= b, ">="),
    "gt": (lambda v, b: v > b, ">"),
    "le": (lambda v, b: v <= b, "<="),
    "lt": (lambda v, b: v < b, "<"),
}


class _Invalid(Exception):
    """A value that does not fit its field; ``key`` is the dotted name of the innermost field."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(problem)
        self.key, self.problem = key, problem


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


# repr() of a value in an error message, bounded before it is made: a 410-byte YAML alias bomb is a list of 9^9
# items sharing 9 objects; its full repr() took 29 s and 2.8 GB. reprlib stops at 2 levels, 4 items, 40 characters.
_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxtuple, _SHORT.maxdict = 2, 4, 4, 4
_SHORT.maxstring, _SHORT.maxother, _SHORT.maxlong = 40, 40, 40
SHORT_REPR_CHARS = 60


def short_repr(value: Any) -> str:
    """``repr(value)`` of at most :data:`SHORT_REPR_CHARS` characters on one line, at a cost bounded whatever the
    value's size."""
    text = " ".join(_SHORT.repr(value).split())
    return text if len(text) <= SHORT_REPR_CHARS else text[: SHORT_REPR_CHARS - 3] + "..."


def short_text(text: str) -> str:
    """The first line of ``text``, cut to 200 characters: what an error message may quote of a file."""
    line = text.splitlines()[0] if text else ""
    return line if len(line) <= 200 else line[:197] + "..."


def _check_rule(value: Any, key: str, checks: dict[str, Any]) -> None:
    choices = checks.get("choices")
    if choices is not None and value not in choices:
        raise _Invalid(key, f"must be one of {', '.join(choices)}, got {short_repr(value)}")
    for name, (holds, symbol) in _COMPARE.items():
        if name in checks and not holds(value, checks[name]):
            raise _Invalid(key, f"must be {symbol} {checks[name]:g}, got {short_repr(value)}")


def _number(value: Any, key: str, kind: type) -> int | float:
    """An int or a finite float from YAML. Numeric text is taken too: YAML 1.1 (PyYAML) reads ``1e-3`` without a
    dot as the string "1e-3"."""
    what = "a whole number" if kind is int else "a number"
    if isinstance(value, bool):
        raise _Invalid(key, f"expected {what}, got {short_repr(value)}")
    number = value
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise _Invalid(key, f"expected {what}, got {short_repr(value)}") from None
    if isinstance(number, int):
        if kind is int:
            return number
        try:
            return float(number)
        except OverflowError:
            raise _Invalid(key, f"expected {what}, got {short_repr(value)}") from None
    if not isinstance(number, float) or not math.isfinite(number):
        raise _Invalid(key, f"expected {what}, got {short_repr(value)}")
    if kind is int and not number.is_integer():
        raise _Invalid(key, f"expected a whole number, got {short_repr(value)}")
    return int(number) if kind is int else number


def _value(hint: Any, value: Any, key: str, checks: dict[str, Any], what: str) -> Any:
    """``value`` converted to ``hint`` and checked against ``checks``, or _Invalid."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]  # the configs use only ``X | None``
        return _value(inner, value, key, checks, what)
    if dataclasses.is_dataclass(hint):
        if value is None:  # ``loss:`` with nothing under it
            value = {}
        if not isinstance(value, dict):
            raise _Invalid(key, f"expected a mapping of options, got {short_repr(value)}")
        return _build(hint, value, f"{key}.", what)
    if origin in (tuple, list):
        if not isinstance(value, list | tuple):
            raise _Invalid(key, f"expected a list, got {short_repr(value)}")
        if origin is tuple and len(args) != len(value):
            raise _Invalid(key, f"expected {len(args)} items, got {short_repr(value)}")
        item_hints = args if origin is tuple else [args[0]] * len(value)
        pairs = enumerate(zip(item_hints, value, strict=True))
        items = [_value(h, v, f"{key}[{i}]", checks, what) for i, (h, v) in pairs]
        return tuple(items) if origin is tuple else items
    if hint is bool:
        if not isinstance(value, bool):
            raise _Invalid(key, f"expected true or false, got {short_repr(value)}")
        return value
    if hint in (int, float):
        value = _number(value, key, hint)
    elif hint is str:
        if not isinstance(value, str):
            raise _Invalid(key, f"expected text, got {short_repr(value)}")
    elif hint is not Any:
        raise TypeError(f"config field {key}: type {hint} has no check")  # a programming error, not bad input
    _check_rule(value, key, checks)
    return value


def _build(cls: type, data: dict[Any, Any], prefix: str, what: str) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if not isinstance(key, str) or key not in fields:
            kind = f"{what} " if what else ""
            shown = key if isinstance(key, str) and len(key) <= SHORT_REPR_CHARS else short_repr(key)
            raise _Invalid(f"{prefix}{shown}", f"unknown {kind}option (known: {', '.join(fields)})")
    hints = _hints(cls)
    values = {
        name: _value(hints[name], value, f"{prefix}{name}", fields[name].metadata.get("rule", {}), what)
        for name, value in data.items()
    }
    return cls(**values)


def build(cls: type, data: Any, where: str, prefix: str = "", what: str = "") -> Any:
    """The dataclass ``cls`` from the mapping ``data`` (a config file's section), every value checked against the
    field's type hint and declared :func:`rule`; fields not given keep their defaults.

    ``where`` (the file) and ``prefix`` (the section, ``"train."``) name the place in errors:
    ``ConfigError("cfg.yaml: train.lr: expected a number, got 'fast'")``; ``what`` names the kind of option
    (``"unknown training option"``).
    """
    if data is None:
        data = {}
    if not isinstance(data, dict):
        section = prefix.rstrip(".")
        raise ConfigError(f"{where}: {section + ': ' if section else ''}expected a mapping of options")
    try:
        return _build(cls, data, prefix, what)
    except _Invalid as exc:
        raise ConfigError(f"{where}: {exc.key}: {exc.problem}") from None

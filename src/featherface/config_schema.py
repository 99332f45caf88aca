"""The one config module: config dataclasses checked against their own type hints, config files, dotted overrides.

A field's type hint says what it takes (``int``, ``float | None``, ``tuple[float, float]``, ``list[int]``, a nested
config dataclass); its metadata may add a range or a set of values (:func:`rule`). Every config dataclass derives
from :class:`Config`, so its fields are checked when it is made (:func:`check`); :func:`build` makes one from a
mapping read from YAML or JSON, converting what those formats give, and raises :class:`ConfigError` naming the file
and the dotted key. :func:`load_config` reads one section of a config file or preset, and :func:`apply_overrides`
sets dotted keys (``{"search.trials": 16}``) on a config with the same checks: the one way to change a config.

Why not pydantic: it would be a new dependency of the base install, and the configs are plain dataclasses whose
hints plus one declared rule per field already say all a check needs; one small function applies them.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
import reprlib
import types
import typing
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

ConfigT = TypeVar("ConfigT")


class ConfigError(ValueError):
    """A config file or value that cannot be used: the message names the file (``FILE: key: ...``) when there is
    one, and the dotted key."""


class FieldError(ConfigError):
    """A value that does not fit its field: ``key`` is its dotted name, ``problem`` what is wrong with it."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key, self.problem = key, problem


def rule(
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    choices: tuple[Any, ...] | None = None,
) -> dict[str, Any]:
    """Field metadata: the range (or the values) a config field allows, checked whenever the config is made; for a
    tuple or a list it applies to each item. ``field(default=1e-3, metadata=rule(gt=0))``."""
    bounds = {"ge": ge, "gt": gt, "le": le, "lt": lt, "choices": choices}
    return {"rule": {k: v for k, v in bounds.items() if v is not None}}


class Config:
    """Base of every config dataclass: its fields are checked against their hints and rules when it is made
    (:func:`check`). A subclass's own ``__post_init__`` (checks across fields) calls ``super().__post_init__()``
    first and raises :class:`FieldError` naming the field."""

    def __post_init__(self) -> None:
        check(self)


_COMPARE = {
    "ge": (lambda v, b: v >= b, ">="),
    "gt": (lambda v, b: v > b, ">"),
    "le": (lambda v, b: v <= b, "<="),
    "lt": (lambda v, b: v < b, "<"),
}


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
        raise FieldError(key, f"must be one of {', '.join(map(str, choices))}, got {short_repr(value)}")
    for name, (holds, symbol) in _COMPARE.items():
        if name in checks and not holds(value, checks[name]):
            raise FieldError(key, f"must be {symbol} {checks[name]:g}, got {short_repr(value)}")


def _number(value: Any, key: str, kind: type, reading: bool) -> int | float:
    """An int or a finite float. ``reading`` (a value from a file) also takes numeric text, as YAML 1.1 (PyYAML)
    reads ``1e-3`` without a dot as the string "1e-3", and a whole float for an int."""
    what = "a whole number" if kind is int else "a number"
    bad = FieldError(key, f"expected {what}, got {short_repr(value)}")
    if isinstance(value, bool):
        raise bad
    number = value
    if isinstance(value, str) and reading:
        try:
            number = float(value.strip())
        except ValueError:
            raise bad from None
    if isinstance(number, numbers.Integral):
        if kind is int:
            return int(number)
        try:
            return float(number)
        except OverflowError:
            raise bad from None
    if not isinstance(number, numbers.Real) or not math.isfinite(number):
        raise bad
    if kind is int and not (reading and float(number).is_integer()):
        raise bad
    return int(number) if kind is int else float(number)


def _value(hint: Any, value: Any, key: str, checks: dict[str, Any], what: str, reading: bool) -> Any:
    """``value`` checked against ``hint`` and ``checks``, or FieldError. ``reading`` (a value from a file) converts
    it too: numbers from text, tuples from lists, nested configs from mappings; otherwise it is only checked."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]  # the configs use only ``X | None``
        return _value(inner, value, key, checks, what, reading)
    if dataclasses.is_dataclass(hint):
        if not reading:
            if not isinstance(value, hint):
                raise FieldError(key, f"expected a {hint.__name__}, got {short_repr(value)}")
            return value  # checked when it was made
        if value is None:  # ``loss:`` with nothing under it
            value = {}
        if not isinstance(value, dict):
            raise FieldError(key, f"expected a mapping of options, got {short_repr(value)}")
        return _build(hint, value, f"{key}.", what)
    if origin in (tuple, list):
        if not isinstance(value, list | tuple):
            raise FieldError(key, f"expected a list, got {short_repr(value)}")
        variadic = origin is tuple and len(args) == 2 and args[1] is Ellipsis
        if origin is tuple and not variadic and len(args) != len(value):
            raise FieldError(key, f"expected {len(args)} items, got {short_repr(value)}")
        item_hints = args if origin is tuple and not variadic else [args[0]] * len(value)
        pairs = enumerate(zip(item_hints, value, strict=True))
        items = [_value(h, v, f"{key}[{i}]", checks, what, reading) for i, (h, v) in pairs]
        return tuple(items) if origin is tuple else items
    if hint is bool:
        if not isinstance(value, bool):
            raise FieldError(key, f"expected true or false, got {short_repr(value)}")
        return value
    if hint in (int, float):
        value = _number(value, key, hint, reading)
    elif hint is str:
        if not isinstance(value, str):
            raise FieldError(key, f"expected text, got {short_repr(value)}")
    elif hint is not Any:
        raise TypeError(f"config field {key}: type {hint} has no check")  # a programming error, not bad input
    _check_rule(value, key, checks)
    return value


def _required(field: dataclasses.Field) -> bool:
    return field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING


def _build(cls: type, data: dict[Any, Any], prefix: str, what: str) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if not isinstance(key, str) or key not in fields:
            kind = f"{what} " if what else ""
            shown = key if isinstance(key, str) and len(key) <= SHORT_REPR_CHARS else short_repr(key)
            raise FieldError(f"{prefix}{shown}", f"unknown {kind}option (known: {', '.join(fields)})")
    for name, field in fields.items():
        if name not in data and _required(field):
            raise FieldError(f"{prefix}{name}", "missing (it has no default)")
    hints = _hints(cls)
    values = {
        name: _value(hints[name], value, f"{prefix}{name}", fields[name].metadata.get("rule", {}), what, True)
        for name, value in data.items()
    }
    try:
        return cls(**values)
    except FieldError as exc:  # the class's own check across its fields: named from the file's top
        raise FieldError(f"{prefix}{exc.key}", exc.problem) from None


def _at(where: str, message: str) -> ConfigError:
    return ConfigError(f"{where}: {message}" if where else message)


def build(cls: type[ConfigT], data: Any, where: str, prefix: str = "", what: str = "") -> ConfigT:
    """The dataclass ``cls`` from the mapping ``data`` (a config file's section, a model file's architecture),
    every value checked against the field's type hint and declared :func:`rule`; fields not given keep their
    defaults, fields without one must be given.

    ``where`` (the file; "" for none) and ``prefix`` (the section, ``"train."``) name the place in errors:
    ``ConfigError("cfg.yaml: train.lr: expected a number, got 'fast'")``; ``what`` names the kind of option
    (``"unknown training option"``).
    """
    if data is None:
        data = {}
    if not isinstance(data, dict):
        section = prefix.rstrip(".")
        raise _at(where, f"{section + ': ' if section else ''}expected a mapping of options")
    try:
        return _build(cls, data, prefix, what)
    except FieldError as exc:
        raise _at(where, str(exc)) from None


def check(config: Any) -> None:
    """Every field of the config dataclass ``config`` against its type hint and declared :func:`rule`, or
    :class:`FieldError` naming the field (nested configs were checked when they were made)."""
    hints = _hints(type(config))
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        _value(hints[field.name], value, field.name, field.metadata.get("rule", {}), "", False)


def apply_overrides(
    config: ConfigT, overrides: Mapping[str, Any] | None, where: str = "overrides", prefix: str = "", what: str = ""
) -> ConfigT:
    """A copy of ``config`` with ``overrides`` set: dotted keys relative to it (``{"search.trials": 16}`` on a
    :class:`~featherface.pruning.phases.PruneConfig`), a value of None meaning not given (a flag left out).
    Checked as a config file is (:func:`build`): an unknown key or a bad value raises :class:`ConfigError`
    naming ``where`` and the key after ``prefix`` (``"overrides: prune.search.trials: must be >= 1, got 0"``)."""
    given = {key: value for key, value in (overrides or {}).items() if value is not None}
    if not given:
        return config
    data = dataclasses.asdict(config)
    for key, value in given.items():
        *groups, name = str(key).split(".")
        options = data
        for depth, group in enumerate(groups):
            inner = options.setdefault(group, {})  # an unknown group: refused by build, naming it
            if not isinstance(inner, dict):
                path = ".".join(groups[: depth + 1])
                raise _at(where, f"{prefix}{key}: {prefix}{path} is a value, not a group of options")
            options = inner
        options[name] = value
    return build(type(config), data, where, prefix, what)


# ------------------------------------------------------------------------------------------------- config files
PRESETS = ("sample", "widerface", "pool", "pool-continue", "pool-continue-deployed")
MAX_CONFIG_BASES = 4  # base: chains (a recipe on a recipe); deeper is a mistake or a loop
# The sections a config file may hold, each with the word its errors use ("unknown training option").
CONFIG_SECTIONS = {"train": "training", "prune": "pruning", "distill": "distillation", "pipeline": "pipeline"}
# Bounds on a config file, checked before it is parsed or built: the presets are under 3 KB and about 100 YAML
# values. A 410-byte alias bomb (9 aliases of 9 aliases, 9 levels deep) stands for 9^9 values: refused when composed,
# before any object is made or any message quotes it.
MAX_CONFIG_BYTES = 1 << 20
MAX_CONFIG_VALUES = 100_000  # YAML nodes with every alias expanded


def preset_path(name: str) -> Path:
    return Path(str(resources.files("featherface.configs").joinpath(f"{name}.yaml")))


def config_path(source: str | Path) -> Path:
    """The file of a preset name (``sample``, ``widerface``, ``pool``) or a YAML path."""
    return preset_path(str(source)) if str(source) in PRESETS else Path(source)


def read_config_file(source: str | Path, _depth: int = 0) -> dict[str, Any]:
    """A preset name or a YAML path, as a mapping: either sections (``train:``, ``prune:``, ``distill:``,
    ``pipeline:``, each optional) or, without any, the training options themselves. A :class:`ConfigError` naming
    the file otherwise.

    ``base: NAME`` (a preset, or a path relative to the file) starts from that config: the file's own values
    replace the base's one by one (mappings merged key by key, lists and values replaced), so a recipe that differs
    in a few options says only those. The mapping returned is the merged one (what provenance records)."""
    path = config_path(source)
    loaded = _read_one_config_file(source, path)
    if "base" not in loaded:
        return loaded
    base = loaded.pop("base")
    if not isinstance(base, str) or not base:
        raise ConfigError(f"{path}: base: expected a preset name or a config file path, got {short_repr(base)}")
    if _depth >= MAX_CONFIG_BASES:
        raise ConfigError(f"{path}: base: more than {MAX_CONFIG_BASES} configs deep (or a file that is its own base)")
    base_source: str | Path = base if base in PRESETS else path.parent / base
    return _merged(read_config_file(base_source, _depth + 1), loaded)


def _merged(base: dict[str, Any], own: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in own.items():
        inner = merged.get(key)
        merged[key] = _merged(inner, value) if isinstance(inner, dict) and isinstance(value, dict) else value
    return merged


def _read_one_config_file(source: str | Path, path: Path) -> dict[str, Any]:
    import yaml  # lazy: the training extra's (the base install checks configs but reads no files)

    if not path.is_file():
        raise ConfigError(f"{source}: no such config file (or preset: {', '.join(PRESETS)})")
    try:
        loaded = _load_yaml(path)
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a UTF-8 text file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({short_text(str(exc))})") from None
    except ConfigError:
        raise
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:  # PyYAML's constructors: date 2001-13-01
        raise ConfigError(f"{path}: not valid YAML ({short_text(str(exc))})") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: expected a mapping of options, found {type(loaded).__name__}")
    if set(loaded) & set(CONFIG_SECTIONS):
        for key in loaded:
            if key not in CONFIG_SECTIONS and key != "base":
                raise ConfigError(
                    f"{path}: {short_text(str(key))}: not a section (a file with sections holds only "
                    f"{', '.join(s + ':' for s in sorted(CONFIG_SECTIONS))})"
                )
    return loaded


def _load_yaml(path: Path) -> Any:
    """The document of a YAML file (PyYAML's safe loader), refused as a :class:`ConfigError` when the file exceeds
    :data:`MAX_CONFIG_BYTES` or its aliases expand to more than :data:`MAX_CONFIG_VALUES` values (or refer to
    themselves): checked on the composed node graph, before any value is constructed."""
    import yaml

    size = path.stat().st_size
    if size > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: {size:,} bytes; a config file holds at most {MAX_CONFIG_BYTES:,}")
    loader = yaml.SafeLoader(path.read_text(encoding="utf-8-sig"))
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_values(node) > MAX_CONFIG_VALUES:
            raise ConfigError(
                f"{path}: its YAML aliases expand to more than {MAX_CONFIG_VALUES:,} values, or refer to themselves "
                "(a config needs a few hundred)"
            )
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _expanded_values(root: Any) -> int:
    """The nodes of a composed YAML document (``yaml.Node``) counted with every alias expanded (a node shared by
    aliases counts each time), stopping past :data:`MAX_CONFIG_VALUES`; a recursive alias counts as past it. Linear
    in the nodes as composed: each shared node's count is computed once."""
    past = MAX_CONFIG_VALUES + 1
    counts: dict[int, int] = {}
    open_nodes: set[int] = set()  # on the current path: met again through an alias means a cycle
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        children = _children(node)
        if children_done:
            open_nodes.discard(id(node))
            counts[id(node)] = min(past, 1 + sum(counts[id(child)] for child in children))
            if counts[id(node)] >= past:
                return past
        elif id(node) in open_nodes:
            return past
        elif id(node) not in counts:
            open_nodes.add(id(node))
            stack.append((node, True))
            stack.extend((child, False) for child in children)
    return counts[id(root)]


def _children(node: Any) -> list[Any]:
    import yaml

    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def load_section(source: str | Path | None, section: str) -> dict[str, Any]:
    """One section (``prune``, ``distill``, ``pipeline``) of a config file or preset as read; empty without a
    source or without that section."""
    return {} if source is None else _section(read_config_file(source), section, source)


def _section(loaded: dict[str, Any], section: str, source: str | Path) -> dict[str, Any]:
    value = loaded.get(section)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{config_path(source)}: {section}: expected a mapping of options")
    return value


def load_config(
    source: str | Path | None,
    section: str,
    cls: type[ConfigT],
    overrides: Mapping[str, Any] | None = None,
    overrides_where: str = "overrides",
) -> ConfigT:
    """The config ``cls`` from the ``section:`` of a config file or preset (``train``, ``prune``, ``distill``,
    ``pipeline``; a file without sections holds the ``train`` options), its defaults without a source or without
    that section; then ``overrides`` (:func:`apply_overrides`: dotted keys relative to the section, None meaning not
    given). Errors name the file (or ``overrides_where``) and the dotted key from the file's top:
    ``cfg.yaml: prune.search.trials: must be >= 1, got 0``."""
    what = CONFIG_SECTIONS[section]
    if source is None:
        config = cls()
    else:
        loaded = read_config_file(source)
        flat = section == "train" and not set(loaded) & set(CONFIG_SECTIONS)
        data, prefix = (loaded, "") if flat else (_section(loaded, section, source), f"{section}.")
        config = build(cls, data, str(config_path(source)), prefix, what)
    return apply_overrides(config, overrides, overrides_where, f"{section}.", what)

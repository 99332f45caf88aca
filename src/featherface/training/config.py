"""Training configuration: one dataclass, read from YAML presets or files, every default documented."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from featherface.config_schema import ConfigError, build, rule, short_text
from featherface.data.transforms import AugmentConfig
from featherface.losses.multibox import MultiBoxConfig


@dataclass
class TrainConfig:
    """Defaults are the WIDER FACE recipe of Pytorch_Retinaface (SGD 1e-3, batch 32, warm-up, step decay)."""

    model: str = "nano-b"
    data: str = "sample:train"
    val: str | None = None
    # Upper bounds on what sizes memory (a batch, the sampler's index list, worker processes): far above any recipe
    # (batch 32, 8 repeats, 4 workers), low enough that a typo fails at load, not after a half-made run.
    epochs: int = field(default=250, metadata=rule(ge=1))
    batch_size: int = field(default=32, metadata=rule(ge=1, le=1024))
    dataset_repeats: int = field(default=1, metadata=rule(ge=1, le=1000))  # visits per image per epoch (tiny sets)
    optimizer: str = field(default="sgd", metadata=rule(choices=("sgd", "adamw")))
    lr: float = field(default=1e-3, metadata=rule(gt=0))
    momentum: float = field(default=0.9, metadata=rule(ge=0, lt=1))
    weight_decay: float = field(default=5e-4, metadata=rule(ge=0))
    warmup_epochs: float = field(default=5.0, metadata=rule(ge=0))
    schedule: str = field(default="step", metadata=rule(choices=("step", "cosine")))
    lr_steps: list[int] = field(default_factory=lambda: [190, 220], metadata=rule(ge=0))
    lr_gamma: float = field(default=0.1, metadata=rule(gt=0))
    min_lr_ratio: float = field(default=0.01, metadata=rule(ge=0, le=1))  # cosine floor, as a fraction of lr
    grad_clip: float | None = field(default=None, metadata=rule(gt=0))
    workers: int = field(default=2, metadata=rule(ge=0, le=256))
    seed: int = 0
    amp: bool = True  # CUDA only
    val_every: int = field(default=1, metadata=rule(ge=1))
    val_score_threshold: float = field(default=0.5, metadata=rule(ge=0, le=1))
    max_minutes: float | None = field(default=None, metadata=rule(gt=0))
    strict: bool = False
    device: str = "auto"
    loss: MultiBoxConfig = field(default_factory=MultiBoxConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "training options", prefix: str = "") -> TrainConfig:
        """Every value checked against the field's type and range; ``where`` (the file) and ``prefix`` (its
        section, ``train.``) name the place in a :class:`ConfigError`."""
        return build(cls, data, where, prefix, what="training")


PRESETS = ("sample", "widerface", "pool")
CONFIG_SECTIONS = {"train", "prune", "distill", "pipeline"}
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


def read_config_file(source: str | Path) -> dict[str, Any]:
    """A preset name or a YAML path, as a mapping: either sections (``train:``, ``prune:``, ``distill:``,
    ``pipeline:``, each optional) or, without any, the training options themselves. A :class:`ConfigError` naming
    the file otherwise."""
    path = config_path(source)
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
    if set(loaded) & CONFIG_SECTIONS:
        for key in loaded:
            if key not in CONFIG_SECTIONS:
                raise ConfigError(
                    f"{path}: {short_text(str(key))}: not a section (a file with sections holds only "
                    f"{', '.join(s + ':' for s in sorted(CONFIG_SECTIONS))})"
                )
    return loaded


def _load_yaml(path: Path) -> Any:
    """The document of a YAML file (PyYAML's safe loader), refused as a :class:`ConfigError` when the file exceeds
    :data:`MAX_CONFIG_BYTES` or its aliases expand to more than :data:`MAX_CONFIG_VALUES` values (or refer to
    themselves): checked on the composed node graph, before any value is constructed."""
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


def _expanded_values(root: yaml.Node) -> int:
    """The nodes of a composed YAML document counted with every alias expanded (a node shared by aliases counts
    each time), stopping past :data:`MAX_CONFIG_VALUES`; a recursive alias counts as past it. Linear in the nodes
    as composed: each shared node's count is computed once."""
    past = MAX_CONFIG_VALUES + 1
    counts: dict[int, int] = {}
    open_nodes: set[int] = set()  # on the current path: met again through an alias means a cycle
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
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


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def load_section(source: str | Path | None, section: str) -> dict[str, Any]:
    """One section (``prune``, ``distill``, ``pipeline``) of a config file or preset; empty without a source or
    without that section."""
    if source is None:
        return {}
    value = read_config_file(source).get(section)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{config_path(source)}: {section}: expected a mapping of options")
    return value


def load_section_config(cls: type, source: str | Path | None, section: str, what: str) -> Any:
    """The dataclass ``cls`` from one section of a config file (its defaults without a source), checked by
    :func:`featherface.config_schema.build`."""
    if source is None:
        return cls()
    return build(cls, load_section(source, section), str(config_path(source)), f"{section}.", what)


def load_train_config(source: str | Path | None, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """A preset name (``sample``, ``widerface``), a YAML path, or None (the dataclass defaults), then overrides
    (command-line values; None means not given). Values are checked at load: errors name the file and the key."""
    data: dict[str, Any] = {}
    if source is not None:
        loaded = read_config_file(source)
        # a file of sections takes its train: section; a flat mapping is the training options themselves
        sectioned = bool(set(loaded) & CONFIG_SECTIONS)
        data = load_section(source, "train") if sectioned else loaded
        TrainConfig.from_dict(data, str(config_path(source)), "train." if sectioned else "")
    given = {key: value for key, value in (overrides or {}).items() if value is not None}
    return TrainConfig.from_dict({**data, **given}, "command line" if given else "defaults")

"""Phases 2 and 3 as functions: ``prune`` (B-FPGM search + soft pruning) and ``finetune`` (+ hard pruning).

Run directories:
- prune: ``soft_pruned.safetensors``/``.json`` (the full-width network with pruned filters zeroed),
  ``masks.safetensors`` (kept channels per space), ``rates.json``, ``study.db`` (the Optuna study), PNG plots;
- finetune: the trainer's files plus ``deployed.safetensors``/``.json``, the hard-pruned network.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import optuna
import torch
from safetensors.torch import load_file
from safetensors.torch import save as save_safetensors
from torch import nn

from featherface.config_schema import Config, apply_overrides, load_config, rule
from featherface.data.sample import resolve_dataset
from featherface.errors import ParameterError
from featherface.fileio import atomic_write_bytes
from featherface.losses.distill import DistillConfig
from featherface.models.checkpoint import load_checkpoint, save_checkpoint
from featherface.models.detector_net import DetectorNet, count_parameters
from featherface.pruning.groups import LAYER_GROUPS, channel_spaces
from featherface.pruning.hard import hard_prune
from featherface.pruning.masks import (
    Masks,
    apply_masks,
    clear_cbam_masks,
    compute_masks,
    smooth_scale,
    zero_filters,
)
from featherface.pruning.plots import plot_convergence, plot_rates
from featherface.pruning.search import (
    SearchConfig,
    SearchError,
    best_feasible_trial,
    check_latency_settings,
    completed_trials,
    pruned_parameter_count,
    run_search,
    trial_count,
)
from featherface.training.config import TrainConfig
from featherface.training.trainer import TaskObjective, Trainer, recalibrate_batchnorm, validation_loss

# Hard-pruned outputs must equal the masked network's to this (SPEC section 6).
DEPLOY_TOLERANCE = 1e-4


@dataclass
class PruneConfig(Config):
    search: SearchConfig = field(default_factory=SearchConfig)
    # the short fine-tune of the pruned copy that scores a trial
    trial_epochs: int = field(default=1, metadata=rule(ge=1))
    trial_lr: float = field(default=1e-3, metadata=rule(gt=0))  # B-FPGM's trial pass: Adam at 1e-3
    # dataset repeats in a trial's pass (None: as in training)
    trial_repeats: int | None = field(default=None, metadata=rule(ge=1))
    # a fixed, seeded subset of the training images for trials (None: all)
    trial_images: int | None = field(default=None, metadata=rule(ge=1))
    # soft filter pruning at the chosen rates, masks recomputed each epoch
    sfp_epochs: int = field(default=10, metadata=rule(ge=1))
    # sfp (filters zeroed each epoch, may recover) | oneshot (masks fixed before training)
    method: str = field(default="sfp", metadata=rule(choices=("sfp", "oneshot")))
    mask: str = field(default="hard", metadata=rule(choices=("hard", "smooth")))  # smooth: sfp only
    finetune_epochs: int = field(default=10, metadata=rule(ge=1))
    finetune_lr: float = field(default=1e-4, metadata=rule(gt=0))
    # The backbone's share of the lr in this phase's training (trials, SFP/one-shot, fine-tune); None: as
    # train.backbone_lr_scale. A backbone kept near the teacher's while distilling (0.1) must still re-adapt once a
    # fifth to two fifths of its filters are pruned: at 0.1 in every phase the hold-out fell 0.836 -> 0.631 through
    # 1 + 1 epochs (issue 21, session 13), where the recipe at full lr loses about 0.07.
    backbone_lr_scale: float | None = field(default=None, metadata=rule(ge=0, le=1))


def _with_backbone_lr(train: TrainConfig, config: PruneConfig) -> TrainConfig:
    """``train`` with the pruning phases' backbone lr share, where ``config`` sets one."""
    if config.backbone_lr_scale is None:
        return train
    return dataclasses.replace(train, backbone_lr_scale=config.backbone_lr_scale)


def load_prune_config(source: str | Path | None, overrides: Mapping[str, Any] | None = None) -> PruneConfig:
    """The ``prune:`` section of a preset name or YAML file (defaults without one), then ``overrides``: dotted
    keys as in :func:`featherface.config_schema.load_config` (``{"search.trials": 16}``, None: not given). The one
    check across two options a caller may give, a latency target without the latency term, raises a
    :class:`ParameterError` naming both (the command line names its flags)."""
    config = load_config(source, "prune", PruneConfig)
    given = {key: value for key, value in (overrides or {}).items() if value is not None}
    latency = {name: given.get(f"search.{name}", getattr(config.search, name))
               for name in ("latency_target", "latency_exponent")}  # fmt: skip
    if given.keys() & {"search.latency_target", "search.latency_exponent"}:
        try:
            check_latency_settings(SimpleNamespace(**latency))
        except SearchError as exc:
            reason = str(exc)
            raise ParameterError(lambda n: f"{n('latency_target')}: {reason} ({n('latency_exponent')})") from None
    return apply_overrides(config, given, "overrides", "prune.", "pruning")


def _objective(
    net: DetectorNet, train: TrainConfig, teacher: DetectorNet | None, distill: DistillConfig | None = None
) -> nn.Module:
    if teacher is None:
        return TaskObjective(net, train)
    from featherface.training.distill import DistillObjective

    return DistillObjective(teacher, net, train, distill or DistillConfig())


def save_masks(masks: Masks, path: Path) -> None:
    """Atomically (temp file + rename; a killed save's temp file is removed when a command next starts here)."""
    atomic_write_bytes(path, save_safetensors({k: v.to(torch.uint8).contiguous() for k, v in masks.items()}))


def load_masks(path: Path) -> Masks:
    return {k: v.bool() for k, v in load_file(str(path)).items()}


class SoftPruningHook:
    """``on_epoch_end`` for the trainer (He et al.'s soft filter pruning): recompute the FPGM masks at the rates
    and zero (``smooth``: shrink) the pruned filters, which keep training and may recover in the next epoch.

    The masks of the last call are kept (``masks``) and, with ``path``, written there each time: they are the
    final masks that hard pruning uses (recomputing them from the final weights could pick other filters).
    """

    def __init__(self, rates: dict[str, float], epochs: int, mode: str = "hard", path: Path | None = None) -> None:
        self.rates, self.epochs, self.mode, self.path = rates, epochs, mode, path
        self.masks: Masks = {}
        self.history: list[Masks] = []

    def __call__(self, epoch: int, net: nn.Module) -> None:
        self.masks = compute_masks(net, self.rates)
        scale = smooth_scale(net, self.masks, epoch / max(self.epochs, 1)) if self.mode == "smooth" else None
        zero_filters(net, self.masks, scale)
        self.history.append({k: v.clone() for k, v in self.masks.items()})
        if self.path is not None:
            save_masks(self.masks, self.path)


def seeded_subset(annotations: list, count: int | None, seed: int) -> list:
    """A fixed, seeded subset of ``count`` images (all of them when ``count`` is None or larger)."""
    if count is None or count >= len(annotations):
        return annotations
    order = np.random.default_rng(seed).permutation(len(annotations))[:count]
    return [annotations[i] for i in sorted(order)]


def prune(
    net: DetectorNet,
    train: TrainConfig,
    config: PruneConfig,
    out_dir: str | Path,
    val_annotations: list,
    teacher: DetectorNet | None = None,
    storage: str | None = None,
    resume: bool = False,
    train_annotations: list | None = None,
    distill: DistillConfig | None = None,
) -> dict[str, Any]:
    """Phase 2: BO over the six rates, then soft filter pruning at the best rates. Returns the summary.

    The study always continues from its storage (the one whose settings match, see
    :func:`featherface.pruning.search.open_study`); ``resume`` also continues an interrupted SFP phase.
    ``train_annotations`` default to ``train.data``; ``distill`` sets the teacher's objective (with a teacher).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    storage = storage or f"sqlite:///{(out_dir / 'study.db').resolve()}"
    if train_annotations is None:
        train_annotations = resolve_dataset(train.data, strict=train.strict)
    trial_annotations = seeded_subset(train_annotations, config.trial_images, train.seed)
    distill = distill or DistillConfig()
    score = _trial_scorer(train, config, trial_annotations, val_annotations, teacher, distill)
    settings = _search_settings(train, config, len(trial_annotations), len(val_annotations), teacher, distill)
    progress = functools.partial(_print_trial, config.search.trials)
    study = run_search(net, score, config.search, storage, progress, settings=settings)
    best = best_feasible_trial(study)
    rates = dict(best.user_attrs["rates"])
    print(f"best rates (#{best.number}): " + ", ".join(f"{g} {r:.3f}" for g, r in rates.items()), flush=True)
    summary = soft_prune(
        net, rates, train, config, out_dir, val_annotations, teacher, resume, train_annotations, distill,
        _search_summary(study, best, config.search),
    )  # fmt: skip
    plot_convergence(study, out_dir / "bo_convergence.png")
    return summary


def _trial_scorer(
    train: TrainConfig,
    config: PruneConfig,
    trial_annotations: list,
    val_annotations: list,
    teacher: DetectorNet | None,
    distill: DistillConfig,
) -> Callable[[DetectorNet, Masks], dict[str, float]]:
    """How a trial is scored: the masked copy fine-tuned briefly (``config.trial_*``, AdamW, cosine; its pruned
    filters frozen, so the pruned network is what is scored), BatchNorm statistics recomputed, then the
    validation loss."""
    trial_train = dataclasses.replace(
        _with_backbone_lr(train, config), epochs=config.trial_epochs, lr=config.trial_lr, optimizer="adamw",
        warmup_epochs=0, schedule="cosine", val=None, max_minutes=None, val_every=10**6,
        dataset_repeats=config.trial_repeats or train.dataset_repeats,
    )  # fmt: skip

    def score(candidate: DetectorNet, masks: Masks) -> dict[str, float]:
        apply_masks(candidate, masks)
        handles = _freeze_pruned(candidate, masks)  # the trial scores the pruned network: nothing regrows
        with tempfile.TemporaryDirectory() as tmp:
            Trainer(
                candidate, trial_train, tmp, objective=_objective(candidate, trial_train, teacher, distill),
                train_annotations=trial_annotations, val_annotations=[], quiet=True,
            ).fit()  # fmt: skip
        for handle in handles:
            handle.remove()
        apply_masks(candidate, masks)
        recalibrate_batchnorm(candidate, trial_annotations, train)
        return {"val_loss": validation_loss(candidate, val_annotations, train)}

    return score


def _print_trial(trials: int, done: int, info: dict[str, Any]) -> None:
    """One line per finished trial (``progress`` of :func:`featherface.pruning.search.run_search`)."""
    print(
        # "#N" is the study's trial number (from 0), the one the best-rates line, rates.json and study.db use
        f"{trial_count(done, trials)} (#{info['number']}): val loss {info['val_loss']:.4f}  params {info['params']:,}"
        + ("" if info["feasible"] else " (outside the budget)")
        + (f"  time {info['latency_ratio']:.2f}x unpruned" if "latency_ratio" in info else "")
        + (f"  (same widths as #{info['same_widths_as']}: scores reused)" if "same_widths_as" in info else ""),
        flush=True,
    )


def _search_settings(
    train: TrainConfig,
    config: PruneConfig,
    train_images: int,
    val_images: int,
    teacher: DetectorNet | None,
    distill: DistillConfig,
) -> dict[str, Any]:
    """What the trials' scores depend on besides the search itself: a study resumes only with the same."""
    # the backbone's lr share and frozen BN only where they differ from the defaults: studies made before these
    # options existed keep their names (and resume)
    backbone = {"backbone_lr_scale": _with_backbone_lr(train, config).backbone_lr_scale,
                "freeze_backbone_bn": train.freeze_backbone_bn}  # fmt: skip
    backbone = {k: v for k, v in backbone.items() if v != getattr(TrainConfig, k)}
    return {
        "data": {"train": train.data, "train_images": train_images, "val_images": val_images},
        "trial": {"epochs": config.trial_epochs, "lr": config.trial_lr, "repeats": config.trial_repeats,
                  "image_size": train.augment.image_size, "batch_size": train.batch_size, **backbone},
        "teacher": None if teacher is None else {"params": count_parameters(teacher), **dataclasses.asdict(distill)},
    }  # fmt: skip


def _search_summary(study: optuna.Study, best: optuna.trial.FrozenTrial, search: SearchConfig) -> dict[str, Any]:
    """The search's part of ``rates.json``: every completed trial, the best one and the budget."""
    trials = [
        {"number": t.number, "value": t.value, "suggested": t.params, **t.user_attrs} for t in completed_trials(study)
    ]
    return {
        "trials": trials,
        "best_trial": best.number,
        "study": study.study_name,
        "target_params": search.target_params,
        "tolerance": search.tolerance,
        "latency_exponent": search.latency_exponent,
        "latency_target": search.latency_target,
    }


def soft_prune(
    net: DetectorNet,
    rates: dict[str, float],
    train: TrainConfig,
    config: PruneConfig,
    out_dir: str | Path,
    val_annotations: list,
    teacher: DetectorNet | None = None,
    resume: bool = False,
    train_annotations: list | None = None,
    distill: DistillConfig | None = None,
    search_summary: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Soft filter pruning (``config.method``, ``config.mask``) of ``net`` at given ``rates``, without a search:
    what :func:`prune` does after its search, and what an ablation at chosen rates (uniform ones, say) runs.
    Writes ``soft_pruned.safetensors``, ``masks.safetensors``, ``rates.json`` (with ``search_summary`` merged
    in) and ``rates.png`` into ``out_dir``; returns the summary. A group missing from ``rates`` is not pruned."""
    rates = {group: float(rates.get(group, 0.0)) for group in LAYER_GROUPS}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if train_annotations is None:
        train_annotations = resolve_dataset(train.data, strict=train.strict)
    distill = distill or DistillConfig()
    # SFP: masks recomputed each epoch, pruned filters free to recover; oneshot (the ablation): masks fixed
    # first, pruned filters frozen. Either way the final masks are read back from the file the phase keeps.
    pruned = copy.deepcopy(net)
    sfp_dir = out_dir / "sfp"
    sfp_dir.mkdir(parents=True, exist_ok=True)
    masks_path = sfp_dir / "masks.safetensors"
    sfp_train = dataclasses.replace(_with_backbone_lr(train, config), epochs=config.sfp_epochs, val_every=10**6)
    sfp_resume = resume and (sfp_dir / "trainer_state.pt").is_file()
    masks = compute_masks(pruned, rates)
    handles, hook = [], None
    if config.method == "oneshot":
        if sfp_resume and masks_path.is_file():
            masks = load_masks(masks_path)
        apply_masks(pruned, masks)
        handles = _freeze_pruned(pruned, masks)
        save_masks(masks, masks_path)
    else:
        zero_filters(pruned, masks)  # prune at the start too: the first epoch already trains the pruned net
        if not sfp_resume:
            save_masks(masks, masks_path)
        hook = SoftPruningHook(rates, config.sfp_epochs, config.mask, masks_path)
    Trainer(
        pruned, sfp_train, sfp_dir, objective=_objective(pruned, sfp_train, teacher, distill),
        train_annotations=train_annotations, val_annotations=[], on_epoch_end=hook, resume=sfp_resume,
    ).fit()  # fmt: skip
    for handle in handles:
        handle.remove()
    masks = load_masks(masks_path)
    apply_masks(pruned, masks)
    params = pruned_parameter_count(pruned, masks)
    val_loss = validation_loss(pruned, val_annotations, train)
    clear_cbam_masks(pruned)
    save_checkpoint(pruned, out_dir / "soft_pruned.safetensors", {"rates": rates, "pruned_params": params})
    save_masks(masks, out_dir / "masks.safetensors")
    summary = {
        "rates": rates,
        **(search_summary or {}),
        "params_unpruned": count_parameters(net),
        "params_pruned": params,
        "val_loss": val_loss,
        "method": config.method,
        "mask": config.mask,
    }
    atomic_write_bytes(out_dir / "rates.json", json.dumps(summary, indent=1).encode())
    plot_rates(rates, out_dir / "rates.png")
    return summary


def _freeze_pruned(net: DetectorNet, masks: Masks) -> list[torch.utils.hooks.RemovableHandle]:
    """Gradient hooks that keep pruned filters at zero while the rest fine-tunes (masks fixed)."""
    params = dict(net.named_parameters())
    handles = []
    for space in channel_spaces(net):
        keep = masks[space.name].float()
        for key in space.produced:
            if key in params:
                shape = (-1, *([1] * (params[key].dim() - 1)))
                factor = keep.to(params[key].device).reshape(shape)
                handles.append(params[key].register_hook(lambda grad, f=factor: grad * f))
    return handles


def finetune(
    prune_run: str | Path,
    train: TrainConfig,
    config: PruneConfig,
    out_dir: str | Path,
    val_annotations: list | None = None,
    teacher: DetectorNet | None = None,
    resume: bool = False,
    train_annotations: list | None = None,
    distill: DistillConfig | None = None,
) -> dict[str, Any]:
    """Phase 3: fine-tune with fixed masks at a low rate, then remove the pruned filters for real."""
    prune_run, out_dir = Path(prune_run), Path(out_dir)
    source = prune_run / "soft_pruned.safetensors"
    if not source.is_file():
        raise ValueError(f"{prune_run}: not a prune run (no soft_pruned.safetensors)")
    net, _ = load_checkpoint(source)
    masks = load_masks(prune_run / "masks.safetensors")
    apply_masks(net, masks)
    handles = _freeze_pruned(net, masks)
    ft_train = dataclasses.replace(
        _with_backbone_lr(train, config), epochs=config.finetune_epochs, lr=config.finetune_lr, warmup_epochs=0
    )
    trainer = Trainer(
        net, ft_train, out_dir, objective=_objective(net, ft_train, teacher, distill),
        train_annotations=train_annotations, val_annotations=val_annotations,
        resume=resume and (out_dir / "trainer_state.pt").is_file(),
    )  # fmt: skip
    trainer.fit()
    for handle in handles:
        handle.remove()
    if (out_dir / "best.safetensors").is_file() and val_annotations:
        net, _ = load_checkpoint(out_dir / "best.safetensors")
    apply_masks(net, masks)
    net.eval()
    deployed = hard_prune(net, masks).eval()
    probe = torch.randn(1, 3, 320, 416, generator=torch.Generator().manual_seed(0)) * 60
    with torch.no_grad():
        difference = max(
            float((a - b).abs().max()) for a, b in zip(net.cpu()(probe), deployed.cpu()(probe), strict=True)
        )
    if difference > DEPLOY_TOLERANCE:
        raise RuntimeError(f"hard-pruned outputs differ from the masked network by {difference:.2e}")
    params = count_parameters(deployed)
    meta = {"source": str(prune_run), "params": params, "masked_vs_deployed_max_diff": difference}
    save_checkpoint(deployed, out_dir / "deployed.safetensors", meta)
    return {"params": params, "max_output_difference": difference, "deployed": str(out_dir / "deployed.safetensors")}

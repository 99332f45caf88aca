"""Bayesian optimisation of the six pruning rates (Optuna's GP sampler: Gaussian process + log expected
improvement), in a persistent study so it resumes after a kill and several workers can share it.

Objective of a trial (after the B-FPGM authors' code): FPGM-prune a copy at the trial's rates, fine-tune it
briefly with soft pruning, then score ``-val_loss - penalty_weight * penalty`` where the penalty is 0 when the
parameter reduction lies in ``[target, target + tolerance]``, the shortfall (or excess) when it misses by less
than ``tolerance``, and 100 when it misses by more. The first trial is the authors' probe: every group at
``target + 0.02`` (clamped to its bounds).

The probe and the random start points are chosen by trial number, not queued: workers sharing a SQLite study
could pop one queued trial twice (SQLite has no row lock), and equally seeded random samplers in two workers
would propose the same start points.
"""

from __future__ import annotations

import copy
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
import torch
from optuna.distributions import BaseDistribution, FloatDistribution

from featherface.models.detector_net import DetectorNet, count_parameters
from featherface.pruning.groups import LAYER_GROUPS, channel_spaces
from featherface.pruning.masks import Masks, compute_masks

STUDY_NAME = "b-fpgm"


@dataclass
class SearchConfig:
    trials: int = 25
    target_params: int = 150_000  # deployed Nano-B lands in 120k-180k (SPEC section 2)
    tolerance: float = 0.04
    penalty_weight: float = 5.0
    seed: int = 0


def pruned_parameter_count(net: DetectorNet, masks: Masks) -> int:
    """Parameters of the hard-pruned network, from the widths alone (no weights are copied)."""
    config = copy.deepcopy(net.config)
    for space in channel_spaces(net):
        space.set_width(config, int(masks[space.name].sum()))
    config.shuffle_groups = 1  # folded into the heads when deployed: changes no parameter count
    with torch.device("meta"):
        return count_parameters(DetectorNet(config))


def sparsity_penalty(sparsity: float, target: float, tolerance: float) -> float:
    """0 inside ``[target, target + tolerance]``; the distance to it when within ``tolerance``; 100 beyond."""
    if target <= sparsity <= target + tolerance:
        return 0.0
    miss = target - sparsity if sparsity < target else sparsity - (target + tolerance)
    return miss if miss < tolerance else 100.0


def probe_rates(target_sparsity: float) -> dict[str, float]:
    return {g: min(max(target_sparsity + 0.02, lo), hi) for g, (lo, hi) in LAYER_GROUPS.items()}


class ProbeFirstSampler(optuna.samplers.BaseSampler):
    """Trial 0 is the probe, trials below ``n_startup`` are uniform draws seeded by ``(seed, trial number)``,
    the rest come from the GP sampler (Gaussian process, log expected improvement)."""

    def __init__(self, probe: dict[str, float], seed: int, n_startup: int = 10) -> None:
        self._probe = probe
        self._seed = seed
        self._n_startup = n_startup
        self._gp = optuna.samplers.GPSampler(seed=seed, n_startup_trials=n_startup)

    def infer_relative_search_space(
        self, study: optuna.Study, trial: optuna.trial.FrozenTrial
    ) -> dict[str, BaseDistribution]:
        if trial.number < self._n_startup:
            return {}
        return self._gp.infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: optuna.Study, trial: optuna.trial.FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        if not search_space:
            return {}
        return self._gp.sample_relative(study, trial, search_space)

    def sample_independent(
        self, study: optuna.Study, trial: optuna.trial.FrozenTrial, name: str, distribution: BaseDistribution
    ) -> Any:
        if not isinstance(distribution, FloatDistribution) or distribution.log or distribution.step is not None:
            raise ValueError(f"pruning-rate search expects plain float parameters, got {name}: {distribution}")
        if trial.number == 0 and name in self._probe:
            return self._probe[name]
        # a stable per-name stream: the draw does not depend on the order parameters are suggested in
        rng = np.random.default_rng([self._seed, trial.number, zlib.crc32(name.encode())])
        return float(distribution.low + rng.random() * (distribution.high - distribution.low))

    def before_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        self._gp.before_trial(study, trial)

    def after_trial(
        self,
        study: optuna.Study,
        trial: optuna.trial.FrozenTrial,
        state: optuna.trial.TrialState,
        values: list[float] | None,
    ) -> None:
        self._gp.after_trial(study, trial, state, values)


def open_study(storage: str, sampler: optuna.samplers.BaseSampler) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(
        study_name=STUDY_NAME, storage=storage, sampler=sampler, direction="maximize", load_if_exists=True
    )


def completed_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))


def run_search(
    net: DetectorNet,
    evaluate: Callable[[DetectorNet, Masks], dict[str, float]],
    config: SearchConfig,
    storage: str,
    progress: Callable[[int, dict[str, Any]], None] | None = None,
) -> optuna.Study:
    """Run trials until the study holds ``config.trials`` completed ones (earlier runs' trials count).

    ``evaluate(masked_copy, masks)`` fine-tunes the masked copy briefly and returns at least ``val_loss``.
    """
    unpruned = count_parameters(net)
    target = 1.0 - config.target_params / unpruned
    study = open_study(storage, ProbeFirstSampler(probe_rates(target), config.seed))

    def objective(trial: optuna.Trial) -> float:
        rates = {g: trial.suggest_float(g, lo, hi) for g, (lo, hi) in LAYER_GROUPS.items()}
        candidate = copy.deepcopy(net)
        masks = compute_masks(candidate, rates)
        params = pruned_parameter_count(candidate, masks)
        sparsity = 1.0 - params / unpruned
        penalty = sparsity_penalty(sparsity, target, config.tolerance)
        scores = evaluate(candidate, masks)
        value = -scores["val_loss"] - config.penalty_weight * penalty
        for key, v in {"params": params, "sparsity": sparsity, "penalty": penalty, **scores}.items():
            trial.set_user_attr(key, v)
        if progress is not None:
            progress(trial.number, {"value": value, "params": params, **scores})
        return value

    remaining = config.trials - len(completed_trials(study))
    if remaining > 0:
        study.optimize(
            objective,
            callbacks=[optuna.study.MaxTrialsCallback(config.trials, states=(optuna.trial.TrialState.COMPLETE,))],
            n_trials=remaining,
        )
    return study

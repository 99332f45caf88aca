"""Bayesian optimisation of the six pruning rates (Optuna's GP sampler: Gaussian process + log expected
improvement), in a persistent study so it resumes after a kill and several workers can share it.

Objective of a trial (after the B-FPGM authors' code): FPGM-prune a copy at the trial's rates, fine-tune it
briefly with soft pruning, then score ``-val_loss - penalty_weight * penalty`` where the penalty is 0 when the
parameter reduction lies in ``[target, target + tolerance]``, the shortfall (or excess) when it misses by less
than ``tolerance``, and 100 when it misses by more. The first trial is the authors' probe: every group at
``target + 0.02`` (clamped to its bounds).

Hardware-aware variant (``latency_exponent`` > 0, after MnasNet's reward ``ACC x (LAT / T)^w``): the loss term
is scaled by ``latency_ratio ** latency_exponent``, where ``latency_ratio`` is the candidate's onnxruntime time
over the unpruned network's, measured on this machine. At a given parameter budget this moves the pruning towards
the layers where the time goes (the high-resolution ones), not only where the parameters are (the late ones).

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

from featherface.models.config import DetectorConfig
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
    latency_exponent: float = 0.0  # 0: the authors' objective; > 0: hardware-aware (see the module docstring)
    latency_threads: int = 1  # onnxruntime threads for the latency probe (1 is the steadiest to measure)


def pruned_config(net: DetectorNet, masks: Masks) -> DetectorConfig:
    """The architecture of the hard-pruned network, from the masks' widths (the shuffle folded into the heads)."""
    config = copy.deepcopy(net.config)
    for space in channel_spaces(net):
        space.set_width(config, int(masks[space.name].sum()))
    config.shuffle_groups = 1  # folded into the heads when deployed: changes no parameter count
    return config


def pruned_parameter_count(net: DetectorNet, masks: Masks) -> int:
    """Parameters of the hard-pruned network, from the widths alone (no weights are copied)."""
    with torch.device("meta"):
        return count_parameters(DetectorNet(pruned_config(net, masks)))


def sparsity_penalty(sparsity: float, target: float, tolerance: float) -> float:
    """0 inside ``[target, target + tolerance]``; the distance to it when within ``tolerance``; 100 beyond."""
    if target <= sparsity <= target + tolerance:
        return 0.0
    miss = target - sparsity if sparsity < target else sparsity - (target + tolerance)
    return miss if miss < tolerance else 100.0


def trial_value(scores: dict[str, float], penalty: float, config: SearchConfig) -> float:
    """``-val_loss * latency_ratio ** latency_exponent - penalty_weight * penalty`` (no latency term when the
    exponent is 0). A positive loss shrinks with speed, so of two equally good candidates the faster wins."""
    loss = scores["val_loss"]
    if config.latency_exponent > 0 and "latency_ratio" in scores:
        loss *= scores["latency_ratio"] ** config.latency_exponent
    return -loss - config.penalty_weight * penalty


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
    latency: Callable[[DetectorConfig], float] | None = None,
) -> optuna.Study:
    """Run trials until the study holds ``config.trials`` completed ones (earlier runs' trials count).

    ``evaluate(masked_copy, masks)`` fine-tunes the masked copy briefly and returns at least ``val_loss``.
    ``latency(config)`` gives a pruned architecture's time relative to the unpruned one; with
    ``config.latency_exponent > 0`` and none given, it is measured in onnxruntime
    (:class:`featherface.benchmark.RelativeLatency`).
    """
    unpruned = count_parameters(net)
    target = 1.0 - config.target_params / unpruned
    study = open_study(storage, ProbeFirstSampler(probe_rates(target), config.seed))
    if config.latency_exponent > 0 and latency is None:
        from featherface.benchmark import RelativeLatency

        latency = RelativeLatency(net.config, threads=config.latency_threads)

    def objective(trial: optuna.Trial) -> float:
        rates = {g: trial.suggest_float(g, lo, hi) for g, (lo, hi) in LAYER_GROUPS.items()}
        candidate = copy.deepcopy(net)
        masks = compute_masks(candidate, rates)
        params = pruned_parameter_count(candidate, masks)
        sparsity = 1.0 - params / unpruned
        penalty = sparsity_penalty(sparsity, target, config.tolerance)
        scores = evaluate(candidate, masks)
        if config.latency_exponent > 0 and latency is not None:
            scores["latency_ratio"] = latency(pruned_config(net, masks))
        value = trial_value(scores, penalty, config)
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

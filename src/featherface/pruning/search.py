"""Bayesian optimisation of the six pruning rates (Optuna's GP sampler: Gaussian process + log expected
improvement), in a persistent study so it resumes after a kill and several workers can share it.

A trial FPGM-prunes a copy of the network at its rates, fine-tunes it briefly and scores ``-val_loss`` (after the
B-FPGM authors' code). What differs from their objective is the parameter budget. They add ``5 x penalty`` with a
penalty of 100 beyond a 0.04 miss: a cliff a Gaussian process cannot model, and a best trial that may miss the
target. Here the budget is met **by construction**: the suggested rates are moved along one line, towards the
groups' upper bounds (to prune more) or lower bounds (to prune less), until the deployed network lands within
``tolerance`` of ``target_params`` (bisection; the parameter count is a monotone step function of the rates), and
those *applied* rates are what the trial prunes, records and, if chosen, deploys. The GP sees a smooth objective
of the suggested rates; the search is over how the budget is shared between the six groups, which is the
question B-FPGM asks. A trial the line cannot bring within tolerance (a width step larger than the band) is
infeasible: it is told to the GP as an Optuna constraint, and the chosen trial is always a feasible one.

Trial 0 is the authors' probe (every group at one rate, then fitted to the budget); trials below ``n_startup``
are uniform draws seeded by ``(seed, trial number)`` (not queued: workers sharing a SQLite study could pop a
queued trial twice); the GP proposes the rest.

Hardware-aware variant (``latency_exponent`` > 0, off by default; MnasNet's reward ``ACC x (LAT / T)^w``): the
loss is scaled by ``latency_ratio ** latency_exponent``, the candidate's onnxruntime time over the unpruned
network's measured on this machine. With a ``latency_target`` T (a fraction of the unpruned network's time),
only time above T costs: ``max(1, latency_ratio / T) ** latency_exponent`` (MnasNet's reward with alpha = 0, its
hard-constraint form, and beta = -exponent); below the target the better candidate wins, whatever its speed.
Such values depend on the machine, so the machine is part of the study's settings: a study is named by a hash of
everything that makes its trial values comparable (model, data, trial recipe, budget, latency term and, with it,
the machine), and a run with other settings on the same storage starts a new study beside the old one instead of
mixing values.
"""

from __future__ import annotations

import copy
import hashlib
import json
import platform
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import optuna
import torch
from optuna.distributions import BaseDistribution, FloatDistribution

from featherface.config_schema import Config, FieldError, rule
from featherface.latency import RelativeLatency
from featherface.models.config import DetectorConfig
from featherface.models.detector_net import DetectorNet, count_parameters
from featherface.pruning.fpgm import kept_per_group
from featherface.pruning.groups import LAYER_GROUPS, channel_spaces
from featherface.pruning.masks import Masks, compute_masks

STUDY_PREFIX = "b-fpgm"
# Bisection steps along the line of rates: 2^-30 of the line is far finer than any width step.
_BISECTION_STEPS = 30


class SearchError(ValueError):
    """The search cannot give a usable answer (unreachable budget, no feasible trial); the message says why."""


@dataclass
class SearchConfig(Config):
    trials: int = field(default=25, metadata=rule(ge=1))
    # deployed Nano-B lands in 120k-180k (SPEC section 2)
    target_params: int = field(default=150_000, metadata=rule(ge=1))
    # deployed params within target x (1 +- tolerance): 135k-165k for 150k, inside SPEC's 120k-180k, and wider than
    # the largest width step (the six 128-wide backbone blocks move 16 channels at once: about 25k parameters)
    tolerance: float = field(default=0.1, metadata=rule(ge=0, le=1))
    seed: int = 0
    n_startup: int = field(default=10, metadata=rule(ge=0))  # probe + uniform draws before the GP proposes
    # 0: the authors' objective; > 0: hardware-aware (see the module docstring)
    latency_exponent: float = field(default=0.0, metadata=rule(ge=0))
    # None: every speed-up pays; T: only time above T x the unpruned network's costs (see the module docstring)
    latency_target: float | None = field(default=None, metadata=rule(gt=0))
    # onnxruntime threads for the latency probe (1 is the steadiest to measure)
    latency_threads: int = field(default=1, metadata=rule(ge=1))

    def __post_init__(self) -> None:
        super().__post_init__()
        try:  # when the config is made (loaded, overridden), not an hour later when phase 2 starts
            check_latency_settings(self)
        except SearchError as exc:
            raise FieldError("latency_target", str(exc)) from None


def kept_widths(net: DetectorNet | DetectorConfig, rates: dict[str, float]) -> dict[str, int]:
    """Channels each space keeps at ``rates`` (what :func:`compute_masks` keeps, without ranking filters)."""
    widths = {}
    for space in channel_spaces(net):
        per_group = space.size // space.balance
        unit = max(1, space.align // space.balance)
        widths[space.name] = space.balance * kept_per_group(per_group, rates.get(space.layer_group, 0.0), unit)
    return widths


def pruned_config(net: DetectorNet | DetectorConfig, widths: Masks | dict[str, int]) -> DetectorConfig:
    """The architecture of the hard-pruned network from kept widths (or masks), the shuffle folded into the heads."""
    config = copy.deepcopy(net.config if isinstance(net, DetectorNet) else net)
    for space in channel_spaces(config):
        kept = widths[space.name]
        space.set_width(config, int(kept.sum()) if isinstance(kept, torch.Tensor) else int(kept))
    config.shuffle_groups = 1  # folded into the heads when deployed: changes no parameter count
    return config


def pruned_parameter_count(net: DetectorNet | DetectorConfig, widths: Masks | dict[str, int]) -> int:
    """Parameters of the hard-pruned network, from the widths alone (no weights are copied)."""
    with torch.device("meta"):
        return count_parameters(DetectorNet(pruned_config(net, widths)))


def params_at_rates(net: DetectorNet | DetectorConfig, rates: dict[str, float]) -> int:
    widths = kept_widths(net, rates)
    key = (repr(net.config if isinstance(net, DetectorNet) else net), tuple(widths.values()))
    if key not in _PARAM_COUNTS:  # building the meta network dominates a bisection: count each width set once
        _PARAM_COUNTS[key] = pruned_parameter_count(net, widths)
    return _PARAM_COUNTS[key]


_PARAM_COUNTS: dict[tuple[str, tuple[int, ...]], int] = {}


@dataclass
class BudgetFit:
    """Rates moved onto the parameter budget: ``rates`` applied, ``params`` deployed, ``feasible`` in the band."""

    rates: dict[str, float]
    params: int
    feasible: bool


def fit_to_budget(net: DetectorNet | DetectorConfig, rates: dict[str, float], low: int, high: int) -> BudgetFit:
    """Move ``rates`` along the line towards the groups' upper (or lower) bounds until the deployed parameter
    count lies in ``[low, high]``; the smallest such move, found by bisection. Infeasible when a width step jumps
    over the band (the closest count at or below ``high`` is returned then)."""
    params = params_at_rates(net, rates)
    if low <= params <= high:
        return BudgetFit(dict(rates), params, True)
    prune_more = params > high
    ends = {g: LAYER_GROUPS[g][1 if prune_more else 0] for g in LAYER_GROUPS}

    def at(t: float) -> dict[str, float]:
        return {g: rates[g] + t * (ends[g] - rates[g]) for g in LAYER_GROUPS}

    def reached(count: int) -> bool:
        return count <= high if prune_more else count >= low

    if not reached(params_at_rates(net, at(1.0))):
        end = params_at_rates(net, at(1.0))
        raise SearchError(
            f"a budget of {low:,}-{high:,} parameters cannot be reached within the groups' rate bounds "
            f"(every group at its {'upper' if prune_more else 'lower'} bound gives {end:,})"
        )
    lo, hi = 0.0, 1.0  # reached(at(hi)) holds, reached(at(lo)) does not
    for _ in range(_BISECTION_STEPS):
        mid = (lo + hi) / 2
        if reached(params_at_rates(net, at(mid))):
            hi = mid
        else:
            lo = mid
    fitted = at(hi)
    params = params_at_rates(net, fitted)
    return BudgetFit(fitted, params, low <= params <= high)


def budget_bounds(config: SearchConfig) -> tuple[int, int]:
    return (
        round(config.target_params * (1 - config.tolerance)),
        round(config.target_params * (1 + config.tolerance)),
    )


def probe_rates(net: DetectorNet | DetectorConfig, config: SearchConfig) -> dict[str, float]:
    """The authors' probe: one rate for every group (clamped to its bounds), the one that meets the budget."""
    _, high = budget_bounds(config)
    lo, hi = 0.0, 1.0
    for _ in range(_BISECTION_STEPS):
        mid = (lo + hi) / 2
        rates = {g: min(max(mid, a), b) for g, (a, b) in LAYER_GROUPS.items()}
        if params_at_rates(net, rates) <= high:
            hi = mid
        else:
            lo = mid
    return {g: min(max(hi, a), b) for g, (a, b) in LAYER_GROUPS.items()}


def trial_value(scores: dict[str, float], config: SearchConfig) -> float:
    """``-val_loss * latency_ratio ** latency_exponent`` (no latency term when the exponent is 0): a positive
    loss shrinks with speed, so of two equally good candidates the faster wins. With ``latency_target`` T the
    term is ``max(1, latency_ratio / T) ** latency_exponent`` instead: only time over the target costs."""
    loss = scores["val_loss"]
    if config.latency_exponent > 0 and "latency_ratio" in scores:
        ratio = scores["latency_ratio"]
        if config.latency_target is not None:
            ratio = max(1.0, ratio / config.latency_target)
        loss *= ratio**config.latency_exponent
    return -loss


class ProbeFirstSampler(optuna.samplers.BaseSampler):
    """Trial 0 is the probe, trials below ``n_startup`` are uniform draws seeded by ``(seed, trial number)``,
    the rest come from the GP sampler (Gaussian process, log expected improvement, budget constraint)."""

    def __init__(self, probe: dict[str, float], seed: int, n_startup: int = 10) -> None:
        self._probe = probe
        self._seed = seed
        self._n_startup = n_startup
        # the GP reads each trial's constraint (set in the objective) and weighs EI by the chance of feasibility
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


def study_settings(net: DetectorNet, config: SearchConfig, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything that makes two trials' values comparable; the study is named by its hash.

    ``trials`` and ``seed`` are left out: more trials, or another worker's seed, continue the same study.
    """
    search = {k: v for k, v in asdict(config).items() if k not in ("trials", "seed", "n_startup")}
    if search["latency_target"] is None:  # studies made before the field existed keep their names
        del search["latency_target"]
    architecture = json.dumps(asdict(net.config), sort_keys=True, default=str)
    settings: dict[str, Any] = {
        "model": {"params": count_parameters(net), "config_sha1": hashlib.sha1(architecture.encode()).hexdigest()},
        "search": search,
        "bounds": {g: list(b) for g, b in LAYER_GROUPS.items()},
        **(extra or {}),
    }
    if config.latency_exponent > 0:  # latency ratios are this machine's
        settings["machine"] = f"{platform.machine()} {platform.processor() or _cpu_model()}"
    return settings


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown cpu"


def study_name(settings: dict[str, Any]) -> str:
    digest = hashlib.sha1(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()
    return f"{STUDY_PREFIX}-{digest[:10]}"


def _describe_difference(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    changes = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            changes += _describe_difference(a, b, f"{prefix}{key}.")
        elif a != b:
            changes.append(f"{prefix}{key} {a!r} -> {b!r}")
    return changes


def open_study(
    storage: str, settings: dict[str, Any], sampler: optuna.samplers.BaseSampler, say: Callable[[str], None] = print
) -> optuna.Study:
    """The study for ``settings`` in ``storage`` (created if new). Studies with other settings in the same storage
    are left as they are, and the difference is said."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    name = study_name(settings)
    existing = {s.study_name: s for s in optuna.get_all_study_summaries(storage, include_best_trial=False)}
    if name not in existing:
        for other_name, summary in existing.items():
            if not other_name.startswith(STUDY_PREFIX):
                continue
            other = summary.user_attrs.get("settings")
            what = "; ".join(_describe_difference(other, settings)[:6]) if other else "settings not recorded"
            say(
                f"{storage}: study {other_name!r} ({summary.n_trials} trials) was made with other settings ({what}); "
                f"starting study {name!r} beside it (the old one is kept)"
            )
    study = optuna.create_study(
        study_name=name, storage=storage, sampler=sampler, direction="maximize", load_if_exists=True
    )
    if "settings" not in study.user_attrs:
        study.set_user_attr("settings", settings)
    return study


def completed_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))


def best_feasible_trial(study: optuna.Study) -> optuna.trial.FrozenTrial:
    """The best completed trial that met the parameter budget; a clear error when none did."""
    trials = completed_trials(study)
    feasible = [t for t in trials if t.user_attrs.get("feasible", False)]
    if not feasible:
        closest = min(trials, key=lambda t: abs(t.user_attrs.get("budget_miss", 1e9)), default=None)
        detail = f"; closest: {closest.user_attrs.get('params', '?'):,} params" if closest is not None else ""
        raise SearchError(
            f"none of the {len(trials)} completed trials met the parameter budget{detail}: widen --tolerance or "
            "change --target-params"
        )
    return max(feasible, key=lambda t: t.value)


def trial_count(done: int, trials: int) -> str:
    """``trial 3/25``: the study's completed trials with this one, of those asked for. Trials killed before they
    finished are not counted (they stay RUNNING in the storage); workers sharing the study may finish one more
    than asked between them, which is said as such rather than as ``trial 26/25``."""
    if done <= trials:
        return f"trial {done}/{trials}"
    return f"trial {done} (the study asked for {trials}; other workers finished theirs meanwhile)"


# what a trial records about its architecture; every other user attribute is a score its evaluation returned
_TRIAL_LAYOUT_ATTRS = frozenset({"rates", "widths", "params", "feasible", "budget_miss", "same_widths_as"})


def check_latency_settings(config: SearchConfig) -> None:
    """A latency target without the latency term would do nothing: refused (callers check before any work)."""
    if config.latency_target is not None and config.latency_exponent <= 0:
        raise SearchError("latency_target needs a hardware-aware search (latency_exponent > 0); it would do nothing")


def run_search(
    net: DetectorNet,
    evaluate: Callable[[DetectorNet, Masks], dict[str, float]],
    config: SearchConfig,
    storage: str,
    progress: Callable[[int, dict[str, Any]], None] | None = None,
    latency: Callable[[DetectorConfig], float] | None = None,
    settings: dict[str, Any] | None = None,
    say: Callable[[str], None] = print,
) -> optuna.Study:
    """Run trials until the study holds ``config.trials`` completed ones (earlier runs' trials count).

    ``evaluate(masked_copy, masks)`` fine-tunes the masked copy briefly and returns at least ``val_loss``.
    ``latency(config)`` gives a pruned architecture's time relative to the unpruned one; with
    ``config.latency_exponent > 0`` and none given, it is measured in onnxruntime
    (:class:`featherface.latency.RelativeLatency`). ``settings`` (data, trial recipe, ...) join the search
    settings that name the study. ``progress(done, info)`` is called after each trial with the study's count of
    completed trials.
    """
    check_latency_settings(config)
    low, high = budget_bounds(config)
    probe = probe_rates(net, config)
    fit_to_budget(net, probe, low, high)  # raises now if the budget is unreachable
    sampler = ProbeFirstSampler(probe, config.seed, config.n_startup)
    study = open_study(storage, study_settings(net, config, settings), sampler, say)
    if config.latency_exponent > 0 and latency is None:
        latency = RelativeLatency(net.config, threads=config.latency_threads)

    def objective(trial: optuna.Trial) -> float:
        if len(completed_trials(study)) >= config.trials:  # other workers finished the study while this one waited
            study.stop()
            raise optuna.TrialPruned("the study already holds its trials")
        suggested = {g: trial.suggest_float(g, lo, hi) for g, (lo, hi) in LAYER_GROUPS.items()}
        fit = fit_to_budget(net, suggested, low, high)
        widths = kept_widths(net, fit.rates)
        # Rates that differ only within one width step keep the same filters (FPGM ranks them the same way), so
        # the trial would repeat an earlier one exactly: take its scores instead of training again.
        twin = next((t for t in completed_trials(study) if t.user_attrs.get("widths") == widths), None)
        if twin is not None:
            scores = {k: v for k, v in twin.user_attrs.items() if k not in _TRIAL_LAYOUT_ATTRS}
        else:
            candidate = copy.deepcopy(net)
            masks = compute_masks(candidate, fit.rates)
            scores = evaluate(candidate, masks)
            if config.latency_exponent > 0 and latency is not None:
                scores["latency_ratio"] = latency(pruned_config(net, masks))
        value = trial_value(scores, config)
        miss = 0.0 if fit.feasible else min(abs(fit.params - low), abs(fit.params - high)) / config.target_params
        attrs = {"rates": fit.rates, "widths": widths, "params": fit.params, "feasible": fit.feasible,
                 "budget_miss": miss, **scores}  # fmt: skip
        if twin is not None:
            attrs["same_widths_as"] = twin.number
        for key, v in attrs.items():
            trial.set_user_attr(key, v)
        trial.set_constraint("param_budget", miss)  # <= 0 is feasible: the relative miss of the band
        if progress is not None:
            progress(len(completed_trials(study)) + 1, {"value": value, "number": trial.number, **attrs})
        return value

    remaining = config.trials - len(completed_trials(study))
    if remaining > 0:
        study.optimize(
            objective,
            callbacks=[optuna.study.MaxTrialsCallback(config.trials, states=(optuna.trial.TrialState.COMPLETE,))],
            n_trials=remaining,
        )
    return study

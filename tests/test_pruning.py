"""B-FPGM: FPGM importance, masks, hard pruning equivalence, the deployed model, the persistent BO study."""

import copy
import itertools
import os
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import torch

from featherface.export.onnx import export_onnx
from featherface.models.checkpoint import load_checkpoint, save_checkpoint
from featherface.models.config import featherface_v1_config, nano_b_config
from featherface.models.detector_net import DetectorNet, count_parameters
from featherface.models.zoo import create_model
from featherface.pruning.fpgm import fpgm_importance, select_pruned
from featherface.pruning.groups import LAYER_GROUPS, channel_spaces
from featherface.pruning.hard import fold_shuffle_into_heads, hard_prune
from featherface.pruning.masks import apply_masks, clear_cbam_masks, compute_masks, smooth_scale, zero_filters
from featherface.pruning.search import (
    STUDY_PREFIX,
    ProbeFirstSampler,
    SearchConfig,
    SearchError,
    best_feasible_trial,
    budget_bounds,
    fit_to_budget,
    params_at_rates,
    probe_rates,
    pruned_config,
    pruned_parameter_count,
    run_search,
    study_settings,
    trial_value,
)

from .conftest import randomize_batchnorm

REPO = Path(__file__).parents[1]


def test_fpgm_equals_brute_force_sum_of_distances():
    filters = torch.randn(7, 3, 3, 3, generator=torch.Generator().manual_seed(0))
    flat = filters.reshape(7, -1)
    brute = [sum(float(torch.linalg.norm(flat[i] - flat[j])) for j in range(7)) for i in range(7)]
    torch.testing.assert_close(fpgm_importance(filters), torch.tensor(brute), rtol=1e-5, atol=1e-5)


def test_least_important_filter_is_nearest_the_geometric_median():
    g = torch.Generator().manual_seed(1)
    points = torch.randn(9, 4, generator=g) * 3
    # Weiszfeld's algorithm for the geometric median
    median = points.mean(0)
    for _ in range(500):
        d = torch.linalg.norm(points - median, dim=1).clamp(min=1e-9)
        median = (points / d[:, None]).sum(0) / (1 / d).sum()
    nearest = int(torch.linalg.norm(points - median, dim=1).argmin())
    assert int(fpgm_importance(points).argmin()) == nearest


def test_kept_widths_are_aligned():
    from featherface.pruning.fpgm import kept_per_group

    assert kept_per_group(64, 0.3) == 45
    assert kept_per_group(64, 0.3, unit=8) == 48
    assert kept_per_group(16, 0.45, unit=8) == 8
    assert kept_per_group(8, 0.4, unit=8) == 8  # never below one unit
    assert kept_per_group(8, 0.4, unit=16) == 8  # narrower than a unit: kept whole, not cut to 5
    assert kept_per_group(72, 0.5, unit=16) == 32
    assert kept_per_group(9, 0.5, unit=4) == 4


def test_selection_is_balanced_across_groups():
    importance = torch.tensor([5.0, 1.0, 4.0, 3.0, 0.5, 0.1, 9.0, 8.0])
    keep = select_pruned(importance, 0.5, balance=2)
    assert keep.tolist() == [True, False, True, False, False, False, True, True]
    assert select_pruned(importance, 0.99).sum() == 1  # never empty


def masked_and_pruned(net, rates):
    masked = copy.deepcopy(net).eval()
    masks = compute_masks(masked, rates)
    apply_masks(masked, masks)
    return masked, masks, hard_prune(masked, masks).eval()


@pytest.mark.parametrize("group", [*LAYER_GROUPS, "all"])
@pytest.mark.parametrize("model", ["nano-b", "featherface-v1"])
def test_hard_pruned_outputs_equal_masked_outputs(model, group):
    torch.manual_seed(0)
    net = randomize_batchnorm(create_model(model))
    rates = {g: hi for g, (_, hi) in LAYER_GROUPS.items()} if group == "all" else {group: LAYER_GROUPS[group][1]}
    masked, masks, pruned = masked_and_pruned(net, rates)
    assert count_parameters(pruned) < count_parameters(net)
    assert count_parameters(pruned) == pruned_parameter_count(masked, masks)
    x = torch.randn(2, 3, 96, 160, generator=torch.Generator().manual_seed(2)) * 60
    with torch.no_grad():
        for a, b in zip(masked(x), pruned(x), strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-4)


def test_every_group_has_spaces_and_pruned_channels_output_zero():
    net = randomize_batchnorm(create_model("nano-b"))
    spaces = channel_spaces(net)
    assert {s.layer_group for s in spaces} == set(LAYER_GROUPS)
    masks = compute_masks(net, {"backbone_late": 0.5})
    apply_masks(net, masks)
    seen = {}
    handle = net.backbone.blocks[7].register_forward_hook(lambda m, i, o: seen.setdefault("out", o))
    with torch.no_grad():
        net(torch.randn(1, 3, 64, 64) * 50)
    handle.remove()
    assert (seen["out"][:, ~masks["block7"]] == 0).all()
    assert (seen["out"][:, masks["block7"]] != 0).any()


def test_shuffle_folding_changes_nothing():
    net = randomize_batchnorm(create_model("nano-b"))
    folded = fold_shuffle_into_heads(net)
    assert folded.shuffle is None and folded.config.shuffle_groups == 1
    x = torch.randn(1, 3, 64, 96) * 50
    with torch.no_grad():
        for a, b in zip(net(x), folded(x), strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-5)


def test_smooth_masks_harden_over_the_phase():
    net = randomize_batchnorm(create_model("nano-b"))
    masks = compute_masks(net, {"bifpn": 0.5})
    early = smooth_scale(net, masks, progress=0.1)["neck"]
    late = smooth_scale(net, masks, progress=0.9)["neck"]
    final = smooth_scale(net, masks, progress=1.0)["neck"]
    pruned = ~masks["neck"]
    assert (early[masks["neck"]] == 1).all()
    assert (early[pruned] > 0).all() and (early[pruned] < 1).all()
    assert (late[pruned] <= early[pruned]).all()
    assert (final[pruned] == 0).all()


MID_RATES = {g: (lo + hi) / 2 for g, (lo, hi) in LAYER_GROUPS.items()}


@pytest.mark.parametrize("group", list(LAYER_GROUPS))
def test_every_group_rate_is_live_across_its_bounds(group):
    """At least 3 distinct deployed sizes per group with the other rates fixed, never growing with the rate, and
    the count from widths equals the hard-pruned network's own."""
    net = create_model("nano-b", pretrained=False)
    lo, hi = LAYER_GROUPS[group]
    counts = []
    for rate in [lo + (hi - lo) * i / 20 for i in range(21)]:
        masks = compute_masks(net, {**MID_RATES, group: rate})
        counts.append(pruned_parameter_count(net, masks))
    assert len(set(counts)) >= 3, counts
    assert all(a >= b for a, b in itertools.pairwise(counts)), counts
    masks = compute_masks(net, {**MID_RATES, group: hi})
    assert count_parameters(hard_prune(net, masks)) == counts[-1]


def test_depthwise_spaces_keep_16_aligned_widths_and_the_rest_prune_channel_by_channel():
    net = create_model("nano-b", pretrained=False)
    masks = compute_masks(net, {"backbone_late": 0.3, "cbam": 0.3, "heads": 0.3, "ssh": 0.3, "bifpn": 0.3})
    kept = {name: int(m.sum()) for name, m in masks.items()}
    assert kept["block5"] == 96  # 128 - floor(38.4) = 90 -> nearest multiple of 16
    assert kept["neck"] == 48  # 36 per SSH group - 10 = 26 -> nearest multiple of 8 per group
    assert kept["attention_in2_hidden"] == 32 - 9  # no depthwise conv: channel by channel
    assert kept["ssh0_mid"] == 2 * (9 - 2)  # grouped: equal numbers per group
    assert kept["ssh0_out3x3"] == 2 * (18 - 5)


def test_budget_fit_moves_rates_the_least_distance_onto_the_band():
    net = create_model("nano-b", pretrained=False)
    low, high = budget_bounds(SearchConfig(target_params=150_000, tolerance=0.1))
    assert (low, high) == (135_000, 165_000)
    light = {g: lo for g, (lo, _) in LAYER_GROUPS.items()}  # too many parameters left: prune more
    fit = fit_to_budget(net, light, low, high)
    assert fit.feasible and low <= fit.params <= high == 165_000
    assert fit.params == params_at_rates(net, fit.rates)
    # a slightly smaller move (5 % less of the way to the upper bounds) misses the band: the move is minimal
    t = (fit.rates["backbone_late"] - light["backbone_late"]) / (LAYER_GROUPS["backbone_late"][1] - 0.1)
    shorter = {g: light[g] + 0.95 * t * (LAYER_GROUPS[g][1] - light[g]) for g in LAYER_GROUPS}
    assert params_at_rates(net, shorter) > high
    heavy = {g: hi for g, (_, hi) in LAYER_GROUPS.items()}  # below the band: prune less
    fit = fit_to_budget(net, heavy, low, high)
    assert fit.feasible and all(fit.rates[g] <= heavy[g] for g in LAYER_GROUPS)
    inside = fit_to_budget(net, fit.rates, low, high)
    assert inside.rates == fit.rates  # already in the band: unchanged
    with pytest.raises(SearchError, match="cannot be reached"):
        fit_to_budget(net, light, 20_000, 30_000)


def test_search_never_chooses_an_infeasible_trial(tmp_path):
    study = optuna.create_study(direction="maximize")
    for value, feasible in ((5.0, False), (1.0, True), (2.0, True)):
        trial = optuna.trial.create_trial(
            params={}, distributions={}, value=value, user_attrs={"feasible": feasible, "params": 1}
        )
        study.add_trial(trial)
    assert best_feasible_trial(study).value == 2.0
    infeasible = optuna.create_study(direction="maximize")
    infeasible.add_trial(optuna.trial.create_trial(value=9.0, user_attrs={"feasible": False, "params": 99_000}))
    with pytest.raises(SearchError, match="none of the 1 completed trials met the parameter budget"):
        best_feasible_trial(infeasible)


def test_masked_filter_gets_gradient_and_changes_in_the_next_step():
    """Soft filter pruning zeroes the filter only: BN still passes gradient, so the filter can grow back."""
    net = randomize_batchnorm(create_model("nano-b", pretrained=False)).train()
    masks = compute_masks(net, {"backbone_late": 0.5, "bifpn": 0.5})
    zero_filters(net, masks)
    weight = net.backbone.blocks[5].pw.conv.weight
    pruned = ~masks["block5"]
    assert (weight[pruned] == 0).all()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    images = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 50
    loss = sum(out.square().mean() for out in net(images))
    loss.backward()
    assert weight.grad[pruned].abs().sum() > 0
    optimizer.step()
    assert (weight[pruned] != 0).any(dim=(1, 2, 3)).all()  # every pruned filter moved off zero
    # the deployed view (apply_masks) zeroes BN too: there the pruned channels are dead, as hard pruning needs
    apply_masks(net, masks)
    assert (net.backbone.blocks[5].pw.bn.weight[pruned] == 0).all()


def test_deployed_nano_b_in_range_loads_without_pruning_code_and_exports(tmp_path):
    net = randomize_batchnorm(create_model("nano-b"))
    rates = {"backbone_early": 0.2, "backbone_late": 0.45, "cbam": 0.3, "bifpn": 0.3, "ssh": 0.3, "heads": 0.15}
    masked, _, deployed = masked_and_pruned(net, rates)
    params = count_parameters(deployed)
    assert 120_000 <= params <= 180_000, params
    path = save_checkpoint(deployed, tmp_path / "deployed.safetensors")
    assert path.stat().st_size < 1_000_000
    code = (
        "import sys; sys.modules['featherface.pruning'] = None\n"  # any import of the pruning package fails
        "import torch; from featherface.models.checkpoint import load_checkpoint\n"
        f"net, _ = load_checkpoint({str(path)!r}); out = net.eval()(torch.zeros(1, 3, 64, 64))\n"
        "print(sum(p.numel() for p in net.parameters()))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.strip()) == params
    loaded, _ = load_checkpoint(path)
    export_onnx(loaded, tmp_path / "deployed.onnx")  # raises unless onnxruntime matches torch to 1e-4
    clear_cbam_masks(masked)


def test_pruned_config_is_plain_numbers():
    net = DetectorNet(featherface_v1_config())
    _, _, pruned = masked_and_pruned(net, {"bifpn": 0.5, "heads": 0.3})
    # the neck carries depthwise convs: 72 -> 36 kept, rounded to the 16-channel alignment: 32; the SSH 3x3
    # branch feeds only the heads' 1x1 convs: 40 -> 40 - floor(0.3 * 40) = 28, channel by channel
    assert pruned.config.neck.channels == 32
    assert pruned.config.shuffle_groups == 1
    assert pruned.config.context.levels[0].out3x3 == 28


def _worker(storage, trials, delay):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.bo_worker", storage, str(trials), str(delay)], cwd=REPO, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip


def _complete(storage):
    names = [n for n in optuna.get_all_study_names(storage) if n.startswith(STUDY_PREFIX)]
    if not names:
        raise KeyError("no study yet")
    study = optuna.load_study(study_name=names[0], storage=storage)
    return study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))


@pytest.mark.slow
def test_killed_study_resumes(tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    worker = _worker(storage, 8, 0.4)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        time.sleep(0.2)
        try:
            if len(_complete(storage)) >= 3:
                break
        except (KeyError, optuna.exceptions.StorageInternalError):
            continue
    worker.kill()
    worker.wait()
    done = len(_complete(storage))
    assert 3 <= done < 8
    rerun = _worker(storage, 8, 0.0)
    assert rerun.wait(timeout=180) == 0, rerun.stderr.read().decode()[-2000:]
    trials = _complete(storage)
    assert len(trials) == 8
    # the probe ran once, first: the resumed run did not start the study over
    assert trials[0].number == 0
    assert trials[0].params == pytest.approx(probe_rates(create_model("nano-b", pretrained=False), SearchConfig()))


@pytest.mark.slow
def test_two_workers_share_one_sqlite_study(tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    optuna.storages.RDBStorage(storage)  # the schema exists before two processes race to create it
    workers = [_worker(storage, 8, 0.3) for _ in range(2)]
    for w in workers:
        assert w.wait(timeout=240) == 0, w.stderr.read().decode()[-2000:]
    trials = _complete(storage)
    assert 8 <= len(trials) <= 9  # a worker may finish the trial it began as the other reached the budget
    assert len({t.user_attrs["worker"] for t in trials}) == 2
    # one probe, at trial 0, and no start point drawn twice by the equally seeded workers
    probe = probe_rates(create_model("nano-b", pretrained=False), SearchConfig())
    probes = [t for t in trials if t.params == pytest.approx(probe)]
    assert [t.number for t in probes] == [0]
    assert len({tuple(sorted(t.params.items())) for t in trials}) == len(trials)


@pytest.mark.slow
def test_prune_command_resumes_its_study_and_finetune_deploys(tmp_path, capsys):
    from featherface.cli import main

    from .test_pipeline import TINY

    config = tmp_path / "tiny.yaml"
    config.write_text(TINY)
    run = tmp_path / "prune"
    common = ["--model", "nano-b", "--data", "sample:train", "--val", "sample:val", "--config", str(config),
              "--out", str(run), "--device", "cpu"]  # fmt: skip
    assert main(["prune", *common, "--trials", "2", "--json", str(tmp_path / "a.json")]) == 0
    assert main(["prune", *common, "--trials", "3", "--resume", "--json", str(tmp_path / "b.json")]) == 0
    import json

    first, second = (json.loads((tmp_path / n).read_text()) for n in ("a.json", "b.json"))
    assert len(first["trials"]) == 2 and len(second["trials"]) == 3
    assert second["trials"][0]["rates"] == first["trials"][0]["rates"]  # the study went on, not over
    assert set(second["rates"]) == set(LAYER_GROUPS)
    out = tmp_path / "ft"
    finetune_args = ["--model", str(run), "--data", "sample:train", "--val", "sample:val", "--config", str(config)]
    assert main(["finetune", *finetune_args, "--out", str(out), "--device", "cpu"]) == 0
    deployed, meta = load_checkpoint(out)
    assert meta["params"] == count_parameters(deployed) == second["params_pruned"]
    assert meta["masked_vs_deployed_max_diff"] <= 1e-4


def test_probe_first_sampler_fixes_start_points_by_trial_number():
    probe = {g: min(max(0.57, lo), hi) for g, (lo, hi) in LAYER_GROUPS.items()}

    def draws(seed: int) -> list[dict[str, float]]:
        study = optuna.create_study(sampler=ProbeFirstSampler(probe, seed, n_startup=4), direction="maximize")
        study.optimize(lambda t: -sum(t.suggest_float(g, lo, hi) for g, (lo, hi) in LAYER_GROUPS.items()), 4)
        return [t.params for t in study.trials]

    first, again, other = draws(0), draws(0), draws(1)
    assert first[0] == probe == other[0]
    assert first == again  # a trial's start point is a function of (seed, number)
    assert all(a != b for a, b in zip(first[1:], other[1:], strict=True))
    for params in first:
        assert all(LAYER_GROUPS[g][0] <= v <= LAYER_GROUPS[g][1] for g, v in params.items())
    assert len({p["backbone_early"] for p in first}) == 4 and first[1]["backbone_early"] != first[1]["backbone_late"]


def test_trial_value_scales_the_loss_by_relative_time():
    off = SearchConfig()
    aware = SearchConfig(latency_exponent=0.5)
    scores = {"val_loss": 20.0, "latency_ratio": 0.64}
    assert trial_value(scores, off) == -20.0  # the authors' objective ignores time
    assert trial_value(scores, aware) == pytest.approx(-20.0 * 0.8)
    slower = {"val_loss": 20.0, "latency_ratio": 0.81}
    assert trial_value(scores, aware) > trial_value(slower, aware)


def test_latency_target_charges_only_time_above_it():
    target = SearchConfig(latency_exponent=2.0, latency_target=0.7)
    assert trial_value({"val_loss": 20.0, "latency_ratio": 0.64}, target) == -20.0  # under the target: free
    assert trial_value({"val_loss": 20.0, "latency_ratio": 0.7}, target) == -20.0
    assert trial_value({"val_loss": 20.0, "latency_ratio": 0.77}, target) == pytest.approx(-20.0 * 1.1**2)
    # a better loss under the target beats a faster but worse candidate; over it, time is paid for
    assert trial_value({"val_loss": 19.0, "latency_ratio": 0.69}, target) > trial_value(
        {"val_loss": 20.0, "latency_ratio": 0.55}, target
    )
    assert trial_value({"val_loss": 19.0, "latency_ratio": 0.84}, target) < trial_value(
        {"val_loss": 20.0, "latency_ratio": 0.55}, target
    )


def test_a_latency_target_without_the_latency_term_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"^latency_target: latency_target needs .*\(latency_exponent > 0\)"):
        SearchConfig(trials=1, latency_target=0.6)  # refused when made
    net = create_model("nano-b", pretrained=False)
    config = SearchConfig(trials=1)
    config.latency_target = 0.6  # set past the check: the search refuses it too
    with pytest.raises(SearchError, match="latency_exponent"):
        run_search(net, lambda c, m: {"val_loss": 1.0}, config, f"sqlite:///{tmp_path / 's.db'}")
    assert "latency_target" not in study_settings(net, SearchConfig())["search"]  # older studies keep their names


def test_a_config_with_a_latency_target_but_no_latency_term_is_refused_at_load(tmp_path):
    from featherface.config_schema import ConfigError
    from featherface.pruning.phases import load_prune_config

    path = tmp_path / "c.yaml"
    path.write_text("prune:\n  search:\n    latency_target: 0.6\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: prune\.search\.latency_target: .*latency_exponent > 0"):
        load_prune_config(path)
    path.write_text("prune:\n  search:\n    latency_target: 0.6\n    latency_exponent: 2\n")
    assert load_prune_config(path).search.latency_target == 0.6


def test_hardware_aware_search_records_and_uses_the_latency(tmp_path):
    net = create_model("nano-b", pretrained=False)
    seen = []

    def latency(config):  # a stand-in cost: the fraction of the 320^2-160^2 widths kept
        seen.append(config)
        return sum(w for w, _ in config.backbone.blocks[:3]) / sum(w for w, _ in net.config.backbone.blocks[:3])

    config = SearchConfig(trials=3, latency_exponent=1.0)
    study = run_search(net, lambda c, m: {"val_loss": 10.0}, config, f"sqlite:///{tmp_path / 's.db'}", None, latency)
    assert len(seen) == 3
    for trial in study.trials:
        ratio = trial.user_attrs["latency_ratio"]
        assert 0 < ratio <= 1
        assert trial.value == pytest.approx(-10.0 * ratio)
        masks = compute_masks(copy.deepcopy(net), trial.user_attrs["rates"])
        assert pruned_config(net, masks).to_dict() == seen[trial.number].to_dict()  # the trial's own architecture


def test_relative_latency_probe_times_deployment_graphs(monkeypatch):
    """The probe runs the candidate's and the reference's exported deployment graphs on its batch and divides the
    candidate's median time by the reference's. The clock is stood in for: medians 2 ms and 5 ms give 0.4."""
    from featherface.latency import RelativeLatency

    timed = {}

    def round_robin(runs, repeats, warmup=3):
        timed.update(repeats=repeats, outputs={key: run() for key, run in runs.items()})
        return {"candidate": [3.0, 1.0, 2.0], "reference": [4.0, 6.0, 5.0]}

    monkeypatch.setattr(sys.modules[RelativeLatency.__module__], "time_round_robin", round_robin)
    probe = RelativeLatency(nano_b_config(), size=128, repeats=2)
    net = create_model("nano-b", pretrained=False)
    masks = compute_masks(net, probe_rates(net, SearchConfig()))
    assert probe(pruned_config(net, masks)) == pytest.approx(2.0 / 5.0)
    assert timed["repeats"] == 2 and set(timed["outputs"]) == {"candidate", "reference"}
    priors = 2 * (16 * 16 + 8 * 8 + 4 * 4)  # two anchors per cell at strides 8, 16, 32 of a 128-px input
    for outputs in timed["outputs"].values():  # boxes, face logits, landmarks
        assert [output.shape for output in outputs] == [(1, priors, 4), (1, priors, 2), (1, priors, 10)]


def test_trials_with_the_same_widths_reuse_the_first_ones_scores(tmp_path, monkeypatch):
    """Rates inside one width step keep the same filters, so a trial repeating an earlier one is not retrained."""
    net = create_model("nano-b", pretrained=False)
    config = SearchConfig(trials=3)
    probe = probe_rates(net, config)
    # every trial suggests the probe's rates, nudged inside the same width step for trials after the first
    monkeypatch.setattr(
        ProbeFirstSampler,
        "sample_independent",
        lambda self, study, trial, name, dist: probe[name] + 1e-6 * trial.number,
    )
    calls = []

    def evaluate(candidate, masks):
        calls.append(masks)
        return {"val_loss": 3.5, "worker": 7}  # any score the evaluation returns is reused with the loss

    study = run_search(net, evaluate, config, f"sqlite:///{tmp_path / 's.db'}", None)
    assert len(calls) == 1
    trials = sorted(study.trials, key=lambda t: t.number)
    assert [t.user_attrs.get("same_widths_as") for t in trials] == [None, 0, 0]
    assert [t.value for t in trials] == [-3.5, -3.5, -3.5]
    assert trials[1].user_attrs["widths"] == trials[0].user_attrs["widths"]
    assert [t.user_attrs["worker"] for t in trials] == [7, 7, 7]


def test_the_pruning_phases_take_their_own_backbone_lr_share(tmp_path):
    """prune.backbone_lr_scale overrides train's in phase 3 (0 here: the backbone's weights stay bit for bit while
    the layers above move), and a changed share is a different study: trials scored at another backbone lr are
    not resumed."""
    from featherface.data.sample import load_sample
    from featherface.losses.distill import DistillConfig
    from featherface.pruning.phases import PruneConfig, _search_settings, finetune, save_masks
    from featherface.training.config import TrainConfig

    net = create_model("nano-b", seed=0)
    masks = compute_masks(net, {g: lo for g, (lo, _) in LAYER_GROUPS.items()})
    apply_masks(net, masks)
    run = tmp_path / "prune"
    run.mkdir()
    save_checkpoint(net, run / "soft_pruned.safetensors")
    save_masks(masks, run / "masks.safetensors")
    train = TrainConfig(data="sample:train", batch_size=2, workers=0, warmup_epochs=0, backbone_lr_scale=1.0)
    train.augment.image_size = 96
    config = PruneConfig(finetune_epochs=1, finetune_lr=1e-2, backbone_lr_scale=0.0)
    finetune(run, train, config, tmp_path / "ft", train_annotations=load_sample("train"))
    before, _ = load_checkpoint(run / "soft_pruned.safetensors")
    after, _ = load_checkpoint(tmp_path / "ft" / "last.safetensors")
    old, new = before.state_dict(), after.state_dict()
    weights = [k for k in old if k.endswith(".weight") and old[k].dim() == 4]
    assert [k for k in weights if k.startswith("backbone.") and not torch.equal(old[k], new[k])] == []
    assert any(not torch.equal(old[k], new[k]) for k in weights if not k.startswith("backbone."))

    settings = [
        _search_settings(train, PruneConfig(backbone_lr_scale=s), 8, 4, None, DistillConfig()) for s in (None, 1.0, 0.1)
    ]
    assert settings[0] == settings[1] != settings[2]
    assert settings[2]["trial"]["backbone_lr_scale"] == 0.1
    # at the defaults the settings are what they were before the option existed: older studies keep their names
    assert settings[0]["trial"] == {"epochs": 1, "lr": 1e-3, "repeats": None, "image_size": 96, "batch_size": 2}


def test_a_trial_line_names_its_count_and_its_study_number(capsys):
    from featherface.pruning.phases import _print_trial

    _print_trial(16, 16, {"number": 15, "val_loss": 13.15931, "params": 145327, "feasible": True,
                          "latency_ratio": 0.6234, "same_widths_as": 3})  # fmt: skip
    assert capsys.readouterr().out == (
        "trial 16/16 (#15): val loss 13.1593  params 145,327  time 0.62x unpruned  (same widths as #3: scores reused)\n"
    )

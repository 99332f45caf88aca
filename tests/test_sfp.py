"""Soft filter pruning, the final masks, study settings and the pruning phases' resumability."""

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import torch

from featherface.models.checkpoint import load_checkpoint
from featherface.models.zoo import create_model
from featherface.pruning.hard import hard_prune
from featherface.pruning.masks import apply_masks, compute_masks
from featherface.pruning.phases import PruneConfig, SoftPruningHook, load_masks, soft_prune
from featherface.pruning.search import STUDY_PREFIX, SearchConfig, run_search
from featherface.training.config import load_train_config

from .conftest import randomize_batchnorm

REPO = Path(__file__).parents[1]


def test_sfp_brings_back_a_pruned_filter_the_task_needs():
    """A task that rewards one pruned channel's response and penalises a kept one's filter: after an epoch of
    training between SFP steps the pruned filter has grown back, and the next FPGM step keeps it."""
    torch.manual_seed(0)
    net = randomize_batchnorm(create_model("nano-b", pretrained=False)).train()
    hook = SoftPruningHook({"backbone_late": 0.25}, epochs=2)
    hook(0, net)
    first = hook.masks["block5"].clone()
    needed = int(torch.nonzero(~first)[0])  # a filter SFP has just zeroed
    unneeded = int(torch.nonzero(first)[0])  # a kept filter the task does not want
    conv = net.backbone.blocks[5].pw.conv
    outputs = []
    handle = conv.register_forward_hook(lambda _m, _i, out: outputs.append(out))
    optimizer = torch.optim.SGD(net.parameters(), lr=0.05)
    images = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1)) * 50
    for _ in range(20):  # one "epoch" of training with the filter free to move
        outputs.clear()
        net(images)
        loss = -outputs[0][:, needed].mean() + 5 * conv.weight[unneeded].square().sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    handle.remove()
    hook(1, net)
    second = hook.masks["block5"]
    assert not first[needed] and second[needed]  # pruned, then back
    assert first[unneeded] and not second[unneeded]
    assert int(first.sum()) == int(second.sum()) == 96  # the rate holds: 128 - 32
    assert len(hook.history) == 2


TINY_SFP = """
train:
  batch_size: 2
  dataset_repeats: 1
  optimizer: adamw
  lr: 1.0e-2
  warmup_epochs: 0
  schedule: cosine
  workers: 0
  augment: {image_size: 128}
"""


def test_hard_pruning_uses_the_final_sfp_masks_and_equals_the_masked_network(tmp_path):
    from featherface.data.sample import load_sample

    config_file = tmp_path / "tiny.yaml"
    config_file.write_text(TINY_SFP)
    train = load_train_config(config_file, {"device": "cpu"})
    net = randomize_batchnorm(create_model("nano-b"))
    rates = {"backbone_late": 0.3, "cbam": 0.3, "bifpn": 0.3, "ssh": 0.3, "heads": 0.2}
    config = PruneConfig(sfp_epochs=2)
    soft_prune(net, rates, train, config, tmp_path, load_sample("val"), train_annotations=load_sample("train"))
    pruned, _ = load_checkpoint(tmp_path / "soft_pruned.safetensors")
    masks = load_masks(tmp_path / "masks.safetensors")
    assert {k: v.tolist() for k, v in masks.items()} == {
        k: v.tolist() for k, v in load_masks(tmp_path / "sfp" / "masks.safetensors").items()
    }
    # the masks are those of the last SFP step: exactly its zeroed filters (a recompute from the final weights
    # ranks the zero filters anew and may keep some of them)
    params = dict(pruned.named_parameters())
    from featherface.pruning.groups import channel_spaces

    for space in channel_spaces(pruned):
        rows = torch.cat([params[k].detach().reshape(space.size, -1) for k in space.filters], dim=1)
        zero = (rows == 0).all(dim=1)
        assert torch.equal(zero, ~masks[space.name]), space.name
    masked = pruned.eval()
    apply_masks(masked, masks)
    deployed = hard_prune(masked, masks).eval()
    x = torch.randn(1, 3, 96, 128, generator=torch.Generator().manual_seed(0)) * 60
    with torch.no_grad():
        for a, b in zip(masked(x), deployed(x), strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-4)


def test_oneshot_pruning_keeps_its_first_masks(tmp_path):
    from featherface.data.sample import load_sample

    config_file = tmp_path / "tiny.yaml"
    config_file.write_text(TINY_SFP)
    train = load_train_config(config_file, {"device": "cpu"})
    net = randomize_batchnorm(create_model("nano-b"))
    rates = {"backbone_late": 0.3, "bifpn": 0.3}
    first = compute_masks(net, rates)
    soft_prune(
        net, rates, train, PruneConfig(sfp_epochs=1, method="oneshot"), tmp_path, load_sample("val"),
        train_annotations=load_sample("train"),
    )  # fmt: skip
    pruned, _ = load_checkpoint(tmp_path / "soft_pruned.safetensors")
    masks = load_masks(tmp_path / "masks.safetensors")
    assert all(torch.equal(masks[k], first[k]) for k in first)
    assert (pruned.backbone.blocks[5].pw.conv.weight[~first["block5"]] == 0).all()  # frozen at zero


def _study_names(storage: str) -> list[str]:
    return sorted(n for n in optuna.get_all_study_names(storage) if n.startswith(STUDY_PREFIX))


def test_a_storage_reused_with_other_settings_starts_a_new_study_and_keeps_the_old(tmp_path):
    storage = f"sqlite:///{tmp_path / 's.db'}"
    net = create_model("nano-b", pretrained=False)
    said = []
    run_search(net, lambda c, m: {"val_loss": 1.0}, SearchConfig(trials=2), storage, say=said.append)
    assert said == []
    (first_name,) = _study_names(storage)
    study = run_search(
        net, lambda c, m: {"val_loss": 1.0}, SearchConfig(trials=2, target_params=130_000), storage, say=said.append
    )
    names = _study_names(storage)
    assert len(names) == 2 and study.study_name != first_name
    assert len(said) == 1 and first_name in said[0] and "target_params 150000 -> 130000" in said[0]
    old = optuna.load_study(study_name=first_name, storage=storage)
    assert len(old.trials) == 2 and old.user_attrs["settings"]["search"]["target_params"] == 150_000
    for trial in study.trials:  # the new study's trials meet its own budget
        assert 117_000 <= trial.user_attrs["params"] <= 143_000
    # the same settings again continue the first study: more trials, no new study
    run_search(net, lambda c, m: {"val_loss": 1.0}, SearchConfig(trials=3), storage, say=said.append)
    assert _study_names(storage) == names and len(optuna.load_study(study_name=first_name, storage=storage).trials) == 3


def test_config_sections_load_alone_and_pipeline_needs_its_section(tmp_path):
    from featherface.pipeline import load_pipeline_config
    from featherface.pruning.phases import load_prune_config
    from featherface.training.distill import load_distill_config

    only_prune = tmp_path / "prune.yaml"
    only_prune.write_text("prune:\n  sfp_epochs: 3\ndistill:\n  temperature: 2.0\n  alpha: 0.5\n")
    assert load_train_config(only_prune).epochs == 250  # no train: section -> defaults, not an error
    assert load_prune_config(only_prune).sfp_epochs == 3
    distill = load_distill_config(str(only_prune), {"alpha": 0.9, "temperature": None})
    assert (distill.temperature, distill.alpha) == (2.0, 0.9)
    with pytest.raises(ValueError, match="no pipeline: section"):
        load_pipeline_config(only_prune)
    with pytest.raises(ValueError, match="no pipeline: section"):
        load_pipeline_config("widerface")
    bad = tmp_path / "bad.yaml"
    bad.write_text("distill:\n  temprature: 2\n")
    with pytest.raises(ValueError, match="unknown distillation option"):
        load_distill_config(str(bad))


KILLABLE = """
train:
  batch_size: 2
  dataset_repeats: 3
  optimizer: adamw
  lr: 1.0e-3
  warmup_epochs: 0
  schedule: cosine
  workers: 0
  val_every: 1
  augment: {image_size: 128}
prune:
  search: {trials: 2, target_params: 150000}
  trial_epochs: 1
  trial_repeats: 1
  sfp_epochs: 4
  finetune_epochs: 1
pipeline:
  data: sample:train
  val: sample:val
  teacher: retinaface-mnet025
  student: nano-b
  distill_epochs: 1
  benchmark_size: 128
  benchmark_repeats: 2
"""


def _epochs(path: Path) -> list[int]:
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return [int(row["epoch"]) for row in csv.DictReader(f)]


@pytest.mark.slow
def test_sigkill_during_sfp_then_the_same_pipeline_command_continues_sfp(tmp_path):
    config = tmp_path / "killable.yaml"
    config.write_text(KILLABLE)
    out = tmp_path / "run"
    command = [sys.executable, "-m", "featherface.cli", "pipeline", "--config", str(config), "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    metrics = out / "2-prune" / "sfp" / "metrics.csv"
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline and process.poll() is None and not _epochs(metrics):
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, process.stderr.read().decode()[-2000:]
    done = _epochs(metrics)
    assert 1 <= len(done) < 4, f"SFP not caught mid-phase: {done}"
    storage = f"sqlite:///{out / '2-prune' / 'study.db'}"
    (name,) = _study_names(storage)
    trials_before = len(optuna.load_study(study_name=name, storage=storage).trials)
    rerun = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert _epochs(metrics) == [1, 2, 3, 4]  # continued, no epoch twice
    assert len(optuna.load_study(study_name=name, storage=storage).trials) == trials_before == 2
    assert (out / "deployed.safetensors").is_file()

"""The trainer: learns, checkpoints atomically, resumes exactly (also after SIGKILL), guards against NaN, DDP."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from featherface.config_schema import build
from featherface.models.checkpoint import load_checkpoint, save_checkpoint
from featherface.models.zoo import create_model
from featherface.training.config import TrainConfig, load_train_config
from featherface.training.schedule import lr_multiplier
from featherface.training.trainer import Trainer, TrainingError


def read_rows(run: Path) -> list[dict]:
    with open(run / "metrics.csv") as f:
        return list(csv.DictReader(f))


def small_config(**overrides) -> TrainConfig:
    config = load_train_config("sample")
    config.augment.image_size = 128
    config.epochs = 2
    config.batch_size = 4
    config.dataset_repeats = 2
    config.workers = 0
    config.device = "cpu"
    config.val_every = 1
    for key, value in overrides.items():
        setattr(config, key, value)
    return config


def test_schedule_warms_up_then_decays():
    step = lr_multiplier("step", 10, 30, 1, [20, 25], 0.1, 0.0)
    assert step(0) < 0.01 and step(5) == pytest.approx(0.5 + 0.5e-3 * 0.5, rel=1e-3)
    assert step(10) == 1.0 and step(199) == 1.0 and step(200) == pytest.approx(0.1) and step(250) == pytest.approx(0.01)
    cosine = lr_multiplier("cosine", 10, 30, 0, [], 0.1, 0.05)
    assert cosine(0) == 1.0 and cosine(300) == pytest.approx(0.05)
    assert cosine(150) == pytest.approx(0.05 + 0.95 * 0.5)


def test_unknown_training_option_is_named():
    with pytest.raises(ValueError, match=r"^options\.yaml: bogus: unknown training option \(known: model, data,"):
        build(TrainConfig, {"bogus": 1}, "options.yaml", what="training")


def test_training_writes_checkpoints_metrics_and_resumes_exactly(tmp_path):
    torch.manual_seed(0)
    straight = Trainer(create_model("nano-b"), small_config(val="sample:val"), tmp_path / "straight").fit()
    assert straight.epochs_done == 2
    files = {p.name for p in (tmp_path / "straight").iterdir()}
    assert {
        "last.safetensors",
        "last.json",
        "best.safetensors",
        "best.json",
        "trainer_state.pt",
        "metrics.csv",
    } <= files
    rows = read_rows(tmp_path / "straight")
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert all(float(r["loss_total"]) > 0 and r["val_ap"] != "" for r in rows)

    torch.manual_seed(0)
    Trainer(create_model("nano-b"), small_config(val="sample:val", epochs=1), tmp_path / "split").fit()
    resumed = Trainer(create_model("nano-b"), small_config(val="sample:val"), tmp_path / "split", resume=True)
    assert resumed.start_epoch == 1
    resumed.fit()
    a, _ = load_checkpoint(tmp_path / "straight" / "last.safetensors")
    b, meta = load_checkpoint(tmp_path / "split" / "last.safetensors")
    assert meta["epoch"] == 2
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        torch.testing.assert_close(x, y, rtol=0, atol=0, msg=name)


class ExplodingObjective(torch.nn.Module):
    def forward(self, net, images, targets):
        out = net(images)[0].sum()
        return {"total": out * float("nan")}


def test_nan_loss_stops_with_a_clear_message(tmp_path):
    trainer = Trainer(create_model("nano-b"), small_config(), tmp_path, objective=ExplodingObjective())
    with pytest.raises(TrainingError, match="diverged"):
        trainer.fit()
    assert not (tmp_path / "last.safetensors").exists()


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume(tmp_path):
    run = tmp_path / "run"
    config = tmp_path / "tiny.yaml"
    config.write_text(
        "train:\n  epochs: 4\n  batch_size: 2\n  dataset_repeats: 4\n  optimizer: adamw\n  lr: 1.0e-3\n"
        "  warmup_epochs: 0\n  schedule: cosine\n  workers: 0\n  augment: {image_size: 128}\n"
    )
    command = [sys.executable, "-m", "featherface.cli", "train", "--model", "nano-b", "--data", "sample:train",
               "--out", str(run), "--config", str(config), "--device", "cpu"]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = run / "trainer_state.pt"
    deadline = time.monotonic() + 240
    while not state.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    assert state.exists(), "first epoch never finished"
    time.sleep(0.5)  # well inside the second epoch (each takes seconds)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    # every file on disk is complete (no torn writes); the resume state and the last weights are each whole and at
    # most one epoch apart, however the kill fell between their writes
    _, meta = load_checkpoint(run / "last.safetensors")
    assert meta["epoch"] >= 1
    saved = torch.load(state, weights_only=True)
    assert abs(saved["epoch"] - meta["epoch"]) <= 1
    result = subprocess.run([*command, "--resume"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    _, meta = load_checkpoint(run / "last.safetensors")
    assert meta["epoch"] == 4
    epochs = [int(r["epoch"]) for r in read_rows(run)]
    assert epochs[-1] == 4 and sorted(set(epochs)) == [1, 2, 3, 4]


DDP_SCRIPT = """
import json, sys, torch
from featherface.models.zoo import create_model
from featherface.training.trainer import Trainer
from tests.test_training import small_config
torch.manual_seed(0)
config = small_config(batch_size=int(sys.argv[2]), epochs=2, optimizer="sgd", lr=1e-3, warmup_epochs=0,
                      schedule="step", lr_steps=[], dataset_repeats=2)
result = Trainer(create_model("nano-b"), config, sys.argv[1]).fit()
"""


@pytest.mark.slow
def test_ddp_two_gloo_processes_match_one_process(tmp_path):
    script = tmp_path / "ddp_run.py"
    script.write_text(DDP_SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1]), "OMP_NUM_THREADS": "1"}
    single = subprocess.run([sys.executable, str(script), str(tmp_path / "one"), "4"], env=env, capture_output=True,
                            text=True, check=False)  # fmt: skip
    assert single.returncode == 0, single.stderr[-2000:]
    ddp = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script),
         str(tmp_path / "two"), "2"],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert ddp.returncode == 0, ddp.stderr[-3000:]

    def losses(run):
        return [float(r["loss_total"]) for r in read_rows(tmp_path / run)]

    one, two = losses("one"), losses("two")
    assert len(one) == len(two) == 2
    # same global batch (4) and data order; per-process BatchNorm statistics differ, hence the tolerance
    for a, b in zip(one, two, strict=True):
        assert abs(a - b) / a < 0.05, (one, two)
    assert json.loads((tmp_path / "two" / "last.json").read_text())["metadata"]["epoch"] == 2


def test_batchnorm_recalibration_measures_the_calibration_batches():
    from featherface.data.dataset import FaceDataset
    from featherface.data.sample import load_sample
    from featherface.training.trainer import recalibrate_batchnorm

    config = small_config(batch_size=6)
    net = create_model("nano-b")
    annotations = load_sample("train")
    recalibrate_batchnorm(net, annotations, config, batches=1)
    dataset = FaceDataset(annotations, config.augment, train=False)
    images = torch.stack([dataset[i][0] for i in range(len(dataset))])
    with torch.no_grad():
        stem_out = net.backbone.stem.conv(images)
    torch.testing.assert_close(net.backbone.stem.bn.running_mean, stem_out.mean(dim=(0, 2, 3)), rtol=1e-4, atol=1e-3)
    assert net.backbone.stem.bn.momentum == 0.1  # restored


def test_channels_last_training_steps_as_the_contiguous_one(tmp_path):
    """The same seeded step in NHWC and NCHW: the loss and every updated weight agree to float rounding, the
    network really is channels-last, and its checkpoint is saved contiguous."""
    steps = {}
    for channels_last in (False, True):
        trainer = Trainer(create_model("nano-b", seed=0), small_config(channels_last=channels_last),
                          tmp_path / str(channels_last))  # fmt: skip
        images, targets = next(iter(trainer.loader))
        losses = trainer._step(images, targets)
        weights = {name: p.detach().clone().contiguous() for name, p in trainer.net.named_parameters()}
        four_d = [p for p in trainer.net.parameters() if p.dim() == 4]
        assert all(p.is_contiguous(memory_format=torch.channels_last) for p in four_d) == channels_last
        steps[channels_last] = (float(losses["total"]), weights)
        if channels_last:  # safetensors takes contiguous tensors only: the save makes them so
            saved, _ = load_checkpoint(save_checkpoint(trainer.net, tmp_path / "nhwc.safetensors"))
            for name, tensor in saved.state_dict().items():
                torch.testing.assert_close(tensor, trainer.net.state_dict()[name], atol=0, rtol=0, msg=name)
    assert steps[True][0] == pytest.approx(steps[False][0], rel=1e-5)
    for name, weight in steps[False][1].items():
        torch.testing.assert_close(steps[True][1][name], weight, atol=1e-4, rtol=1e-4, msg=name)


def _bn_statistics(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: t.clone() for name, t in module.state_dict().items() if "running_" in name}


def test_a_frozen_backbone_keeps_its_weights_and_statistics(tmp_path):
    """backbone_lr_scale 0 and freeze_backbone_bn: one training step leaves the backbone exactly as loaded (weights
    and BN statistics) while the layers above it learn and their BN statistics move."""
    trainer = Trainer(create_model("nano-b", seed=0), small_config(backbone_lr_scale=0.0, freeze_backbone_bn=True),
                      tmp_path)  # fmt: skip
    backbone = {name: t.clone() for name, t in trainer.net.backbone.state_dict().items()}
    rest = {name: p.detach().clone() for name, p in trainer.net.named_parameters() if not name.startswith("backbone.")}
    rest_statistics = _bn_statistics(trainer.net.neck)
    trainer._train_mode()
    images, targets = next(iter(trainer.loader))
    trainer._step(images, targets)
    for name, tensor in trainer.net.backbone.state_dict().items():
        torch.testing.assert_close(tensor, backbone[name], atol=0, rtol=0, msg=name)
    moved = [name for name, p in trainer.net.named_parameters() if name in rest and not torch.equal(p, rest[name])]
    assert len(moved) > len(rest) // 2
    assert any(not torch.equal(t, rest_statistics[n]) for n, t in _bn_statistics(trainer.net.neck).items())


def test_backbone_learns_at_its_share_of_the_lr_with_its_statistics_kept(tmp_path):
    trainer = Trainer(create_model("nano-b", seed=0), small_config(backbone_lr_scale=0.1, freeze_backbone_bn=True),
                      tmp_path)  # fmt: skip
    rest_group, backbone_group = trainer.optimizer.param_groups
    assert backbone_group["lr"] == pytest.approx(0.1 * rest_group["lr"])
    assert {id(p) for p in backbone_group["params"]} == {id(p) for p in trainer.net.backbone.parameters()}
    assert not {id(p) for p in rest_group["params"]} & {id(p) for p in backbone_group["params"]}
    statistics = _bn_statistics(trainer.net.backbone)
    weights = {name: p.detach().clone() for name, p in trainer.net.backbone.named_parameters()}
    trainer._train_mode()
    trainer._step(*next(iter(trainer.loader)))
    assert any(not torch.equal(p, weights[name]) for name, p in trainer.net.backbone.named_parameters())
    for name, tensor in _bn_statistics(trainer.net.backbone).items():
        torch.testing.assert_close(tensor, statistics[name], atol=0, rtol=0, msg=name)

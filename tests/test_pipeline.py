"""The main job end to end on a miniature configuration (the real one is `./scripts/main`, ~10 min)."""

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from featherface.cli import main
from featherface.models.checkpoint import load_checkpoint
from featherface.models.zoo import create_model
from featherface.weights import shipped_path

ROOT = Path(__file__).resolve().parent.parent

TINY = """
train:
  batch_size: 2
  dataset_repeats: 1
  optimizer: adamw
  lr: 1.0e-3
  warmup_epochs: 0
  schedule: cosine
  workers: 0
  val_every: 1
  augment: {image_size: 160}
prune:
  search: {trials: 3, target_params: 150000}
  trial_epochs: 1
  trial_repeats: 1
  sfp_epochs: 1
  finetune_epochs: 1
pipeline:
  data: sample:train
  val: sample:val
  teacher: retinaface-mnet025
  student: nano-b
  distill_epochs: 1
  benchmark_size: 160
  benchmark_repeats: 2
"""


@pytest.mark.slow
def test_pipeline_runs_every_phase_and_resumes(tmp_path, capsys):
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY)
    out = tmp_path / "run"
    assert main(["pipeline", "--config", str(config), "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    phases = report["phases"]
    assert list(phases) == [
        "teacher (retinaface-mnet025)", "phase 1: distilled", "phase 2: soft-pruned", "phase 3: deployed"
    ]  # fmt: skip
    deployed = phases["phase 3: deployed"]
    assert deployed["params"] < phases["phase 1: distilled"]["params"]
    assert 135_000 <= deployed["params"] <= 165_000  # the budget is met by construction: 150k +- 10 %
    for row in phases.values():
        assert {"params", "gflops", "ap", "ap50_95", "latency_ms"} <= set(row)
    assert report["sample_set_figures"] is True
    for name in ("phases.png", "pr_curves.png", "detections_val.png", "bo_convergence.png", "rates.png"):
        assert (out / "plots" / name).stat().st_size > 1000, name
    assert "Sample-set figures" in (out / "report.md").read_text()
    net, _ = load_checkpoint(out)  # the run directory resolves to the deployed model
    assert sum(p.numel() for p in net.parameters()) == deployed["params"]
    assert (out / "deployed.onnx").is_file()
    capsys.readouterr()
    # a rerun finds every phase done and only rebuilds the report
    assert main(["pipeline", "--config", str(config), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "phase 1: distilling" not in printed and "phase 2: B-FPGM" not in printed


@pytest.mark.slow
def test_pipeline_trains_a_featherface_v1_teacher_first(tmp_path):
    config = tmp_path / "tiny_v1.yaml"
    config.write_text(TINY.replace("teacher: retinaface-mnet025", "teacher: featherface-v1\n  teacher_epochs: 1"))
    out = tmp_path / "run"
    assert main(["pipeline", "--config", str(config), "--out", str(out)]) == 0
    teacher, meta = load_checkpoint(out / "0-teacher")
    assert teacher.config.name == "featherface-v1" and meta["epoch"] == 1
    report = json.loads((out / "report.json").read_text())
    assert "teacher (featherface-v1)" in report["phases"]
    assert report["phases"]["teacher (featherface-v1)"]["latency_ms"] > 0
    assert (out / "deployed.safetensors").is_file()


def _ship_script():
    spec = importlib.util.spec_from_file_location("ship_pretrained", ROOT / "scripts" / "ship_pretrained.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_skip_pruning_continues_the_deployed_model_and_ships_it_alone(tmp_path, monkeypatch, capsys):
    shipped_net = create_model("nano-b-pretrained")
    shipped_widths = {name: tuple(p.shape) for name, p in shipped_net.named_parameters()}
    config = tmp_path / "continue.yaml"
    config.write_text(
        TINY.replace("student: nano-b", "student: nano-b-pretrained\n  skip_pruning: true\n  calibrate: true")
    )
    out = tmp_path / "run"
    assert main(["pipeline", "--config", str(config), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "phase 2: B-FPGM" not in printed and not (out / "2-prune").exists()
    report = json.loads((out / "report.json").read_text())
    assert list(report["phases"]) == [
        "teacher (retinaface-mnet025)", "start (nano-b-pretrained, shipped)", "phase 1: distilled", "phase 3: deployed"
    ]  # fmt: skip
    markdown = (out / "report.md").read_text()
    assert report["rates"] is None and "No pruning in this run" in markdown and "soft-pruned" not in markdown
    deployed, _ = load_checkpoint(out)
    # the shipped architecture, trained on: every tensor keeps its shape, some weights moved
    assert {name: tuple(p.shape) for name, p in deployed.named_parameters()} == shipped_widths
    moved = [n for n, p in deployed.named_parameters() if not torch.equal(p, dict(shipped_net.named_parameters())[n])]
    assert len(moved) > len(shipped_widths) // 2
    assert (
        report["phases"]["start (nano-b-pretrained, shipped)"]["params"]
        == report["phases"]["phase 3: deployed"]["params"]
    )

    # shipping it replaces nano_b_pretrained only: phase 1's best is the pruned model, not an unpruned student
    ship = _ship_script()
    package = tmp_path / "weights"
    package.mkdir()
    for suffix in (".safetensors", ".json"):  # the shipped model it continued, whose provenance the new one keeps
        source = shipped_path(f"nano_b_pretrained{suffix}")
        (package / source.name).write_bytes(source.read_bytes())
    monkeypatch.setattr(ship, "shipped_path", lambda filename: package / filename)
    assert ship.main([str(out), "--config", str(config), "--commit", "test", "--overwrite"]) == 0
    assert sorted(p.name for p in package.iterdir()) == [
        "nano_b_pretrained.json", "nano_b_pretrained.onnx", "nano_b_pretrained.safetensors"
    ]  # fmt: skip
    net, meta = load_checkpoint(package / "nano_b_pretrained.safetensors")
    assert all(torch.equal(p, q) for p, q in zip(net.parameters(), deployed.parameters(), strict=True))
    provenance = meta["provenance"]
    assert provenance["skip_pruning"] is True and provenance["pruning"] is None
    # the chain back to how the shipped model was pruned: each continuation keeps its start's provenance
    start = provenance["student_provenance"]
    while start["pruning"] is None:
        assert start["skip_pruning"] is True  # only a run without pruning may leave it out
        start = start["student_provenance"]
    assert set(start["pruning"]["rates"]) == {"backbone_early", "backbone_late", "cbam", "bifpn", "ssh", "heads"}

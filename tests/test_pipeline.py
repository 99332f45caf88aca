"""The main job end to end on a miniature configuration (the real one is `./scripts/main`, ~10 min)."""

import json

import pytest

from featherface.cli import main
from featherface.models.checkpoint import load_checkpoint

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

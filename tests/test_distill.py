"""Phase 1 distillation: the loss, its weights, and teacher -> student end to end."""

import csv
import json
import math
from pathlib import Path

import pytest
import torch

from featherface.cli import main
from featherface.losses.distill import S_MAX, DistillationLoss, DistillConfig, soft_target_kl
from featherface.models.checkpoint import load_checkpoint

from .conftest import SAMPLE_IMAGES


def read_rows(run):
    with open(run / "metrics.csv") as f:
        return list(csv.DictReader(f))


def outputs(n=2, p=50, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(n, p, 4, generator=g),
        torch.randn(n, p, 2, generator=g) * 3,
        torch.randn(n, p, 10, generator=g),
    )


def test_distillation_terms_are_zero_when_student_equals_teacher_and_grow_with_divergence():
    loss = DistillationLoss(DistillConfig(confident=0.0))  # every prior carries box/landmark targets
    teacher = outputs()
    same = loss(teacher, teacher)
    for name in ("distill_cls", "distill_box", "distill_landmarks"):
        assert same[name].item() == pytest.approx(0.0, abs=1e-7)
    previous = {name: 0.0 for name in same}
    for scale in (0.1, 0.5, 2.0):
        noise = outputs(seed=1)
        student = tuple(t + scale * e for t, e in zip(teacher, noise, strict=True))
        got = loss(student, teacher)
        for name in ("distill_cls", "distill_box", "distill_landmarks"):
            assert got[name].item() > previous[name]
            previous[name] = got[name].item()


def test_kl_is_scaled_by_t_squared():
    student = torch.tensor([[0.0, 1.0], [2.0, -1.0]])
    teacher = torch.tensor([[1.0, 0.0], [0.5, 0.5]])
    for t in (1.0, 2.0, 4.0):
        p = torch.softmax(teacher / t, -1)
        q = torch.softmax(student / t, -1)
        by_hand = (p * (p / q).log()).sum(-1).mean() * t * t
        assert soft_target_kl(student, teacher, t).item() == pytest.approx(by_hand.item(), rel=1e-5)
    # T^2 keeps the soft-target term's size comparable across temperatures (Hinton et al.): for small logit
    # gaps KL ~ gap^2 / (8 T^2) for two classes, so KL * T^2 hardly moves with T
    small_s, small_t = torch.tensor([[0.0, 0.1]]), torch.tensor([[0.0, -0.1]])
    values = [soft_target_kl(small_s, small_t, t).item() for t in (1.0, 4.0, 8.0)]
    assert max(values) / min(values) < 1.02
    assert values[1] == pytest.approx(0.2**2 / 8, rel=0.02)


def test_learnable_weights_stay_positive_and_bounded():
    torch.manual_seed(0)
    loss = DistillationLoss(DistillConfig(confident=0.0))
    teacher = outputs()
    student = [torch.nn.Parameter(t + torch.randn_like(t)) for t in teacher]
    optimizer = torch.optim.Adam([*student, *loss.parameters()], lr=0.05)
    initial = loss.weights().detach().clone()
    assert initial[2] < initial[0]  # the landmark weight starts lower
    for _ in range(400):
        optimizer.zero_grad()
        total = loss(tuple(student), teacher)["distill"]
        total.backward()
        optimizer.step()
        weights = loss.weights()
        assert torch.isfinite(weights).all()
        assert (weights > 0).all() and (weights <= math.exp(S_MAX) + 1e-6).all()
    # as the student matches the teacher the terms shrink and their weights grow, up to the bound
    assert (loss.weights() > initial).all()


@pytest.mark.slow
def test_featherface_v1_trained_briefly_then_distilled_into_nano_b(tmp_path, capsys):
    tiny = tmp_path / "tiny.yaml"
    tiny.write_text(
        "train:\n  epochs: 1\n  batch_size: 2\n  dataset_repeats: 1\n  optimizer: adamw\n  lr: 1.0e-3\n"
        "  warmup_epochs: 0\n  schedule: cosine\n  workers: 0\n  augment: {image_size: 160}\n"
    )
    teacher_run = tmp_path / "v1"
    assert main(["train", "--model", "featherface-v1", "--data", "sample:train", "--out", str(teacher_run),
                 "--config", str(tiny), "--device", "cpu"]) == 0  # fmt: skip
    student_run = tmp_path / "nano"
    common = ["--config", str(tiny), "--device", "cpu"]
    assert main(["distill", "--teacher", str(teacher_run), "--student", "nano-b", "--data", "sample:train",
                 "--val", "sample:val", "--out", str(student_run), *common]) == 0  # fmt: skip
    net, meta = load_checkpoint(student_run)
    assert net.config.name == "nano-b" and meta["epoch"] == 1
    row = read_rows(student_run)[0]
    assert {"loss_distill_cls", "loss_task_cls", "weight_cls", "weight_box", "weight_landmarks"} <= set(row)
    assert float(row["weight_landmarks"]) < float(row["weight_cls"])
    # a folder of unlabelled photos distils with teacher targets only
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("astronaut.jpg", "camera.jpg"):
        (photos / name).write_bytes((SAMPLE_IMAGES / name).read_bytes())
    unlabelled_run = tmp_path / "unlabelled"
    assert main(["distill", "--teacher", "retinaface-mnet025", "--student", "nano-b", "--data", str(photos),
                 "--out", str(unlabelled_run), "--config", str(tiny), "--device", "cpu"]) == 0  # fmt: skip
    # ... labelled by the teacher's confident faces: hard targets for the task share beside the soft ones
    assert "2 unlabelled images" in capsys.readouterr().out
    row = read_rows(unlabelled_run)[0]
    assert "loss_task_cls" in row and "loss_distill_cls" in row
    (labels,) = (unlabelled_run / "teacher-labels").glob("teacher_labels_*.json")
    cached = json.loads(labels.read_text())["images"]
    assert sorted(Path(r["path"]).name for r in cached) == ["astronaut.jpg", "camera.jpg"]
    assert len(cached[0]["boxes"]) >= 1  # the astronaut's face
    # without a teacher-label threshold: soft targets alone, alpha 1
    soft = tmp_path / "soft.yaml"
    soft.write_text(tiny.read_text() + "distill:\n  teacher_label_score: null\n")
    soft_run = tmp_path / "soft"
    assert main(["distill", "--teacher", "retinaface-mnet025", "--student", "nano-b", "--data", str(photos),
                 "--out", str(soft_run), "--config", str(soft), "--device", "cpu"]) == 0  # fmt: skip
    assert "alpha = 1" in capsys.readouterr().out
    assert "loss_task_cls" not in read_rows(soft_run)[0]


def _feature_objective(weight: float):
    from featherface.models.zoo import create_model
    from featherface.training.config import TrainConfig
    from featherface.training.distill import DistillObjective

    teacher = create_model("retinaface-mnet025").eval()
    student = create_model("retinaface-mnet025")  # same widths: an identity adapter maps its features exactly
    config = DistillConfig(alpha=1.0, feature_weight=weight, teacher_label_score=None)
    return teacher, student, DistillObjective(teacher, student, TrainConfig(), config)


def test_feature_distillation_is_zero_through_identity_adapters_and_one_when_doubled():
    torch.manual_seed(0)
    _teacher, student, objective = _feature_objective(1.0)
    images = torch.randn(2, 3, 64, 64) * 50
    with torch.no_grad():
        for adapter in objective.adapters:
            adapter.weight.copy_(torch.eye(adapter.in_channels).view_as(adapter.weight))
            adapter.bias.zero_()
        student.eval()  # BN in inference mode: the student's features are the teacher's exactly
        zero = objective(student, images, [])["distill_features"]
        for adapter in objective.adapters:
            adapter.weight.mul_(2)
        # ||2t - t||^2 / ||t||^2 = 1 on every level
        one = objective(student, images, [])["distill_features"]
    assert float(zero) == pytest.approx(0.0, abs=1e-6)
    assert float(one) == pytest.approx(1.0, rel=1e-5)


def test_feature_distillation_trains_the_adapters_and_keeps_no_features():
    torch.manual_seed(0)
    _teacher, student, objective = _feature_objective(0.5)
    losses = objective(student, torch.randn(1, 3, 64, 64) * 50, [])
    assert set(losses) >= {"distill_features", "distill", "total"}
    losses["total"].backward()
    assert all(a.weight.grad is not None and a.weight.grad.abs().sum() > 0 for a in objective.adapters)
    assert objective._features == {"student": [], "teacher": []}
    with torch.no_grad():
        student(torch.randn(1, 3, 64, 64))  # a forward outside the objective (validation) records nothing
    assert objective._features == {"student": [], "teacher": []}
    # the adapters are the objective's, never the student's
    assert not any("adapter" in k for k in student.state_dict())
    assert any(k.startswith("adapters.") for k in objective.state_dict())

"""The shipped pretrained Nano-B: files intact, the deployed size the spec asks for, it finds faces, its ONNX agrees
with its checkpoint and runs without torch; untrained zoo models are refused for detection."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from featherface.cli import main
from featherface.data.sample import resolve_dataset
from featherface.detection import Detector
from featherface.detection.boxes import box_iou
from featherface.detection.runners import OnnxRunner, TorchRunner
from featherface.fileio import sha256_of
from featherface.models.checkpoint import load_checkpoint
from featherface.models.detector_net import count_parameters
from featherface.models.zoo import ZOO, UntrainedModelError, create_model
from featherface.weights import DEFAULT_MODEL, SHIPPED, ShippedWeightsError, shipped_path, verified_path


@pytest.mark.parametrize("name", list(SHIPPED))
def test_shipped_files_match_their_recorded_sha256(name):
    shipped = SHIPPED[name]
    assert sha256_of(shipped_path(shipped.checkpoint)) == shipped.checkpoint_sha256
    if shipped.onnx:
        assert sha256_of(shipped_path(shipped.onnx)) == shipped.onnx_sha256


def test_a_changed_shipped_file_is_refused(tmp_path, monkeypatch):
    shipped = SHIPPED["nano-b-pretrained"]
    copy = tmp_path / shipped.checkpoint
    copy.write_bytes(shipped_path(shipped.checkpoint).read_bytes()[:-1] + b"\0")
    monkeypatch.setattr("featherface.weights.shipped_path", lambda filename: tmp_path / filename)
    with pytest.raises(ShippedWeightsError, match="sha256 differs"):
        verified_path(shipped.checkpoint, shipped.checkpoint_sha256)


def test_deployed_nano_b_is_within_the_spec_budget_and_under_1_mb():
    net = create_model("nano-b-pretrained")
    assert 120_000 <= count_parameters(net) <= 180_000
    assert shipped_path(SHIPPED["nano-b-pretrained"].checkpoint).stat().st_size < 1_000_000
    assert count_parameters(create_model("nano-b-distilled")) > count_parameters(net)  # the unpruned student


def test_provenance_names_command_config_data_and_terms():
    _, metadata = load_checkpoint(shipped_path(SHIPPED["nano-b-pretrained"].checkpoint))
    provenance = metadata["provenance"]
    assert provenance["command"].startswith("featherface pipeline --config pool")
    assert provenance["config"]["pipeline"]["data"].endswith("photos:train")
    assert len(provenance["data_manifest_sha256"]) == 64
    assert "research" in provenance["terms"]


def _sample_recall_precision(detector: Detector) -> tuple[float, float]:
    """Faces of the embedded sample set (hand-checked labels) matched at IoU 0.5 by detections scoring >= 0.5."""
    found = matched = faces = 0
    for ann in resolve_dataset("sample"):
        import cv2

        detections = detector.detect(cv2.imread(str(ann.path)))
        faces += len(ann.boxes)
        found += len(detections)
        if len(detections) and len(ann.boxes):
            iou = box_iou(np.asarray(ann.boxes, np.float32), detections.boxes)
            matched += int((iou.max(axis=1) >= 0.5).sum())
    return matched / faces, matched / max(found, 1)


@pytest.mark.parametrize("name", ["nano-b-pretrained", "nano-b-distilled"])
def test_pretrained_models_find_the_sample_faces(name):
    recall, precision = _sample_recall_precision(Detector.from_pretrained(name, device="cpu"))
    assert recall >= 0.8, recall
    assert precision >= 0.8, precision


def test_shipped_onnx_agrees_with_the_checkpoint():
    net = create_model("nano-b-pretrained")
    onnx = OnnxRunner(shipped_path(SHIPPED["nano-b-pretrained"].onnx))
    batch = np.random.default_rng(0).uniform(-120, 150, size=(2, 3, 320, 480)).astype(np.float32)
    for expected, got in zip(TorchRunner(net, "cpu")(batch), onnx(batch), strict=True):
        np.testing.assert_allclose(got, expected, atol=1e-3)


def test_shipped_retinaface_onnx_agrees_with_torch():
    # exported by `featherface export retinaface-mnet025`, which checked it to PARITY_TOLERANCE (measured 2.3e-5)
    from featherface.export.onnx import PARITY_TOLERANCE

    net = create_model("retinaface-mnet025")
    onnx = OnnxRunner(verified_path(SHIPPED["retinaface-mnet025"].onnx, SHIPPED["retinaface-mnet025"].onnx_sha256))
    assert onnx.config == net.config
    batch = np.random.default_rng(0).uniform(-120, 150, size=(2, 3, 320, 480)).astype(np.float32)
    for expected, got in zip(TorchRunner(net, "cpu")(batch), onnx(batch), strict=True):
        np.testing.assert_allclose(got, expected, rtol=0, atol=PARITY_TOLERANCE)


def test_zoo_models_run_their_shipped_onnx_on_the_cpu_and_torch_when_asked(tmp_path):
    assert isinstance(Detector.load().runner, OnnxRunner)  # the default model
    assert isinstance(Detector.load("retinaface-mnet025", device="cpu").runner, OnnxRunner)
    assert isinstance(Detector.load("retinaface-mnet025", backend="torch").runner, TorchRunner)
    assert isinstance(Detector.load("nano-b-distilled").runner, OnnxRunner)  # every trained zoo model has one
    with pytest.raises(ValueError, match="no ONNX shipped"):
        Detector.load("nano-b", backend="onnxruntime", allow_untrained=True)
    with pytest.raises(ValueError, match="onnxruntime only"):
        Detector.load(str(tmp_path / "model.onnx"), backend="torch")
    with pytest.raises(ValueError, match="backend must be one of"):
        Detector.load("retinaface-mnet025", backend="tensorrt")


@pytest.mark.parametrize("name", ["nano-b-pretrained", "retinaface-mnet025"])
def test_pretrained_models_run_their_onnx_without_torch(name, sample_images):
    script = (
        "import sys, cv2\n"
        "from featherface.detection import Detector\n"
        f"detector = Detector.load({name!r})\n"
        f"faces = detector.detect(cv2.imread({str(sample_images / 'astronaut.jpg')!r}))\n"
        "assert len(faces) >= 1, len(faces)\n"
        "assert type(detector.runner).__name__ == 'OnnxRunner'\n"
        "assert not [m for m in sys.modules if m.split('.')[0] == 'torch'], 'torch imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


def test_detect_command_runs_the_pretrained_nano_b(capsys, sample_images, tmp_path):
    out = tmp_path / "faces.json"
    assert (
        main(["detect", str(sample_images / "astronaut.jpg"), "--model", "nano-b-pretrained", "--json", str(out)]) == 0
    )
    assert len(json.loads(out.read_text())[0]["faces"]) == 1


@pytest.mark.parametrize("name", ["nano-b", "featherface-v1"])
def test_untrained_zoo_models_are_refused_for_detection(name, capsys, sample_images):
    assert not ZOO[name].trained
    with pytest.raises(UntrainedModelError, match="untrained heads"):
        Detector.load(name)
    assert main(["detect", str(sample_images / "astronaut.jpg"), "--model", name]) != 0
    assert "--allow-untrained" in capsys.readouterr().err
    assert Detector.load(name, allow_untrained=True).runner.config.name == ZOO[name].config().name


def test_info_lists_the_zoo_with_the_default_marked(capsys, tmp_path):
    out = tmp_path / "zoo.json"
    assert main(["info", "--json", str(out)]) == 0
    listing = json.loads(out.read_text())
    rows = {row["name"]: row for row in listing["models"]}
    assert rows[DEFAULT_MODEL]["default"] and rows["nano-b-pretrained"]["trained"]
    assert not rows["nano-b"]["trained"]
    # every model that ships an ONNX runs in onnxruntime on the CPU; the rest in torch, which is installed here
    assert (
        {name for name, row in rows.items() if row["backend"] == "onnxruntime"}
        == {name for name, shipped in SHIPPED.items() if shipped.onnx}
        == {"retinaface-mnet025", "nano-b-pretrained", "nano-b-distilled"}
    )
    assert listing["torch_installed"] is True
    printed = capsys.readouterr().out
    assert f"* {DEFAULT_MODEL}" in printed and "torch: installed" in printed


def test_threads_apply_to_one_detector_only(sample_images):
    torch.set_num_threads(2)
    detector = Detector.load("retinaface-mnet025", device="cpu", threads=1, backend="torch")
    seen = []
    original = detector.runner.net.forward

    def spy(*args):
        seen.append(torch.get_num_threads())
        return original(*args)

    detector.runner.net.forward = spy
    detector.detect(np.zeros((64, 64, 3), np.uint8))
    assert seen == [1]
    assert torch.get_num_threads() == 2

"""Running an exported model needs no torch: the ONNX path (runner, preprocessing, priors, decoding, NMS) is numpy,
and neither ``featherface.detection`` nor ``featherface detect`` imports torch or the training stack for it."""

import json
import subprocess
import sys

import pytest


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    path = tmp_path_factory.mktemp("onnx") / "retinaface.onnx"
    command = [sys.executable, "-m", "featherface.cli", "export", "retinaface-mnet025", "--out", str(path)]
    subprocess.run(command, check=True, capture_output=True, timeout=300)
    return path


def run_without_torch(body: str) -> None:
    """Run ``body`` in a fresh interpreter, then fail if it imported torch or featherface's training stack."""
    script = (
        body
        + "\nimport sys\n"
        + "loaded = [m for m in sys.modules if m.split('.')[0] == 'torch' or m.startswith(('featherface.training',"
        + " 'featherface.losses', 'featherface.pruning', 'featherface.models.detector_net'))]\n"
        + "assert not loaded, loaded\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


def test_detector_on_an_onnx_export_does_not_import_torch(exported, sample_images, reference_detections):
    expected = len(reference_detections["images"]["faceapi_sample1.jpg"]["faces"])
    run_without_torch(
        "import cv2\n"
        "from featherface.detection import Detector\n"
        f"detector = Detector.load({str(exported)!r})\n"
        f"faces = detector.detect(cv2.imread({str(sample_images / 'faceapi_sample1.jpg')!r}))\n"
        f"assert len(faces) == {expected}, len(faces)\n"
    )


def test_detect_command_on_an_onnx_export_does_not_import_torch(exported, sample_images, tmp_path):
    out = tmp_path / "faces.json"
    run_without_torch(
        "from featherface.cli import main\n"
        f"assert main(['detect', {str(sample_images)!r}, '--model', {str(exported)!r}, '--json', {str(out)!r}]) == 0\n"
    )
    results = json.loads(out.read_text())
    assert len(results) == len(list(sample_images.glob("*.jpg")))
    assert sum(len(r["faces"]) for r in results) >= 25

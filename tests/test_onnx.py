"""ONNX export: onnxruntime's raw outputs match torch's within 1e-4 and give identical detections."""

import cv2
import numpy as np
import pytest
import torch

from featherface.detection import Detector, PostprocessConfig
from featherface.detection.api import preprocess
from featherface.detection.runners import OnnxRunner
from featherface.export.onnx import export_onnx, max_output_difference
from featherface.models.zoo import create_model

from .conftest import calibrate_batchnorm, fit_heads_to_teacher

MODELS = ["retinaface-mnet025", "featherface-v1", "nano-b"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory, sample_images):
    folder = tmp_path_factory.mktemp("onnx")
    teacher = create_model("retinaface-mnet025").eval()
    photos = [
        preprocess(cv2.resize(cv2.imread(str(path)), (640, 640))) for path in sorted(sample_images.glob("faceapi*"))
    ]
    nets, paths = {}, {}
    for name in MODELS:
        torch.manual_seed(0)
        net = create_model(name)
        if name != "retinaface-mnet025":
            calibrate_batchnorm(net, photos)
            fit_heads_to_teacher(net, teacher, photos)  # scores spread like a trained model's
        nets[name] = net.eval()
        paths[name] = export_onnx(net, folder / f"{name}.onnx")
    return nets, paths


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize(("height", "width"), [(640, 640), (384, 544)])
def test_onnxruntime_matches_torch_raw_outputs(exported, name, height, width):
    nets, paths = exported
    batch = np.random.default_rng(1).uniform(-120, 150, size=(1, 3, height, width)).astype(np.float32)
    assert max_output_difference(nets[name], paths[name], batch) <= 1e-4


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("size", [640, None])  # 640: long side 640 (non-square); None: original 1024 x 746
def test_onnxruntime_gives_identical_detections(exported, sample_images, name, size):
    nets, paths = exported
    image = cv2.imread(str(sample_images / "faceapi_sample5.jpg"))
    # The students' heads are only regressed onto the teacher: their face scores are lower than a trained model's.
    config = PostprocessConfig(conf_threshold=0.5 if name == "retinaface-mnet025" else 0.05)
    torch_detector = Detector.from_net(nets[name], device="cpu", postprocess_config=config)
    onnx_detector = Detector(OnnxRunner(paths[name]), postprocess_config=config)
    expected = torch_detector.detect(image, size=size)
    got = onnx_detector.detect(image, size=size)
    assert len(expected) >= 1
    assert len(got) == len(expected)
    # Faces of near-equal score may swap places: compare as sets.
    distance = np.abs(got.boxes[:, None, :] - expected.boxes[None, :, :]).max(axis=2)
    match = distance.argmin(axis=1)
    assert len(set(match.tolist())) == len(got), "detections do not pair one-to-one"
    np.testing.assert_allclose(got.boxes, expected.boxes[match], atol=1e-2)
    np.testing.assert_allclose(got.landmarks, expected.landmarks[match], atol=1e-2)
    np.testing.assert_allclose(got.scores, expected.scores[match], atol=1e-5)


def test_exported_file_carries_its_architecture(exported):
    _, paths = exported
    assert OnnxRunner(paths["nano-b"]).config == create_model("nano-b", pretrained=False).config


def test_square_640_reference_detections_through_onnx(exported, sample_images):
    _, paths = exported
    image = cv2.imread(str(sample_images / "faceapi_sample1.jpg"))
    square = cv2.resize(image, (640, 640))
    found = Detector(OnnxRunner(paths["retinaface-mnet025"])).detect(square)
    assert len(found) == 3

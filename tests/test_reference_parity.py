"""Our RetinaFace-mnet0.25 + priors + decoding + NMS reproduce the reference detections (SPEC section 1), both as
the torch network and as the shipped ONNX that ``Detector.load("retinaface-mnet025")`` runs on the CPU."""

import cv2
import numpy as np
import pytest

from featherface.detection import Detector
from featherface.detection.priors import PriorBox
from featherface.detection.runners import OnnxRunner, TorchRunner

# The reference is rounded to 0.01 px and 1e-5 in score, so a perfect reproduction differs by up to half of that;
# the other half is room for float arithmetic. Measured, on both backends: 0.00498 px (boxes), 0.00493 px
# (landmarks), 4.5e-6 in score: the rounding alone. torch and the ONNX differ by under 2e-4 px and 5e-7 in score.
PIXEL_TOLERANCE = 0.01
SCORE_TOLERANCE = 1e-5


@pytest.fixture(scope="module", params=["torch", "onnxruntime"])
def detector(request):
    if request.param == "torch":
        found = Detector.from_pretrained("retinaface-mnet025", device="cpu")
        assert isinstance(found.runner, TorchRunner)
    else:
        found = Detector.load("retinaface-mnet025", device="cpu")  # the zoo name on the CPU: its shipped ONNX
        assert isinstance(found.runner, OnnxRunner)
    return found


def test_reference_detections_reproduced(detector, sample_images, reference_detections):
    images = reference_detections["images"]
    assert sum(len(r["faces"]) for r in images.values()) == 25
    for name, expected in images.items():
        image = cv2.imread(str(sample_images / name))
        assert image.shape[:2] == (expected["height"], expected["width"])
        assert PriorBox().num_priors(*image.shape[:2]) == expected["num_priors"]
        found = detector.detect(image)
        assert len(found) == len(expected["faces"]), name
        for face, box, score, points in zip(expected["faces"], found.boxes, found.scores, found.landmarks, strict=True):
            np.testing.assert_allclose(box, face["box"], rtol=0, atol=PIXEL_TOLERANCE, err_msg=name)
            np.testing.assert_allclose(points, face["landmarks"], rtol=0, atol=PIXEL_TOLERANCE, err_msg=name)
            assert abs(score - face["score"]) <= SCORE_TOLERANCE, name


def test_detections_are_sorted_by_score(detector, sample_images):
    found = detector.detect(cv2.imread(str(sample_images / "faceapi_sample5.jpg")))
    assert list(found.scores) == sorted(found.scores, reverse=True)


def test_batch_detection_matches_single_images(detector, sample_images):
    names = ["astronaut.jpg", "faceapi_sample1.jpg"]  # different sizes: the batch is padded
    images = [cv2.imread(str(sample_images / n)) for n in names]
    batched = detector.detect_batch(images)
    for image, together in zip(images, batched, strict=True):
        alone = detector.detect(image)
        assert len(together) == len(alone)
        np.testing.assert_allclose(together.boxes, alone.boxes, atol=2.0)


def test_resized_inference_maps_back_to_original_pixels(detector, sample_images):
    image = cv2.imread(str(sample_images / "faceapi_sample1.jpg"))
    full = detector.detect(image)
    small = detector.detect(image, size=640)
    assert len(small) == len(full)
    np.testing.assert_allclose(small.boxes, full.boxes, atol=12.0)

"""Our RetinaFace-mnet0.25 + priors + decoding + NMS reproduce the reference detections (SPEC section 1)."""

import cv2
import numpy as np
import pytest

from featherface.detection import Detector
from featherface.detection.priors import PriorBox


@pytest.fixture(scope="module")
def detector():
    return Detector.from_pretrained("retinaface-mnet025", device="cpu")


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
            np.testing.assert_allclose(box, face["box"], atol=0.5, err_msg=name)
            np.testing.assert_allclose(points, face["landmarks"], atol=0.5, err_msg=name)
            assert abs(score - face["score"]) <= 1e-3, name


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

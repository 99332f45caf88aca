"""Arguments of the Python API that used to give silent wrong results: ``detect(image, size=0)`` found no faces,
``detect_files("folder")`` iterated the characters of its string."""

import math
import shutil

import cv2
import numpy as np
import pytest

from featherface.detection.api import Detector


@pytest.fixture(scope="module")
def detector():
    return Detector.load()  # the shipped default, in onnxruntime


@pytest.mark.parametrize("size", [0, -640, math.nan, math.inf, "640"])
def test_a_size_that_is_no_positive_number_of_pixels_is_refused_naming_size(detector, sample_images, size):
    image = cv2.imread(str(sample_images / "astronaut.jpg"))
    with pytest.raises(ValueError, match=r"^size must be a number of pixels > 0 \(the network input's long side\)"):
        detector.detect(image, size=size)
    with pytest.raises(ValueError, match=r"^size must be"):
        detector.prepare([image], size=size)


def test_a_positive_size_still_works(detector, sample_images):
    image = cv2.imread(str(sample_images / "astronaut.jpg"))
    assert len(detector.detect(image, size=np.int64(320))) == len(detector.detect(image, size=320.0)) == 1


def test_detect_files_given_one_folder_as_a_string_reads_that_folder(detector, sample_images, tmp_path, monkeypatch):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("astronaut.jpg", "camera.jpg"):
        shutil.copy(sample_images / name, folder / name)
    monkeypatch.chdir(tmp_path)
    results = list(detector.detect_files("photos"))  # a str: one input, never the inputs p, h, o, t, o, s
    assert [str(r.source.path) for r in results] == ["photos/astronaut.jpg", "photos/camera.jpg"]
    assert all(r.ok and len(r.detections) == 1 for r in results)
    assert [str(r.source.path) for r in detector.detect_files(folder / "camera.jpg")] == [str(folder / "camera.jpg")]

"""Teacher agreement: a teacher's confident faces as the reference the student is scored against."""

import json
import shutil

import numpy as np
import pytest

from featherface.cli import main
from featherface.data.labels import LabelReport
from featherface.data.pseudo import teacher_annotations
from featherface.detection.api import Detector


@pytest.fixture(scope="module")
def teacher():
    return Detector.from_pretrained("retinaface-mnet025", device="cpu")


def test_teacher_annotation_holds_its_confident_faces_with_landmarks(teacher, sample_images, reference_detections):
    name = "grace_hopper_512x512.jpg"
    (ann,) = teacher_annotations(teacher, [sample_images / name], score_threshold=0.5)
    expected = reference_detections["images"][name]["faces"]  # faces scored > 0.5 at original size
    assert ann.path == sample_images / name and len(ann) == len(expected) == 1
    np.testing.assert_allclose(ann.boxes[0], expected[0]["box"], atol=0.5)
    np.testing.assert_allclose(ann.landmarks[0], expected[0]["landmarks"], atol=0.5)
    assert ann.has_landmarks.tolist() == [True] and ann.boxes.dtype == np.float32
    assert teacher.postprocess_config.conf_threshold == 0.5  # the detector's own setting is given back


def test_unreadable_images_are_counted_and_skipped(teacher, sample_images, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    report = LabelReport()
    annotations = teacher_annotations(teacher, [broken, sample_images / "camera.jpg"], report=report)
    assert [a.name for a in annotations] == ["camera.jpg"] and dict(report.skipped) == {"unreadable image": 1}


def test_model_scored_against_itself_as_teacher_has_ap_one(tmp_path):
    out = tmp_path / "agreement.json"
    argv = ["evaluate", "--model", "retinaface-mnet025", "--teacher", "retinaface-mnet025", "--data", "sample:val"]
    assert main([*argv, "--json", str(out), "--device", "cpu"]) == 0
    result = json.loads(out.read_text())
    assert result["ap"] == 1.0 and result["recall"] == 1.0 and result["num_faces"] == 10
    assert result["nme"] == pytest.approx(0.0, abs=1e-6)  # the teacher's landmarks are the student's
    assert result["teacher"] == "retinaface-mnet025" and result["teacher_conf"] == 0.5
    assert result["iou"] == 0.5 and result["detection_conf"] == 0.02


def test_teacher_agreement_on_a_pool_holdout(sample_images, tmp_path):
    pool = tmp_path / "pool"
    for i, image in enumerate(sorted(sample_images.glob("*.jpg"))):
        (pool / f"batch{i % 2}").mkdir(parents=True, exist_ok=True)
        shutil.copy(image, pool / f"batch{i % 2}" / image.name)
    out = tmp_path / "agreement.json"
    argv = ["evaluate", "--model", "retinaface-mnet025", "--teacher", "retinaface-mnet025", "--teacher-conf", "0.9"]
    assert main([*argv, "--data", f"{pool}:holdout", "--json", str(out), "--device", "cpu"]) == 0
    result = json.loads(out.read_text())
    assert len(result["per_image"]) == 1 and result["ap"] == 1.0  # 9 images: the hold-out is the one image

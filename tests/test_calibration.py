"""Score calibration: a logit offset folded into a level's head moves that level's face scores by exactly that
offset, and the fitted offsets make the student keep the teacher's count of faces at the threshold on each level
where it kept fewer, and leave a level that keeps more alone."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from featherface.detection.api import Detector
from featherface.detection.image import read_image
from featherface.detection.postprocess import PostprocessConfig
from featherface.models.zoo import create_model
from featherface.training.calibration import apply_logit_offset, fit_calibration, scores_by_level
from tests.conftest import SAMPLE_IMAGES


def _logit(p: torch.Tensor) -> torch.Tensor:
    return torch.log(p) - torch.log1p(-p)


def test_logit_offset_shifts_every_face_logit_by_the_offset():
    torch.manual_seed(0)
    net = create_model("nano-b", pretrained=False).eval()
    shifted = copy.deepcopy(net)
    apply_logit_offset(shifted, 1.25)
    images = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        boxes, logits, landmarks = net(images)
        boxes2, logits2, landmarks2 = shifted(images)
    # softmax face probability is sigmoid(l_face - l_bg): its logit moves by exactly the offset
    before = _logit(torch.softmax(logits.double(), -1)[..., 1])
    after = _logit(torch.softmax(logits2.double(), -1)[..., 1])
    torch.testing.assert_close(after - before, torch.full_like(before, 1.25), atol=1e-5, rtol=0)
    torch.testing.assert_close(boxes2, boxes)
    torch.testing.assert_close(landmarks2, landmarks)


def _faces_at(net, paths, threshold=0.5) -> int:
    detector = Detector.from_net(net, device="cpu", postprocess_config=PostprocessConfig(conf_threshold=0.02))
    return sum(int((detector.detect(read_image(p)).scores >= threshold).sum()) for p in paths)


def test_offsets_per_level_shift_only_their_level():
    torch.manual_seed(0)
    net = create_model("nano-b", pretrained=False).eval()
    shifted = copy.deepcopy(net)
    apply_logit_offset(shifted, (0.5, 0.0, -1.0))
    images = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        before = _logit(torch.softmax(net(images)[1].double(), -1)[..., 1])
        after = _logit(torch.softmax(shifted(images)[1].double(), -1)[..., 1])
    # priors per level at 64x96, 2 anchors per cell: 8x12x2 = 192 (stride 8), 4x6x2 = 48 (16), 2x3x2 = 12 (32)
    expected = torch.cat([torch.full((192,), 0.5), torch.zeros(48), torch.full((12,), -1.0)]).double()
    torch.testing.assert_close((after - before)[0], expected, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="2 logit offsets for a network with 3 levels"):
        apply_logit_offset(shifted, (0.5, 0.0))


def test_scores_by_level_split_the_detectors_faces():
    teacher = create_model("retinaface-mnet025").eval()
    detector = Detector.from_net(teacher, device="cpu", postprocess_config=PostprocessConfig(conf_threshold=0.02))
    image = read_image(SAMPLE_IMAGES / "faceapi_sample4.jpg")
    levels = scores_by_level(detector, image)
    assert len(levels) == 3
    np.testing.assert_array_equal(np.sort(np.concatenate(levels)), np.sort(detector.detect(image).scores))


def test_fitted_offsets_give_the_teacher_count_of_faces():
    # the teacher scores these faces 0.998-1.0, and one more at 0.314 (faceapi_sample4), the only one near 0.2
    names = ("astronaut.jpg", "camera.jpg", "faceapi_sample4.jpg", "grace_hopper_512x512.jpg")
    paths = [SAMPLE_IMAGES / name for name in names]
    teacher = create_model("retinaface-mnet025").eval()
    student = copy.deepcopy(teacher)
    apply_logit_offset(student, -2.0)  # an under-confident copy of the teacher: 0.314 -> 0.058, 0.998 -> 0.985
    wanted = _faces_at(teacher, paths, 0.2)
    assert _faces_at(student, paths, 0.2) == wanted - 1
    calibration = fit_calibration(student, teacher, paths, threshold=0.2, progress=False)
    assert sum(calibration.teacher_faces) == wanted
    assert sum(calibration.student_faces_before) == wanted - 1
    # only the level of the 0.314 face lost one; by hand: logit(0.2) - (logit(0.314) - 2) = -1.386 + 0.781 + 2 = 1.39
    level = int(np.argmax(np.subtract(calibration.teacher_faces, calibration.student_faces_before)))
    expected = [0.0, 0.0, 0.0]
    expected[level] = 1.39
    assert calibration.logit_offsets == pytest.approx(expected, abs=0.02)
    apply_logit_offset(student, calibration.logit_offsets)
    assert _faces_at(student, paths, 0.2) == wanted


def test_a_level_that_keeps_more_faces_than_the_teachers_is_not_lowered():
    paths = [SAMPLE_IMAGES / name for name in ("faceapi_sample4.jpg", "grace_hopper_512x512.jpg")]
    teacher = create_model("retinaface-mnet025").eval()
    student = copy.deepcopy(teacher)
    apply_logit_offset(student, 3.0)  # over-confident everywhere: keeps more faces than the teacher at 0.5
    calibration = fit_calibration(student, teacher, paths, progress=False)
    assert all(
        kept >= wanted for kept, wanted in zip(calibration.student_faces_before, calibration.teacher_faces, strict=True)
    )
    assert sum(calibration.student_faces_before) > sum(calibration.teacher_faces)
    assert calibration.logit_offsets == (0.0, 0.0, 0.0)


def test_calibration_refuses_an_unrelated_model():
    paths = sorted(SAMPLE_IMAGES.glob("*.jpg"))[:2]
    teacher = create_model("retinaface-mnet025").eval()
    student = copy.deepcopy(teacher)
    apply_logit_offset(student, -30.0)  # finds nothing any more
    with pytest.raises(ValueError, match="not distilled from this teacher"):
        fit_calibration(student, teacher, paths, progress=False)

"""Score calibration: a logit offset folded into the heads moves every face score by exactly that offset, and the
fitted offset makes the student keep the teacher's count of faces at the threshold."""

from __future__ import annotations

import copy

import pytest
import torch

from featherface.detection.api import Detector
from featherface.detection.image import read_image
from featherface.detection.postprocess import PostprocessConfig
from featherface.models.zoo import create_model
from featherface.training.calibration import apply_logit_offset, fit_calibration
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


def test_fitted_offset_gives_the_teacher_count_of_faces():
    # the teacher scores these faces 0.998-1.0, and one more at 0.314 (faceapi_sample4), the only one near 0.2
    names = ("astronaut.jpg", "camera.jpg", "faceapi_sample4.jpg", "grace_hopper_512x512.jpg")
    paths = [SAMPLE_IMAGES / name for name in names]
    teacher = create_model("retinaface-mnet025").eval()
    student = copy.deepcopy(teacher)
    apply_logit_offset(student, -2.0)  # an under-confident copy of the teacher: 0.314 -> 0.058
    wanted = _faces_at(teacher, paths, 0.2)
    assert _faces_at(student, paths, 0.2) == wanted - 1
    calibration = fit_calibration(student, teacher, paths, threshold=0.2, progress=False)
    assert calibration.teacher_faces == wanted
    # by hand: logit(0.2) - (logit(0.314) - 2) = -1.386 + 0.781 + 2 = 1.39
    assert calibration.logit_offset == pytest.approx(1.39, abs=0.02)
    apply_logit_offset(student, calibration.logit_offset)
    assert _faces_at(student, paths, 0.2) == wanted


def test_calibration_refuses_an_unrelated_model():
    paths = sorted(SAMPLE_IMAGES.glob("*.jpg"))[:2]
    teacher = create_model("retinaface-mnet025").eval()
    student = copy.deepcopy(teacher)
    apply_logit_offset(student, -30.0)  # finds nothing any more
    with pytest.raises(ValueError, match="not distilled from this teacher"):
        fit_calibration(student, teacher, paths, progress=False)

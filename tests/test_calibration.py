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
from featherface.training.calibration import (
    apply_logit_offset,
    calibration_photos,
    fit_calibration,
    scores_by_level,
)
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


def _teacher_detector(teacher):
    return Detector.from_net(teacher, device="cpu", postprocess_config=PostprocessConfig(conf_threshold=0.02))


def test_scores_by_level_split_the_detectors_faces():
    teacher = create_model("retinaface-mnet025").eval()
    detector = _teacher_detector(teacher)
    image = read_image(SAMPLE_IMAGES / "grace_hopper_512x512.jpg")
    levels = scores_by_level(detector, image)
    np.testing.assert_array_equal(np.sort(np.concatenate(levels)), np.sort(detector.detect(image).scores))
    # her face is ~220 px in a 512-px photo: the teacher finds it on stride 32 (anchors 256/512), not below
    face = detector.detect(image)
    best = int(np.argmax(face.scores))
    assert 180 < face.boxes[best, 2] - face.boxes[best, 0] < 300
    assert levels[2].max() == face.scores[best] > 0.99
    assert levels[0].max(initial=0) < 0.5 and levels[1].max(initial=0) < 0.5


# The teacher's faces at 0.2 on these photos, per level (stride 8, 16, 32): astronaut 1 and camera 1 on stride 16;
# faceapi_sample4 5 on stride 16, four at 0.998-1.0 and one at 0.314; grace_hopper 1 on stride 32 (0.998).
CALIBRATION_PHOTOS = ("astronaut.jpg", "camera.jpg", "faceapi_sample4.jpg", "grace_hopper_512x512.jpg")


def test_fitted_offsets_give_the_teacher_count_of_faces():
    paths = [SAMPLE_IMAGES / name for name in CALIBRATION_PHOTOS]
    teacher = create_model("retinaface-mnet025").eval()
    student = copy.deepcopy(teacher)
    apply_logit_offset(student, -2.0)  # an under-confident copy of the teacher: 0.314 -> 0.058, 0.998 -> 0.985
    wanted = _faces_at(teacher, paths, 0.2)
    assert _faces_at(student, paths, 0.2) == wanted - 1
    calibration = fit_calibration(student, teacher, paths, threshold=0.2, progress=False)
    assert calibration.teacher_faces == (0, 7, 1)
    assert calibration.student_faces_before == (0, 6, 1)
    # only stride 16 lost one; by hand: logit(0.2) - (logit(0.314) - 2) = -1.386 + 0.781 + 2 = 1.39
    assert calibration.logit_offsets == pytest.approx((0.0, 1.39, 0.0), abs=0.02)
    apply_logit_offset(student, calibration.logit_offsets)
    assert _faces_at(student, paths, 0.2) == wanted


def test_a_short_level_is_raised_while_a_level_with_a_surplus_is_left_alone():
    paths = [SAMPLE_IMAGES / name for name in CALIBRATION_PHOTOS]
    teacher = create_model("retinaface-mnet025").eval()
    student = copy.deepcopy(teacher)
    # strides 8 and 16 under-confident (the 0.314 face falls to 0.058), stride 32 over-confident (0.998 -> 0.9993):
    # its count stays the teacher's, and matching its score would need a negative offset (-1.386 - 7.2), not
    # applied. (Stride 8 goes down with 16 and stride 32 rises by only 1, so that no candidate the teacher's NMS
    # removed now outranks the 0.058 face and suppresses it: NMS runs across levels.)
    apply_logit_offset(student, (-2.0, -2.0, 1.0))
    calibration = fit_calibration(student, teacher, paths, threshold=0.2, progress=False)
    assert calibration.teacher_faces == (0, 7, 1)
    assert calibration.student_faces_before == (0, 6, 1)
    assert calibration.logit_offsets == pytest.approx((0.0, 1.39, 0.0), abs=0.02)


def test_a_level_that_keeps_more_faces_than_the_teachers_is_not_lowered():
    paths = [SAMPLE_IMAGES / name for name in ("faceapi_sample4.jpg", "grace_hopper_512x512.jpg")]
    teacher = create_model("retinaface-mnet025").eval()
    student = copy.deepcopy(teacher)
    apply_logit_offset(student, 3.0)  # over-confident everywhere: keeps more faces than the teacher at 0.5
    calibration = fit_calibration(student, teacher, paths, progress=False)
    assert calibration.teacher_faces == (0, 4, 1)
    # stride 16 gains the 0.314 face (0.90) and more: it is not lowered back to the teacher's 4
    assert calibration.student_faces_before[1] >= 5
    assert all(kept >= wanted for kept, wanted in zip(calibration.student_faces_before, (0, 4, 1), strict=True))
    assert calibration.logit_offsets == (0.0, 0.0, 0.0)


def test_calibration_refuses_an_unrelated_model():
    paths = sorted(SAMPLE_IMAGES.glob("*.jpg"))[:2]
    teacher = create_model("retinaface-mnet025").eval()
    student = copy.deepcopy(teacher)
    apply_logit_offset(student, -30.0)  # finds nothing any more
    with pytest.raises(ValueError, match="not distilled from this teacher"):
        fit_calibration(student, teacher, paths, progress=False)


def test_calibration_photos_are_a_seeded_sorted_draw_whatever_the_input_order():
    paths = [f"photos/{i:03d}.jpg" for i in range(10)]
    drawn = calibration_photos(paths, 4)
    assert drawn == calibration_photos(list(reversed(paths)), 4)  # the draw is from the sorted list
    assert len(drawn) == 4 and drawn == sorted(drawn) and set(drawn) <= set(paths)
    # numpy's seeded draw, by hand: 4 of the 10 sorted indices with seed 0, kept in sorted order
    expected = sorted(np.random.default_rng(0).choice(10, size=4, replace=False))
    assert drawn == [paths[i] for i in expected]
    assert calibration_photos(paths[:3], 400) == paths[:3]  # fewer photos than asked: all of them

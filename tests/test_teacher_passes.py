"""Hard targets from several looks of the teacher: mirrored detections and weighted boxes fusion, hand-computed."""

from __future__ import annotations

import numpy as np
import pytest

from featherface.data.pseudo import TeacherPasses, fuse_detections, mirror_detections, teacher_detections
from featherface.detection.postprocess import Detections


def detections(boxes, scores, landmarks=None) -> Detections:
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    if landmarks is None:  # eyes, nose, mouth corners inside each box, left before right
        landmarks = [[[b[0] + 2, b[1] + 2], [b[2] - 2, b[1] + 2], [(b[0] + b[2]) / 2, (b[1] + b[3]) / 2],
                      [b[0] + 3, b[3] - 2], [b[2] - 3, b[3] - 2]] for b in boxes.tolist()]  # fmt: skip
    return Detections(boxes, np.asarray(scores, np.float32), np.asarray(landmarks, np.float32).reshape(-1, 5, 2))


def test_mirror_maps_box_edges_and_swaps_left_and_right_landmarks():
    found = detections([[10, 5, 30, 25]], [0.9])
    mirrored = mirror_detections(found, width=100)
    np.testing.assert_allclose(mirrored.boxes, [[70, 5, 90, 25]])
    # the left eye (12, 7) of the mirrored face is the right eye (28, 7) of the original, mirrored: 100 - 28 = 72
    np.testing.assert_allclose(mirrored.landmarks[0, 0], [72, 7])
    np.testing.assert_allclose(mirrored.landmarks[0, 1], [88, 7])
    np.testing.assert_allclose(mirrored.landmarks[0, 3], [73, 23])
    back = mirror_detections(mirrored, width=100)
    np.testing.assert_allclose(back.boxes, found.boxes)
    np.testing.assert_allclose(back.landmarks, found.landmarks)


def test_fusion_averages_overlapping_boxes_by_score_and_divides_by_the_passes():
    # IoU of [0,0,10,10] and [2,0,12,10]: 80 / 120 = 0.667 >= 0.55: one face
    first = detections([[0, 0, 10, 10], [50, 50, 60, 60]], [0.8, 0.9])
    second = detections([[2, 0, 12, 10]], [0.4])
    fused = fuse_detections([first, second])
    assert len(fused) == 2
    # the lone face seen by one pass of two: 0.9 / 2; the pair: (0.8 + 0.4) / 2, box (0.8 * b1 + 0.4 * b2) / 1.2
    np.testing.assert_allclose(fused.scores, [0.6, 0.45], atol=1e-6)
    np.testing.assert_allclose(fused.boxes[0], [2 / 3, 0, 10 + 2 / 3, 10], atol=1e-5)
    np.testing.assert_allclose(fused.boxes[1], [50, 50, 60, 60])
    expected_left_eye = (0.8 * np.array([2, 2]) + 0.4 * np.array([4, 2])) / 1.2
    np.testing.assert_allclose(fused.landmarks[0, 0], expected_left_eye, atol=1e-5)


def test_fusion_keeps_faces_apart_below_the_iou():
    # IoU of [0,0,10,10] and [4,0,14,10]: 60 / 140 = 0.43 < 0.55: two faces
    fused = fuse_detections([detections([[0, 0, 10, 10]], [0.8]), detections([[4, 0, 14, 10]], [0.6])])
    np.testing.assert_allclose(fused.scores, [0.4, 0.3], atol=1e-6)


def test_fusion_of_nothing_is_empty():
    assert len(fuse_detections([Detections(), Detections()])) == 0


class BrightSquareFinder:
    """A stand-in teacher that finds the one bright square of a dark image by thresholding (an independent
    reference for where the face is), scoring it 0.9 unmirrored: the pass it comes from is visible in the box."""

    def detect(self, image: np.ndarray, size: int | None = None) -> Detections:
        assert size is None
        ys, xs = np.nonzero(image[:, :, 0] > 128)
        box = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
        return detections([box], [0.9])


def test_mirrored_look_finds_the_same_face_in_the_original_pixels():
    image = np.zeros((40, 100, 3), np.uint8)
    image[5:25, 10:30] = 255  # columns 10-29: box x 10..30
    fused = teacher_detections(BrightSquareFinder(), image, TeacherPasses(flip=True))
    np.testing.assert_allclose(fused.boxes, [[10, 5, 30, 25]])
    np.testing.assert_allclose(fused.scores, [0.9], atol=1e-6)  # two looks agree: (0.9 + 0.9) / 2


def test_passes_refuse_scales_out_of_range_and_the_single_look_keeps_old_cache_keys():
    with pytest.raises(ValueError, match="scales"):
        TeacherPasses(scales=(0.0,))
    with pytest.raises(ValueError, match="scales"):
        TeacherPasses(scales=())
    assert TeacherPasses().describe() == {}
    assert TeacherPasses((1.0, 1.5), True).describe() == {"scales": [1.0, 1.5], "flip": True}
    assert TeacherPasses((1.0, 1.5), True).count == 4


def test_distill_config_reads_the_looks_and_refuses_a_scale_out_of_range(tmp_path):
    from featherface.config_schema import ConfigError
    from featherface.training.distill import load_distill_config

    good = tmp_path / "good.yaml"
    good.write_text("distill:\n  teacher_label_scales: [1.0, 1.5]\n  teacher_label_flip: true\n")
    config = load_distill_config(str(good))
    assert config.teacher_label_scales == [1.0, 1.5] and config.teacher_label_flip is True
    bad = tmp_path / "bad.yaml"
    bad.write_text("distill:\n  teacher_label_scales: [1.0, 5.0]\n")
    with pytest.raises(ConfigError, match="teacher_label_scales"):
        load_distill_config(str(bad))

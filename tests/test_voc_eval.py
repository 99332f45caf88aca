import json
from pathlib import Path

import numpy as np
import pytest

from featherface.cli import main
from featherface.data.labels import ImageAnnotation
from featherface.detection.postprocess import Detections
from featherface.evaluation.voc import evaluate_dataset, match_detections


def annotation(boxes, landmarks=None):
    boxes = np.array(boxes, np.float32).reshape(-1, 4)
    if landmarks is None:
        points, has = np.zeros((len(boxes), 5, 2), np.float32), np.zeros(len(boxes), bool)
    else:
        points, has = np.array(landmarks, np.float32).reshape(-1, 5, 2), np.ones(len(boxes), bool)
    return ImageAnnotation(Path("x.jpg"), boxes, points, has)


def detections(boxes, scores, landmarks=None):
    boxes = np.array(boxes, np.float32).reshape(-1, 4)
    points = np.zeros((len(boxes), 5, 2), np.float32) if landmarks is None else np.array(landmarks, np.float32)
    return Detections(boxes, np.array(scores, np.float32), points.reshape(-1, 5, 2))


def test_duplicate_and_low_iou_detections_are_false_positives():
    gt = np.array([[0, 0, 10, 10]], np.float32)
    dets = np.array([[0, 0, 10, 10], [0, 0, 10, 9], [20, 20, 30, 30]], np.float32)
    assert match_detections(gt, dets, np.array([0.9, 0.8, 0.7])).tolist() == [0, -1, -1]


def test_ap_hand_computed():
    # two faces; detections by score: TP, FP, TP -> precision 1 at recall 0.5, 2/3 at recall 1
    ann = annotation([[0, 0, 10, 10], [100, 100, 120, 120]])
    det = detections([[0, 0, 10, 10], [50, 50, 60, 60], [100, 100, 120, 120]], [0.9, 0.8, 0.7])
    result = evaluate_dataset([ann], [det], score_threshold=0.75)
    assert result.ap == pytest.approx(0.5 * 1.0 + 0.5 * 2 / 3)
    assert result.recall == pytest.approx(0.5)  # at score >= 0.75 only the first face is found
    assert result.precision == pytest.approx(0.5)
    assert result.per_image[0] == {
        "image": "x.jpg", "faces": 2, "detections": 2, "true_positives": 1, "false_positives": 1, "missed": 1
    }  # fmt: skip


def test_nme_is_mean_point_error_over_box_diagonal():
    points = [[[2, 3], [7, 3], [5, 5], [3, 7], [7, 7]]]
    ann = annotation([[0, 0, 6, 8]], points)  # diagonal 10
    moved = np.array(points, np.float32) + np.array([3.0, 4.0])  # every point 5 px away
    result = evaluate_dataset([ann], [detections([[0, 0, 6, 8]], [0.9], moved)])
    assert result.nme == pytest.approx(0.5)


def test_no_detections_gives_zero_ap_and_recall():
    result = evaluate_dataset([annotation([[0, 0, 10, 10]])], [Detections()])
    assert result.ap == 0.0 and result.recall == 0.0 and result.nme is None


def test_evaluate_reference_on_sample_val(tmp_path, capsys):
    out = tmp_path / "ev.json"
    assert main(["evaluate", "--model", "retinaface-mnet025", "--data", "sample:val", "--json", str(out),
                 "--plots", str(tmp_path)]) == 0  # fmt: skip
    result = json.loads(out.read_text())
    assert result["num_faces"] == 10
    assert result["ap"] >= 0.99 and result["recall"] == 1.0  # sample-set figures
    assert 0 < result["nme"] < 0.05
    assert (tmp_path / "pr.png").is_file()

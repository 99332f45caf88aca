"""The WIDER FACE protocol: pinned by hand-computed cases, the real .mat files and a straight port."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy.io import savemat

from featherface.cli import main
from featherface.evaluation.widerface import (
    SETTINGS,
    WiderImage,
    evaluate_wider,
    image_matches,
    load_wider_ground_truth,
    normalise_scores,
    read_predictions,
    voc_ap,
    write_prediction_file,
)

from .wider_reference import reference_ap

GT_DIR = Path(__file__).parent / "data" / "widerface-eval-gt"


@pytest.fixture(scope="module")
def wider_gt():
    return load_wider_ground_truth(GT_DIR)


def one_image(boxes, counted, name="img"):
    boxes = np.array(boxes, dtype=np.float64).reshape(-1, 4)
    mask = np.array(counted, dtype=bool)
    return WiderImage("0--Test", name, boxes, dict.fromkeys(SETTINGS, mask))


def test_ground_truth_counts(wider_gt):
    assert len(wider_gt) == 3226
    assert sum(len(g.boxes) for g in wider_gt) == 39708
    assert [sum(int(g.counted[s].sum()) for g in wider_gt) for s in SETTINGS] == [7211, 13319, 31958]


def test_ground_truth_as_predictions_gives_ap_of_one(wider_gt):
    rng = np.random.default_rng(0)
    predictions = {
        (g.event, g.name): np.concatenate([g.boxes, rng.uniform(size=(len(g.boxes), 1))], axis=1) for g in wider_gt
    }
    result = evaluate_wider(predictions, wider_gt)
    for s in SETTINGS:
        assert result.ap[s] >= 0.999, (s, result.ap[s])


def test_detection_on_an_ignored_face_is_neither_tp_nor_fp():
    # face 0 counts, face 1 is ignored; one detection on each
    pred = np.array([[0, 0, 10, 10, 0.9], [50, 50, 10, 10, 0.8]], dtype=np.float64)
    is_proposal, recalled = image_matches(
        pred, np.array([[0, 0, 10, 10], [50, 50, 10, 10]], float), np.array([True, False])
    )
    assert is_proposal.tolist() == [True, False]
    assert recalled.tolist() == [1, 1]
    image = one_image([[0, 0, 10, 10], [50, 50, 10, 10]], [True, False])
    result = evaluate_wider({("0--Test", "img"): pred}, [image])
    # one counted face, found by the only proposal: precision 1 at recall 1
    assert result.ap["easy"] == pytest.approx(1.0)


def test_second_detection_on_a_found_face_is_a_false_positive():
    pred = np.array([[0, 0, 10, 10, 0.9], [1, 1, 10, 10, 0.8]], dtype=np.float64)
    is_proposal, recalled = image_matches(pred, np.array([[0, 0, 10, 10]], float), np.array([True]))
    assert is_proposal.tolist() == [True, True]
    assert recalled.tolist() == [1, 1]  # no new face: the second is a proposal without recall


def test_iou_uses_inclusive_pixels():
    # 10x10 box vs the same box shifted by 4 px: continuous IoU 60/140 = 0.43 (a miss), with +1 pixels
    # (11 x 11 areas, 7 x 11 overlap) 77/165 = 0.467 (still a miss), shifted by 3 px: 88/154 = 0.571 (a hit)
    gt = np.array([[0, 0, 10, 10]], float)
    for shift, hit in [(4, False), (3, True)]:
        _, recalled = image_matches(np.array([[shift, 0, 10, 10, 1.0]]), gt, np.array([True]))
        assert bool(recalled[0]) is hit
    # a pair that only the +1 convention matches: 2x2 boxes offset by 1 px: continuous 2/6 = 0.33, inclusive 6/12 = 0.5
    _, recalled = image_matches(np.array([[1, 0, 2, 2, 1.0]]), np.array([[0, 0, 2, 2]], float), np.array([True]))
    assert recalled[0] == 1


def test_scores_are_min_max_normalised_over_the_whole_set():
    preds = {("e", "a"): np.array([[0, 0, 1, 1, 2.0]]), ("e", "b"): np.array([[0, 0, 1, 1, 4.0], [0, 0, 1, 1, 3.0]])}
    normalised = normalise_scores(preds)
    assert normalised[("e", "a")][:, 4].tolist() == [0.0]
    assert normalised[("e", "b")][:, 4].tolist() == [1.0, 0.5]
    assert preds[("e", "a")][0, 4] == 2.0  # the input is not modified


def test_voc_ap_hand_computed():
    # precision 1 up to recall 0.5, then 0.5 up to recall 1: area 0.5 + 0.25
    assert voc_ap(np.array([0.5, 0.5, 1.0]), np.array([1.0, 0.5, 0.5])) == pytest.approx(0.75)


def test_vectorised_protocol_equals_a_straight_port(wider_gt):
    rng = np.random.default_rng(3)
    subset = [g for g in wider_gt[::25] if len(g.boxes) < 60]
    predictions = {}
    for g in subset:
        # jittered copies of some faces, some duplicates, some pure false positives, in score order
        keep = g.boxes[rng.random(len(g.boxes)) < 0.7]
        jitter = keep + rng.normal(0, 2.0, keep.shape) * np.array([1, 1, 0.5, 0.5])
        dupes = keep[: len(keep) // 3] + 3
        noise = np.column_stack([rng.uniform(0, 900, (5, 2)), rng.uniform(5, 80, (5, 2))])
        boxes = np.concatenate([jitter, dupes, noise])
        scores = np.sort(rng.uniform(0.02, 1.0, len(boxes)))[::-1]
        predictions[(g.event, g.name)] = np.column_stack([boxes, scores])
    ours = evaluate_wider(predictions, subset)
    normalised = normalise_scores(predictions)
    for s in SETTINGS:
        assert ours.ap[s] == pytest.approx(reference_ap(normalised, subset, s), abs=1e-9)


def test_prediction_files_round_trip(tmp_path):
    boxes = np.array([[10.0, 20.0, 50.0, 80.0], [5.5, 6.5, 7.5, 9.5]])
    write_prediction_file(tmp_path / "0--Parade" / "img_1.txt", "img_1", boxes, np.array([0.9, 0.1]))
    read = read_predictions(tmp_path)
    np.testing.assert_allclose(read[("0--Parade", "img_1")], [[10, 20, 40, 60, 0.9], [5.5, 6.5, 2, 3, 0.1]])


def test_bad_prediction_line_is_named(tmp_path):
    (tmp_path / "ev").mkdir()
    (tmp_path / "ev" / "a.txt").write_text("a\n1\n1 2 3\n")
    with pytest.raises(ValueError, match=r"a\.txt:3"):
        read_predictions(tmp_path)


def _cells(items):
    cell = np.empty((len(items), 1), dtype=object)
    for i, item in enumerate(items):
        cell[i, 0] = item
    return cell


def write_mini_wider(root: Path, sample_images: Path) -> tuple[Path, Path]:
    """A two-event WIDER val in miniature (.mat ground truth + images) made from the sample photos."""
    from featherface.data.sample import load_sample

    events = {"0--Crowd": [], "1--Portrait": []}
    for ann in load_sample():
        events["1--Portrait" if len(ann) == 1 else "0--Crowd"].append(ann)
    images_dir = root / "WIDER_val" / "images"
    names, boxes, keep = [], [], []
    for event, anns in events.items():
        (images_dir / event).mkdir(parents=True)
        for ann in anns:
            cv2.imwrite(str(images_dir / event / ann.name), cv2.imread(str(sample_images / ann.name)))
        names.append(_cells([np.array([Path(a.name).stem]) for a in anns]))
        xywh = [np.column_stack([a.boxes[:, :2], a.boxes[:, 2:] - a.boxes[:, :2]]).astype(np.float64) for a in anns]
        boxes.append(_cells(xywh))
        keep.append(_cells([np.arange(1, len(a) + 1, dtype=np.float64).reshape(-1, 1) for a in anns]))
    gt_dir = root / "gt"
    gt_dir.mkdir()
    base = {
        "event_list": _cells([np.array([e]) for e in events]),
        "file_list": _cells(names),
        "face_bbx_list": _cells(boxes),
    }
    savemat(str(gt_dir / "wider_face_val.mat"), base)
    for s in SETTINGS:
        savemat(str(gt_dir / f"wider_{s}_val.mat"), {**base, "gt_list": _cells(keep)})
    return gt_dir, images_dir


@pytest.mark.slow
def test_evaluate_command_runs_a_model_over_wider_images(tmp_path, sample_images, capsys):
    gt_dir, images_dir = write_mini_wider(tmp_path, sample_images)
    assert len(load_wider_ground_truth(gt_dir)) == 9
    out = tmp_path / "wider.json"
    preds = tmp_path / "preds"
    code = main(
        [
            "evaluate", "--wider-gt", str(gt_dir), "--model", "retinaface-mnet025", "--images", str(images_dir),
            "--write-predictions", str(preds), "--json", str(out), "--plots", str(tmp_path / "plots"),
        ]
    )  # fmt: skip
    assert code == 0
    result = json.loads(out.read_text())
    for s in SETTINGS:
        assert result[s] >= 0.95  # sample-set figure: the reference finds all 25 faces
    assert len(list(preds.glob("*/*.txt"))) == 9
    assert (tmp_path / "plots" / "wider_pr.png").stat().st_size > 1000
    # the written folder is readable on its own, as another tool would read it
    code = main(["evaluate", "--wider-gt", str(gt_dir), "--predictions", str(preds), "--json", str(out)])
    assert code == 0
    assert json.loads(out.read_text())["easy"] == result["easy"]


def test_evaluate_needs_predictions_or_model(capsys):
    assert main(["evaluate", "--wider-gt", str(GT_DIR)]) == 2
    assert "exactly one of" in capsys.readouterr().err

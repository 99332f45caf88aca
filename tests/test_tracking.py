"""The SORT-style tracker: one id per face across a pan, ids kept through a missed frame, smoother boxes; and
`detect` on a video writes each face's track_id."""

import itertools
import json

import cv2
import numpy as np
import pytest

from featherface.cli import main
from featherface.detection.api import Detector
from featherface.detection.tracking import FaceTracker, TrackerConfig, follow_boxes, min_cost_assignment


def pan(image: np.ndarray, frames: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """An 800 x 660 window moving 6 px right and 2 px down per frame over ``image``: (frame, its (x, y) origin).
    Every face of faceapi_sample5 (x 196-854, y 56-627) stays in view."""
    origins = [(60 + 6 * i, 2 * i) for i in range(frames)]
    return [(image[y : y + 660, x : x + 800], np.array([x, y])) for x, y in origins]


@pytest.fixture(scope="module")
def panned(sample_images):
    return pan(cv2.imread(str(sample_images / "faceapi_sample5.jpg")), 21)


def test_one_id_per_face_across_a_pan(panned):
    detector = Detector.from_pretrained("retinaface-mnet025")
    tracker = FaceTracker()
    places: dict[int, list[np.ndarray]] = {}
    for frame, origin in panned:
        found = detector.detect(frame)
        assert len(found) == 5
        ids, boxes = tracker.update(found.boxes)
        assert sorted(ids.tolist()) == [0, 1, 2, 3, 4]  # the same five ids in every frame, no new ones
        for track_id, box in zip(ids.tolist(), boxes, strict=True):
            places.setdefault(track_id, []).append(box + np.tile(origin, 2))  # back in the photo's pixels
    for track_id, boxes in places.items():
        # each id stays on one face: its box, in the photo's own pixels, hardly moves while the camera pans 120 px
        spread = np.ptp(np.array(boxes), axis=0).max()
        assert spread < 10, (track_id, spread)


def test_an_id_survives_a_missed_frame_and_a_new_face_gets_a_new_id():
    tracker = FaceTracker()
    face, other = np.array([[100.0, 100, 150, 160]]), np.array([[400.0, 100, 450, 160]])
    step = np.array([4.0, 0, 4, 0])
    first, _ = tracker.update(face)
    tracker.update(np.zeros((0, 4)))  # the detector missed it once
    again, _ = tracker.update(face + step)
    both, _ = tracker.update(np.concatenate([face + 2 * step, other]))
    assert first.tolist() == again.tolist() == [0]
    assert both.tolist() == [0, 1]


def test_tracked_boxes_are_smoother_than_detections():
    rng = np.random.default_rng(0)
    tracker = FaceTracker()
    truth = np.array([[100.0 + 3 * t, 80.0 + t, 180.0 + 3 * t, 180.0 + t] for t in range(60)])
    noisy = truth + rng.normal(0, 2.0, truth.shape)  # a detector's jitter: 2 px per coordinate
    smoothed = np.concatenate([tracker.update(box[None])[1] for box in noisy])
    raw_error = np.abs(noisy[10:] - truth[10:]).mean()
    smooth_error = np.abs(smoothed[10:] - truth[10:]).mean()
    # measured: 1.71 px raw, 1.04 px tracked (after the first 10 frames, while the velocity settles)
    assert smooth_error < 0.8 * raw_error
    unsmoothed = FaceTracker(TrackerConfig(smooth=False))
    assert np.array_equal(np.concatenate([unsmoothed.update(b[None])[1] for b in noisy]), noisy)


def test_landmarks_follow_their_box():
    old = np.array([[10.0, 20, 30, 60]])
    new = np.array([[20.0, 20, 60, 100]])  # shifted by 10 in x, twice as large
    points = np.array([[[10.0, 20], [30, 60], [20, 40], [10, 60], [30, 20]]])
    expected = np.array([[[20.0, 20], [60, 100], [40, 60], [20, 100], [60, 20]]])
    np.testing.assert_allclose(follow_boxes(points, old, new), expected)


def random_costs(rng: np.random.Generator, kind: int) -> np.ndarray:
    """A 1-7 x 1-7 cost matrix: uniform, small integers (many ties), or negated sparse IoU-like values."""
    shape = tuple(rng.integers(1, 8, size=2))
    if kind == 0:
        return rng.random(shape)
    if kind == 1:
        return rng.integers(0, 3, size=shape).astype(np.float64)
    return -np.round(rng.random(shape) * (rng.random(shape) > 0.6), 1)


def test_assignment_has_the_least_total_cost_of_all_assignments():
    rng = np.random.default_rng(0)
    for trial in range(300):
        cost = random_costs(rng, trial % 3)
        rows, cols = min_cost_assignment(cost)
        short = min(cost.shape)
        assert len(rows) == len(cols) == short
        assert len(set(rows.tolist())) == len(set(cols.tolist())) == short
        assert rows.tolist() == sorted(rows.tolist())
        wide = cost if cost.shape[0] <= cost.shape[1] else cost.T  # brute force: every injection of the short side
        best = min(
            wide[np.arange(len(wide)), list(p)].sum() for p in itertools.permutations(range(wide.shape[1]), len(wide))
        )
        assert cost[rows, cols].sum() == pytest.approx(best, abs=1e-12)


def test_assignment_is_scipys_ties_included():
    # the tracker's ids were scipy's before it dropped scipy: the same pairs among equal costs keep them
    scipy_optimize = pytest.importorskip("scipy.optimize")
    rng = np.random.default_rng(1)
    for trial in range(600):
        cost = random_costs(rng, trial % 3)
        expected = scipy_optimize.linear_sum_assignment(cost)
        got = min_cost_assignment(cost)
        assert [a.tolist() for a in got] == [e.tolist() for e in expected], cost
    large = rng.random((60, 45))
    expected = scipy_optimize.linear_sum_assignment(large)
    assert [a.tolist() for a in min_cost_assignment(large)] == [e.tolist() for e in expected]


def write_video(path, frames, fps=5.0):
    size = frames[0].shape[1::-1]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    for frame in frames:
        writer.write(np.ascontiguousarray(frame))
    writer.release()


def test_detect_on_a_video_writes_track_ids(capsys, tmp_path, panned):
    video = tmp_path / "pan.mp4"
    write_video(video, [frame for frame, _ in panned[::4]])  # 6 frames, 24 px apart
    out = tmp_path / "det.json"
    args = ["detect", str(video), "--model", "retinaface-mnet025", "--json", str(out), "--batch-size", "4"]
    assert main(args) == 0
    frames = json.loads(out.read_text())
    assert [f["image"] for f in frames] == [f"{video}#frame={i}" for i in range(6)]
    for frame in frames:
        assert sorted(face["track_id"] for face in frame["faces"]) == [0, 1, 2, 3, 4]
    assert "5 track(s)" in capsys.readouterr().out
    assert main([*args, "--no-track"]) == 0
    assert all("track_id" not in face for frame in json.loads(out.read_text()) for face in frame["faces"])

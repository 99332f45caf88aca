"""Alignment: Umeyama's similarity against hand-computed transforms and OpenCV, and crops that do not depend on
how the face was rotated, scaled or shifted in the photo."""

import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from featherface.align import (
    ARCFACE_TEMPLATE,
    DegenerateLandmarks,
    align_face,
    alignment_matrix,
    landmarks_defect,
    template,
    umeyama_similarity,
)


def apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:, :2].T + matrix[:, 2]


def similarity(angle_deg: float, scale: float, shift: tuple[float, float]) -> np.ndarray:
    a = math.radians(angle_deg)
    c, s = scale * math.cos(a), scale * math.sin(a)
    return np.array([[c, -s, shift[0]], [s, c, shift[1]]])


def test_template_maps_to_itself():
    matrix = alignment_matrix(ARCFACE_TEMPLATE)
    np.testing.assert_allclose(matrix, [[1, 0, 0], [0, 1, 0]], atol=1e-4)
    np.testing.assert_allclose(apply(matrix, ARCFACE_TEMPLATE), ARCFACE_TEMPLATE, atol=1e-4)


def test_two_points_by_hand_quarter_turn_doubling():
    # (0,0)->(1,1) and (1,0)->(1,3): the unit x step becomes (0, 2), i.e. rotate +90 degrees, scale 2, then +(1, 1)
    matrix = umeyama_similarity(np.array([[0.0, 0], [1, 0]]), np.array([[1.0, 1], [1, 3]]))
    np.testing.assert_allclose(matrix, [[0, -2, 1], [2, 0, 1]], atol=1e-12)


def test_exact_similarity_of_the_template_is_recovered():
    known = similarity(30.0, 0.5, (10.0, -5.0))
    np.testing.assert_allclose(umeyama_similarity(ARCFACE_TEMPLATE, apply(known, ARCFACE_TEMPLATE)), known, atol=1e-9)


def test_a_mirrored_face_gets_a_rotation_never_a_reflection():
    mirrored = ARCFACE_TEMPLATE * [-1, 1]
    matrix = umeyama_similarity(mirrored, ARCFACE_TEMPLATE)
    assert np.linalg.det(matrix[:, :2]) > 0


def test_noisy_points_match_opencv_least_squares():
    rng = np.random.default_rng(0)
    source = ARCFACE_TEMPLATE + rng.normal(0, 3, size=(5, 2))
    target = apply(similarity(-20.0, 1.7, (40.0, 12.0)), source) + rng.normal(0, 2, size=(5, 2))
    ours = umeyama_similarity(source, target)
    # every point an inlier, then Levenberg-Marquardt refinement: OpenCV's least-squares similarity
    theirs, _ = cv2.estimateAffinePartial2D(source, target, ransacReprojThreshold=1e4, refineIters=100)
    np.testing.assert_allclose(ours, theirs, atol=1e-4)


def test_template_scales_to_any_size_and_margin():
    np.testing.assert_allclose(template(224), ARCFACE_TEMPLATE * 2)
    # margin 0.5 doubles the frame: the standard 112 frame sits in the middle half of a 224 crop
    np.testing.assert_allclose(template(224, margin=0.5), ARCFACE_TEMPLATE + 56)
    # a 96 wide, 112 high crop: the 112 frame shrinks to fit the width (x 96/112) and is centred vertically (+8)
    np.testing.assert_allclose(template((96, 112)), ARCFACE_TEMPLATE * 96 / 112 + [0, 8])
    with pytest.raises(ValueError, match="margin"):
        template(112, margin=-0.1)


@pytest.fixture(scope="module")
def upright(reference_detections, sample_images):
    image = cv2.imread(str(sample_images / "astronaut.jpg"))
    landmarks = np.array(reference_detections["images"]["astronaut.jpg"]["faces"][0]["landmarks"])
    return image, landmarks


@pytest.mark.parametrize(("angle", "scale", "shift"), [(35.0, 0.8, (60.0, -20.0)), (-50.0, 1.3, (-90.0, 140.0))])
def test_rotated_scaled_shifted_face_gives_the_upright_crop(upright, angle, scale, shift):
    image, landmarks = upright
    h, w = image.shape[:2]
    # turn about the image centre, then scale and shift: the face stays inside a 1.5x canvas
    centre = np.array([w / 2, h / 2])
    matrix = similarity(angle, scale, (0.0, 0.0))
    matrix[:, 2] = centre * 1.5 - matrix[:, :2] @ centre + np.array(shift)
    moved = cv2.warpAffine(image, matrix, (int(w * 1.5), int(h * 1.5)), flags=cv2.INTER_LINEAR)
    expected = align_face(image, landmarks)
    got = align_face(moved, apply(matrix, landmarks))
    assert got.shape == expected.shape == (112, 112, 3)
    difference = np.abs(got.astype(np.float64) - expected.astype(np.float64)).mean()
    # two bilinear resamplings instead of one: measured 2.1 and 1.0 grey levels (of 255)
    assert difference < 3.0, difference
    # and the crop is not trivially similar: an unaligned crop of the same region differs far more
    assert np.abs(cv2.resize(moved, (112, 112)).astype(np.float64) - expected).mean() > 20


def test_alignment_is_the_least_squares_optimum(upright):
    _, landmarks = upright

    def error(m):
        return ((apply(m, landmarks) - ARCFACE_TEMPLATE) ** 2).sum()

    matrix = alignment_matrix(landmarks)
    best = error(matrix)
    # a similarity has four parameters (a, b, tx, ty) in [[a, -b, tx], [b, a, ty]]: moving any of them costs
    for da, db, dx, dy in np.vstack([np.eye(4), -np.eye(4)]) * 1e-3:
        nudged = matrix + np.array([[da, -db, dx], [db, da, dy]])
        assert error(nudged) > best


def test_crop_cli_writes_one_aligned_crop_per_face_and_an_index(tmp_path, sample_images):
    import hashlib
    import json
    import shutil

    from featherface.cli import main

    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in ("astronaut.jpg", "faceapi_sample1.jpg"):  # 1 + 3 faces
        shutil.copy(sample_images / name, inputs)
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in inputs.iterdir()}
    out = tmp_path / "crops"
    assert main(["crop", str(inputs), "--out", str(out), "--model", "retinaface-mnet025"]) == 0
    index = json.loads((out / "crops.json").read_text())
    assert [Path(e["crop"]).name for e in index] == [
        "astronaut.jpg.face0.png",
        "faceapi_sample1.jpg.face0.png",
        "faceapi_sample1.jpg.face1.png",
        "faceapi_sample1.jpg.face2.png",
    ]
    for entry in index:
        assert set(entry) == {"crop", "image", "box", "score", "landmarks"}
        crop = cv2.imread(entry["crop"])
        assert crop.shape == (112, 112, 3)
        # the crop is the image aligned on the landmarks the index gives (they are rounded to 0.01 px)
        expected = align_face(cv2.imread(entry["image"]), np.array(entry["landmarks"]))
        assert np.abs(crop.astype(np.float64) - expected).mean() < 0.5
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in inputs.iterdir()} == before


def test_landmarks_that_fix_no_alignment_by_hand():
    assert landmarks_defect(ARCFACE_TEMPLATE) is None
    assert landmarks_defect(np.full((5, 2), 40.0)) == "landmarks coincide"
    on_a_line = np.array([[0.0, 0], [10, 5], [20, 10], [30, 15], [40, 20]])  # y = x / 2
    assert landmarks_defect(on_a_line) == "landmarks collinear"
    assert landmarks_defect(np.where(np.eye(5, 2, dtype=bool), np.nan, ARCFACE_TEMPLATE)) == "landmarks not finite"
    # a cross (+-a, 0), (0, +-b), (0, 0): spread sqrt(2) a along x and sqrt(2) b across, ratio b / a
    for across, defect in ((0.5, "landmarks collinear"), (2.0, None)):  # ratio 0.005 and 0.02 against 0.01
        cross = np.array([[-100.0, 0], [100, 0], [0, -across], [0, across], [0, 0]])
        assert landmarks_defect(cross) == defect
    with pytest.raises(DegenerateLandmarks, match="collinear"):
        alignment_matrix(on_a_line)
    with pytest.raises(DegenerateLandmarks, match="coincide"):
        align_face(np.zeros((50, 50, 3), np.uint8), np.full((5, 2), 25.0))


def faces_with_two_unalignable(landmarks: np.ndarray):
    """Three faces: every point at (200, 200), the given landmarks, five points on a line."""
    from featherface.detection.postprocess import Detections

    points = np.stack(
        [np.full((5, 2), 200.0), landmarks, [[100.0, 100], [120, 110], [140, 120], [160, 130], [180, 140]]]
    ).astype(np.float32)
    boxes = np.concatenate([points.min(axis=1) - 10, points.max(axis=1) + 10], axis=1)
    return Detections(boxes, np.array([0.9, 0.8, 0.7], np.float32), points)


def test_a_face_that_cannot_be_aligned_is_skipped_and_the_others_cropped(tmp_path, upright):
    from featherface.crops import crop_results
    from featherface.detection.sources import OutputGuard, Source
    from featherface.detection.stream import Result

    image, landmarks = upright
    faces = faces_with_two_unalignable(landmarks)
    source = Source.of(tmp_path / "photo.jpg", Path("photo.jpg"))
    out = tmp_path / "crops"
    entries = list(crop_results([Result(source, image, faces)], out, OutputGuard([source])))
    assert [e["crop"] for e in entries] == [None, str(out / "photo.jpg.face1.png"), None]
    assert [e.get("skipped") for e in entries] == ["landmarks coincide", None, "landmarks collinear"]
    assert [e["score"] for e in entries] == pytest.approx([0.9, 0.8, 0.7])  # every face listed, in order
    assert sorted(p.name for p in out.iterdir()) == ["photo.jpg.face1.png"]
    # the face that can be aligned is cropped exactly as alone (PNG: the same pixels)
    assert np.array_equal(cv2.imread(str(out / "photo.jpg.face1.png")), align_face(image, faces.landmarks[1]))


def test_crop_cli_counts_faces_it_cannot_align_and_goes_on(capsys, monkeypatch, tmp_path, sample_images, upright):
    import json
    import shutil

    from featherface.cli import main
    from featherface.detection.api import Detector

    _, landmarks = upright
    faces = faces_with_two_unalignable(landmarks)
    monkeypatch.setattr(Detector, "detect_batch", lambda self, images, **options: [faces for _ in images])
    inputs, out = tmp_path / "in", tmp_path / "crops"
    inputs.mkdir()
    shutil.copy(sample_images / "astronaut.jpg", inputs)
    assert main(["crop", str(inputs), "--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    assert "1 aligned 112x112 crop(s) from 1 file(s)" in stdout
    assert "2 face(s) without a crop (1 landmarks coincide, 1 landmarks collinear)" in stdout
    index = json.loads((out / "crops.json").read_text())
    assert [(Path(e["crop"]).name if e["crop"] else e["skipped"]) for e in index] == [
        "landmarks coincide",
        "astronaut.jpg.face1.png",
        "landmarks collinear",
    ]

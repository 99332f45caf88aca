"""RetinaFace-layout label files: parsing, and the bad-data policy (strict fails with file:line, default skips)."""

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from featherface.data.labels import LabelError, LabelReport, parse_label_file
from featherface.data.sample import load_sample, resolve_dataset

LANDMARKS = "12.0 14.0 0.0 18.0 14.0 0.0 15.0 17.0 0.0 13.0 20.0 0.0 17.0 20.0 0.0"


@pytest.fixture()
def dataset(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for name in ("a.jpg", "b.jpg"):
        cv2.imwrite(str(images / name), np.zeros((40, 40, 3), np.uint8))
    return tmp_path


def write_labels(root, text):
    path = root / "label.txt"
    path.write_text(text)
    return path


def test_parses_boxes_and_landmarks(dataset):
    path = write_labels(dataset, f"# a.jpg\n10 11 10 12 {LANDMARKS} 0.98\n5 5 4 4\n# b.jpg\n")
    a, b = parse_label_file(path, strict=True)
    np.testing.assert_allclose(a.boxes, [[10, 11, 20, 23], [5, 5, 9, 9]])
    assert a.has_landmarks.tolist() == [True, False]
    np.testing.assert_allclose(a.landmarks[0, 0], [12, 14])
    np.testing.assert_allclose(a.landmarks[0, 4], [17, 20])
    assert len(b) == 0 and b.boxes.shape == (0, 4)
    assert a.path == dataset / "images" / "a.jpg"


def test_minus_one_landmarks_mean_none(dataset):
    none = " ".join(["-1.0"] * 15)
    (a,) = parse_label_file(write_labels(dataset, f"# a.jpg\n1 1 5 5 {none} 0.5\n"), strict=True)
    assert a.has_landmarks.tolist() == [False]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("1 2 3", "found 3"),
        ("1 2 0 5", "non-positive size"),
        ("1 2 -3 5", "non-positive size"),
        ("1 2 three 5", "could not convert"),
        ("1 2 nan 5", "non-finite"),
        ("0 16777216 1 1", "vanishes"),  # 2^24, the largest value accepted: float32 holds no 2^24 + 1
        ("0 16777300 1 1", "beyond"),
    ],
)
def test_strict_names_file_and_line(dataset, line, reason):
    path = write_labels(dataset, f"# a.jpg\n1 1 5 5\n{line}\n")
    with pytest.raises(LabelError, match=rf"label\.txt:3: bad face line: .*{reason}"):
        parse_label_file(path, strict=True)


def test_lenient_skips_and_counts(dataset):
    path = write_labels(
        dataset, "3 3 3 3\n# a.jpg\n1 1 5 5\n1 2 3\n1 2 0 5\n# missing.jpg\n1 1 5 5\n# b.jpg\n2 2 6 6\n"
    )
    report = LabelReport()
    annotations = parse_label_file(path, report=report)
    assert [a.name for a in annotations] == ["a.jpg", "b.jpg"]
    assert [len(a) for a in annotations] == [1, 1]
    assert report.skipped == {"face line before any '# image' line": 1, "bad face line": 2, "missing image file": 1}
    assert "label.txt:4" in report.summary()


def test_missing_image_is_fatal_when_strict(dataset):
    with pytest.raises(LabelError, match=r"label\.txt:1: image file .*missing\.jpg not found"):
        parse_label_file(write_labels(dataset, "# missing.jpg\n1 1 5 5\n"), strict=True)


def test_sample_set_and_its_split():
    assert sum(len(a) for a in load_sample()) == 25
    train, val = load_sample("train"), load_sample("val")
    assert {a.name for a in val} == {"faceapi_sample5.jpg", "faceapi_sample6.jpg", "grace_hopper_512x512.jpg"}
    assert not {a.name for a in train} & {a.name for a in val}
    assert sum(len(a) for a in train) + sum(len(a) for a in val) == 25
    assert all(a.has_landmarks.all() for a in load_sample())


def test_dataset_names_and_paths(dataset):
    write_labels(dataset, "# a.jpg\n1 1 5 5\n")
    assert len(resolve_dataset(str(dataset))) == 1
    assert len(resolve_dataset(str(dataset / "label.txt"))) == 1
    assert len(resolve_dataset("sample:val")) == 3
    with pytest.raises(ValueError, match="no such dataset"):
        resolve_dataset(str(dataset / "nothing.txt"))


_number = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=32).map(lambda v: f"{v:g}"),
    st.integers(-5, 500).map(str),
    st.sampled_from(["-1", "-1.0", "0.0", "x", "", "1e9", "--", "#"]),
)
_face_line = st.lists(_number, min_size=0, max_size=22).map(" ".join)
_image_line = st.sampled_from(["# a.jpg", "# b.jpg", "#", "# missing.jpg", "#a.jpg"])


@settings(
    max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.one_of(_face_line, _image_line, st.text(max_size=30)), max_size=25))
def test_fuzzed_label_files_never_crash(dataset, lines):
    path = write_labels(dataset, "\n".join(lines))
    report = LabelReport()
    annotations = parse_label_file(path, report=report)
    for ann in annotations:
        assert ann.boxes.shape == (len(ann), 4)
        assert np.isfinite(ann.boxes).all()
        assert (ann.boxes[:, 2] > ann.boxes[:, 0]).all() and (ann.boxes[:, 3] > ann.boxes[:, 1]).all()
        assert ann.landmarks.shape == (len(ann), 5, 2)
    try:
        strict = parse_label_file(path, strict=True)
    except LabelError as exc:
        assert "label.txt" in str(exc)
    else:
        assert report.total == 0 and len(strict) == len(annotations)

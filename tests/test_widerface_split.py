import cv2
import numpy as np
import pytest

from featherface.data.labels import LabelError, LabelReport
from featherface.data.sample import resolve_dataset
from featherface.data.widerface import parse_wider_split

SPLIT = """0--Parade/a.jpg
2
10 20 30 40 0 0 0 0 0 0
5 5 8 8 2 0 0 1 0 0
0--Parade/empty.jpg
0
0 0 0 0 0 0 0 0 0 0
1--Handshaking/b.jpg
1
1 1 0 4 0 0 0 0 0 0
"""


@pytest.fixture()
def wider_root(tmp_path):
    for name in ("0--Parade/a.jpg", "0--Parade/empty.jpg", "1--Handshaking/b.jpg"):
        path = tmp_path / "WIDER_train" / "images" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), np.zeros((60, 60, 3), np.uint8))
    (tmp_path / "wider_face_split").mkdir()
    (tmp_path / "wider_face_split" / "wider_face_train_bbx_gt.txt").write_text(SPLIT)
    return tmp_path


def test_split_file_parsed_with_empty_images_and_invalid_faces(wider_root):
    report = LabelReport()
    anns = parse_wider_split(
        wider_root / "wider_face_split" / "wider_face_train_bbx_gt.txt",
        wider_root / "WIDER_train" / "images",
        report=report,
    )
    assert [a.path.name for a in anns] == ["a.jpg", "empty.jpg", "b.jpg"]
    np.testing.assert_allclose(anns[0].boxes, [[10, 20, 40, 60]])
    assert len(anns[1]) == 0 and len(anns[2]) == 0
    assert report.skipped == {"face marked invalid": 1, "box of non-positive size": 1}
    assert not anns[0].has_landmarks.any()


def test_strict_split_names_the_line(wider_root):
    with pytest.raises(LabelError, match=r"wider_face_train_bbx_gt\.txt:10: box of non-positive size"):
        parse_wider_split(
            wider_root / "wider_face_split" / "wider_face_train_bbx_gt.txt",
            wider_root / "WIDER_train" / "images",
            strict=True,
        )


def test_wider_root_resolves_as_a_dataset(wider_root):
    assert len(resolve_dataset(str(wider_root))) == 3

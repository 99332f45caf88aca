"""Pascal VOC XML as labelling tools export it: layouts, the 1-based offset, classes, bad data."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from featherface.cli import main
from featherface.data.labels import ImageAnnotation, LabelError, LabelReport
from featherface.data.sample import resolve_dataset
from featherface.data.voc import find_voc_layout, parse_voc_folder, read_voc_xml
from featherface.detection.postprocess import Detections
from featherface.evaluation.voc import IGNORED, evaluate_dataset, match_detections


def voc_object(name, box=None, difficult=0):
    tags = "".join(f"<{t}>{v}</{t}>" for t, v in zip(("xmin", "ymin", "xmax", "ymax"), box or (), strict=False))
    bndbox = "" if box is None else f"<bndbox>{tags}</bndbox>"
    return f"<object><name>{name}</name><difficult>{difficult}</difficult>{bndbox}</object>"


def voc_xml(filename, objects, size=(100, 80)):
    size_tag = "" if size is None else f"<size><width>{size[0]}</width><height>{size[1]}</height></size>"
    return f"<annotation><filename>{filename}</filename>{size_tag}{''.join(objects)}</annotation>"


def write_image(path: Path, width=100, height=80) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((height, width, 3), 128, np.uint8))


@pytest.fixture
def facemask_like(tmp_path):
    """``annotations/`` + ``images/``: a.jpg (a masked and an unmasked face), b.jpg (one face), and c.xml whose
    image is missing."""
    root = tmp_path / "voc"
    (root / "annotations").mkdir(parents=True)
    write_image(root / "images" / "a.jpg")
    write_image(root / "images" / "b.jpg")
    a = [voc_object("con_mascarilla", (11, 21, 40, 60)), voc_object("sin_mascarilla", (51, 11, 70, 30))]
    (root / "annotations" / "a.xml").write_text(voc_xml("a.jpg", a))
    (root / "annotations" / "b.xml").write_text(voc_xml("b.jpg", [voc_object("sin_mascarilla", (1, 1, 10, 10))]))
    (root / "annotations" / "c.xml").write_text(voc_xml("c.jpg", [voc_object("sin_mascarilla", (1, 1, 10, 10))]))
    return root


def test_voc_coordinates_are_one_based_inclusive(facemask_like):
    report = LabelReport()
    a, b = parse_voc_folder(facemask_like, report=report)
    assert a.path == facemask_like / "images" / "a.jpg"
    np.testing.assert_array_equal(a.boxes, [[10, 20, 40, 60], [50, 10, 70, 30]])  # (xmin - 1, ymin - 1, xmax, ymax)
    np.testing.assert_array_equal(b.boxes, [[0, 0, 10, 10]])  # pixels 1..10 are 10 pixels wide
    assert not a.has_landmarks.any() and a.landmarks.shape == (2, 5, 2)
    assert len(a.ignored_boxes) == 0
    a, _ = parse_voc_folder(facemask_like, one_based=False)  # numbers taken as continuous coordinates
    np.testing.assert_array_equal(a.boxes, [[11, 21, 40, 60], [51, 11, 70, 30]])


def test_missing_image_is_counted_and_skipped(facemask_like):
    report = LabelReport()
    annotations = parse_voc_folder(facemask_like, report=report)
    assert [a.name for a in annotations] == ["a.jpg", "b.jpg"]
    assert dict(report.skipped) == {"missing image file": 1}
    assert report.first_seen["missing image file"].endswith("c.xml")
    c = facemask_like / "annotations" / "c.xml"  # listed too (evaluate's JSON errors), by the image it names
    assert report.files == [
        {"path": str(facemask_like / "images" / "c.jpg"), "reason": "missing image file", "where": str(c),
         "detail": f"{facemask_like / 'images' / 'c.jpg'} not found"}
    ]  # fmt: skip


def test_missing_image_is_fatal_when_strict(facemask_like):
    with pytest.raises(LabelError, match=r"c\.xml: missing image file"):
        parse_voc_folder(facemask_like, strict=True)


def test_class_filter_turns_other_classes_into_ignored_regions(facemask_like):
    a, b = parse_voc_folder(facemask_like, classes=["sin_mascarilla"])
    np.testing.assert_array_equal(a.boxes, [[50, 10, 70, 30]])
    np.testing.assert_array_equal(a.ignored_boxes, [[10, 20, 40, 60]])
    assert len(a) == 1 and len(b) == 1


def test_unknown_class_names_the_classes_found(facemask_like):
    with pytest.raises(ValueError, match=r"no objects of class mask; classes found: con_mascarilla \(1\)"):
        parse_voc_folder(facemask_like, classes=["mask"])


def test_bad_objects_are_counted_and_skipped_not_fatal(tmp_path):
    write_image(tmp_path / "x.jpg")  # 100 x 80
    objects = [
        voc_object("face", (11, 21, 40, 60)),  # kept
        voc_object("face"),  # no bndbox
        voc_object("face", ("a", 1, 5, 5)),  # non-numeric
        voc_object("face", (30, 30, 20, 40)),  # xmax < xmin
        voc_object("face", (150, 10, 190, 40)),  # wholly right of the 100-pixel-wide image
        voc_object("face", (91, 71, 120, 95)),  # partly outside: clipped
    ]
    (tmp_path / "x.xml").write_text(voc_xml("x.jpg", objects))
    report = LabelReport()
    ann = read_voc_xml(tmp_path / "x.xml", report=report)
    np.testing.assert_array_equal(ann.boxes, [[10, 20, 40, 60], [90, 70, 100, 80]])
    assert dict(report.skipped) == {
        "object without bndbox": 1,
        "non-numeric box": 1,
        "box of non-positive size": 1,
        "box outside the image": 1,
    }
    assert report.first_seen["box outside the image"] == f"{tmp_path / 'x.xml'} object 5 (face)"
    with pytest.raises(LabelError, match=r"x\.xml object 2 \(face\): object without bndbox"):
        read_voc_xml(tmp_path / "x.xml", strict=True)


def test_image_size_comes_from_the_image_when_xml_has_none(tmp_path):
    write_image(tmp_path / "x.png", width=60, height=40)
    objects = [voc_object("face", (1, 1, 10, 10)), voc_object("face", (70, 1, 80, 10))]  # second: x beyond 60
    (tmp_path / "x.xml").write_text(voc_xml("x.png", objects, size=None))
    report = LabelReport()
    ann = read_voc_xml(tmp_path / "x.xml", report=report)
    assert len(ann) == 1 and dict(report.skipped) == {"box outside the image": 1}


def test_malformed_xml_is_counted_with_its_line(tmp_path):
    write_image(tmp_path / "x.jpg")
    (tmp_path / "x.xml").write_text("<annotation>\n<object>\n</annotation>\n")
    report = LabelReport()
    assert parse_voc_folder(tmp_path, report=report) == []
    assert dict(report.skipped) == {"malformed XML": 1}
    assert report.first_seen["malformed XML"] == f"{tmp_path / 'x.xml'}:3"


def test_difficult_objects_are_ignored_regions(tmp_path):
    write_image(tmp_path / "x.jpg")
    objects = [voc_object("face", (11, 21, 40, 60)), voc_object("face", (51, 11, 70, 30), difficult=1)]
    (tmp_path / "x.xml").write_text(voc_xml("x.jpg", objects))
    ann = read_voc_xml(tmp_path / "x.xml")
    assert len(ann) == 1 and ann.ignored_boxes.tolist() == [[50, 10, 70, 30]]


def test_devkit_layout_and_stem_fallback(tmp_path):
    root = tmp_path / "VOC2007"
    write_image(root / "JPEGImages" / "000001.jpg")
    (root / "Annotations").mkdir()
    # <filename> names a file that is not there (renamed on export): the XML file's stem finds the image
    (root / "Annotations" / "000001.xml").write_text(voc_xml("IMG_0001.JPG", [voc_object("face", (2, 2, 9, 9))]))
    layout = find_voc_layout(root)
    assert layout.annotations == root / "Annotations" and layout.images == root / "JPEGImages"
    (ann,) = resolve_dataset(str(root))
    assert ann.path == root / "JPEGImages" / "000001.jpg"
    np.testing.assert_array_equal(ann.boxes, [[1, 1, 9, 9]])


def test_xml_beside_images(tmp_path):
    write_image(tmp_path / "p.jpg")
    (tmp_path / "p.xml").write_text(voc_xml("p.jpg", [voc_object("dog", (2, 2, 9, 9))]))
    (ann,) = resolve_dataset(str(tmp_path))
    assert len(ann) == 1  # every class is a face unless told otherwise


def test_classes_apply_to_voc_data_only():
    with pytest.raises(ValueError, match="Pascal VOC data only"):
        resolve_dataset("sample:val", classes=["face"])


def test_detection_on_an_ignored_face_is_neither_hit_nor_false_positive():
    gt = np.array([[0, 0, 10, 10]], np.float32)
    ignored = np.array([[50, 50, 60, 60]], np.float32)
    boxes = np.array([[0, 0, 10, 10], [50, 50, 60, 60], [50, 50, 60, 61], [100, 100, 110, 110]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.6], np.float32)
    assert match_detections(gt, boxes, scores, 0.5, ignored).tolist() == [0, IGNORED, IGNORED, -1]
    detections = Detections(boxes, scores, np.zeros((4, 5, 2), np.float32))
    ann = ImageAnnotation(Path("x.jpg"), gt, np.zeros((1, 5, 2), np.float32), np.zeros(1, bool), ignored)
    result = evaluate_dataset([ann], [detections], score_threshold=0.5)
    assert result.num_faces == 1 and result.ap == pytest.approx(1.0)
    assert result.per_image[0]["detections"] == 2 and result.per_image[0]["false_positives"] == 1
    assert result.precision == pytest.approx(0.5)


def test_evaluate_command_on_a_voc_folder(tmp_path, capsys, sample_images, reference_detections):
    name = "grace_hopper_512x512.jpg"
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / name).write_bytes((sample_images / name).read_bytes())
    x1, y1, x2, y2 = reference_detections["images"][name]["faces"][0]["box"]
    face = voc_object("sin_mascarilla", (round(x1) + 1, round(y1) + 1, round(x2), round(y2)))
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "g.xml").write_text(voc_xml(name, [face, voc_object("hat", (10, 10, 60, 40))], None))
    out = tmp_path / "ev.json"
    argv = ["evaluate", "--model", "retinaface-mnet025", "--data", str(tmp_path), "--device", "cpu"]
    assert main([*argv, "--classes", "sin_mascarilla", "--iou", "0.3", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["ap"] == 1.0 and result["num_faces"] == 1
    assert result["iou"] == 0.3 and result["classes"] == ["sin_mascarilla"] and result["detection_conf"] == 0.02
    capsys.readouterr()
    assert main([*argv, "--classes", "mask"]) == 2
    assert "no objects of class mask; classes found: hat (1), sin_mascarilla (1)" in capsys.readouterr().err

"""Dataset files are data from anywhere: an image path that leads outside the dataset's image folder (``../``, an
absolute path elsewhere) is skipped and counted with its path, unless ``allow_outside_root``; a label number that is
not finite or beyond 2^24 pixels is a bad face line, never trained on."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from featherface.cli import main
from featherface.data.labels import LabelError, LabelReport, parse_label_file
from featherface.data.sample import resolve_dataset, sample_root
from featherface.data.voc import parse_voc_folder
from featherface.data.widerface import parse_wider_split

OUTSIDE = "image outside the dataset root"
# the astronaut's face (label.txt layout: x y w h, then 5 landmarks as x y flag, then a score)
ASTRONAUT = "181.1 62.2 86.6 109.9 205.0 101.7 0.0 246.8 103.7 0.0 224.7 129.0 0.0 201.7 139.2 0.0 245.3 141.9 0.0 1.0"


@pytest.fixture
def secret(tmp_path) -> Path:
    """A photo outside every dataset below: the file a traversing path reaches."""
    path = tmp_path / "private" / "secret.jpg"
    path.parent.mkdir()
    shutil.copy(sample_root() / "images" / "astronaut.jpg", path)
    return path


def label_dataset(root: Path, secret: Path) -> Path:
    """``root/label.txt`` naming ``a.jpg`` (in ``root/images``), the secret by ``../../private/secret.jpg`` and by
    its absolute path."""
    (root / "images").mkdir(parents=True)
    shutil.copy(sample_root() / "images" / "astronaut.jpg", root / "images" / "a.jpg")
    label = root / "label.txt"
    label.write_text(f"# a.jpg\n{ASTRONAUT}\n# ../../private/secret.jpg\n{ASTRONAUT}\n# {secret}\n{ASTRONAUT}\n")
    return label


def test_a_label_file_naming_images_outside_its_root_has_them_skipped_and_counted(tmp_path, secret):
    label = label_dataset(tmp_path / "set", secret)
    images = tmp_path / "set" / "images"
    report = LabelReport()
    (kept,) = parse_label_file(label, report=report)
    assert kept.path == images / "a.jpg"
    assert report.skipped == {OUTSIDE: 2}
    assert report.examples[OUTSIDE] == [f"{label}:3", f"{label}:5"]
    assert [entry["path"] for entry in report.files] == [str(images / "../../private/secret.jpg"), str(secret)]
    with pytest.raises(LabelError, match=rf"^{label}:3: {OUTSIDE}: .*secret.jpg is not inside {images}$"):
        parse_label_file(label, strict=True)
    allowed = parse_label_file(label, strict=True, allow_outside_root=True)
    assert [ann.path.resolve() for ann in allowed] == [images / "a.jpg", secret, secret]


def test_a_name_with_dots_that_stays_inside_the_root_is_kept(tmp_path):
    root = tmp_path / "set"
    (root / "images" / "sub").mkdir(parents=True)
    shutil.copy(sample_root() / "images" / "astronaut.jpg", root / "images" / "a.jpg")
    label = root / "label.txt"
    label.write_text(f"# sub/../a.jpg\n{ASTRONAUT}\n# {root / 'images' / 'a.jpg'}\n{ASTRONAUT}\n")
    assert len(parse_label_file(label, strict=True)) == 2


def test_a_voc_filename_outside_the_image_folder_is_neither_scored_nor_drawn(tmp_path, secret, capsys):
    """The issue's case: ``evaluate --save-dir`` scored a photo outside the dataset and drew it into the save dir."""
    root = tmp_path / "voc"
    (root / "Annotations").mkdir(parents=True)
    (root / "JPEGImages").mkdir()
    shutil.copy(sample_root() / "images" / "astronaut.jpg", root / "JPEGImages" / "a.jpg")
    x, y, w, h = (round(float(v)) for v in ASTRONAUT.split()[:4])
    face = f"<object><name>face</name><bndbox><xmin>{x + 1}</xmin><ymin>{y + 1}</ymin><xmax>{x + w}</xmax>"
    face += f"<ymax>{y + h}</ymax></bndbox></object>"
    for name, filename in (("a", "a.jpg"), ("b", "../../private/secret.jpg"), ("c", str(secret))):
        (root / "Annotations" / f"{name}.xml").write_text(
            f"<annotation><filename>{filename}</filename><path>{secret}</path>{face}</annotation>"
        )
    drawn, out = tmp_path / "drawn", tmp_path / "eval.json"
    code = main(["evaluate", "--model", "nano-b-pretrained", "--data", str(root), "--save-dir", str(drawn),
                 "--json", str(out)])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    b, c = root / "Annotations" / "b.xml", root / "Annotations" / "c.xml"
    assert f"warning: skipped 2 x {OUTSIDE} (at {b}, {c})" in capsys.readouterr().err
    result = json.loads(out.read_text())
    assert result["skipped"] == {OUTSIDE: 2}
    assert [(e["path"], e["where"]) for e in result["errors"]] == [
        (str(root / "JPEGImages" / "../../private/secret.jpg"), str(b)),
        (str(secret), str(c)),
    ]
    assert [row["image"] for row in result["per_image"]] == ["a.jpg"]
    assert sorted(p.name for p in drawn.rglob("*") if p.is_file()) == ["a.jpg"]
    assert len(parse_voc_folder(root, strict=True, allow_outside_root=True)) == 3


def test_a_wider_split_naming_an_image_outside_its_root_has_it_skipped(tmp_path, secret):
    images = tmp_path / "WIDER_val" / "images"
    (images / "0--Parade").mkdir(parents=True)
    shutil.copy(secret, images / "0--Parade" / "a.jpg")
    split = tmp_path / "split.txt"
    split.write_text(
        "0--Parade/a.jpg\n1\n181 62 86 109 0 0 0 0 0 0\n../../private/secret.jpg\n1\n1 1 5 5 0 0 0 0 0 0\n"
    )
    report = LabelReport()
    (kept,) = parse_wider_split(split, images, report=report)
    assert kept.path == images / "0--Parade" / "a.jpg"
    assert report.skipped == {OUTSIDE: 1} and report.examples[OUTSIDE] == [f"{split}:4"]
    with pytest.raises(LabelError, match=rf"^{split}:4: {OUTSIDE}"):
        parse_wider_split(split, images, strict=True)


# ------------------------------------------------------------------------------------------ label values
def test_landmarks_of_1e30_are_a_bad_face_line_not_trained_on(tmp_path):
    """The issue's case: landmarks of 1e30 were trained on (a loss of 5e28 recorded, exit 0)."""
    root = tmp_path / "set"
    (root / "images").mkdir(parents=True)
    shutil.copy(sample_root() / "images" / "astronaut.jpg", root / "images" / "a.jpg")
    huge = ASTRONAUT.split()
    huge[4:6] = ["1e30", "1e30"]
    just_inside = ["16777216", "1", "5", "5"]  # 2^24: the largest value accepted
    label = root / "label.txt"
    label.write_text(f"# a.jpg\n{' '.join(huge)}\n{ASTRONAUT}\n{' '.join(just_inside)}\n-1e300 1 5 5\n")
    report = LabelReport()
    (ann,) = parse_label_file(label, report=report)
    assert len(ann) == 2 and np.abs(ann.landmarks).max() < 300  # the astronaut's line and the 2^24 one
    assert report.skipped == {"bad face line": 2} and report.examples["bad face line"] == [f"{label}:2", f"{label}:5"]
    with pytest.raises(LabelError, match=rf"^{label}:2: bad face line: number 1e\+30 beyond \+-16777216 pixels$"):
        parse_label_file(label, strict=True)
    report = LabelReport()
    (checked,) = resolve_dataset(str(label), report=report)  # what train reads: the same face left out
    assert len(checked) == 1 and report.skipped == {"bad face line": 2, "box outside the image": 1}


def test_voc_and_wider_numbers_beyond_2_to_24_are_refused_too(tmp_path):
    voc = tmp_path / "voc"
    voc.mkdir()
    shutil.copy(sample_root() / "images" / "astronaut.jpg", voc / "a.jpg")
    box = "<xmin>10</xmin><ymin>10</ymin><xmax>1e30</xmax><ymax>50</ymax>"
    (voc / "a.xml").write_text(f"<annotation><filename>a.jpg</filename><object><name>face</name><bndbox>{box}"
                               "</bndbox></object></annotation>")  # fmt: skip
    report = LabelReport()
    (ann,) = parse_voc_folder(voc, report=report)
    assert len(ann) == 0 and report.skipped == {"non-numeric box": 1}
    split = tmp_path / "split.txt"
    split.write_text("a.jpg\n2\n10 10 1e30 40 0 0 0 0 0 0\n10 10 inf 40 0 0 0 0 0 0\n")
    report = LabelReport()
    (ann,) = parse_wider_split(split, voc, report=report)
    assert len(ann) == 0 and report.skipped == {"bad face line": 2}

"""Property tests over the readers users feed files to: arbitrary bytes, and real image files truncated or with
their header bytes overwritten, give only the documented outcomes, each in bounded time.

- image header (:func:`~featherface.detection.image_header.read_header`): a header or None, never an exception;
- image (:func:`~featherface.detection.image.read_image`): a 3-channel uint8 image within the pixel limit, or
  :class:`~featherface.detection.image.ImageError`;
- ``label.txt``: annotations with finite boxes and landmarks within 2^24 pixels (lenient), or a ``LabelError``;
- VOC XML: an annotation or None (lenient), or a ``LabelError`` naming the file (strict).
"""

import os
import shutil
import time

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from featherface.data.labels import MAX_LABEL_VALUE, LabelError, LabelReport, parse_label_file
from featherface.data.sample import sample_root
from featherface.data.voc import read_voc_xml
from featherface.detection.image import ImageError, read_image
from featherface.detection.image_header import ImageHeader, read_header

from .image_files import encode, oriented_tiff, tagged_jpeg, tagged_png, tagged_webp

# a small limit keeps any header the mutations inflate cheap to refuse (and the test's memory bounded)
FUZZ_MAX_PIXELS = 1_000_000
SECONDS_PER_EXAMPLE = 2.0
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def real_files() -> list[bytes]:
    image = np.random.default_rng(0).integers(0, 256, (16, 24, 3), dtype=np.uint8)
    files = [
        tagged_jpeg(image, 6),
        tagged_png(image, 3),
        tagged_webp(image, 8),
        oriented_tiff(image, 5),
        encode(".bmp", image),
        encode(".ppm", image),
        encode(".jpg", image, (cv2.IMWRITE_JPEG_PROGRESSIVE, 1)),
    ]
    if hasattr(cv2, "imwriteanimation"):  # OpenCV >= 4.11 writes GIF
        files.append(encode(".gif", image))
    return files


REAL_FILES = real_files()
SIGNATURES = [data[:16] for data in REAL_FILES]


def mutated(data: bytes, cut: int, writes: list[tuple[int, int]]) -> bytes:
    """``data`` cut to ``cut`` bytes (when shorter than it), with bytes overwritten at positions in its first 256."""
    buffer = bytearray(data[: max(cut, 1)] if cut < len(data) else data)
    for position, value in writes:
        if position < len(buffer):
            buffer[position] = value
    return bytes(buffer)


_mutations = st.tuples(
    st.sampled_from(range(len(REAL_FILES))),
    st.integers(1, 4000),
    st.lists(st.tuples(st.integers(0, 255), st.integers(0, 255)), max_size=6),
)
_image_bytes = st.one_of(
    st.binary(max_size=600),
    st.tuples(st.sampled_from(SIGNATURES), st.binary(max_size=600)).map(b"".join),
    _mutations.map(lambda m: mutated(REAL_FILES[m[0]], m[1], m[2])),
)


@FUZZ
@given(_image_bytes)
def test_any_bytes_give_a_header_or_none(data):
    start = time.perf_counter()
    header = read_header(data)
    assert header is None or (isinstance(header, ImageHeader) and header.width > 0 and header.height > 0)
    assert header is None or 1 <= header.orientation <= 8
    assert time.perf_counter() - start < SECONDS_PER_EXAMPLE


@FUZZ
@given(_image_bytes)
def test_any_bytes_give_an_image_or_an_image_error(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("fuzz") / "file.img"
    path.write_bytes(data)
    start = time.perf_counter()
    try:
        image = read_image(path, max_pixels=FUZZ_MAX_PIXELS)
    except ImageError as exc:
        assert str(exc).startswith(f"{path}: ") and "\n" not in str(exc)
    else:
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
        assert image.shape[0] * image.shape[1] <= FUZZ_MAX_PIXELS
    assert time.perf_counter() - start < SECONDS_PER_EXAMPLE


def test_every_unmutated_file_reads_upright():
    """The fuzz inputs' base: each real file reads whole (the tags turn 16 x 24 into 24 x 16 for 5-8)."""
    for data in REAL_FILES:
        header = read_header(data)
        assert header is not None and header.pixels == 16 * 24, data[:8]
    assert [read_header(data).display_size for data in REAL_FILES[:4]] == [(16, 24), (24, 16), (16, 24), (16, 24)]


# -------------------------------------------------------------------------------------------------- labels
@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("labels")
    (root / "images").mkdir()
    shutil.copy(sample_root() / "images" / "astronaut.jpg", root / "images" / "a.jpg")
    return root


def inside(root, path) -> bool:
    return os.path.commonpath([root, os.path.normpath(path)]) == str(root)


_number = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr), st.integers(-(10**40), 10**40).map(str), st.just("-1")
)
_label_line = st.one_of(
    st.lists(_number, min_size=4, max_size=20).map(" ".join),
    st.sampled_from(["# a.jpg", "# ../a.jpg", "# /etc/passwd", "# images/../a.jpg", "#"]),
    st.binary(max_size=40).map(lambda b: b.decode("latin-1")),
)


@FUZZ
@given(st.one_of(st.binary(max_size=400), st.lists(_label_line, max_size=10).map(lambda ls: "\n".join(ls).encode())))
def test_any_label_file_gives_bounded_annotations_or_a_label_error(dataset, data):
    label = dataset / "label.txt"
    label.write_bytes(data)
    try:
        annotations = parse_label_file(label, report=LabelReport())
    except LabelError as exc:
        assert str(exc).startswith(f"{label}:"), exc
        return
    for ann in annotations:
        assert inside(dataset / "images", ann.path)
        for values in (ann.boxes, ann.landmarks):
            assert np.isfinite(values).all() and (np.abs(values) <= MAX_LABEL_VALUE).all()
    try:
        parse_label_file(label, strict=True)
    except LabelError as exc:
        assert str(exc).startswith(f"{label}:"), exc


_field = st.one_of(
    st.text(max_size=12), st.sampled_from(["1e30", "1e400", "inf", "nan", "-5", "10", "../a.jpg", "/etc/passwd"])
)


@st.composite
def voc_documents(draw) -> bytes:
    tags = ("filename", "xmin", "ymin", "xmax", "ymax", "width", "height")
    values = {tag: draw(_field) for tag in tags}
    text = (
        f"<annotation><filename>{values['filename']}</filename><size><width>{values['width']}</width>"
        f"<height>{values['height']}</height></size><object><name>face</name><bndbox>"
        + "".join(f"<{t}>{values[t]}</{t}>" for t in ("xmin", "ymin", "xmax", "ymax"))
        + "</bndbox></object></annotation>"
    )
    return draw(st.sampled_from(["", '<?xml version="1.0" encoding="utf-8"?>'])).encode() + text.encode(
        "utf-8", "surrogatepass"
    )


@FUZZ
@given(st.one_of(st.binary(max_size=400), voc_documents()))
def test_any_voc_xml_gives_an_annotation_none_or_a_label_error(dataset, data):
    xml = dataset / "images" / "a.xml"
    xml.write_bytes(data)
    report = LabelReport()
    ann = read_voc_xml(xml, report=report)
    if ann is not None:
        assert inside(dataset / "images", ann.path)
        assert np.isfinite(ann.boxes).all() and (np.abs(ann.boxes) <= MAX_LABEL_VALUE).all()
    else:
        assert report.total >= 1
    try:
        read_voc_xml(xml, strict=True)
    except LabelError as exc:
        assert str(exc).startswith(str(xml)), exc


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**12), 10**12) | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


def _paths(value, prefix=()):
    """Every place in a JSON document: ``(path, value)``."""
    yield prefix, value
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        yield from _paths(child, (*prefix, key))


@FUZZ
@given(data=st.data())
def test_a_checkpoints_architecture_with_any_value_anywhere_is_a_config_or_a_value_error(data):
    """A model file's architecture (checkpoint JSON, ONNX metadata) with one value replaced by arbitrary JSON:
    a config within the declared ranges, or a ``ValueError``; never another exception, never a slow build."""
    from featherface.models.config import DetectorConfig, nano_b_config

    doc = nano_b_config().to_dict()
    places = [path for path, _ in _paths(doc) if path]
    path = data.draw(st.sampled_from(places))
    *parents, last = path
    target = doc
    for key in parents:
        target = target[key]
    target[last] = data.draw(JSON_VALUES)
    started = time.process_time()
    try:
        config = DetectorConfig.from_dict(doc)
    except ValueError:
        config = None
    assert time.process_time() - started < SECONDS_PER_EXAMPLE
    if config is not None:  # accepted: it round-trips, so what was checked is what would be built
        assert DetectorConfig.from_dict(config.to_dict()) == config

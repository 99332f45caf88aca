"""Face-size-aware detection: min_face picks the scale that finds tiny faces; images too large or too elongated for
one pass are tiled, and every face is found once across tile borders."""

import itertools
import math

import cv2
import numpy as np
import pytest

from featherface.detection.api import Detector
from featherface.detection.boxes import box_iou
from featherface.detection.postprocess import PostprocessConfig
from featherface.detection.scaling import inference_factor, plan_tiles, split_axis

ANCHORS = (16.0, 512.0)


@pytest.fixture(scope="module")
def detector():
    return Detector.from_pretrained("retinaface-mnet025")


def photo(sample_images, name):
    return cv2.imread(str(sample_images / name))


def test_inference_factor_by_hand():
    assert inference_factor(600, 800, ANCHORS) == 1.0  # original size
    assert inference_factor(600, 800, ANCHORS, size=400) == 0.5
    assert inference_factor(600, 800, ANCHORS, min_face=8) == 2.0  # 8-px faces reach the 16-px anchor
    assert inference_factor(600, 800, ANCHORS, min_face=32) == 0.5  # 32-px faces are found at half size
    assert inference_factor(600, 800, ANCHORS, min_face=1) == 4.0  # capped: FaceSizeConfig.max_upscale
    assert inference_factor(600, 800, ANCHORS, max_face=1024) == 0.5  # 1024-px faces fit the 512 anchor
    assert inference_factor(600, 800, ANCHORS, max_face=100) == 1.0  # never upscaled for max_face alone
    with pytest.raises(ValueError, match="not both"):
        inference_factor(600, 800, ANCHORS, size=640, min_face=10)
    with pytest.raises(ValueError, match="below min_face"):
        inference_factor(600, 800, ANCHORS, min_face=40, max_face=20)


def test_split_axis_covers_with_overlap_and_meeting_cores():
    windows = split_axis(6000, 2048, 512)
    assert windows[0][0] == 0 and windows[-1][1] == 6000
    assert all(end - start == 2048 for start, end, _, _ in windows)
    for (_, e0, _, c0), (s1, _, c1, _) in itertools.pairwise(windows):
        assert e0 - s1 >= 512  # overlap
        assert c0 == c1 == (s1 + e0) / 2  # cores meet at the overlap's middle
    assert split_axis(300, 4096, 512) == [(0, 300, -math.inf, math.inf)]


def test_every_face_no_larger_than_the_overlap_is_owned_once_and_whole():
    rng = np.random.default_rng(0)
    tiles = plan_tiles(2500, 6000, 1000, 200)
    for _ in range(2000):
        size = rng.uniform(4, 200)
        x, y = rng.uniform(0, 6000 - size), rng.uniform(0, 2500 - size)
        centre = np.array([[x + size / 2, y + size / 2]])
        owners = [t for t in tiles if t.owns(centre)[0]]
        assert len(owners) == 1
        t = owners[0]
        assert t.x0 <= x and x + size <= t.x1 and t.y0 <= y and y + size <= t.y1


def matched(truth: np.ndarray, found: np.ndarray) -> int:
    """Faces of ``truth (T, 4)`` with a found box whose centre is within half the face's width of its centre."""
    if not len(found):
        return 0
    centres = lambda b: (b[:, :2] + b[:, 2:]) / 2  # noqa: E731
    distance = np.linalg.norm(centres(truth)[:, None] - centres(found)[None], axis=-1)
    return int((distance.min(axis=1) < (truth[:, 2] - truth[:, 0]) / 2).sum())


def test_min_face_finds_ten_pixel_faces_the_default_misses(detector, sample_images):
    scale = 0.1  # faces of ~100 px become ~10 px: below the 16-px anchor
    truth, parts, offset = [], [], 0
    for name in ("faceapi_sample3.jpg", "faceapi_sample5.jpg"):
        image = photo(sample_images, name)
        truth.append(detector.detect(image).boxes * scale + np.array([offset, 0, offset, 0]))
        small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        parts.append(np.pad(small, ((0, 80 - small.shape[0]), (0, 0), (0, 0))))
        offset += small.shape[1]
    truth, image = np.concatenate(truth), np.concatenate(parts, axis=1)
    widths = truth[:, 2] - truth[:, 0]
    assert len(truth) == 8 and widths.min() >= 8 and widths.max() <= 12.5
    default, small_faces = detector.detect(image), detector.detect(image, min_face=8)
    # measured: the default finds 1 of the 8 faces (the one of 12 px), min_face=8 (2x upscale) finds 7
    assert matched(truth, default.boxes) <= 1
    assert matched(truth, small_faces.boxes) >= 6
    assert matched(truth, small_faces.boxes) >= matched(truth, default.boxes) + 5


def test_max_face_drops_larger_faces(detector, sample_images):
    image = photo(sample_images, "astronaut.jpg")  # one face, ~93 px wide, ~120 px high
    assert len(detector.detect(image, max_face=200)) == 1
    assert len(detector.detect(image, max_face=60)) == 0


def one_to_one(truth: np.ndarray, found: np.ndarray) -> tuple[int, int]:
    """(faces of ``truth`` matched by exactly one found box at IoU > 0.5, found boxes matching no face)."""
    iou = box_iou(truth.astype(np.float64), found.astype(np.float64))
    once = int(((iou > 0.5).sum(axis=1) == 1).sum())
    unmatched = int(((iou > 0.5).sum(axis=0) == 0).sum())
    return once, unmatched


def most_covered(boxes: np.ndarray) -> float:
    """The largest share of a box covered by another box: a face found twice (whole, and cut at a tile's edge)
    gives ~1."""
    boxes = boxes.astype(np.float64)
    top_left = np.maximum(boxes[:, None, :2], boxes[None, :, :2])
    bottom_right = np.minimum(boxes[:, None, 2:], boxes[None, :, 2:])
    inter = np.clip(bottom_right - top_left, 0, None).prod(-1)
    np.fill_diagonal(inter, 0)
    area = (boxes[:, 2:] - boxes[:, :2]).prod(-1)
    return float((inter / np.minimum(area[:, None], area[None, :])).max())


def crosses_a_tile_edge(boxes: np.ndarray, tiles, height: int, width: int) -> int:
    """Boxes cut by a tile's inner edge (a window border that is not the image's)."""
    xs = {t.x0 for t in tiles if t.x0 > 0} | {t.x1 for t in tiles if t.x1 < width}
    ys = {t.y0 for t in tiles if t.y0 > 0} | {t.y1 for t in tiles if t.y1 < height}
    cut = [any(b[0] < x < b[2] for x in xs) or any(b[1] < y < b[3] for y in ys) for b in boxes]
    return sum(cut)


def test_a_6000_px_mosaic_is_tiled_and_every_face_found_once(sample_images):
    # tiles of 2048 (network pixels) so that a 6000 x 2500 mosaic needs 4 x 2 of them, overlapping by 512
    detector = Detector.from_pretrained("retinaface-mnet025", max_size=2048)
    # the faces of each photo alone, down to 0.2: a face cut by its photo's edge (0.24 alone, in faceapi_sample4)
    # scores above 0.5 beside another photo
    low = Detector.from_pretrained("retinaface-mnet025", postprocess_config=PostprocessConfig(0.2))
    names = sorted(p.name for p in sample_images.glob("*.jpg"))
    # 3 rows of 6 photos (fitted to 950 x 750 cells, 20 px apart, from y = 175): a layout that puts many faces
    # on the tiles' borders
    cell_w, cell_h, gap, top = 950, 750, 20, 175
    mosaic = np.full((2500, 6000, 3), 127, dtype=np.uint8)
    alone = {}
    truth, scores = [], []
    for k in range(18):
        name = names[k % len(names)]
        image = photo(sample_images, name)
        factor = min(cell_w / image.shape[1], cell_h / image.shape[0])
        image = cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
        if name not in alone:
            alone[name] = low.detect(image)
        y, x = top + (k // 6) * (cell_h + gap), (k % 6) * (cell_w + gap)
        mosaic[y : y + image.shape[0], x : x + image.shape[1]] = image
        truth.append(alone[name].boxes + np.array([x, y, x, y]))
        scores.append(alone[name].scores)
    truth, scores = np.concatenate(truth), np.concatenate(scores)
    faces = truth[scores > 0.5]
    tiles = plan_tiles(*mosaic.shape[:2], 2048, 512)
    assert len(tiles) == 8 and len(faces) == 50
    # the test means something only if faces lie across tile borders: measured 13 of 50
    assert crosses_a_tile_edge(faces, tiles, *mosaic.shape[:2]) >= 10
    found = detector.detect(mosaic)
    once, _ = one_to_one(faces, found.boxes)
    _, unexplained = one_to_one(truth, found.boxes)
    # measured: 51 found = the 50 faces once each + the cut-off face above; none twice, nothing else
    assert once == len(faces) and unexplained == 0
    assert most_covered(found.boxes) < 0.5


def test_a_20000_by_300_strip_keeps_its_faces(detector, sample_images):
    # issue 13: such a strip was downscaled to 4096 px (faces of ~7 px) and gave no face; it is now tiled
    parts, truth, x = [], [], 0
    names = ("faceapi_sample1.jpg", "faceapi_sample3.jpg", "faceapi_sample5.jpg", "faceapi_sample6.jpg")
    while x < 20000:
        image = photo(sample_images, names[len(parts) % len(names)])
        image = cv2.resize(image, (round(image.shape[1] * 300 / image.shape[0]), 300), interpolation=cv2.INTER_AREA)
        image = image[:, : 20000 - x]
        truth.append(detector.detect(image).boxes + np.array([x, 0, x, 0]))
        parts.append(image)
        x += image.shape[1]
    strip, truth = np.concatenate(parts, axis=1), np.concatenate(truth)
    assert strip.shape[:2] == (300, 20000)
    found = detector.detect(strip)
    once, extra = one_to_one(truth, found.boxes)
    # measured: 180 of 180 faces, each once, nothing else
    assert len(truth) > 100 and once >= len(truth) - 2 and extra <= 2
    # the old behaviour, the strip squeezed to 4096 px in one pass: measured 17 boxes, 13 of them faces
    assert len(detector.detect(strip, size=4096)) < len(truth) / 4


def test_a_size_above_the_network_cap_is_tiled_at_that_size(capsys, monkeypatch, tmp_path):
    # issue 13: --size could not lift the 4096-px cap: a 20000 x 300 strip at --size 8192 ran squeezed to 4096
    from featherface.cli import main

    factors = []
    tiled = Detector.detect_tiled

    def recorded(self, image, factor, max_face=None):
        factors.append(factor)
        return tiled(self, image, factor, max_face)

    monkeypatch.setattr(Detector, "detect_tiled", recorded)
    strip = tmp_path / "strip.png"
    cv2.imwrite(str(strip), np.full((300, 20000, 3), 90, np.uint8))
    for size in (8192, 4096):  # 4096 fits one pass: not tiled
        assert main(["detect", str(strip), "--size", str(size), "--model", "retinaface-mnet025"]) == 0
    assert factors == [8192 / 20000]
    assert capsys.readouterr().out.splitlines() == [f"{strip}: 0 face(s)"] * 2

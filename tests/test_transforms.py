import numpy as np

from featherface.data.dataset import FaceDataset
from featherface.data.sample import load_sample
from featherface.data.transforms import AugmentConfig, Sample, augment, horizontal_flip, random_square_crop


def sample_with_one_face(width=200, height=100):
    image = np.random.default_rng(0).integers(0, 255, (height, width, 3), dtype=np.uint8)
    boxes = np.array([[20.0, 30.0, 60.0, 80.0]], np.float32)
    landmarks = np.array([[[30, 40], [50, 40], [40, 55], [32, 70], [48, 70]]], np.float32)
    return Sample(image, boxes, landmarks, np.array([True]))


def test_flip_mirrors_boxes_and_swaps_left_right_landmarks():
    s = sample_with_one_face()
    f = horizontal_flip(s)
    np.testing.assert_allclose(f.boxes, [[140, 30, 180, 80]])
    # the left eye of the flipped image is the mirrored right eye of the original
    np.testing.assert_allclose(f.landmarks[0, 0], [200 - 50, 40])
    np.testing.assert_allclose(f.landmarks[0, 2], [200 - 40, 55])
    np.testing.assert_allclose(f.landmarks[0, 3], [200 - 48, 70])
    back = horizontal_flip(f)
    np.testing.assert_allclose(back.boxes, s.boxes)
    np.testing.assert_allclose(back.landmarks, s.landmarks)
    np.testing.assert_array_equal(back.image, s.image)


def test_crop_is_square_and_keeps_faces_whose_centre_is_inside():
    s = sample_with_one_face()
    for seed in range(20):
        c = random_square_crop(s, AugmentConfig(), np.random.default_rng(seed))
        assert c.image.shape[0] == c.image.shape[1]
        assert len(c.boxes) == 1
        centre = (c.boxes[0, :2] + c.boxes[0, 2:]) / 2
        assert (centre >= 0).all() and (centre <= c.image.shape[0]).all()


def test_augment_is_a_function_of_the_seed():
    s = sample_with_one_face()
    a = augment(s, AugmentConfig(image_size=64), np.random.default_rng([1, 2, 3]))
    b = augment(s, AugmentConfig(image_size=64), np.random.default_rng([1, 2, 3]))
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.boxes, b.boxes)
    assert a.image.shape == (64, 64, 3)


def test_dataset_items_differ_by_epoch_and_repeat_but_not_by_call():
    ds = FaceDataset(load_sample("train"), AugmentConfig(image_size=96), seed=0, repeats=2)
    assert len(ds) == 12
    first, again = ds[0], ds[0]
    np.testing.assert_array_equal(first[0].numpy(), again[0].numpy())
    assert not np.array_equal(ds[0][0].numpy(), ds[6][0].numpy())  # same photo, second visit
    ds.set_epoch(1)
    assert not np.array_equal(first[0].numpy(), ds[0][0].numpy())
    image, targets = first
    assert image.shape == (3, 96, 96)
    assert ((targets.boxes >= 0) & (targets.boxes <= 1)).all()


def test_unreadable_image_is_skipped_and_reported(tmp_path):
    import cv2

    from featherface.data.labels import parse_label_file

    (tmp_path / "images").mkdir()
    cv2.imwrite(str(tmp_path / "images" / "good.jpg"), np.full((50, 50, 3), 100, np.uint8))
    (tmp_path / "images" / "bad.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated jpeg")
    (tmp_path / "label.txt").write_text("# bad.jpg\n1 1 10 10\n# good.jpg\n5 5 20 20\n70 70 10 10\n")
    ds = FaceDataset(parse_label_file(tmp_path / "label.txt"), AugmentConfig(image_size=32), train=False)
    image, targets = ds[0]  # bad.jpg -> replaced by good.jpg
    assert image.shape == (3, 32, 32)
    assert ds.report.unreadable_images == [str(tmp_path / "images" / "bad.jpg")]
    assert ds.report.boxes_outside_image == 1  # the 70,70 box lies outside the 50x50 image
    assert len(targets.boxes) == 1
    strict = FaceDataset(
        parse_label_file(tmp_path / "label.txt"), AugmentConfig(image_size=32), train=False, strict=True
    )
    import pytest

    from featherface.data.labels import LabelError

    with pytest.raises(LabelError, match=r"bad\.jpg"):
        strict[0]


def test_occlusion_covers_nose_to_chin_and_nothing_else():
    from featherface.data.transforms import occlude_lower_face

    image = np.zeros((100, 200, 3), np.uint8)
    # face 40 wide, 50 tall; nose at y = 55, chin at y = 80
    s = sample_with_one_face()
    s = Sample(image, s.boxes, s.landmarks, s.has_landmarks)
    out = occlude_lower_face(s, AugmentConfig(occlusion_probability=1.0), np.random.default_rng(0))
    covered = out.image.any(axis=2)
    assert not s.image.any(), "the caller's image must not be written into"
    # the nose line is y = 55 +- 0.05 * 50; the patch's bottom is the chin (80) to 80 + 0.1 * 50
    rows = np.flatnonzero(covered.any(axis=1))
    assert 52 <= rows.min() <= 58 and 80 <= rows.max() <= 85
    # centred on x = 40, as wide as the face (half-width 0.5-0.6 x 40 = 20-24 px)
    cols = np.flatnonzero(covered.any(axis=0))
    assert 15 <= cols.min() <= 21 and 59 <= cols.max() <= 65
    assert covered[70, 40] and not covered[45, 40]  # the mouth is covered, the eyes are not
    np.testing.assert_array_equal(out.boxes, s.boxes)
    np.testing.assert_array_equal(out.landmarks, s.landmarks)


def test_occlusion_without_landmarks_starts_55_percent_down():
    from featherface.data.transforms import occlude_lower_face

    s = sample_with_one_face()
    s = Sample(np.zeros_like(s.image), s.boxes, np.zeros_like(s.landmarks), np.array([False]))
    out = occlude_lower_face(s, AugmentConfig(occlusion_probability=1.0), np.random.default_rng(1))
    rows = np.flatnonzero(out.image.any(axis=(1, 2)))
    # 30 + 0.55 * 50 = 57.5, +- 2.5
    assert 55 <= rows.min() <= 60


def test_occlusion_skips_small_faces_and_draws_nothing_when_off(monkeypatch):
    from featherface.data.transforms import occlude_lower_face

    s = sample_with_one_face()  # 40 x 50 px
    small = occlude_lower_face(
        s, AugmentConfig(occlusion_probability=1.0, occlusion_min_face_pixels=41), np.random.default_rng(0)
    )
    assert small.image is s.image
    # with the default (0) augment never calls it, so it draws no numbers: a run made before it existed replays
    import featherface.data.transforms as transforms

    def must_not_run(*args):
        raise AssertionError("occlusion ran with occlusion_probability 0")

    monkeypatch.setattr(transforms, "occlude_lower_face", must_not_run)
    augment(s, AugmentConfig(image_size=64, occlusion_min_face_pixels=0), np.random.default_rng(5))
    monkeypatch.undo()
    occluded = augment(
        s,
        AugmentConfig(image_size=64, occlusion_probability=1.0, occlusion_min_face_pixels=0),
        np.random.default_rng(5),
    )
    plain = augment(s, AugmentConfig(image_size=64), np.random.default_rng(5))
    np.testing.assert_array_equal(occluded.boxes, plain.boxes)
    assert (occluded.image != plain.image).any()

"""An unlabelled image pool: recursive listing and the fixed, hash-chosen hold-out (``DIR:train``/``DIR:holdout``)."""

import random

import cv2
import numpy as np
import pytest

from featherface.data.pool import holdout_key, list_images_recursive, pool_images, split_pool
from featherface.data.sample import resolve_distillation_data, sample_root

TINY_PNG = cv2.imencode(".png", np.zeros((4, 4, 3), np.uint8))[1].tobytes()


def make_pool(root, count, folders=("", "a", "a/b", "c")):
    """``count`` tiny images spread over ``folders``, plus files that are no pool images."""
    for i in range(count):
        path = root / folders[i % len(folders)] / f"img{i:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(TINY_PNG)
    (root / "notes.txt").write_text("not an image")
    (root / ".cache").mkdir()
    (root / ".cache" / "thumb.png").write_bytes(TINY_PNG)  # hidden folder: left out
    return root


def relative(paths, root):
    return [p.relative_to(root).as_posix() for p in paths]


def test_subfolders_are_listed_sorted_by_relative_path(tmp_path):
    make_pool(tmp_path, 8)
    assert relative(list_images_recursive(tmp_path), tmp_path) == [
        "a/b/img0002.png", "a/b/img0006.png", "a/img0001.png", "a/img0005.png",
        "c/img0003.png", "c/img0007.png", "img0000.png", "img0004.png",
    ]  # fmt: skip


def test_holdout_key_is_sha1_of_the_relative_posix_path(tmp_path):
    # sha1("a/b/img0002.png") starts with these 8 bytes on every machine
    key = holdout_key(tmp_path / "a" / "b" / "img0002.png", tmp_path)
    assert key == pytest.approx(int("3f51639f2d223afa", 16) / 2**64)


def test_split_is_disjoint_complete_and_independent_of_order(tmp_path):
    paths = list_images_recursive(make_pool(tmp_path, 400))
    train, holdout = split_pool(paths, tmp_path)
    assert set(train).isdisjoint(holdout) and set(train) | set(holdout) == set(paths)
    assert 4 <= len(holdout) <= 24  # 3 % of 400 is 12
    shuffled = paths[:]
    random.Random(0).shuffle(shuffled)
    assert set(split_pool(shuffled, tmp_path)[1]) == set(holdout)
    assert pool_images(tmp_path, "holdout") == holdout and pool_images(tmp_path, "train") == train


def test_adding_a_file_moves_no_other_file(tmp_path):
    make_pool(tmp_path, 400)
    train, holdout = split_pool(list_images_recursive(tmp_path), tmp_path)
    added = tmp_path / "c" / "new.png"
    added.write_bytes(TINY_PNG)
    new_train, new_holdout = split_pool(list_images_recursive(tmp_path), tmp_path)
    assert set(new_train) - {added} == set(train) and set(new_holdout) - {added} == set(holdout)


def test_a_small_pool_holds_out_at_least_one_image(tmp_path):
    make_pool(tmp_path, 3)
    train, holdout = split_pool(list_images_recursive(tmp_path), tmp_path)
    assert len(holdout) == 1 and len(train) == 2


def test_data_spec_addresses_the_parts(tmp_path):
    make_pool(tmp_path, 100)
    everything, labelled = resolve_distillation_data(str(tmp_path))
    train, _ = resolve_distillation_data(f"{tmp_path}:train")
    holdout, _ = resolve_distillation_data(f"{tmp_path}:holdout")
    assert not labelled and len(everything) == 100 and len(train) + len(holdout) == 100
    assert {a.path for a in holdout} == set(pool_images(tmp_path, "holdout"))
    assert all(len(a) == 0 for a in everything)


def test_holdout_of_labelled_data_is_refused():
    with pytest.raises(ValueError, match="unlabelled"):
        resolve_distillation_data(f"{sample_root()}:holdout")


def test_an_empty_pool_is_refused(tmp_path):
    (tmp_path / "sub").mkdir()
    with pytest.raises(ValueError, match="holds no images"):
        pool_images(tmp_path)

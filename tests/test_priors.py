import math

import pytest
import torch

from featherface.detection.priors import PriorBox


def test_priors_count_at_640_is_16800():
    priors = PriorBox()(640, 640)
    assert priors.shape == (16800, 4)
    assert PriorBox().feature_map_sizes(640, 640) == [(80, 80), (40, 40), (20, 20)]
    assert PriorBox().level_sizes(640, 640) == [12800, 3200, 800]  # 80² x 2, 40² x 2, 20² x 2
    # levels end where level_sizes says: the last prior of stride 8 has its larger anchor (32 px), the first of
    # stride 16 its smaller one (64 px), the last of all stride 32's larger one (512 px)
    assert priors[12799, 2].item() == pytest.approx(32 / 640)
    assert priors[12800, 2].item() == pytest.approx(64 / 640)
    assert priors[16799, 2].item() == pytest.approx(512 / 640)


@pytest.mark.parametrize(("height", "width"), [(683, 1024), (480, 736), (1, 1), (33, 17), (720, 1280)])
def test_priors_count_for_non_square_sizes(height, width):
    expected = sum(math.ceil(height / s) * math.ceil(width / s) * 2 for s in (8, 16, 32))
    assert PriorBox()(height, width).shape == (expected, 4)
    assert PriorBox().num_priors(height, width) == expected


def test_reference_prior_counts():
    # num_priors written in the reference detections for 1024x683 and 512x512 photos.
    assert PriorBox().num_priors(683, 1024) == 28928
    assert PriorBox().num_priors(512, 512) == 10752


def test_first_priors_are_row_major_cells_with_anchors_innermost():
    priors = PriorBox()(64, 128)  # level 0 map: 8 rows x 16 cols
    # cell (0, 0): two anchors 16 and 32 px centred at (4, 4) px
    torch.testing.assert_close(priors[0], torch.tensor([4 / 128, 4 / 64, 16 / 128, 16 / 64]))
    torch.testing.assert_close(priors[1], torch.tensor([4 / 128, 4 / 64, 32 / 128, 32 / 64]))
    # next cell along the row: x moves by one stride (8 px), y stays
    torch.testing.assert_close(priors[2], torch.tensor([12 / 128, 4 / 64, 16 / 128, 16 / 64]))
    # first cell of the second row: index 16 cells * 2 anchors
    torch.testing.assert_close(priors[32], torch.tensor([4 / 128, 12 / 64, 16 / 128, 16 / 64]))
    # first prior of level 1 (stride 16, sizes 64/128) follows all 8*16*2 level-0 priors
    torch.testing.assert_close(priors[256], torch.tensor([8 / 128, 8 / 64, 64 / 128, 64 / 64]))

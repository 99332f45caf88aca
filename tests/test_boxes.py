import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from featherface.detection.boxes import (
    box_iou,
    cxcywh_to_xyxy,
    decode_boxes,
    decode_landmarks,
    encode_boxes,
    encode_landmarks,
    nms,
    xyxy_to_cxcywh,
)
from featherface.detection.priors import PriorBox

VARIANCES = (0.1, 0.2)
FUNCTIONS = [box_iou, cxcywh_to_xyxy, xyxy_to_cxcywh, encode_boxes, decode_boxes, encode_landmarks, decode_landmarks]


def random_boxes(generator: torch.Generator, n: int, extent: float = 100.0) -> torch.Tensor:
    xy = torch.rand(n, 2, generator=generator) * extent
    wh = torch.rand(n, 2, generator=generator) * extent / 3 + 1
    return torch.cat([xy, xy + wh], dim=1)


def test_iou_hand_computed():
    a = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    b = torch.tensor([[5.0, 5.0, 15.0, 15.0], [0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0], [0.0, 0.0, 5.0, 10.0]])
    torch.testing.assert_close(box_iou(a, b), torch.tensor([[25 / 175, 1.0, 0.0, 0.5]]))


def test_iou_of_degenerate_boxes_is_zero():
    a = torch.tensor([[1.0, 1.0, 1.0, 1.0]])
    assert box_iou(a, a).item() == 0.0


def test_corner_centre_round_trip():
    boxes = random_boxes(torch.Generator().manual_seed(0), 50)
    torch.testing.assert_close(cxcywh_to_xyxy(xyxy_to_cxcywh(boxes)), boxes)


def test_encode_decode_boxes_round_trip():
    priors = PriorBox()(320, 480)
    g = torch.Generator().manual_seed(1)
    boxes = random_boxes(g, priors.shape[0], extent=1.0) / 2
    deltas = encode_boxes(boxes, priors, VARIANCES)
    torch.testing.assert_close(decode_boxes(deltas, priors, VARIANCES), boxes, atol=1e-5, rtol=1e-5)


def test_encode_hand_computed():
    prior = torch.tensor([0.5, 0.5, 0.2, 0.2])
    box = torch.tensor([0.42, 0.44, 0.62, 0.64])  # centre (0.52, 0.54), size 0.2 x 0.2
    expected = torch.tensor([0.02 / (0.1 * 0.2), 0.04 / (0.1 * 0.2), 0.0, 0.0])
    torch.testing.assert_close(encode_boxes(box, prior, VARIANCES), expected)


def test_encode_decode_landmarks_round_trip():
    priors = PriorBox()(160, 160)
    points = torch.rand(priors.shape[0], 10, generator=torch.Generator().manual_seed(2))
    deltas = encode_landmarks(points, priors, VARIANCES)
    torch.testing.assert_close(decode_landmarks(deltas, priors, VARIANCES), points, atol=1e-5, rtol=1e-5)


def test_decode_landmarks_hand_computed():
    prior = torch.tensor([[0.5, 0.25, 0.1, 0.2]])
    deltas = torch.tensor([[1.0, -1.0] * 5])
    expected = torch.tensor([[0.5 + 0.1 * 0.1, 0.25 - 0.1 * 0.2] * 5])
    torch.testing.assert_close(decode_landmarks(deltas, prior, VARIANCES), expected)


def brute_force_nms(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> list[int]:
    """The definition, written independently: visit by score, keep unless a kept box overlaps > threshold."""

    def iou(a, b):
        w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
        h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
        inter = w * h
        union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
        return inter / union if union > 0 else 0.0

    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    kept: list[int] = []
    for i in order:
        if all(iou(boxes[i], boxes[j]) <= threshold for j in kept):
            kept.append(i)
    return kept


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("threshold", [0.3, 0.4, 0.7])
def test_nms_equals_brute_force_on_random_boxes(seed, threshold):
    g = torch.Generator().manual_seed(seed)
    boxes = random_boxes(g, 300, extent=60.0).numpy()
    scores = torch.rand(300, generator=g).numpy()
    expected = brute_force_nms(boxes.astype(np.float64), scores, threshold)
    assert nms(boxes, scores, threshold).tolist() == expected


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    st.lists(
        st.tuples(st.floats(0, 50), st.floats(0, 50), st.floats(0.5, 30), st.floats(0.5, 30), st.floats(0, 1)),
        max_size=40,
    ),
    st.floats(0.05, 0.95),
)
def test_nms_equals_brute_force_property(rows, threshold):
    boxes = np.array([[x, y, x + w, y + h] for x, y, w, h, _ in rows], dtype=np.float64).reshape(-1, 4)
    scores = np.array([s for *_, s in rows], dtype=np.float64)
    assert nms(boxes, scores, threshold).tolist() == brute_force_nms(boxes, scores, threshold)


def test_nms_of_nothing_is_empty():
    kept = nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), 0.4)
    assert kept.shape == (0,) and kept.dtype == np.int64


@pytest.mark.parametrize("function", FUNCTIONS, ids=lambda f: f.__name__)
def test_numpy_and_torch_give_the_same_results(function):
    """One implementation for both kinds: training calls these on tensors, inference on numpy arrays."""
    g = torch.Generator().manual_seed(3)
    priors = PriorBox()(96, 128)
    boxes = random_boxes(g, len(priors), extent=1.0) / 2
    first = {
        box_iou: boxes[:50],
        cxcywh_to_xyxy: priors,
        xyxy_to_cxcywh: boxes,
        encode_boxes: boxes,
        decode_boxes: torch.randn(len(priors), 4, generator=g),
        encode_landmarks: torch.rand(len(priors), 10, generator=g),
        decode_landmarks: torch.randn(len(priors), 10, generator=g),
    }[function]
    rest = {box_iou: (boxes,), cxcywh_to_xyxy: (), xyxy_to_cxcywh: ()}.get(function, (priors, VARIANCES))
    from_torch = function(first, *rest)
    from_numpy = function(first.numpy(), *(a.numpy() if isinstance(a, torch.Tensor) else a for a in rest))
    assert isinstance(from_torch, torch.Tensor) and isinstance(from_numpy, np.ndarray)
    assert from_numpy.dtype == np.float32
    np.testing.assert_allclose(from_numpy, from_torch.numpy(), rtol=1e-6, atol=1e-6)

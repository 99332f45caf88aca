"""The numpy post-processing (threshold and top-k before decoding, NMS that suppresses as it goes) gives the
results of the torch implementation it replaced, frozen below as the reference, and of a plain Python loop."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from featherface.detection.boxes import nms
from featherface.detection.postprocess import Detections, PostprocessConfig, postprocess
from featherface.detection.priors import PriorBox

from .test_boxes import brute_force_nms

VARIANCES = (0.1, 0.2)


# ------------------------------------------------------------------------------------------------------------------
# The reference: featherface.detection's torch nms / postprocess as of commit 2a334a4, before the numpy rewrite.
def reference_box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    def area(boxes):
        return (boxes[..., 2] - boxes[..., 0]).clamp(min=0) * (boxes[..., 3] - boxes[..., 1]).clamp(min=0)

    top_left = torch.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (bottom_right - top_left).clamp(min=0).prod(dim=-1)
    union = area(a)[:, None] + area(b)[None, :] - inter
    return torch.where(union > 0, inter / union.clamp(min=torch.finfo(a.dtype).tiny), torch.zeros_like(inter))


def reference_nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    order = torch.sort(scores, descending=True, stable=True).indices
    ranked = boxes[order]
    overlaps = torch.cat(
        [(reference_box_iou(ranked[i : i + 1024], ranked) > iou_threshold).cpu() for i in range(0, len(ranked), 1024)]
    )
    n = order.numel()
    suppressed = torch.zeros(n, dtype=torch.bool)
    keep = []
    for i in range(n):
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= overlaps[i]
    return order[torch.tensor(keep, dtype=torch.long, device=order.device)]


def reference_decode_boxes(deltas, priors, variances):
    centre = priors[..., :2] + deltas[..., :2] * variances[0] * priors[..., 2:]
    size = priors[..., 2:] * torch.exp(deltas[..., 2:] * variances[1])
    return torch.cat([centre - size / 2, centre + size / 2], dim=-1)


def reference_decode_landmarks(deltas, priors, variances):
    offsets = deltas.reshape(*deltas.shape[:-1], deltas.shape[-1] // 2, 2)
    points = priors[..., None, :2] + offsets * variances[0] * priors[..., None, 2:]
    return points.reshape(deltas.shape)


def reference_postprocess(box_deltas, class_logits, landmark_deltas, priors, variances, scales, config):
    scores_all = torch.softmax(class_logits.float(), dim=-1)[..., 1]
    results = []
    for i in range(box_deltas.shape[0]):
        scores = scores_all[i]
        candidates = torch.nonzero(scores > config.conf_threshold).squeeze(1)
        if candidates.numel() > config.pre_nms_top_k:
            top = torch.topk(scores[candidates], config.pre_nms_top_k).indices
            candidates = candidates[top]
        sx, sy = scales[i]
        scale = torch.tensor([sx, sy], dtype=torch.float32, device=priors.device)
        selected = priors[candidates]
        boxes = reference_decode_boxes(box_deltas[i, candidates].float(), selected, variances) * scale.repeat(2)
        points = reference_decode_landmarks(landmark_deltas[i, candidates].float(), selected, variances)
        points = points.reshape(len(candidates), 5, 2) * scale
        kept = reference_nms(boxes, scores[candidates], config.nms_threshold)[: config.keep_top_k]
        results.append(
            Detections(
                boxes=boxes[kept].cpu().numpy(),
                scores=scores[candidates][kept].cpu().numpy(),
                landmarks=points[kept].cpu().numpy(),
            )
        )
    return results


# ------------------------------------------------------------------------------------------------------------------
def clustered_boxes(rng: np.random.Generator, n: int, dtype=np.float32) -> np.ndarray:
    """Boxes jittered around a few faces (heavy overlaps, as around a detected face), a few degenerate."""
    centres = rng.uniform(0, 200, size=(max(1, n // 20), 2))
    picked = centres[rng.integers(len(centres), size=n)]
    centre = picked + rng.normal(0, 4, size=(n, 2))
    size = rng.uniform(10, 40, size=(n, 1)) * rng.uniform(0.8, 1.25, size=(n, 2))
    boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1)
    degenerate = rng.random(n) < 0.02
    boxes[degenerate, 2:] = boxes[degenerate, :2]
    return boxes.astype(dtype)


def random_scores(rng: np.random.Generator, n: int, tied: bool) -> np.ndarray:
    """Scores in (0, 1); ``tied``: only 10 distinct values, so most boxes share their score with others."""
    return (rng.integers(1, 11, size=n) / 10 if tied else rng.random(n)).astype(np.float32)


@pytest.mark.parametrize("seed", range(24))
def test_nms_matches_the_reference_implementation(seed):
    rng = np.random.default_rng(seed)
    for n in (0, 1, 7, 60, 300, 1200 if seed % 4 == 0 else 0):
        boxes = clustered_boxes(rng, n, np.float32 if seed % 2 else np.float64)
        scores = random_scores(rng, n, tied=seed % 3 == 0)
        threshold = float(rng.choice([0.0, 0.1, 0.3, 0.4, 0.5, 0.7, 0.95, rng.random()]))
        expected = reference_nms(torch.from_numpy(boxes), torch.from_numpy(scores), threshold)
        assert nms(boxes, scores, threshold).tolist() == expected.tolist(), (seed, n, threshold)


@pytest.mark.parametrize("seed", range(20))
def test_nms_matches_a_python_loop(seed):
    rng = np.random.default_rng(100 + seed)
    boxes = clustered_boxes(rng, 200, np.float64)
    scores = random_scores(rng, 200, tied=seed % 2 == 0)
    threshold = float(rng.uniform(0.05, 0.95))
    assert nms(boxes, scores, threshold).tolist() == brute_force_nms(boxes, scores, threshold)


@settings(max_examples=80, deadline=None, derandomize=True)
@given(
    st.lists(
        st.tuples(st.integers(0, 30), st.integers(0, 30), st.integers(0, 12), st.integers(0, 12), st.integers(0, 4)),
        max_size=40,
    ),
    st.sampled_from([0.0, 0.25, 0.4, 0.5, 0.6]),
)
def test_nms_matches_the_reference_on_grid_boxes_with_exact_ties(rows, threshold):
    """Integer boxes (IoU often exactly at the threshold), empty boxes and scores from 5 values."""
    boxes = np.array([[x, y, x + w, y + h] for x, y, w, h, _ in rows], dtype=np.float32).reshape(-1, 4)
    scores = np.array([s / 4 for *_, s in rows], dtype=np.float32)
    expected = reference_nms(torch.from_numpy(boxes), torch.from_numpy(scores), threshold).tolist()
    assert nms(boxes, scores, threshold).tolist() == expected
    assert expected == brute_force_nms(boxes, scores, threshold)


def test_nms_keeps_the_lower_index_among_equal_boxes_of_equal_score():
    boxes = np.array([[0, 0, 10, 10]] * 3 + [[50, 50, 60, 60]], dtype=np.float32)
    scores = np.array([0.5, 0.9, 0.9, 0.9], dtype=np.float32)
    assert nms(boxes, scores, 0.4).tolist() == [1, 3]


def test_nms_max_kept_gives_the_first_kept_boxes():
    rng = np.random.default_rng(7)
    boxes, scores = clustered_boxes(rng, 500), random_scores(rng, 500, tied=False)
    full = nms(boxes, scores, 0.4)
    assert len(full) > 10
    assert nms(boxes, scores, 0.4, max_kept=10).tolist() == full[:10].tolist()


def test_nms_never_suppresses_with_empty_boxes():
    boxes = np.array([[5, 5, 5, 5], [5, 5, 5, 5], [0, 0, 10, 10]], dtype=np.float32)
    assert nms(boxes, np.array([0.9, 0.8, 0.7], np.float32), 0.0).tolist() == [0, 1, 2]


# ------------------------------------------------------------------------------------------------------------------
def raw_outputs(rng: np.random.Generator, batch: int, priors: int, tied: bool):
    """Raw network outputs. Face logits are either distinct values spaced widely enough that no float32
    rounding of the softmax reorders them, or 9 levels shared by many priors (exact ties); box size deltas are 0
    so that decoding is exact arithmetic in numpy and torch alike and both NMS see identical boxes."""
    if tied:
        face = rng.integers(-4, 5, size=(batch, priors)) / 2
    else:
        face = np.stack([rng.permutation(priors) for _ in range(batch)]) * (12 / priors) - 6
    logits = np.stack([np.zeros_like(face), face], axis=-1).astype(np.float32)
    box = np.concatenate([rng.normal(0, 1.5, size=(batch, priors, 2)), np.zeros((batch, priors, 2))], axis=-1).astype(
        np.float32
    )
    landmarks = rng.normal(0, 1, size=(batch, priors, 10)).astype(np.float32)
    return box, logits, landmarks


def far_from_scores(rng: np.random.Generator, logits: np.ndarray) -> float:
    """A confidence threshold at least 1e-4 from every face score (no rounding can cross it)."""
    scores = np.unique(1 / (1 + np.exp(-logits[..., 1].astype(np.float64))))
    while True:
        threshold = float(rng.uniform(0.02, 0.9))
        if np.abs(scores - threshold).min() > 1e-4:
            return threshold


def assert_same_detections(got: list[Detections], expected: list[Detections]) -> None:
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        assert len(g) == len(e)
        np.testing.assert_array_equal(g.boxes, e.boxes)
        np.testing.assert_allclose(g.scores, e.scores, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(g.landmarks, e.landmarks, rtol=1e-6, atol=1e-4)
        assert g.boxes.dtype == g.scores.dtype == g.landmarks.dtype == np.float32


@pytest.mark.parametrize("seed", range(20))
def test_postprocess_matches_the_reference_implementation(seed):
    rng = np.random.default_rng(seed)
    height, width = (int(v) for v in rng.integers(24, 200, size=2))
    priors = PriorBox().array(height, width)
    batch = int(rng.integers(1, 4))
    tied = seed % 2 == 0
    box, logits, landmarks = raw_outputs(rng, batch, len(priors), tied)
    config = PostprocessConfig(
        conf_threshold=far_from_scores(rng, logits),
        nms_threshold=float(rng.choice([0.3, 0.4, 0.5, rng.uniform(0.1, 0.9)])),
        # top-k truncation only with distinct scores: torch.topk's choice among ties is unspecified
        pre_nms_top_k=len(priors) if tied else int(rng.integers(1, len(priors) + 1)),
        keep_top_k=int(rng.choice([1, 5, 750, 750])),
    )
    scales = [(float(width * f), float(height * f)) for f in rng.uniform(0.5, 3, size=batch)]
    expected = reference_postprocess(
        *(torch.from_numpy(a) for a in (box, logits, landmarks)),
        torch.from_numpy(priors.copy()),
        VARIANCES,
        scales,
        config,
    )
    assert_same_detections(postprocess(box, logits, landmarks, priors, VARIANCES, scales, config), expected)
    # an image has faces exactly when a prior scores above the threshold (NMS keeps the best one at least): the
    # comparison above is not between two empty lists unless no score passes
    face_scores = 1 / (1 + np.exp(-logits[..., 1].astype(np.float64)))  # softmax of (0, face logit)
    assert [len(d) > 0 for d in expected] == (face_scores > config.conf_threshold).any(axis=1).tolist()


def test_postprocess_keeps_the_top_k_scores_before_nms():
    """Pre-NMS top-k: the k best scores, ties to the lower prior index (decoding sees only those)."""
    priors = PriorBox().array(64, 64)
    box = np.zeros((1, len(priors), 4), np.float32)
    logits = np.zeros((1, len(priors), 2), np.float32)
    logits[0, :, 1] = 1.0  # every prior has the same score
    logits[0, 100, 1] = 2.0
    landmarks = np.zeros((1, len(priors), 10), np.float32)
    config = PostprocessConfig(conf_threshold=0.5, nms_threshold=1.0, pre_nms_top_k=3)
    found = postprocess(box, logits, landmarks, priors, VARIANCES, [(64.0, 64.0)], config)[0]
    expected_centres = priors[[100, 0, 1], :2] * 64
    np.testing.assert_allclose((found.boxes[:, :2] + found.boxes[:, 2:]) / 2, expected_centres, atol=1e-4)


def test_postprocess_of_no_candidates_is_empty():
    priors = PriorBox().array(32, 32)
    box, logits, landmarks = raw_outputs(np.random.default_rng(0), 2, len(priors), tied=True)
    found = postprocess(box, logits, landmarks, priors, VARIANCES, [(32.0, 32.0)] * 2, PostprocessConfig(1.0))
    assert [len(d) for d in found] == [0, 0]
    assert found[0].boxes.shape == (0, 4) and found[0].landmarks.shape == (0, 5, 2)

import pytest
import torch

from featherface.detection.boxes import cxcywh_to_xyxy, decode_boxes, decode_landmarks
from featherface.detection.matching import assign_targets
from featherface.detection.priors import PriorBox
from featherface.losses.multibox import MultiBoxConfig, MultiBoxLoss, Targets, hard_negative_mask, stack_targets

VAR = (0.1, 0.2)


def face_on_prior(priors, index):
    box = cxcywh_to_xyxy(priors[index])
    cx, cy = priors[index, :2].tolist()
    points = torch.tensor(
        [cx - 0.01, cy - 0.01, cx + 0.01, cy - 0.01, cx, cy, cx - 0.01, cy + 0.01, cx + 0.01, cy + 0.01]
    )
    return box[None], points[None]


def test_face_exactly_on_a_prior_is_matched_with_zero_box_delta():
    priors = PriorBox()(160, 160)
    box, points = face_on_prior(priors, 10)
    t = assign_targets(box, points, torch.tensor([True]), priors, VAR)
    assert t.labels[10] == 1
    torch.testing.assert_close(t.box[10], torch.zeros(4), atol=1e-5, rtol=0)
    assert t.landmark_mask[10]
    # decoding the targets of every positive gives the face back
    positive = t.labels > 0
    decoded = decode_boxes(t.box[positive], priors[positive], VAR)
    torch.testing.assert_close(decoded, box.expand_as(decoded), atol=1e-5, rtol=1e-5)
    decoded_points = decode_landmarks(t.landmarks[positive], priors[positive], VAR)
    torch.testing.assert_close(decoded_points, points.expand_as(decoded_points), atol=1e-5, rtol=1e-5)


def test_small_face_keeps_its_best_prior_below_the_threshold():
    priors = PriorBox()(640, 640)
    # a 10 px face: IoU with the 16 px anchor is 100/256 = 0.39; shifted by 3 px it drops below 0.35
    cx, cy = priors[0, :2] * 640
    box = torch.tensor([[cx - 2, cy - 2, cx + 8, cy + 8]]) / 640
    t = assign_targets(box, torch.zeros(1, 10), torch.tensor([False]), priors, VAR)
    assert t.labels.sum() == 1 and t.labels[0] == 1
    assert not t.landmark_mask.any()  # no landmarks: boxes and class only


def test_no_faces_gives_all_background():
    priors = PriorBox()(64, 64)
    t = assign_targets(torch.zeros(0, 4), torch.zeros(0, 10), torch.zeros(0, dtype=torch.bool), priors, VAR)
    assert t.labels.sum() == 0 and t.box.shape == (priors.shape[0], 4)


def test_hard_negatives_are_seven_per_positive_and_the_hardest():
    labels = torch.zeros(1, 100, dtype=torch.long)
    labels[0, :2] = 1
    logits = torch.zeros(1, 100, 2)
    logits[0, :, 1] = torch.linspace(-5, 5, 100)  # later priors look more like faces: harder negatives
    negatives = hard_negative_mask(logits, labels, 7)
    assert negatives.sum() == 14
    assert negatives[0, 86:].all() and not negatives[0, :86].any()


def test_loss_is_small_for_perfect_predictions_and_grows_with_error():
    priors = PriorBox()(160, 160)
    box, points = face_on_prior(priors, 10)
    targets = stack_targets([Targets(box, points, torch.tensor([True]))], priors, VAR)
    logits = torch.where(targets.labels[..., None] > 0, torch.tensor([-20.0, 20.0]), torch.tensor([20.0, -20.0]))
    perfect = (targets.box.clone(), logits, targets.landmarks.clone())
    loss = MultiBoxLoss()(perfect, targets)
    assert loss["total"] < 1e-6
    worse = (targets.box + 0.5, logits, targets.landmarks + 0.5)
    worse_loss = MultiBoxLoss()(worse, targets)
    # smooth-L1 of 0.5 is 0.125 per coordinate: 4 per box, 10 per landmark set, per positive
    assert worse_loss["box"].item() == torch.tensor(0.125 * 4).item()
    assert abs(worse_loss["landmarks"].item() - 0.125 * 10) < 1e-5
    # total = box_weight 2 x 0.5 + landmark_weight 1 x 1.25 + classification (logits of +-20: e^-40, nothing)
    assert worse_loss["total"].item() == pytest.approx(2.0 * 0.5 + 1.0 * 1.25, abs=1e-5)


def test_box_weight_from_config():
    priors = PriorBox()(160, 160)
    box, points = face_on_prior(priors, 10)
    targets = stack_targets([Targets(box, points, torch.tensor([True]))], priors, VAR)
    outputs = (targets.box + 0.5, torch.zeros(1, priors.shape[0], 2), targets.landmarks)
    a = MultiBoxLoss(MultiBoxConfig(box_weight=1.0))(outputs, targets)
    b = MultiBoxLoss(MultiBoxConfig(box_weight=3.0))(outputs, targets)
    assert abs((b["total"] - a["total"]).item() - 2.0 * a["box"].item()) < 1e-5

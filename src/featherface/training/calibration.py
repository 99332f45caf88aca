"""Score calibration of a distilled student against its teacher, without labels.

A student distilled at temperature T is under-confident: at the default threshold (0.5) it keeps fewer faces than
its teacher does, so users see its recall drop although its ranking of faces is close to the teacher's. The fix
moves the operating point, not the ranking within a level: an offset ``b_l`` added to the face-vs-background logit
of every prior of pyramid level ``l``, so that on unlabelled photos the student keeps as many faces at 0.5 on that
level as the teacher keeps there (quantile matching of detection counts). Softmax face probability is
``sigmoid(l_face - l_bg)``, so ``b_l`` is folded into level ``l``'s head's classification biases (``+b/2`` face,
``-b/2`` background): the architecture and the exported graph are unchanged.

Per level, and only upwards, because the under-confidence is not the same on every level. Measured on the session-11
pool student (400 training photos at 0.5): at stride 8 it kept 804 faces where the teacher kept 1,292, at stride 16
273 vs 261, at stride 32 241 vs 155. One offset for all levels (+0.63) matched the total but pushed stride-32,
body-sized boxes over 0.5 (precision on the 9 sample photos 0.833 -> 0.758). A level that already keeps the
teacher's count gets no offset rather than a negative one: the teacher and the student need not put a face on the
same level (a face between two anchor sizes), so a level's surplus is not evidence of over-confidence on faces
(lowering stride 32 to the teacher's count would have needed -5.5).

The counts are matched approximately: NMS runs across levels, so a raised level's faces can suppress (or stop being
suppressed by) overlapping faces of another level; the offsets are fitted on the counts before the shift.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from featherface.detection.api import Detector
from featherface.detection.image import ImageError, read_image
from featherface.detection.postprocess import PostprocessConfig, face_scores, kept_priors
from featherface.detection.priors import PriorBox
from featherface.detection.runners import RetinaFaceLayout
from featherface.models.detector_net import DetectorNet

# Scores below this never matter to the count (the default threshold is 0.5); keeping them costs nothing.
CANDIDATE_THRESHOLD = 0.02
# A raise beyond this is no calibration but a broken model: refuse rather than fold it in. (Offsets only go up: a
# level's surplus is not refused, see above.)
MAX_LOGIT_OFFSET = 4.0


@dataclass(frozen=True)
class Calibration:
    """Per pyramid level (stride 8 first): the logit offset added to face-vs-background logits, and the counts of
    faces at ``threshold_target`` it was fitted on."""

    logit_offsets: tuple[float, ...]
    threshold_target: float
    teacher_faces: tuple[int, ...]
    student_faces_before: tuple[int, ...]
    images: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": "per-level count matching, raise only",
            "logit_offsets": [round(v, 5) for v in self.logit_offsets],
            "threshold_target": self.threshold_target,
            "teacher_faces": list(self.teacher_faces),
            "student_faces_before": list(self.student_faces_before),
            "images": self.images,
        }


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def scores_by_level(detector: Detector, image: np.ndarray) -> list[np.ndarray]:
    """The scores of the faces ``detector`` keeps in ``image`` (its original size, or ``max_size`` when larger; its
    own threshold and NMS), split by the pyramid level of the prior each face came from (stride 8 first)."""
    runner = detector.runner
    if not isinstance(runner, RetinaFaceLayout):
        raise TypeError(f"per-level scores need a RetinaFace-layout network, not {type(runner).__name__}")
    batch, scales = detector.prepare([image])
    box_deltas, class_logits, _ = runner(batch)
    anchors = runner.config.anchors
    height, width = batch.shape[2:]
    prior_box = PriorBox(anchors)
    priors = prior_box.array(height, width)
    scores = face_scores(class_logits[0])
    scale = np.asarray(scales[0], dtype=np.float32)
    kept, _ = kept_priors(box_deltas[0], scores, priors, anchors.variances, scale, detector.postprocess_config)
    kept_levels = np.searchsorted(np.cumsum(prior_box.level_sizes(height, width)), kept, side="right")
    return [scores[kept[kept_levels == level]] for level in range(len(anchors.steps))]


def calibration_photos(paths: Sequence[str | Path], count: int, seed: int = 0) -> list[str]:
    """The photos phase 4 calibrates on: ``count`` of ``paths`` (the training photos, so that a hold-out stays
    unseen) drawn with ``seed`` from their sorted list, in sorted order; all of them when there are fewer."""
    ordered = sorted(str(p) for p in paths)
    chosen = np.random.default_rng(seed).choice(len(ordered), size=min(count, len(ordered)), replace=False)
    return [ordered[i] for i in sorted(chosen)]


def fit_calibration(
    student: DetectorNet,
    teacher: DetectorNet,
    images: Sequence[str | Path],
    threshold: float = 0.5,
    progress: bool = True,
) -> Calibration:
    """The per-level logit offsets that make ``student`` keep, at ``threshold``, about as many faces on each
    pyramid level over ``images`` as ``teacher`` does there (both at each image's original size, their own NMS;
    a level already at the teacher's count keeps offset 0). Unreadable images are skipped."""
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must be in (0, 1), not {threshold}")
    if len(student.heads) != len(teacher.heads):
        raise ValueError(f"the student has {len(student.heads)} pyramid levels, the teacher {len(teacher.heads)}")
    candidates = PostprocessConfig(conf_threshold=CANDIDATE_THRESHOLD)
    detectors = [Detector.from_net(net, device="cpu", postprocess_config=candidates) for net in (teacher, student)]
    levels = len(student.heads)
    teacher_scores: list[list[np.ndarray]] = [[] for _ in range(levels)]
    student_scores: list[list[np.ndarray]] = [[] for _ in range(levels)]
    used = 0
    for path in tqdm(list(images), desc="calibration", unit="img", disable=not progress, leave=False):
        try:
            image = read_image(path)
        except ImageError:
            continue
        used += 1
        for detector, into in zip(detectors, (teacher_scores, student_scores), strict=True):
            for level, scores in enumerate(scores_by_level(detector, image)):
                into[level].append(scores)
    if not used:
        raise ValueError("calibration: none of the images could be read")
    teacher_per_level = [np.concatenate(s) for s in teacher_scores]
    student_per_level = [np.sort(np.concatenate(s))[::-1] for s in student_scores]
    wanted = [int((s >= threshold).sum()) for s in teacher_per_level]
    before = [int((s >= threshold).sum()) for s in student_per_level]
    offsets = []
    for level, (teacher_count, scores) in enumerate(zip(wanted, student_per_level, strict=True)):
        if teacher_count == 0:
            offsets.append(0.0)  # nothing to match on this level
            continue
        if len(scores) < teacher_count:
            raise ValueError(
                f"calibration: on level {level} the student finds {len(scores)} candidate faces (score > "
                f"{CANDIDATE_THRESHOLD}) where the teacher keeps {teacher_count} at {threshold}: it was not distilled "
                "from this teacher, or not trained"
            )
        needed = float(scores[teacher_count - 1])
        # a hair more, so that the matched face lands above the threshold, not on it (float rounding, strict ">")
        offset = max(0.0, _logit(threshold) - _logit(needed) + 1e-4)
        if offset > MAX_LOGIT_OFFSET:
            raise ValueError(
                f"calibration: level {level} of the student would need a logit offset of {offset:+.2f} to keep the "
                f"teacher's {teacher_count} faces at {threshold} (it keeps {before[level]}); an offset > "
                f"{MAX_LOGIT_OFFSET} means it was not distilled from this teacher, or not trained"
            )
        offsets.append(offset)
    return Calibration(tuple(offsets), threshold, tuple(wanted), tuple(before), used)


def apply_logit_offset(net: DetectorNet, offset: float | Sequence[float]) -> None:
    """Fold ``offset`` (one for every level, or one per level, stride 8 first) into the heads' classification
    biases: ``+offset/2`` on face, ``-offset/2`` on background (channels are ``anchor * 2 + class``, class 0
    background, 1 face; see :class:`featherface.nn.DetectionHead`)."""
    offsets = [float(offset)] * len(net.heads) if np.ndim(offset) == 0 else [float(o) for o in offset]
    if len(offsets) != len(net.heads):
        raise ValueError(f"{len(offsets)} logit offsets for a network with {len(net.heads)} levels")
    with torch.no_grad():
        for head, level_offset in zip(net.heads, offsets, strict=True):
            bias = head.cls.bias.view(head.num_anchors, -1)
            if bias.shape[1] != 2:
                raise ValueError(f"calibration needs two classes per anchor, the head has {bias.shape[1]}")
            bias[:, 1] += level_offset / 2
            bias[:, 0] -= level_offset / 2

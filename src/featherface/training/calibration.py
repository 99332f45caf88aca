"""Score calibration of a distilled student against its teacher, without labels.

A student distilled at temperature T is under-confident: at the default threshold (0.5) it keeps fewer faces than
its teacher does, so users see its recall drop although its ranking of faces is close to the teacher's. The fix
moves the operating point, not the ranking: one offset ``b`` added to every prior's face-vs-background logit, so
that on unlabelled photos the student keeps as many faces at 0.5 as the teacher keeps at 0.5 (quantile matching of
detection counts). Softmax face probability is ``sigmoid(l_face - l_bg)``, so ``b`` is folded into the heads'
classification biases (``+b/2`` face, ``-b/2`` background): the architecture, the exported graph and every
score's order are unchanged; AP moves only through the few candidates that cross the low evaluation threshold.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from featherface.detection.api import Detector
from featherface.detection.image import ImageError, read_image
from featherface.detection.postprocess import PostprocessConfig
from featherface.models.detector_net import DetectorNet

# Scores below this never matter to the count (the default threshold is 0.5); keeping them costs nothing.
CANDIDATE_THRESHOLD = 0.02
# An offset beyond this is no calibration but a broken model: refuse rather than fold it in.
MAX_LOGIT_OFFSET = 4.0


@dataclass(frozen=True)
class Calibration:
    """``logit_offset`` added to face-vs-background logits; the counts it was fitted on."""

    logit_offset: float
    threshold: float  # the score the student needed to keep as many faces as the teacher at ``threshold_target``
    threshold_target: float
    teacher_faces: int
    student_faces_before: int
    images: int

    def to_dict(self) -> dict[str, float | int]:
        return {k: (round(v, 5) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def fit_calibration(
    student: DetectorNet,
    teacher: DetectorNet,
    images: Sequence[str | Path],
    threshold: float = 0.5,
    progress: bool = True,
) -> Calibration:
    """The logit offset that makes ``student`` keep, at ``threshold``, as many faces over ``images`` as
    ``teacher`` does (both at each image's original size, their own NMS). Unreadable images are skipped."""
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must be in (0, 1), not {threshold}")
    candidates = PostprocessConfig(conf_threshold=CANDIDATE_THRESHOLD)
    detectors = [Detector.from_net(net, device="cpu", postprocess_config=candidates) for net in (teacher, student)]
    teacher_scores: list[np.ndarray] = []
    student_scores: list[np.ndarray] = []
    used = 0
    for path in tqdm(list(images), desc="calibration", unit="img", disable=not progress, leave=False):
        try:
            image = read_image(path)
        except ImageError:
            continue
        used += 1
        teacher_scores.append(detectors[0].detect(image).scores)
        student_scores.append(detectors[1].detect(image).scores)
    if not used:
        raise ValueError("calibration: none of the images could be read")
    teacher_all = np.concatenate(teacher_scores)
    student_all = np.sort(np.concatenate(student_scores))[::-1]
    wanted = int((teacher_all >= threshold).sum())
    before = int((student_all >= threshold).sum())
    if wanted == 0:
        needed = threshold  # nothing to match: leave the scores as they are
    elif len(student_all) < wanted:
        raise ValueError(
            f"calibration: the student finds {len(student_all)} candidate faces (score > {CANDIDATE_THRESHOLD}) where "
            f"the teacher keeps {wanted} at {threshold}: it was not distilled from this teacher, or not trained"
        )
    else:
        needed = float(student_all[wanted - 1])
    # a hair more, so that the matched face lands above the threshold, not on it (float rounding, strict ">")
    offset = _logit(threshold) - _logit(needed) + 1e-4
    if abs(offset) > MAX_LOGIT_OFFSET:
        raise ValueError(
            f"calibration: the student would need a logit offset of {offset:+.2f} to keep the teacher's {wanted} "
            f"faces at {threshold} (it keeps {before}); |offset| > {MAX_LOGIT_OFFSET} means it was not distilled "
            "from this teacher, or not trained"
        )
    return Calibration(offset, needed, threshold, wanted, before, used)


def apply_logit_offset(net: DetectorNet, offset: float) -> None:
    """Fold ``offset`` into every head's classification bias: ``+offset/2`` on face, ``-offset/2`` on background
    (channels are ``anchor * 2 + class``, class 0 background, 1 face; see :class:`featherface.nn.DetectionHead`)."""
    with torch.no_grad():
        for head in net.heads:
            bias = head.cls.bias.view(head.num_anchors, -1)
            if bias.shape[1] != 2:
                raise ValueError(f"calibration needs two classes per anchor, the head has {bias.shape[1]}")
            bias[:, 1] += offset / 2
            bias[:, 0] -= offset / 2

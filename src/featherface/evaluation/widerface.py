"""The official WIDER FACE evaluation protocol, vectorised.

Follows the official toolkit (``eval_tools``; its Python port in Pytorch_Retinaface's ``widerface_evaluate``):
scores min-max normalised over the whole prediction set, 1,000 thresholds ``1 - (t + 1) / 1000``, per image a
greedy pass over the predictions in file order matching each to its highest-IoU face (IoU with the +1 pixel
convention, >= 0.5), faces outside the setting ignored (a prediction matching one is neither TP nor FP),
a second prediction on an already-found face counting as a proposal without recall, images without faces or
without predictions skipped, and VOC-style AP over the resulting PR curve.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SETTINGS = ("easy", "medium", "hard")
THRESHOLD_COUNT = 1000
IOU_THRESHOLD = 0.5


@dataclass
class WiderImage:
    event: str
    name: str  # without extension, as in the .mat files
    boxes: np.ndarray  # (M, 4) x, y, w, h
    counted: dict[str, np.ndarray]  # setting -> (M,) bool: the face counts in that setting


def load_wider_ground_truth(gt_dir: str | Path) -> list[WiderImage]:
    """Read ``wider_face_val.mat`` and ``wider_{easy,medium,hard}_val.mat`` from ``gt_dir``."""
    from scipy.io import loadmat

    gt_dir = Path(gt_dir)
    needed = ["wider_face_val.mat"] + [f"wider_{s}_val.mat" for s in SETTINGS]
    missing = [n for n in needed if not (gt_dir / n).is_file()]
    if missing:
        raise ValueError(f"{gt_dir}: missing WIDER ground-truth file(s) {', '.join(missing)}")
    face = loadmat(str(gt_dir / "wider_face_val.mat"))
    settings = {s: loadmat(str(gt_dir / f"wider_{s}_val.mat"))["gt_list"] for s in SETTINGS}
    images = []
    for i, event in enumerate(face["event_list"]):
        event_name = str(event[0][0])
        files = face["file_list"][i][0]
        boxes = face["face_bbx_list"][i][0]
        for j in range(len(files)):
            gt = boxes[j][0].astype(np.float64).reshape(-1, 4)
            counted = {}
            for s in SETTINGS:
                keep = settings[s][i][0][j][0].reshape(-1).astype(np.int64)
                mask = np.zeros(len(gt), dtype=bool)
                mask[keep - 1] = True  # 1-based indices of the faces that count
                counted[s] = mask
            images.append(WiderImage(event_name, str(files[j][0][0]), gt, counted))
    return images


def read_prediction_file(path: Path) -> np.ndarray:
    """One ``<image>.txt``: image name, count, then ``x y w h score`` lines -> ``(N, 5)`` in file order."""
    lines = path.read_text().splitlines()
    if len(lines) < 2:
        raise ValueError(f"{path}: expected an image name line and a count line")
    rows = []
    for lineno, line in enumerate(lines[2:], start=3):
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 5:
            raise ValueError(f"{path}:{lineno}: expected 'x y w h score', got {line!r}")
        try:
            rows.append([float(v) for v in parts[:5]])
        except ValueError:
            raise ValueError(f"{path}:{lineno}: not numbers: {line!r}") from None
    return np.array(rows, dtype=np.float64).reshape(-1, 5)


def read_predictions(pred_dir: str | Path) -> dict[tuple[str, str], np.ndarray]:
    """``(event, image name) -> (N, 5)`` for every ``<event>/<image>.txt`` under ``pred_dir``."""
    pred_dir = Path(pred_dir)
    if not pred_dir.is_dir():
        raise ValueError(f"{pred_dir}: no such predictions folder")
    predictions = {}
    for event_dir in sorted(p for p in pred_dir.iterdir() if p.is_dir()):
        for txt in sorted(event_dir.glob("*.txt")):
            predictions[(event_dir.name, txt.stem)] = read_prediction_file(txt)
    if not predictions:
        raise ValueError(f"{pred_dir}: no <event>/<image>.txt prediction files")
    return predictions


def write_prediction_file(path: Path, image_name: str, boxes_xyxy: np.ndarray, scores: np.ndarray) -> None:
    """Write one image's detections in the official layout (boxes as x, y, w, h)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [image_name, str(len(scores))]
    for (x1, y1, x2, y2), score in zip(boxes_xyxy, scores, strict=True):
        lines.append(f"{x1:.1f} {y1:.1f} {x2 - x1:.1f} {y2 - y1:.1f} {score:.5f}")
    path.write_text("\n".join(lines) + "\n")


def _iou_plus_one(pred_xyxy: np.ndarray, gt_xyxy: np.ndarray) -> np.ndarray:
    """The toolkit's ``bbox_overlaps``: inclusive-pixel areas (+1); 0 where the boxes do not intersect."""
    iw = (
        np.minimum(pred_xyxy[:, None, 2], gt_xyxy[None, :, 2])
        - np.maximum(pred_xyxy[:, None, 0], gt_xyxy[None, :, 0])
        + 1
    )
    ih = (
        np.minimum(pred_xyxy[:, None, 3], gt_xyxy[None, :, 3])
        - np.maximum(pred_xyxy[:, None, 1], gt_xyxy[None, :, 1])
        + 1
    )
    inter = np.where((iw > 0) & (ih > 0), iw * ih, 0.0)
    pred_area = (pred_xyxy[:, 2] - pred_xyxy[:, 0] + 1) * (pred_xyxy[:, 3] - pred_xyxy[:, 1] + 1)
    gt_area = (gt_xyxy[:, 2] - gt_xyxy[:, 0] + 1) * (gt_xyxy[:, 3] - gt_xyxy[:, 1] + 1)
    union = pred_area[:, None] + gt_area[None, :] - inter
    return np.where(inter > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def image_matches(
    pred: np.ndarray, gt_xywh: np.ndarray, counted: np.ndarray, iou_threshold: float = IOU_THRESHOLD
) -> tuple[np.ndarray, np.ndarray]:
    """Per prediction (file order): ``is_proposal (N,)`` and ``recalled_so_far (N,)``.

    A prediction whose best face (highest IoU, first on ties) is ignored is no proposal; the count of distinct
    counted faces found by predictions ``0..h`` is ``recalled_so_far[h]``.
    """
    pred_xyxy = pred[:, :4].copy()
    pred_xyxy[:, 2:] += pred_xyxy[:, :2]
    gt_xyxy = gt_xywh.copy()
    gt_xyxy[:, 2:] += gt_xyxy[:, :2]
    overlaps = _iou_plus_one(pred_xyxy, gt_xyxy)
    best = overlaps.argmax(axis=1)
    matched = overlaps[np.arange(len(pred)), best] >= iou_threshold
    is_proposal = ~(matched & ~counted[best])
    hits = np.flatnonzero(matched & counted[best])
    first_hit = np.zeros(len(pred), dtype=np.int64)
    _, first = np.unique(best[hits], return_index=True)
    first_hit[hits[first]] = 1
    return is_proposal, np.cumsum(first_hit)


def _last_index_above(scores: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """For each threshold, the last file-order index whose score is >= it, or -1 (the toolkit's ``r_index``)."""
    above = scores[None, :] >= thresholds[:, None]
    last = len(scores) - 1 - np.argmax(above[:, ::-1], axis=1)
    return np.where(above.any(axis=1), last, -1)


def voc_ap(recall: np.ndarray, precision: np.ndarray) -> float:
    """Area under the precision envelope (VOC 2010+ all-point interpolation)."""
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    changes = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[changes + 1] - mrec[changes]) * mpre[changes + 1]))


@dataclass
class WiderResult:
    ap: dict[str, float]
    precision: dict[str, np.ndarray]
    recall: dict[str, np.ndarray]
    images_without_predictions: int

    def to_dict(self) -> dict:
        return {
            **{s: round(self.ap[s], 6) for s in SETTINGS},
            "images_without_predictions": self.images_without_predictions,
        }


def normalise_scores(predictions: dict[tuple[str, str], np.ndarray]) -> dict[tuple[str, str], np.ndarray]:
    """Min-max normalise the score column over the whole set (a copy)."""
    scores = [p[:, 4] for p in predictions.values() if len(p)]
    if not scores:
        return {k: p.copy() for k, p in predictions.items()}
    all_scores = np.concatenate(scores)
    low, span = all_scores.min(), all_scores.max() - all_scores.min()
    out = {}
    for key, p in predictions.items():
        q = p.copy()
        q[:, 4] = (q[:, 4] - low) / span if span > 0 else 1.0
        out[key] = q
    return out


def evaluate_wider(
    predictions: dict[tuple[str, str], np.ndarray],
    ground_truth: list[WiderImage],
    iou_threshold: float = IOU_THRESHOLD,
    threshold_count: int = THRESHOLD_COUNT,
    progress: Callable[[int, int], None] | None = None,
) -> WiderResult:
    """Easy/Medium/Hard AP of ``predictions`` (``(event, image) -> (N, 5)`` x, y, w, h, score)."""
    predictions = normalise_scores(predictions)
    thresholds = 1.0 - (np.arange(threshold_count) + 1) / threshold_count
    curves = {s: np.zeros((threshold_count, 2)) for s in SETTINGS}
    face_counts = dict.fromkeys(SETTINGS, 0)
    missing = 0
    for index, image in enumerate(ground_truth):
        pred = predictions.get((image.event, image.name))
        if pred is None:
            missing += 1
        for s in SETTINGS:
            face_counts[s] += int(image.counted[s].sum())
        if pred is None or len(pred) == 0 or len(image.boxes) == 0:
            continue
        last = _last_index_above(pred[:, 4], thresholds)
        valid = last >= 0
        for s in SETTINGS:
            is_proposal, recalled = image_matches(pred, image.boxes, image.counted[s], iou_threshold)
            proposals = np.cumsum(is_proposal)
            curves[s][valid, 0] += proposals[last[valid]]
            curves[s][valid, 1] += recalled[last[valid]]
        if progress is not None:
            progress(index + 1, len(ground_truth))
    ap, precision, recall = {}, {}, {}
    for s in SETTINGS:
        proposals, hits = curves[s][:, 0], curves[s][:, 1]
        precision[s] = np.divide(hits, proposals, out=np.zeros_like(hits), where=proposals > 0)
        recall[s] = hits / max(face_counts[s], 1)
        ap[s] = voc_ap(recall[s], precision[s])
    return WiderResult(ap, precision, recall, missing)

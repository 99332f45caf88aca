"""How well each model's boxes fit a set's reference faces, apart from whether it ranks them: where AP@0.5 and
AP@0.3 part, localisation is the cause, and a systematic bias (boxes too small, too high) differs from noise.

Per model and reference set, over the faces the model finds (its best-overlapping detection at score >= --score,
original size, NMS 0.4): the share found at IoU >= 0.3 and >= 0.5, the mean IoU of those found at >= 0.3, and their
mean bias against the reference: centre shift in reference widths / heights (dy < 0: the box sits higher) and
log size ratio (log w < 0: narrower); overall and per reference-face size band (sqrt of its area in pixels).
Sets: the facemask labels (all faces; the unmasked ones alone, the other classes ignored) and the teacher's faces
at score >= 0.5 on the pool hold-out (``featherface evaluate --teacher``'s references).

Usage: python benchmarks/box_fit.py [MODEL ...] [--score S] [--json F] [--markdown F] [--cache-dir D]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from model_card import FACEMASK, TEACHER, UNMASKED_CLASS, load_available, locate, teacher_references

from featherface.data.labels import ImageAnnotation
from featherface.data.sample import resolve_dataset
from featherface.detection.api import Detector
from featherface.detection.boxes import box_iou
from featherface.detection.postprocess import Detections, PostprocessConfig
from featherface.evaluation.runner import EVAL_NMS_THRESHOLD, detect_dataset
from featherface.fileio import atomic_write_bytes

DEFAULT_MODELS = ("nano-b-pretrained", "retinaface-mnet025", "../shared/weights/peers/yunet_n_dynamic.onnx")
SIZE_BANDS = ((0, 24), (24, 48), (48, 96), (96, None))  # px, sqrt of the reference box's area
FOUND_IOU = 0.3


def box_fit(references: list[ImageAnnotation], detections: list[Detections | None], score: float) -> dict[str, Any]:
    """The figures of the module docstring for one model on one set. Each reference face is paired with the
    detection (score >= ``score``) that overlaps it most; detections may serve two faces (this measures fit, not
    AP). Images whose detection failed (None) count their faces as not found."""
    best_iou: list[float] = []
    bias: list[tuple[float, float, float, float, float]] = []  # dx, dy, log w, log h, face size
    for ann, det in zip(references, detections, strict=True):
        refs = np.asarray(ann.boxes, np.float64).reshape(-1, 4)
        if not len(refs):
            continue
        boxes = np.zeros((0, 4)) if det is None else np.asarray(det.boxes, np.float64)[det.scores >= score]
        if not len(boxes):
            best_iou += [0.0] * len(refs)
            continue
        overlaps = box_iou(refs, boxes)
        for ref, row in zip(refs, overlaps, strict=True):
            best = int(row.argmax())
            best_iou.append(float(row[best]))
            if row[best] < FOUND_IOU:
                continue
            box = boxes[best]
            ref_w, ref_h = ref[2] - ref[0], ref[3] - ref[1]
            box_w, box_h = box[2] - box[0], box[3] - box[1]
            bias.append((
                ((box[0] + box[2]) - (ref[0] + ref[2])) / 2 / ref_w,
                ((box[1] + box[3]) - (ref[1] + ref[3])) / 2 / ref_h,
                float(np.log(box_w / ref_w)),
                float(np.log(box_h / ref_h)),
                float(np.sqrt(ref_w * ref_h)),
            ))  # fmt: skip
    ious = np.asarray(best_iou)
    found = np.asarray(bias).reshape(-1, 5)

    def summary(rows: np.ndarray) -> dict[str, Any]:
        if not len(rows):
            return {"found": 0}
        dx, dy, log_w, log_h = rows[:, :4].mean(axis=0)
        return {"found": len(rows), "dx": dx, "dy": dy, "log_w": log_w, "log_h": log_h}

    bands = {}
    for low, high in SIZE_BANDS:
        inside = (found[:, 4] >= low) & (found[:, 4] < (high or np.inf))
        bands[f"{low}-{high or ''}"] = summary(found[inside])
    return {
        "faces": len(ious),
        "found_iou30": float((ious >= FOUND_IOU).mean()) if len(ious) else None,
        "found_iou50": float((ious >= 0.5).mean()) if len(ious) else None,
        "mean_iou_found": float(ious[ious >= FOUND_IOU].mean()) if (ious >= FOUND_IOU).any() else None,
        **summary(found),
        "by_size": bands,
    }


def reference_sets(teacher: Detector, cache_dir: str | None) -> dict[str, list[ImageAnnotation]]:
    facemask = locate(FACEMASK)
    return {
        "facemask, all faces": resolve_dataset(facemask),
        "facemask, unmasked": resolve_dataset(facemask, classes=[UNMASKED_CLASS]),
        f"pool hold-out, {TEACHER}'s faces": teacher_references(teacher, None, cache_dir),
    }


def run(models: list[str], score: float, cache_dir: str | None) -> dict[str, Any]:
    detectors = load_available(models)
    if not detectors:
        raise ValueError("none of the models could be loaded")
    teacher = detectors.get(TEACHER) or Detector.load(TEACHER, device="cpu")
    sets = reference_sets(teacher, cache_dir)
    rows = []
    for spec, detector in detectors.items():
        detector.postprocess_config = PostprocessConfig(conf_threshold=score, nms_threshold=EVAL_NMS_THRESHOLD)
        for name, references in sets.items():
            print(f"{spec} on {name}", file=sys.stderr)
            found = detect_dataset(detector, references, progress=False)
            rows.append({"model": spec, "set": name, **box_fit(references, found, score)})
    return {"settings": {"score": score, "nms": EVAL_NMS_THRESHOLD, "found_iou": FOUND_IOU}, "rows": rows}


def _fmt(value: Any, signed: bool = False) -> str:
    if value is None:
        return ""
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"Best detection at score >= {result['settings']['score']} per reference face; bias of those at IoU >= "
        f"{FOUND_IOU} (dy < 0: higher; log w < 0: narrower).",
        "",
        "| model | set | faces | found IoU>=0.3 | found IoU>=0.5 | mean IoU | dx | dy | log w | log h | "
        + " | ".join(f"log w, log h ({band} px)" for band in result["rows"][0]["by_size"])
        + " |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|" + "---:|" * len(SIZE_BANDS),
    ]
    for row in result["rows"]:
        bands = [
            f"{_fmt(b.get('log_w'), True)}, {_fmt(b.get('log_h'), True)} (n {b['found']})" if b["found"] else ""
            for b in row["by_size"].values()
        ]
        cells = [row["model"], row["set"], str(row["faces"]), _fmt(row["found_iou30"]), _fmt(row["found_iou50"]),
                 _fmt(row["mean_iou_found"]), _fmt(row.get("dx"), True), _fmt(row.get("dy"), True),
                 _fmt(row.get("log_w"), True), _fmt(row.get("log_h"), True), *bands]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=list(DEFAULT_MODELS))
    parser.add_argument("--score", type=float, default=0.3, help="detections at least this score (default 0.3)")
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--markdown", help="write the table here")
    parser.add_argument("--cache-dir", help="cache the teacher's hold-out faces here (as model_card.py)")
    args = parser.parse_args()
    if not 0 <= args.score < 1:
        parser.error(f"--score must be in [0, 1), not {args.score}")
    result = run(args.models, args.score, args.cache_dir)
    table = markdown(result)
    print(table)
    if args.json:
        atomic_write_bytes(Path(args.json), json.dumps(result, indent=2, default=float).encode())
    if args.markdown:
        atomic_write_bytes(Path(args.markdown), table.encode())


if __name__ == "__main__":
    main()

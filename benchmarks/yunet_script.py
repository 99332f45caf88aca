"""A plain YuNet-n script, the yardstick for `featherface detect`'s wall time: what a user writes in a few lines.

onnxruntime + OpenCV + numpy only (no featherface import): every image of FOLDER (recursive) at its original size,
padded to multiples of 32, YuNet's anchor-free decoding, score > --conf, greedy NMS (cv2.dnn.NMSBoxes), one JSON
of rows (x, y, w, h, score, 5 landmarks as x, y). Unlike `featherface detect` it has no pre-NMS top-k or keep cap,
no tiling of huge images and no videos; on ordinary photos it finds the same faces as `detect --model YUNET.onnx`.
Usage: python benchmarks/yunet_script.py FOLDER --model ../shared/weights/peers/yunet_n_dynamic.onnx
       [--conf 0.02] [--nms 0.4] [--threads 1] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

STRIDES = (8, 16, 32)
SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


def detect(session: ort.InferenceSession, image: np.ndarray, conf: float, nms: float) -> list[list[float]]:
    height, width = image.shape[:2]
    padded_h, padded_w = -(-height // 32) * 32, -(-width // 32) * 32
    blob = np.zeros((1, 3, padded_h, padded_w), np.float32)
    blob[0, :, :height, :width] = image.transpose(2, 0, 1)
    outputs = dict(zip([o.name for o in session.get_outputs()], session.run(None, {"input": blob}), strict=True))
    faces = []
    for stride in STRIDES:
        score = np.sqrt(
            np.clip(outputs[f"cls_{stride}"][0, :, 0], 0, 1) * np.clip(outputs[f"obj_{stride}"][0, :, 0], 0, 1)
        )
        keep = np.flatnonzero(score > conf)
        rows, cols = np.divmod(keep, padded_w // stride)
        cells = np.stack([cols, rows], axis=1).astype(np.float32)
        bbox, kps = outputs[f"bbox_{stride}"][0, keep], outputs[f"kps_{stride}"][0, keep].reshape(-1, 5, 2)
        centre, size = (cells + bbox[:, :2]) * stride, np.exp(bbox[:, 2:]) * stride
        points = (cells[:, None] + kps) * stride
        faces += [
            [*c - s / 2, *s, sc, *p.ravel()] for c, s, sc, p in zip(centre, size, score[keep], points, strict=True)
        ]
    if not faces:
        return []
    faces = np.array(faces, np.float32)
    kept = cv2.dnn.NMSBoxes(faces[:, :4].tolist(), faces[:, 4].tolist(), conf, nms)
    return faces[np.asarray(kept, dtype=np.int64).reshape(-1)].round(3).tolist()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--model", default="../shared/weights/peers/yunet_n_dynamic.onnx")
    parser.add_argument("--conf", type=float, default=0.02)
    parser.add_argument("--nms", type=float, default=0.4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    session = ort.InferenceSession(args.model, options, providers=["CPUExecutionProvider"])
    results = []
    for path in sorted(p for p in args.folder.rglob("*") if p.suffix.lower() in SUFFIXES):
        image = cv2.imread(str(path))
        if image is not None:
            results.append({"image": str(path), "faces": detect(session, image, args.conf, args.nms)})
    if args.json:
        args.json.write_text(json.dumps(results))
    print(f"{len(results)} images, {sum(len(r['faces']) for r in results)} faces")


if __name__ == "__main__":
    main()

"""Time the WIDER FACE protocol on a validation-size prediction folder (3,226 images).

The folder is synthetic (ground-truth boxes jittered and dropped, plus false positives, as a detector at
conf 0.02 would write) because WIDER_val images are not available offline; the protocol's cost depends only on
the counts. Usage: python benchmarks/wider_eval_speed.py [--fp-per-image 100]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from featherface.evaluation.widerface import (
    evaluate_wider,
    load_wider_ground_truth,
    read_predictions,
    write_prediction_file,
)

GT_DIR = Path(__file__).parents[1] / "tests" / "data" / "widerface-eval-gt"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fp-per-image", type=int, default=100)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    gt = load_wider_ground_truth(GT_DIR)
    with tempfile.TemporaryDirectory() as tmp:
        total = 0
        for image in gt:
            keep = image.boxes[rng.random(len(image.boxes)) < 0.8]
            found = keep + rng.normal(0, 1.5, keep.shape)
            fp_xy = rng.uniform(0, 1000, (args.fp_per_image, 2))
            fp = np.column_stack([fp_xy, rng.uniform(5, 100, (args.fp_per_image, 2))])
            boxes = np.concatenate([found, fp])
            boxes[:, 2:] += boxes[:, :2]
            scores = np.sort(rng.uniform(0.02, 1, len(boxes)))[::-1]
            write_prediction_file(Path(tmp) / image.event / f"{image.name}.txt", image.name, boxes, scores)
            total += len(boxes)
        start = time.perf_counter()
        predictions = read_predictions(tmp)
        read_s = time.perf_counter() - start
        result = evaluate_wider(predictions, gt)
        total_s = time.perf_counter() - start
    print(f"{len(gt)} images, {total:,} predictions: read {read_s:.1f} s, read + evaluate {total_s:.1f} s")
    print({k: round(v, 4) for k, v in result.ap.items()})


if __name__ == "__main__":
    main()

"""Where end-to-end detection time goes: read, prepare, network, decode (threshold, top-k, decode, NMS), per model.

Models run image by image in turn (round-robin), so load on a shared machine falls on all of them alike; each
stage's wall time and the process's CPU time are summed over the folder. One image at a time (the CLI's
``detect`` batches images of one size, up to 8).
Usage: python benchmarks/detect_speed.py FOLDER MODEL [MODEL ...] [--conf 0.02] [--threads N] [--limit N]
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict

from featherface.detection import Detector, PostprocessConfig
from featherface.detection.image import list_images, read_image

STAGES = ("read", "prepare", "network", "decode")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("folder")
    parser.add_argument("models", nargs="+", help=".onnx files, zoo names or checkpoints")
    parser.add_argument("--conf", type=float, default=0.02)
    parser.add_argument("--threads", type=int, help="onnxruntime / torch threads (default: theirs)")
    parser.add_argument("--limit", type=int, help="only the first N images")
    args = parser.parse_args()
    paths = list_images(args.folder)[: args.limit]
    detectors = {
        m: Detector.load(m, device="cpu", threads=args.threads, postprocess_config=PostprocessConfig(args.conf))
        for m in args.models
    }
    wall: dict[str, dict[str, float]] = defaultdict(lambda: dict.fromkeys(STAGES, 0.0))
    cpu: dict[str, float] = defaultdict(float)
    faces: dict[str, int] = defaultdict(int)
    for path in paths:
        for model, detector in detectors.items():
            cpu_start = time.process_time()
            marks = [time.perf_counter()]
            image = read_image(path)
            marks.append(time.perf_counter())
            batch, scales = detector.prepare([image])
            marks.append(time.perf_counter())
            outputs = detector.runner(batch)
            marks.append(time.perf_counter())
            found = detector.decode(outputs, batch.shape[2:], scales)[0]
            marks.append(time.perf_counter())
            cpu[model] += time.process_time() - cpu_start
            faces[model] += len(found)
            for stage, start, end in zip(STAGES, marks, marks[1:], strict=False):
                wall[model][stage] += end - start
    print(f"{len(paths)} images from {args.folder}, conf {args.conf}; seconds summed over the images")
    print(f"{'model':<40}{'faces':>8}" + "".join(f"{s:>9}" for s in STAGES) + f"{'total':>9}{'CPU':>9}")
    for model in detectors:
        total = sum(wall[model].values())
        row = "".join(f"{wall[model][s]:>9.2f}" for s in STAGES)
        print(f"{model[-40:]:<40}{faces[model]:>8}{row}{total:>9.2f}{cpu[model]:>9.2f}")


if __name__ == "__main__":
    main()

"""Phase 4 of the pipeline on any checkpoint: the per-level logit offsets that make it keep the teacher's count of
faces at 0.5 on the same 400 training photos as `featherface pipeline` (``pipeline.calibration_images``, seed 0),
folded into a copy. For comparing checkpoints a run did not deploy (e.g. its last epoch beside its best) on the
pipeline's terms.

Usage: python benchmarks/calibrate_checkpoint.py CHECKPOINT OUT [--data ../shared/data/photos:train]
       [--teacher retinaface-mnet025] [--images 400]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from featherface.data.sample import resolve_distillation_data
from featherface.models.checkpoint import load_checkpoint, save_checkpoint
from featherface.models.zoo import create_model
from featherface.training.calibration import apply_logit_offset, calibration_photos, fit_calibration


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("out", type=Path, help="the calibrated copy (.safetensors); must not exist")
    parser.add_argument("--data", default="../shared/data/photos:train", help="the photos the run trained on")
    parser.add_argument("--teacher", default="retinaface-mnet025")
    parser.add_argument("--images", type=int, default=400)
    args = parser.parse_args()
    if args.out.exists():  # the checkpoint itself included
        parser.error(f"{args.out} exists: choose a new file (inputs are never written over)")
    net, meta = load_checkpoint(args.checkpoint)
    images, _ = resolve_distillation_data(args.data)
    photos = calibration_photos([a.path for a in images], args.images)
    calibration = fit_calibration(net, create_model(args.teacher), photos)
    apply_logit_offset(net, calibration.logit_offsets)
    save_checkpoint(net, args.out, {**meta, "calibration": calibration.to_dict(), "source": str(args.checkpoint)})
    print(json.dumps(calibration.to_dict()))


if __name__ == "__main__":
    main()

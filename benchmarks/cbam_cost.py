"""What CBAM buys and costs in the deployed Nano-B (issue 21: the distance to YuNet-n's speed).

Arms, all from the same deployed model and each fine-tuned for the same steps with the pool recipe's fine-tuning
settings (distillation from the teacher on the pool's training photos, ``prune.finetune_lr``, no warm-up, seed 0):
- ``cbam``: as it is (the control: what the extra fine-tuning alone does);
- ``no-cbam-s8``: CBAM removed at stride 8 (``attention_in[0]`` and ``attention_out[0]`` become identities);
- ``no-cbam``: CBAM removed at every level.
Each arm is exported through the deployment graph with onnxruntime parity checked (``OUT/ARM.onnx``); score them in
one run beside the teacher with ``benchmarks/model_card.py OUT/*.onnx retinaface-mnet025`` (AP, agreement, recall
and latency). Each ONNX file carries the starting model's config, CBAM included (the card's params column shows
that model's count; ``OUT/arms.json`` has each arm's own), so only the ONNX runner reads them: the seed's
architecture has CBAM on every level and a network without it is not SPEC, so this is a measurement, not a model
the zoo can build. The training folders ``OUT/ARM/`` are the trainer's record (losses, validation AP).

Usage: python benchmarks/cbam_cost.py --out runs/cbam-cost [--model nano-b-pretrained] [--epochs 1]
       [--labels runs/pool/teacher-labels] [--arms cbam no-cbam-s8 no-cbam] [--max-minutes M]
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import time
from pathlib import Path

from torch import nn

from featherface.export.onnx import export_onnx
from featherface.fileio import atomic_write_bytes
from featherface.models.detector_net import DetectorNet, count_parameters
from featherface.models.loader import load_model
from featherface.pruning.phases import load_prune_config
from featherface.training.distill import DistillObjective, distillation_data, load_distill_config
from featherface.training.run import load_teacher, run_config
from featherface.training.trainer import Trainer

POOL_TRAIN = "../shared/data/photos:train"
POOL_HOLDOUT = "../shared/data/photos:holdout"
TEACHER = "retinaface-mnet025"
ARMS = {"cbam": (), "no-cbam-s8": (0,), "no-cbam": (0, 1, 2)}


def without_cbam(net: DetectorNet, levels: tuple[int, ...]) -> DetectorNet:
    """A copy of ``net`` whose CBAM blocks at ``levels`` (0: stride 8) pass their input through."""
    arm = copy.deepcopy(net)
    for attention in (arm.attention_in, arm.attention_out):
        for level in levels:
            attention[level] = nn.Identity()
    return arm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="a new folder: one training folder and one ONNX per arm")
    parser.add_argument("--model", default="nano-b-pretrained", help="the deployed Nano-B the arms start from")
    parser.add_argument("--epochs", type=int, default=1, help="fine-tuning epochs per arm (the same for all)")
    parser.add_argument("--max-minutes", type=float, help="stop each arm's training after this long (a quick check)")
    parser.add_argument("--labels", help="the teacher's cached pool labels (a pipeline run's teacher-labels/)")
    parser.add_argument("--arms", nargs="+", choices=list(ARMS), default=list(ARMS))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=False)  # never over a finished measurement
    teacher = load_teacher(TEACHER)
    distill = load_distill_config("pool")
    labels = Path(args.labels) if args.labels else out / "teacher-labels"
    train_annotations, val_annotations = distillation_data(POOL_TRAIN, POOL_HOLDOUT, teacher, TEACHER, distill, labels)
    recipe = run_config(POOL_TRAIN, None, "pool", {"seed": args.seed, "max_minutes": args.max_minutes})
    finetune = dataclasses.replace(
        recipe, epochs=args.epochs, lr=load_prune_config("pool").finetune_lr, warmup_epochs=0, val_every=1
    )
    start = load_model(args.model)
    results = {}
    for name in args.arms:
        net = without_cbam(start, ARMS[name])
        began = time.perf_counter()
        trainer = Trainer(
            net, finetune, out / name, objective=DistillObjective(teacher, net, finetune, distill),
            train_annotations=train_annotations, val_annotations=val_annotations,
        )  # fmt: skip
        trainer.fit()
        onnx = export_onnx(trainer.net.eval().cpu(), out / f"{name}.onnx")
        results[name] = {
            "cbam_removed_at_levels": list(ARMS[name]),
            "params": count_parameters(net),
            "train_seconds": round(time.perf_counter() - began, 1),
            "onnx": str(onnx),
        }
        print(f"{name}: {results[name]}")
    settings = {"model": args.model, "epochs": args.epochs, "lr": finetune.lr, "seed": args.seed, "data": POOL_TRAIN}
    record = json.dumps({"settings": settings, "arms": results}, indent=1) + "\n"
    atomic_write_bytes(out / "arms.json", record.encode())


if __name__ == "__main__":
    main()

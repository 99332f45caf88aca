"""Re-run phases 2b-3 of a pipeline run with other choices and compare with its deployed model.

From RUN's distilled model, run the same soft filter pruning and fine-tuning with
- ``--rates bo`` (RUN's BO-found rates) or ``--rates uniform`` (one rate for every group, the one whose hard-pruned
  model has the parameter count closest to RUN's deployed model), and
- ``--mask hard`` or ``--mask smooth`` (sigmoid masks with a decaying temperature),
then print both models' validation figures (sample-set figures on the sample set).

Usage: python benchmarks/compare_pruning.py RUN [--rates uniform|bo] [--mask hard|smooth]
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import tempfile
from pathlib import Path

from featherface.checkpoint import load_checkpoint, load_model, save_checkpoint
from featherface.data.sample import resolve_dataset
from featherface.detection.api import Detector
from featherface.evaluation.runner import evaluate_detector
from featherface.models.detector_net import count_parameters
from featherface.pipeline import _read_yaml, load_pipeline_config
from featherface.pruning.groups import LAYER_GROUPS
from featherface.pruning.masks import apply_masks, compute_masks
from featherface.pruning.phases import SoftPruningHook, _objective, finetune, load_prune_config, save_masks
from featherface.pruning.search import pruned_parameter_count
from featherface.training.config import load_train_config
from featherface.training.trainer import Trainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("run")
    parser.add_argument("--config", default="sample")
    parser.add_argument("--rates", choices=["uniform", "bo"], default="uniform")
    parser.add_argument("--mask", choices=["hard", "smooth"], default="hard")
    args = parser.parse_args()
    run = Path(args.run)
    pipe = load_pipeline_config(args.config)
    train = load_train_config(None, {**(_read_yaml(args.config).get("train") or {}), "data": pipe.data})
    prune_config = load_prune_config(args.config)
    prune_config.mask = args.mask
    teacher = load_model(pipe.teacher)
    val = resolve_dataset(pipe.val)
    distilled, _ = load_checkpoint(run / "1-distill" / "best.safetensors")
    target = count_parameters(load_model(str(run / "3-finetune" / "deployed.safetensors")))
    if args.rates == "bo":
        rates = json.loads((run / "2-prune" / "rates.json").read_text())["rates"]
        label = f"BO rates, {args.mask} masks"
    else:
        best = min(
            (
                abs(
                    pruned_parameter_count(distilled, compute_masks(distilled, dict.fromkeys(LAYER_GROUPS, r / 100)))
                    - target
                ),
                r,
            )
            for r in range(20, 80)
        )
        rates = dict.fromkeys(LAYER_GROUPS, best[1] / 100)
        label = f"uniform {best[1] / 100:.2f}, {args.mask} masks"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        net = copy.deepcopy(distilled)
        hook = SoftPruningHook(rates, prune_config.sfp_epochs, prune_config.mask)
        sfp = dataclasses.replace(train, epochs=prune_config.sfp_epochs, val_every=10**6)
        Trainer(
            net, sfp, tmp / "sfp", objective=_objective(net, sfp, teacher), val_annotations=[], on_epoch_end=hook
        ).fit()
        masks = compute_masks(net, rates)
        apply_masks(net, masks)
        prune_dir = tmp / "prune"
        save_checkpoint(net, prune_dir / "soft_pruned.safetensors")
        save_masks(masks, prune_dir / "masks.safetensors")
        summary = finetune(prune_dir, train, prune_config, tmp / "ft", val, teacher=teacher)
        variant, _ = load_checkpoint(summary["deployed"])
        results = {}
        pipeline_model = load_model(str(run / "3-finetune" / "deployed.safetensors"))
        for name, model in (("pipeline (BO rates, hard masks)", pipeline_model), (label, variant)):
            result, _ = evaluate_detector(Detector.from_net(model, device="cpu"), val, progress=False)
            results[name] = {
                "params": count_parameters(model),
                **{k: result.to_dict()[k] for k in ("ap", "ap50_95", "nme")},
            }
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()

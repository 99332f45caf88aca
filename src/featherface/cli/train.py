"""``train``, ``distill``, ``prune``, ``finetune``, ``pipeline``, ``show-batch``: the training-like commands."""

from __future__ import annotations

import argparse
from typing import Any

from featherface.cli.common import (
    given,
    non_negative_float,
    positive_float,
    positive_int,
    unit_float,
    write_json,
)
from featherface.models.config import STUDENT_INITS
from featherface.outputs import guard_outputs


def training_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The training options given on the command line (None: the recipe's)."""
    return {
        "epochs": args.epochs, "max_minutes": args.max_minutes, "device": args.device, "seed": args.seed,
        "batch_size": args.batch_size, "lr": args.lr, "workers": args.workers, "strict": args.strict or None,
    }  # fmt: skip


def distill_overrides(args: argparse.Namespace) -> dict[str, float | None]:
    """The distillation options given on the command line (None: the recipe's)."""
    return {
        "temperature": args.temperature, "alpha": args.alpha, "confident": args.confident,
        "feature_weight": getattr(args, "feature_weight", None),
    }  # fmt: skip


def run_options(args: argparse.Namespace) -> dict[str, Any]:
    """What every training-like run takes besides its models."""
    return {
        "val": args.val, "config": args.config, "overrides": training_overrides(args), "resume": args.resume,
        "overwrite": args.overwrite,
    }  # fmt: skip


def epochs_done(result: Any) -> str:
    """``3 epoch(s)``, or ``3 epoch(s) and 5 step(s) of epoch 4`` when the time budget stopped inside one."""
    done = f"{result.epochs_done} epoch(s)"
    if result.partial_steps:
        done += f" and {result.partial_steps} step(s) of epoch {result.epochs_done + 1} (--resume continues it)"
    return done


def cmd_train(args: argparse.Namespace) -> int:
    from featherface.training.run import train

    result = train(args.model, args.data, args.out, **run_options(args))
    print(f"trained {epochs_done(result)}; checkpoints in {result.out_dir} (best.safetensors, last.safetensors)")
    return 0


def cmd_distill(args: argparse.Namespace) -> int:
    from featherface.training.run import distill

    result = distill(
        args.teacher, args.student, args.data, args.out, distill_overrides=distill_overrides(args),
        **given(student_init=args.student_init), **run_options(args),
    )  # fmt: skip
    print(f"distilled {epochs_done(result)} from {args.teacher}; checkpoints in {result.out_dir}")
    return 0


def _guard_training_json(args: argparse.Namespace, val: str | None) -> None:
    """``--json`` of prune / finetune refused over any of their inputs."""
    from featherface.training.run import config_source

    guard_outputs(
        {"--json": args.json}, models={"--model": args.model, "--teacher": args.teacher},
        configs={"--config": config_source(args.config, args.data)}, datasets={"--data": args.data, "--val": val},
    )  # fmt: skip


def cmd_prune(args: argparse.Namespace) -> int:
    from featherface.pruning.run import prune_model, validation_data

    val = validation_data(args.data, args.val)
    _guard_training_json(args, val)
    searched = {"search.trials": args.trials, "search.target_params": args.target_params}
    searched.update({"search.tolerance": args.tolerance, "method": args.method, "mask": args.mask})
    searched.update({"search.latency_exponent": args.latency_exponent, "search.latency_target": args.latency_target})
    summary = prune_model(
        args.model, args.data, args.out, teacher=args.teacher, prune_overrides=searched,
        distill_overrides=distill_overrides(args), storage=args.storage, **{**run_options(args), "val": val},
    )  # fmt: skip
    print(
        f"pruned {summary['params_unpruned']:,} -> {summary['params_pruned']:,} parameters; "
        f"{len(summary['trials'])} trials; {args.out}/soft_pruned.safetensors"
    )
    write_json(args.json, summary)
    return 0


def cmd_finetune(args: argparse.Namespace) -> int:
    from featherface.pruning.run import finetune_model

    _guard_training_json(args, args.val)
    summary = finetune_model(
        args.model, args.data, args.out, teacher=args.teacher, distill_overrides=distill_overrides(args),
        **run_options(args),
    )  # fmt: skip
    print(
        f"deployed model: {summary['deployed']} ({summary['params']:,} parameters; "
        f"max |masked - deployed| = {summary['max_output_difference']:.1e})"
    )
    write_json(args.json, summary)
    return 0


def cmd_pipeline(args: argparse.Namespace) -> int:
    from featherface.outputs import pipeline_datasets
    from featherface.pipeline import load_pipeline_config, run_pipeline
    from featherface.training.run import config_source

    datasets = pipeline_datasets(load_pipeline_config(args.config))
    guard_outputs({"--json": args.json}, configs={"--config": config_source(args.config)}, datasets=datasets)
    write_json(args.json, run_pipeline(args.config, args.out))
    return 0


def cmd_show_batch(args: argparse.Namespace) -> int:
    from featherface.training.preview import preview_batch
    from featherface.training.run import config_source

    configs = {"--config": config_source(args.config, args.data)}
    guard_outputs({"--out-png": args.out_png}, configs=configs, datasets={"--data": args.data})
    path = preview_batch(args.data, args.out_png, args.config, **given(count=args.count, epoch=args.epoch))
    print(f"wrote {path}")
    return 0


def add_train(sub: Any) -> None:
    p = sub.add_parser("train", help="train a model with the task (MultiBox) loss")
    p.add_argument("--model", required=True, help="zoo name (ImageNet backbone) or a checkpoint to continue from")
    p.add_argument("--data", required=True, help="label.txt, WIDER FACE root, or sample / sample:train")
    _add_training_options(p)


def add_distill(sub: Any) -> None:
    p = sub.add_parser("distill", help="phase 1: distil a teacher into a student (labelled or unlabelled images)")
    p.add_argument("--teacher", required=True, help="zoo name, checkpoint or run dir (e.g. retinaface-mnet025)")
    p.add_argument("--student", required=True, help="zoo name (e.g. nano-b) or a checkpoint")
    p.add_argument(
        "--student-init", choices=STUDENT_INITS,
        help="where the student's backbone starts: its own weights (ImageNet's for nano-b, the shipped ones for "
        "nano-b-distilled), or the teacher's trained backbone where the layers match (nano-b from retinaface-mnet025)",
    )  # fmt: skip
    p.add_argument("--data", required=True, help="label.txt, WIDER root, sample / sample:train, or a folder of images")
    _add_distill_options(p)
    _add_training_options(p)


def add_prune(sub: Any) -> None:
    p = sub.add_parser("prune", help="phase 2: B-FPGM (FPGM soft pruning, Bayesian-optimised rates)")
    p.add_argument("--model", required=True, help="the model to prune (checkpoint, run dir or zoo name)")
    p.add_argument("--teacher", help="keep distillation on during pruning (zoo name, checkpoint or run dir)")
    p.add_argument("--data", required=True, help="training data")
    p.add_argument("--trials", type=positive_int, help="BO trials (default 25)")
    p.add_argument("--target-params", type=positive_int, help="deployed parameter target (default 150000)")
    p.add_argument(
        "--latency-exponent", type=non_negative_float, default=None,
        help="hardware-aware search: scale each trial's loss by (its onnxruntime time / the unpruned one's) to this "
        "power (default 0, as in the shipped configs: the B-FPGM authors' objective)",
    )  # fmt: skip
    p.add_argument(
        "--latency-target", type=positive_float, default=None,
        help="with --latency-exponent: penalise only time above this fraction of the unpruned model's (e.g. 0.6)",
    )  # fmt: skip
    p.add_argument("--tolerance", type=unit_float, help="deployed params within target x (1 +- this) (default 0.1)")
    p.add_argument("--mask", choices=["hard", "smooth"], help="soft-pruning mask: zero filters, or sigmoid-shrink")
    p.add_argument(
        "--method", choices=["sfp", "oneshot"],
        help="sfp: filters zeroed each epoch, free to recover (default); oneshot: masks fixed first (ablation)",
    )  # fmt: skip
    p.add_argument("--storage", help="Optuna storage URL (default sqlite:///RUN/study.db); share it between machines")
    p.add_argument("--json", help="write rates and trials to this JSON file")
    _add_distill_options(p)
    _add_training_options(p)


def add_finetune(sub: Any) -> None:
    p = sub.add_parser("finetune", help="phase 3: fine-tune with fixed masks, then hard-prune to the deployed model")
    p.add_argument("--model", required=True, help="a prune run directory")
    p.add_argument("--teacher", help="keep distillation on while fine-tuning")
    p.add_argument("--data", required=True, help="training data")
    p.add_argument("--json", help="write the summary to this JSON file")
    _add_distill_options(p)
    _add_training_options(p)


def add_pipeline(sub: Any) -> None:
    p = sub.add_parser("pipeline", help="the main job: teacher -> distil -> B-FPGM -> fine-tune -> report")
    p.add_argument("--config", help="YAML file or preset (default: sample, the embedded set)")
    p.add_argument("--out", required=True, help="run directory (resumable: rerun to continue)")
    p.add_argument("--json", help="also write report.json's content here")


def add_show_batch(sub: Any) -> None:
    p = sub.add_parser("show-batch", help="PNG grid of augmented training samples with boxes and landmarks")
    p.add_argument("--data", required=True, help="label.txt, WIDER FACE root, or sample / sample:train")
    p.add_argument("--out-png", required=True, help="output PNG")
    p.add_argument("--count", type=positive_int)
    p.add_argument("--epoch", type=int, help="which epoch's augmentation to show")
    p.add_argument("--config", help="YAML file or preset (sample, widerface)")


def _add_training_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="run directory (checkpoints, metrics.csv, config.yaml)")
    p.add_argument("--val", help="validation data (label.txt or sample:val): best checkpoint by its AP@0.5")
    p.add_argument("--config", help="YAML file or preset (sample, widerface); default: sample for sample data")
    p.add_argument("--epochs", type=positive_int)
    p.add_argument("--max-minutes", type=float, help="stop cleanly at this budget: finish the step, evaluate, save")
    p.add_argument("--resume", action="store_true", help="continue from RUN/trainer_state.pt")
    p.add_argument(
        "--overwrite", action="store_true",
        help="replace the run already in --out (its checkpoints, metrics, study); without it, or --resume, refused",
    )  # fmt: skip
    p.add_argument("--device", help="cpu, cuda, cuda:N or auto (default)")
    p.add_argument("--seed", type=int)
    p.add_argument("--batch-size", type=positive_int, help="per process")
    p.add_argument("--lr", type=float)
    p.add_argument("--workers", type=int, help="data-loading processes")
    p.add_argument("--strict", action="store_true", help="stop at the first bad label or image (default: skip, count)")


def _add_distill_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--alpha", type=unit_float, help="distillation share of the loss (default: config, else 0.7)")
    p.add_argument("--temperature", type=positive_float, help="softmax temperature T (default: config, else 4)")
    p.add_argument(
        "--confident", type=unit_float,
        help="teacher face probability that gives a prior box/landmark targets (default: config, else 0.5)",
    )  # fmt: skip
    p.add_argument(
        "--feature-weight", type=non_negative_float,
        help="weight of feature distillation (teacher's head inputs through 1x1 adapters; default: config, else 0)",
    )  # fmt: skip

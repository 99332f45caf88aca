"""Copy a finished pool pipeline run into the package as the pretrained zoo models, with their provenance.

    .venv/bin/python scripts/ship_pretrained.py runs/pool

writes src/featherface/weights/nano_b_pretrained.{safetensors,json,onnx} (the deployed Nano-B, calibrated when the
run has phase 4; each ONNX is parity-checked against its checkpoint by the export) and
nano_b_distilled.{safetensors,json,onnx} (its unpruned phase-1 student),
each checkpoint carrying in its metadata the command, the config, the data manifest's sha256, the hold-out rule,
the git commit and the data's terms; then prints the sha256 lines for featherface/weights/__init__.py.
Shipped files are never replaced unless --overwrite is given.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from featherface.config_schema import read_config_file
from featherface.data.pool import HOLDOUT_FRACTION
from featherface.export.onnx import export_onnx
from featherface.fileio import sha256_of
from featherface.models.checkpoint import load_checkpoint, read_checkpoint_config, save_checkpoint
from featherface.models.detector_net import count_parameters
from featherface.weights import SHIPPED, shipped_path

DATA_TERMS = (
    "trained on ../shared/data/photos (ShanghaiTech, Helen, AFW, Caltech WebFaces photos): research-use terms, "
    "which these weights inherit; no pool image is shipped"
)


def _git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True)
        return out.stdout.strip() + ("+uncommitted" if dirty.stdout.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def provenance(run: Path, config: str, commit: str | None = None) -> dict:
    report = json.loads((run / "report.json").read_text())
    pipe = read_config_file(config)["pipeline"]
    manifest = Path(pipe["data"].split(":")[0]) / "manifest.json"
    return {
        "command": f"featherface pipeline --config {config} --out {run}",
        "config": read_config_file(config),
        "data": pipe["data"],
        "data_manifest_sha256": sha256_of(manifest) if manifest.is_file() else None,
        "holdout": f"{HOLDOUT_FRACTION:.0%} of the pool by SHA-1 of each relative path (featherface.data.pool)",
        "teacher": pipe["teacher"],
        "student": pipe.get("student", "nano-b"),
        "student_init": pipe.get("student_init", "own"),  # "teacher-backbone": the teacher's WIDER-trained backbone
        "distill_epochs": pipe.get("distill_epochs"),
        "distill_lr": pipe.get("distill_lr"),
        "skip_pruning": pipe.get("skip_pruning", False),  # True: this run continued a deployed (pruned) student
        # a run that continued the shipped distilled student: where that one came from (its own provenance)
        "student_provenance": _student_provenance(pipe) if pipe.get("student_init", "own") == "own" else None,
        "calibration": report.get("calibration"),  # phase 4's logit offsets (per level), if the run calibrated
        "terms": DATA_TERMS,
        "git_commit": commit or _git_commit(),
        "timings_s": report.get("timings_s"),
        "pruning": _pruning(run),
    }


def _student_provenance(pipe: dict) -> dict | None:
    student = pipe.get("student", "nano-b")
    if student not in SHIPPED:
        return None
    _, doc = read_checkpoint_config(shipped_path(SHIPPED[student].checkpoint))
    return doc.get("metadata", {}).get("provenance")


def _kept_as_shipped(run: Path) -> bool:
    """Whether phase 1 kept the shipped student as it was (distill_epochs 0): then it is not shipped again."""
    phase = run / "1-distill" / "phase.json"
    return phase.is_file() and json.loads(phase.read_text()).get("epochs") == 0


def _not_pruned(run: Path) -> bool:
    """Whether phase 3 deployed phase 1's student without pruning (skip_pruning): phase 1 then continued the
    deployed model, which is not an unpruned student to ship as nano_b_distilled."""
    phase = run / "3-finetune" / "phase.json"
    return phase.is_file() and json.loads(phase.read_text()).get("pruned") is False


def _pruning(run: Path) -> dict | None:
    """The rates the B-FPGM search chose and what they gave (the deployed architecture alone does not say)."""
    path = run / "2-prune" / "rates.json"
    if not path.is_file():
        return None
    summary = json.loads(path.read_text())
    keys = ("rates", "best_trial", "study", "target_params", "tolerance", "params_pruned", "method", "mask")
    return {key: summary.get(key) for key in keys}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a finished `featherface pipeline --config pool` run directory")
    parser.add_argument("--config", default="pool", help="the config the run was made with (default: pool)")
    parser.add_argument("--overwrite", action="store_true", help="replace weights already shipped")
    parser.add_argument("--commit", help="the git commit the run was made from (default: the checkout's HEAD)")
    args = parser.parse_args(argv)
    if not (args.run / "report.json").is_file():
        parser.error(f"{args.run}: no report.json (the pipeline has not finished)")
    calibrated = args.run / "4-calibrate" / "deployed.safetensors"
    targets = {
        "nano_b_pretrained": calibrated if calibrated.is_file() else args.run / "3-finetune" / "deployed.safetensors",
        "nano_b_distilled": args.run / "1-distill" / "best.safetensors",
    }
    if _kept_as_shipped(args.run):
        del targets["nano_b_distilled"]
        print("nano_b_distilled: phase 1 kept the shipped one (distill_epochs 0), left as it is")
    elif _not_pruned(args.run):
        del targets["nano_b_distilled"]
        print("nano_b_distilled: a run without pruning (skip_pruning) continued the deployed model; left as it is")
    existing = [shipped_path(f"{name}.safetensors") for name in targets]
    if not args.overwrite and any(path.exists() for path in existing):
        parser.error(f"{', '.join(str(p) for p in existing if p.exists())} already shipped; --overwrite replaces")
    meta = provenance(args.run, args.config, args.commit)
    for name, source in targets.items():
        net, _ = load_checkpoint(source)
        path = save_checkpoint(net, shipped_path(f"{name}.safetensors"), {"provenance": meta, "source": str(source)})
        print(f"{path}: {count_parameters(net):,} params, {path.stat().st_size:,} bytes, sha256 {sha256_of(path)}")
        # every trained zoo model runs without torch: its ONNX ships beside it
        onnx = export_onnx(net, shipped_path(f"{name}.onnx"))
        print(f"{onnx}: {onnx.stat().st_size:,} bytes, sha256 {sha256_of(onnx)} (onnxruntime matches torch)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The model card's table in one run: size, speed and accuracy of the pretrained Nano-B (deployed and unpruned)
beside retinaface-mnet025 and YuNet-n.

Per model: parameters and GFLOPs at 640x640 (YuNet: its ONNX initializers and convs), the bytes of its weight
file (safetensors checkpoint, or the ONNX for a peer) and of the ONNX onnxruntime runs, onnxruntime latency of
one 640x640 forward pass with 1 and 2 threads (all models interleaved, :func:`featherface.benchmark.benchmark`),
and APs as ``featherface evaluate`` computes them (original size, conf 0.02, NMS 0.4,
:func:`featherface.evaluation.runner.evaluate_detector`):
- facemask AP at IoU 0.5 and 0.3, all faces and the unmasked ones alone (VOC class ``sin_mascarilla``; the other
  classes become ignored regions), from one detection pass per model; recall of the unmasked faces at score 0.5
  (the default threshold) and IoU 0.5;
- teacher-agreement AP on the photo pool's hold-out: references are retinaface-mnet025's faces at score >= 0.5
  (as ``featherface evaluate --teacher retinaface-mnet025 --data ../shared/data/photos:holdout``), and recall there
  at score 0.5;
- sample:val AP.
A model that cannot be loaded (e.g. not trained yet) is skipped with a warning. Default paths are relative to the
repository root.

Usage: python benchmarks/model_card.py [MODEL ...] [--json F] [--markdown F] [--max-images N] [--repeats N]
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from featherface.benchmark import benchmark
from featherface.data.labels import ImageAnnotation
from featherface.data.pseudo import TEACHER_SCORE_THRESHOLD, cached_teacher_annotations, teacher_annotations
from featherface.data.sample import resolve_dataset, resolve_distillation_data
from featherface.detection.api import Detector
from featherface.evaluation.runner import EVAL_CONF_THRESHOLD, EVAL_NMS_THRESHOLD, evaluate_detector
from featherface.evaluation.voc import evaluate_dataset
from featherface.fileio import atomic_write_bytes

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MODELS = (
    "nano-b-pretrained",
    "nano-b-distilled",
    "retinaface-mnet025",
    "../shared/weights/peers/yunet_n_dynamic.onnx",
)
FACEMASK = "../shared/data/facemask"
UNMASKED_CLASS = "sin_mascarilla"  # the facemask VOC <name> of faces without a mask (its README)
POOL_HOLDOUT = "../shared/data/photos:holdout"
TEACHER = "retinaface-mnet025"
SAMPLE_VAL = "sample:val"
LATENCY_SIZE = 640
LATENCY_THREADS = (1, 2)
AP_IOUS = (0.5, 0.3)

COLUMNS = {  # JSON key -> markdown header
    "model": "model",
    "params": "params",
    "gflops": "GFLOPs (640²)",
    "bytes": "file bytes",
    "onnx_bytes": "ONNX bytes",
    "latency_ms_1_thread": "ORT ms, 1 thread",
    "latency_ms_2_threads": "ORT ms, 2 threads",
    "facemask_ap50": "facemask AP@0.5",
    "facemask_ap30": "facemask AP@0.3",
    "facemask_unmasked_ap50": "unmasked AP@0.5",
    "facemask_unmasked_ap30": "unmasked AP@0.3",
    "facemask_unmasked_recall": "unmasked recall at 0.5",
    "teacher_agreement_ap50": "teacher-agreement AP@0.5",
    "teacher_agreement_recall": "teacher-agreement recall at 0.5",
    "sample_val_ap50": "sample:val AP@0.5",
}


def locate(spec: str) -> str:
    """``spec`` as given, or relative to the repository root when it names no path from here (the defaults are
    written relative to the root); a ``:part`` suffix (``DIR:holdout``) is kept."""
    path, sep, part = spec.partition(":")
    if Path(path).exists() or not (REPO / path).exists():
        return spec
    return str((REPO / path).resolve()) + sep + part


def shipped_file(spec: str, detector: Detector) -> tuple[str, int]:
    """The model's weight file and its bytes: an ``.onnx`` or checkpoint as given (a run directory's
    deployed/best checkpoint), a shipped zoo model's checkpoint, another zoo model's weight file in the package
    (by name); else its state dict written as safetensors."""
    from featherface.models.checkpoint import resolve_checkpoint
    from featherface.models.zoo import ZOO
    from featherface.weights import SHIPPED, shipped_path

    path = locate(spec)
    if path.endswith(".onnx"):
        return path, Path(path).stat().st_size
    if spec not in ZOO:
        found = resolve_checkpoint(path)
        return str(found), found.stat().st_size
    if spec in SHIPPED:
        found = shipped_path(SHIPPED[spec].checkpoint)
        return f"featherface/weights/{found.name}", found.stat().st_size
    matches = sorted(shipped_path("").glob(f"{spec.replace('-', '_')}*.safetensors"))
    if len(matches) == 1:
        return f"featherface/weights/{matches[0].name}", matches[0].stat().st_size
    from safetensors.torch import save

    return "(state dict as safetensors)", len(save(detector.runner.net.state_dict()))


def load_available(models: list[str]) -> dict[str, Detector]:
    """Each model that loads, by its spec as given; the others are reported on stderr and left out."""
    detectors = {}
    for spec in models:
        try:
            detectors[spec] = Detector.load(locate(spec), device="cpu")
        except (ValueError, OSError, KeyError) as exc:
            print(f"warning: skipping {spec}: {str(exc).splitlines()[0]}", file=sys.stderr)
    return detectors


def latency_rows(models: list[str], repeats: int, warmup: int) -> dict[str, dict[str, Any]]:
    """Params, GFLOPs and onnxruntime milliseconds per model (all models interleaved, per thread count)."""
    rows: dict[str, dict[str, Any]] = {spec: {} for spec in models}
    for threads in LATENCY_THREADS:
        timed = benchmark([locate(m) for m in models], LATENCY_SIZE, "onnxruntime", threads, repeats, warmup)
        for spec, row in zip(models, timed, strict=True):
            rows[spec].update(params=row["params"], gflops=row["gflops"], onnx_bytes=row["bytes"])
            rows[spec][f"latency_ms_{threads}_thread{'s' if threads > 1 else ''}"] = row["median_ms"]
    return rows


def facemask_aps(detector: Detector, faces: list[ImageAnnotation], unmasked: list[ImageAnnotation]) -> dict[str, float]:
    """AP at each of ``AP_IOUS`` on all faces and on the unmasked ones, from one detection pass."""
    result, detections = evaluate_detector(detector, faces)
    by_path = {ann.path: found for ann, found in zip(faces, detections, strict=True)}
    unmasked_detections = [by_path[ann.path] for ann in unmasked]
    aps = {}
    for iou in AP_IOUS:
        key = f"{round(100 * iou)}"
        aps[f"facemask_ap{key}"] = result.ap if iou == 0.5 else evaluate_dataset(faces, detections, iou).ap
        unmasked_result = evaluate_dataset(unmasked, unmasked_detections, iou)
        aps[f"facemask_unmasked_ap{key}"] = unmasked_result.ap
        if iou == 0.5:  # recall at the default conf (0.5) and IoU 0.5: what a user sees
            aps["facemask_unmasked_recall"] = unmasked_result.recall
    return aps


def teacher_references(teacher: Detector, max_images: int | None, cache_dir: str | None) -> list[ImageAnnotation]:
    """The teacher's faces at score >= 0.5 on the pool hold-out (``featherface evaluate --teacher``'s
    references), cached in ``cache_dir`` if given."""
    images, _ = resolve_distillation_data(locate(POOL_HOLDOUT))
    paths = [ann.path for ann in images][:max_images]
    if cache_dir is None:
        return teacher_annotations(teacher, paths, TEACHER_SCORE_THRESHOLD, progress=True)
    cache = Path(cache_dir) / f"model_card_teacher_{len(paths)}.json"
    return cached_teacher_annotations(teacher, paths, cache, TEACHER, TEACHER_SCORE_THRESHOLD)


def model_card(
    models: list[str],
    max_images: int | None = None,
    repeats: int = 30,
    warmup: int = 3,
    cache_dir: str | None = None,
) -> dict[str, Any]:
    """``{"settings", "rows", "skipped"}``: one row per available model, in the order given (see the module
    docstring for the figures)."""
    detectors = load_available(models)
    if not detectors:
        raise ValueError("none of the models could be loaded")
    available = list(detectors)
    rows = latency_rows(available, repeats, warmup)
    facemask = locate(FACEMASK)
    faces = resolve_dataset(facemask)[:max_images]
    unmasked = resolve_dataset(facemask, classes=[UNMASKED_CLASS])[:max_images]
    teacher = detectors.get(TEACHER) or Detector.load(TEACHER, device="cpu")
    references = teacher_references(teacher, max_images, cache_dir)
    sample_val = resolve_dataset(SAMPLE_VAL)[:max_images]
    for spec, detector in detectors.items():
        print(f"evaluating {spec}", file=sys.stderr)
        row = rows[spec]
        row["file"], row["bytes"] = shipped_file(spec, detector)
        row.update(facemask_aps(detector, faces, unmasked))
        agreement = evaluate_detector(detector, references)[0]
        row["teacher_agreement_ap50"] = agreement.ap
        row["teacher_agreement_recall"] = agreement.recall
        row["sample_val_ap50"] = evaluate_detector(detector, sample_val)[0].ap
    settings = {
        "latency": f"onnxruntime, 1x3x{LATENCY_SIZE}x{LATENCY_SIZE}, median of {repeats} runs, models interleaved",
        "ap": f"original size, conf {EVAL_CONF_THRESHOLD}, NMS {EVAL_NMS_THRESHOLD} (featherface evaluate)",
        "facemask": f"{FACEMASK}: {len(faces)} images, {sum(map(len, faces))} faces, "
        f"{sum(map(len, unmasked))} unmasked ({UNMASKED_CLASS})",
        "teacher_agreement": f"{POOL_HOLDOUT}: {len(references)} images, {sum(map(len, references))} faces of "
        f"{TEACHER} at score >= {TEACHER_SCORE_THRESHOLD}",
        "sample_val": f"{SAMPLE_VAL}: {len(sample_val)} images",
    }
    skipped = [spec for spec in models if spec not in detectors]
    return {"settings": settings, "rows": [{"model": spec, **rows[spec]} for spec in available], "skipped": skipped}


def _cell(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.3f}" if value < 10 else f"{value:.1f}"
    return str(value)


def format_markdown(card: dict[str, Any], command: str) -> str:
    """The table, then the settings and the command that made it."""
    lines = ["| " + " | ".join(COLUMNS.values()) + " |", "|" + "---|" * len(COLUMNS)]
    for row in card["rows"]:
        lines.append("| " + " | ".join(_cell(row.get(key)) for key in COLUMNS) + " |")
    lines += ["", f"Command: `{command}`", ""]
    lines += [f"- {name}: {text}" for name, text in card["settings"].items()]
    lines.append("- file bytes: " + "; ".join(f"{r['model']}: {r['file']}" for r in card["rows"]))
    lines.append("- ONNX bytes: the file onnxruntime ran (shipped, or exported from the checkpoint)")
    lines.append("- GFLOPs are 2 x multiply-adds of the convs; YuNet's are counted from its ONNX graph")
    if card["skipped"]:
        lines.append(f"- skipped (not available): {', '.join(card['skipped'])}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="*", default=list(DEFAULT_MODELS), metavar="MODEL")
    parser.add_argument("--json", help="write settings, rows and skipped models here")
    parser.add_argument("--markdown", help="write the table (and its settings and command) here")
    parser.add_argument("--max-images", type=int, help="evaluate on the first N images of each set (a quick check)")
    parser.add_argument("--repeats", type=int, default=30, help="timed forward passes per model and thread count")
    parser.add_argument("--warmup", type=int, default=3, help="untimed forward passes per model first")
    parser.add_argument("--cache-dir", help="keep the teacher's hold-out references here between runs")
    args = parser.parse_args()
    card = model_card(args.models, args.max_images, args.repeats, args.warmup, args.cache_dir)
    command = shlex.join(["python", "benchmarks/model_card.py", *sys.argv[1:]])
    text = format_markdown(card, command)
    print(text)
    if args.json:
        atomic_write_bytes(Path(args.json), (json.dumps({"command": command, **card}, indent=1) + "\n").encode())
    if args.markdown:
        atomic_write_bytes(Path(args.markdown), text.encode())


if __name__ == "__main__":
    main()

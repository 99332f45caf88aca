"""The inference install: the wheel, installed without the training extra (no torch), detects, crops and anonymises
the sample photos exactly as the full install does; what needs torch ends with one line naming the extra.

The slow tests build the wheel from this tree and install it into ``.venv-inference/`` (kept between runs, keyed
by pyproject.toml, the Python version and the versions of the base dependencies). Those versions are pinned to the
ones of this (full) environment, so the two installs differ only by the training extra and their outputs can be
compared byte for byte.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import cv2
import numpy as np
import pytest

from featherface import cli, extras
from featherface.detection import Detector
from featherface.extras import TRAIN_EXTRA_INSTALL, TRAIN_EXTRA_MODULES, MissingExtraError

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"
INFERENCE_VENV = ROOT / ".venv-inference"
SAMPLE_IMAGES = ROOT / "src" / "featherface" / "data" / "sample" / "images"


def project() -> dict:
    return tomllib.loads(PYPROJECT.read_text())["project"]


def requirement_name(requirement: str) -> str:
    return re.split(r"[<>=!~ ;\[]", requirement, maxsplit=1)[0].strip().lower()


# ------------------------------------------------------------------------------------ fast, this environment
def test_the_training_extra_modules_are_those_of_the_train_extra():
    # featherface.extras names the extra from a missing module: its list must follow pyproject.toml's
    providers = importlib.metadata.packages_distributions()
    train = {requirement_name(r) for r in project()["optional-dependencies"]["train"]}
    assert {providers[module][0].lower() for module in TRAIN_EXTRA_MODULES} == train
    base = {requirement_name(r) for r in project()["dependencies"]}
    assert base == {"numpy", "opencv-python-headless", "onnxruntime", "safetensors", "tqdm"}
    assert not base & train


def test_a_command_missing_a_training_module_ends_with_one_line_naming_the_extra(monkeypatch, capsys):
    def needs_optuna(args):
        raise ModuleNotFoundError("No module named 'optuna'", name="optuna")

    monkeypatch.setattr(cli, "cmd_train", needs_optuna)
    assert cli.main(["train", "--model", "nano-b", "--data", "sample:train", "--out", "run"]) == 2
    assert capsys.readouterr().err == (
        f"featherface train: needs the training extra (optuna is not installed): {TRAIN_EXTRA_INSTALL}\n"
    )


def test_a_missing_module_of_no_extra_is_not_reported_as_one(monkeypatch):
    def needs_something_else(args):
        raise ModuleNotFoundError("No module named 'not_a_featherface_dependency'", name="not_a_featherface_dependency")

    monkeypatch.setattr(cli, "cmd_train", needs_something_else)
    with pytest.raises(ModuleNotFoundError, match="not_a_featherface_dependency"):
        cli.main(["train", "--model", "nano-b", "--data", "sample:train", "--out", "run"])


def test_torch_models_without_torch_name_the_extra(monkeypatch, capsys):
    monkeypatch.setattr(extras, "has_torch", lambda: False)
    with pytest.raises(MissingExtraError, match=r"from_pretrained\('retinaface-mnet025'\): needs the training extra"):
        Detector.from_pretrained("retinaface-mnet025")
    with pytest.raises(MissingExtraError, match="nano-b-distilled runs in torch: needs the training extra"):
        Detector.load("nano-b-distilled", backend="torch")
    assert isinstance(Detector.load("nano-b-distilled"), Detector)  # every trained zoo model ships its ONNX
    assert isinstance(Detector.load("retinaface-mnet025"), Detector)  # its ONNX: no torch needed
    assert cli.main(["detect", str(SAMPLE_IMAGES / "astronaut.jpg"), "--backend", "torch"]) == 2
    assert capsys.readouterr().err == (
        "featherface detect: retinaface-mnet025 runs in torch: needs the training extra (torch is not installed): "
        f"{TRAIN_EXTRA_INSTALL}\n"
    )


# ------------------------------------------------------------------------- slow: the wheel in a torch-free venv
def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def run(command: list, cwd: Path, clean_env: bool = False) -> subprocess.CompletedProcess:
    """``command`` in ``cwd``; ``clean_env``: without PYTHONPATH (the inference venv sees only what it installed)."""
    env = {k: v for k, v in os.environ.items() if not (clean_env and k in ("PYTHONPATH", "PYTHONHOME"))}
    return subprocess.run([str(c) for c in command], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def checked(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, f"{result.args}: {result.stderr[-3000:]}"
    return result


def base_pins() -> list[str]:
    """The base dependencies at the versions this (full) environment has."""
    return [
        f"{requirement_name(r)}=={importlib.metadata.version(requirement_name(r))}" for r in project()["dependencies"]
    ]


def build_wheel(out: Path) -> Path:
    """The wheel of this tree, built from a clean copy (setuptools' ``build/`` would otherwise keep stale files)."""
    tree = out / "tree"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    shutil.copytree(ROOT / "src", tree / "src", ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tree / name)
    pip = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", out, tree]
    checked(run(pip, out))
    (wheel,) = out.glob("featherface-*.whl")
    return wheel


@pytest.fixture(scope="module")
def inference_venv(tmp_path_factory) -> Path:
    """``.venv-inference/`` with the base dependencies (pinned as here) and this tree's wheel, without torch."""
    wheel = build_wheel(tmp_path_factory.mktemp("wheel"))
    pins = base_pins()
    key = hashlib.sha256(PYPROJECT.read_bytes() + sys.version.encode() + "\n".join(pins).encode()).hexdigest()
    stamp = INFERENCE_VENV / ".featherface-inference-stamp"
    python = venv_python(INFERENCE_VENV)
    pip = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    if not stamp.is_file() or stamp.read_text() != key:
        shutil.rmtree(INFERENCE_VENV, ignore_errors=True)
        checked(run([sys.executable, "-m", "venv", INFERENCE_VENV], ROOT))
        constraints = INFERENCE_VENV / "constraints.txt"
        constraints.write_text("\n".join(pins) + "\n")
        checked(run([*pip, wheel, "-c", constraints], ROOT, clean_env=True))  # its dependencies, as declared
        stamp.write_text(key)
    else:  # the dependencies did not change: only this tree's code
        checked(run([*pip, "--no-deps", "--force-reinstall", wheel], ROOT, clean_env=True))
    probe = "import importlib.util, json; print(json.dumps([m for m in %r if importlib.util.find_spec(m)]))"
    installed = json.loads(checked(run([python, "-c", probe % sorted(TRAIN_EXTRA_MODULES)], ROOT, True)).stdout)
    assert installed == [], f"the inference venv has training modules: {installed}"
    return INFERENCE_VENV


def write_pan_video(path: Path) -> Path:
    """6 frames panning over a sample photo: exercises the tracker (its assignment) in both installs."""
    image = cv2.imread(str(SAMPLE_IMAGES / "faceapi_sample5.jpg"))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 5.0, (800, 660))
    for i in range(6):
        writer.write(np.ascontiguousarray(image[8 * i : 8 * i + 660, 60 + 24 * i : 860 + 24 * i]))
    writer.release()
    return path


def featherface_commands(video: Path) -> list[list[str]]:
    images = str(SAMPLE_IMAGES)
    return [
        ["detect", images, str(video), "--json", "detect.json"],
        ["crop", images, "--out", "crops"],
        ["anonymize", images, str(video), "--out", "anonymized", "--json", "anonymize.json"],
    ]


API_SCRIPT = """
import json, sys
from pathlib import Path
import cv2
from featherface.detection import Detector
faces = {}
for model in ("retinaface-mnet025", "nano-b-pretrained"):
    detector = Detector.load(model)
    for path in sorted(Path(sys.argv[1]).glob("*.jpg")):
        faces[f"{model}/{path.name}"] = detector.detect(cv2.imread(str(path))).faces()
assert not [m for m in sys.modules if m.split(".")[0] == "torch"], "torch imported"
print(json.dumps(faces))
"""


def outputs(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_the_wheel_without_torch_gives_the_full_installs_output_byte_for_byte(inference_venv, tmp_path):
    video = write_pan_video(tmp_path / "pan.mp4")
    runs = {"full": (tmp_path / "full", [sys.executable, "-m", "featherface.cli"], False)}
    runs["inference"] = (tmp_path / "inference", [inference_venv / "bin" / "featherface"], True)
    api = {}
    for name, (folder, featherface, clean_env) in runs.items():
        folder.mkdir()
        for command in featherface_commands(video):
            checked(run([*featherface, *command], folder, clean_env))
        python = sys.executable if name == "full" else venv_python(inference_venv)
        api[name] = checked(run([python, "-c", API_SCRIPT, SAMPLE_IMAGES], folder, clean_env)).stdout
    full, inference = outputs(tmp_path / "full"), outputs(tmp_path / "inference")
    assert sorted(full) == sorted(inference)
    assert {"detect.json", "crops/crops.json", "anonymize.json"} <= set(full)
    assert len(full) == 3 + 25 + 9 + 1  # the JSONs, 25 crops, 9 anonymised photos and the video
    different = [name for name in full if full[name] != inference[name]]
    assert different == [], different
    assert api["full"] == api["inference"]
    detected = json.loads(full["detect.json"])
    assert sum(len(entry["faces"]) for entry in detected[:9]) == 25  # the sample photos' faces
    assert {face["track_id"] for entry in detected[9:] for face in entry["faces"]} == {0, 1, 2, 3, 4}


@pytest.mark.slow
def test_the_inference_install_lists_benchmarks_and_says_what_needs_the_training_extra(inference_venv, tmp_path):
    featherface = inference_venv / "bin" / "featherface"
    listing = tmp_path / "zoo.json"
    checked(run([featherface, "info", "--json", listing], tmp_path, clean_env=True))
    zoo = json.loads(listing.read_text())
    assert zoo["torch_installed"] is False
    backends = {row["name"]: row["backend"] for row in zoo["models"]}
    assert backends["retinaface-mnet025"] == backends["nano-b-pretrained"] == "onnxruntime"
    timed = tmp_path / "benchmark.json"
    benchmark = ["benchmark", "retinaface-mnet025", "nano-b-pretrained", "--backend", "onnxruntime", "--size", "64"]
    checked(run([featherface, *benchmark, "--repeats", "1", "--warmup", "0", "--json", timed], tmp_path, True))
    rows = json.loads(timed.read_text())
    assert [row["model"] for row in rows] == ["retinaface-mnet025", "nano-b-pretrained"]
    assert all(row["median_ms"] > 0 and row["params"] is None and row["roofline_ms"] is None for row in rows)
    for command, what in [
        (["train", "--model", "nano-b", "--data", "sample:train", "--out", "run"], "featherface train: "),
        (
            ["detect", str(SAMPLE_IMAGES), "--model", "nano-b-distilled", "--backend", "torch"],
            "featherface detect: nano-b-distilled runs in torch: ",
        ),
        (["export", "retinaface-mnet025", "--out", "x.onnx"], "featherface export: "),
    ]:  # fmt: skip
        result = run([featherface, *command], tmp_path, clean_env=True)
        assert result.returncode == 2
        assert result.stderr == f"{what}needs the training extra (torch is not installed): {TRAIN_EXTRA_INSTALL}\n"
    script = "from featherface.detection import Detector\nDetector.from_pretrained('retinaface-mnet025')\n"
    result = run([venv_python(inference_venv), "-c", script], tmp_path, clean_env=True)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "featherface.extras.MissingExtraError: Detector.from_pretrained('retinaface-mnet025'): needs the training "
        f"extra (torch is not installed): {TRAIN_EXTRA_INSTALL}"
    )

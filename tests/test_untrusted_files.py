"""Untrusted files bounded before allocation (issue 22, kinds 4 and 6): a model's embedded architecture, a YAML
config and an ONNX file each get declared ranges and checks, and a bomb ends in a one-line error naming the file
and the field within seconds and under 1 GB."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import featherface
from featherface.cli import main
from featherface.config_schema import ConfigError
from featherface.models.config import nano_b_config

SRC = Path(featherface.__file__).resolve().parents[1]
GIB = 1 << 30
# Runs one CLI command in a fresh process whose address space may grow by at most 1 GiB past what its imports
# (torch included) took, and prints the CPU seconds the command took (not wall time: a busy machine stretches that
# without the command doing more) and the process's peak RSS: VmHWM, the high-water mark of this process's own
# memory (getrusage's ru_maxrss keeps the forking parent's RSS across exec: a large pytest process would count).
BOUNDED_RUN = """
import resource, sys, time
from featherface.cli import main
import torch  # loaded by the commands anyway: counted before the limit
pages = int(open("/proc/self/statm").read().split()[0])
resource.setrlimit(resource.RLIMIT_AS, (pages * resource.getpagesize() + (1 << 30), resource.RLIM_INFINITY))
start = time.process_time()
code = main(sys.argv[1:])
status = open("/proc/self/status").read().split("VmHWM:")[1].split()
print("seconds", time.process_time() - start, "peak_rss", int(status[0]) * 1024)
sys.exit(code)
"""


def bounded_cli(*argv) -> tuple[str, float, int]:
    """``(the one error line, CPU seconds the command took, peak RSS in bytes)`` of a command that must fail with
    exit status 2 and one line on stderr."""
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    run = subprocess.run(
        [sys.executable, "-c", BOUNDED_RUN, *map(str, argv)], env=env, capture_output=True, text=True, timeout=600
    )
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert run.returncode == 2 and len(lines) == 1 and "Traceback" not in run.stderr, run.stderr[-3000:]
    figures = run.stdout.split()
    return lines[0], float(figures[figures.index("seconds") + 1]), int(figures[figures.index("peak_rss") + 1])


def checkpoint_declaring(path: Path, architecture: dict) -> Path:
    """A safetensors file whose embedded architecture is ``architecture`` (its one tensor is beside the point:
    the architecture is read first)."""
    import torch
    from safetensors.torch import save_file

    doc = {"format": "featherface-checkpoint", "version": 1, "architecture": architecture, "metadata": {}}
    save_file({"x": torch.zeros(1)}, str(path), metadata={"featherface": json.dumps(doc)})
    return path


def nano_b_with(**changes) -> dict:
    """nano-b's architecture with ``changes`` (dotted key, ``[i]`` for list items) applied."""
    architecture = nano_b_config().to_dict()
    for key, value in changes.items():
        *parents, last = key.replace("[", ".").replace("]", "").split(".")
        target = architecture
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        if isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value
    return architecture


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    """``epochs:`` holding a list of ``width``^``levels`` items written in ~400 bytes: each level is the previous
    one's anchor and ``width - 1`` aliases of it."""
    node = "&l0 [" + ", ".join(["x"] * width) + "]"
    for level in range(1, levels):
        node = f"&l{level} [{node}" + f", *l{level - 1}" * (width - 1) + "]"
    return f"epochs: {node}\n"


# ------------------------------------------------------------------------------------ model architectures
@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"neck.repeats": 10**7}, "neck.repeats: must be <= 16, got 10000000"),
        ({"neck.channels": 10**9}, "neck.channels: must be <= 4096, got 1000000000"),
        ({"context.levels[0].out3x3": -36}, "context.levels[0].out3x3: must be >= 1, got -36"),
        ({"backbone.blocks[3]": [64, 0]}, "backbone.blocks[3][1]: must be >= 1, got 0"),
        ({"backbone.blocks[3]": [64, 3]}, "backbone.blocks[3][1]: must be one of 1, 2, got 3"),
        ({"anchors.steps": [8, 0, 32]}, "anchors.steps[1]: must be one of 2, 4, 8, 16, 32, 64, 128, got 0"),
        ({"anchors.steps": [16, 32, 64]}, "anchors.steps[0]: 16 is not the backbone's stride 8 at that level"),
        ({"anchors.min_sizes[1]": [64, 96, 128]}, "anchors.min_sizes[1]: expected 2 items, got 3"),
        ({"anchors.variances": [0.1, float("nan")]}, "anchors.variances[1]: expected a number, got nan"),
        ({"context.groups": 5}, "context.groups: 5 does not divide neck.channels 72"),
        ({"backbone.taps": [4, 4, 12]}, "backbone.taps[1]: must be in 5..12, got 4"),
        ({"attention_in.hidden_channels": [8, 16]}, "attention_in.hidden_channels: expected 3 items, got 2"),
        ({"neck.separable": 1}, "neck.separable: expected true or false, got 1"),
        ({"neck": {"kind": "fpn"}}, "neck.channels: missing (it has no default)"),
    ],
)
def test_an_architecture_out_of_its_declared_ranges_is_refused_naming_the_file_and_field(tmp_path, changes, message):
    from featherface.models.checkpoint import CheckpointError, read_checkpoint_config

    path = checkpoint_declaring(tmp_path / "model.safetensors", nano_b_with(**changes))
    with pytest.raises(CheckpointError) as error:
        read_checkpoint_config(path)
    assert str(error.value) == f"{path}: {message}"


def test_every_zoo_architecture_is_within_the_declared_ranges():
    from featherface.models.config import DetectorConfig
    from featherface.models.zoo import ZOO

    for name, entry in ZOO.items():
        config = entry.config()
        assert DetectorConfig.from_dict(config.to_dict()) == config, name


@pytest.mark.parametrize(
    ("changes", "field"),
    [({"neck.repeats": 10**7}, "neck.repeats"), ({"neck.channels": 10**9, "context.groups": 1}, "neck.channels")],
)
def test_architecture_bombs_end_in_one_line_within_seconds_and_under_1_gb(tmp_path, changes, field):
    """Were: 10^7 BiFPN cells built for minutes (3 GB at 30 s); widths of 10^9 asked for 192 GB."""
    path = checkpoint_declaring(tmp_path / "bomb.safetensors", nano_b_with(**changes))
    line, seconds, peak = bounded_cli("info", path)
    assert line.startswith(f"featherface info: error: {path}: {field}: must be <= ")
    assert seconds < 5 and peak < GIB


def test_a_checkpoint_declaring_more_weights_than_it_holds_is_refused_before_allocating(tmp_path):
    """Widths and repeats within range (4.3 GB of weights as declared) but not those of the one tensor stored:
    compared on the header, the network built on the meta device only (was: allocated, then refused)."""
    declared = nano_b_with(**{"neck.channels": 4096, "neck.repeats": 16})
    path = checkpoint_declaring(tmp_path / "model.safetensors", declared)
    line, seconds, peak = bounded_cli("info", path)
    assert line.startswith(f"featherface info: error: {path}: tensors do not fit the architecture (missing [")
    assert line.endswith("unexpected ['x'])")
    assert seconds < 5 and peak < GIB


# -------------------------------------------------------------------------------------------- config files
def test_a_yaml_alias_bomb_ends_in_one_line_within_seconds_and_under_1_gb(tmp_path):
    """410 bytes standing for 9^9 values (was: 29 s and 2.8 GB, then a MemoryError traceback, as the error message
    repr()'d the whole value)."""
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(alias_bomb())
    assert bomb.stat().st_size < 420
    run = tmp_path / "run"
    line, seconds, peak = bounded_cli("train", "--model", "nano-b", "--data", "sample", "--config", bomb, "--out", run)
    assert line == (
        f"featherface train: error: {bomb}: its YAML aliases expand to more than 100,000 values, or refer to "
        "themselves (a config needs a few hundred)"
    )
    assert seconds < 5 and peak < GIB
    assert not run.exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: &a [*a]\n", "its YAML aliases expand to more than 100,000 values, or refer to themselves"),
        ("lr: " + "[" * 40 + "]" * 40 + "\n", "lr: expected a number, got [[[...]]]"),
        ("optimizer: " + "x" * 5000 + "\n", "optimizer: must be one of sgd, adamw, got 'xxxxxxxxxxxxxxxxx...x"),
    ],
)
def test_config_errors_quote_at_most_a_short_prefix(tmp_path, text, message):
    from featherface.training.config import load_train_config

    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as error:
        load_train_config(path)
    assert message in str(error.value) and len(str(error.value)) < len(str(path)) + 200


def test_a_config_file_over_1_mib_is_refused_unread(tmp_path):
    from featherface.training.config import load_train_config

    path = tmp_path / "big.yaml"
    path.write_text("# padding\n" * 110_000)
    with pytest.raises(ConfigError, match=r"big\.yaml: 1,100,000 bytes; a config file holds at most 1,048,576"):
        load_train_config(path)


def test_an_image_size_no_detector_takes_is_refused_before_a_run_is_made(capsys, tmp_path):
    """Was: accepted, 10 GB asked for at the first batch, and a half-made run the next command refused."""
    config = tmp_path / "big.yaml"
    config.write_text("train:\n  augment: {image_size: 30000}\n")
    run = tmp_path / "run"
    code = main(["train", "--model", "nano-b", "--data", "sample", "--config", str(config), "--out", str(run)])
    err = capsys.readouterr().err
    assert code == 2 and err.strip() == (
        f"featherface train: error: {config}: train.augment.image_size: must be <= 4096, got 30000"
    )
    assert not run.exists()


# ------------------------------------------------------------------------------------------------- ONNX files
@pytest.fixture(scope="module")
def shipped_onnx():
    import onnx

    from featherface.weights import SHIPPED, shipped_path

    return onnx.load(str(shipped_path(SHIPPED["nano-b-pretrained"].onnx)))


@pytest.fixture()
def make_onnx(shipped_onnx, tmp_path):
    """``make_onnx(name, edit)``: the shipped nano-b ONNX with ``edit(model)`` applied, saved as ``name``."""
    import onnx

    def make(name: str, edit) -> Path:
        model = onnx.ModelProto()
        model.CopyFrom(shipped_onnx)
        edit(model)
        path = tmp_path / name
        onnx.save(model, str(path))
        return path

    return make


def _anchors_per_cell(count: int):
    def edit(model) -> None:
        (entry,) = [p for p in model.metadata_props if p.key == "featherface_config"]
        architecture = json.loads(entry.value)
        architecture["anchors"]["min_sizes"] = [[16 * (i + 1)] * count for i in range(3)]
        entry.value = json.dumps(architecture)

    return edit


def _fixed_size(model) -> None:
    dims = model.graph.input[0].type.tensor_type.shape.dim
    for dim in dims[2:]:
        dim.Clear()
        dim.dim_value = 640


def _renamed_output(model) -> None:
    for node in model.graph.node:
        node.output[:] = ["scores" if name == "class_logits" else name for name in node.output]
    for output in model.graph.output:
        if output.name == "class_logits":
            output.name = "scores"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            _anchors_per_cell(3),
            "the graph gives 374 priors for a 76x108 input, its featherface_config anchors 561 (steps [8, 16, 32], "
            "3 per cell): metadata and graph disagree",
        ),
        (
            _fixed_size,
            "input 'images' has a fixed height 640, width 640; featherface feeds batches of any size at any image size "
            "(`featherface export` leaves them free)",
        ),
        (
            _renamed_output,
            "no output(s) class_logits (it has box_deltas, scores, landmark_deltas); featherface reads box_deltas, "
            "class_logits, landmark_deltas",
        ),
    ],
    ids=["anchors-disagree", "fixed-size", "renamed-output"],
)
def test_an_onnx_file_the_runner_cannot_read_right_is_refused_in_one_line(capsys, make_onnx, edit, message):
    """Were: 12 confident "faces" for one, exit 0 (anchors); onnxruntime tracebacks (size, names)."""
    from featherface.data.sample import sample_root

    model = make_onnx("model.onnx", edit)
    photo = sample_root() / "images" / "astronaut.jpg"
    code = main(["detect", str(photo), "--model", str(model)])
    err = capsys.readouterr().err
    assert code == 2 and err.strip() == f"featherface detect: error: {model}: {message}"


def test_an_untouched_export_still_loads_and_runs(make_onnx):
    from featherface.detection.api import Detector

    detector = Detector.load(make_onnx("model.onnx", lambda model: None))
    assert len(detector.detect(np.zeros((100, 140, 3), np.uint8))) == 0

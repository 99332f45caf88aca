"""One reading of a MODEL argument (``featherface.models.loader``): each kind of argument resolves to its kind and
file, each refusal names the argument and the file, and ``Detector.load`` / ``load_model`` build what it names."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from featherface.detection import Detector
from featherface.detection.peers import YuNetRunner
from featherface.detection.runners import OnnxRunner, TorchRunner
from featherface.models.checkpoint import save_checkpoint
from featherface.models.config import nano_b_config
from featherface.models.detector_net import DetectorNet
from featherface.models.loader import (
    ModelSpec,
    ModelSpecError,
    load_model,
    model_kind,
    require_trainable,
    resolve_model,
)
from featherface.weights import SHIPPED, shipped_path

# Peer weights live beside the repository (../shared), never in it.
YUNET = Path(__file__).resolve().parents[2] / "shared" / "weights" / "peers" / "yunet_n_dynamic.onnx"
SHIPPED_ONNX = shipped_path(SHIPPED["nano-b-pretrained"].onnx)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A small random Nano-B checkpoint (architecture embedded)."""
    torch.manual_seed(0)
    return save_checkpoint(DetectorNet(nano_b_config()), tmp_path_factory.mktemp("ckpt") / "model.safetensors")


# ------------------------------------------------------------------------------------------ kinds


def test_a_zoo_name_resolves_to_itself_without_a_file():
    assert resolve_model("nano-b-pretrained") == ModelSpec("nano-b-pretrained", "zoo", None)
    assert resolve_model("nano-b").trainable


def test_a_zoo_name_wins_over_a_folder_of_the_same_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "nano-b").mkdir()
    assert resolve_model("nano-b") == ModelSpec("nano-b", "zoo", None)


def test_a_safetensors_file_resolves_to_itself(checkpoint):
    assert resolve_model(checkpoint) == ModelSpec(str(checkpoint), "checkpoint", checkpoint)


def test_a_run_directory_resolves_to_deployed_then_best_then_last(tmp_path, checkpoint):
    shutil.copy(checkpoint, tmp_path / "last.safetensors")
    assert resolve_model(tmp_path).path == tmp_path / "last.safetensors"
    shutil.copy(checkpoint, tmp_path / "best.safetensors")
    assert resolve_model(tmp_path).path == tmp_path / "best.safetensors"
    shutil.copy(checkpoint, tmp_path / "deployed.safetensors")
    assert resolve_model(tmp_path) == ModelSpec(str(tmp_path), "checkpoint", tmp_path / "deployed.safetensors")


def test_an_onnx_file_resolves_to_itself_and_is_not_trainable():
    spec = resolve_model(SHIPPED_ONNX)
    assert spec == ModelSpec(str(SHIPPED_ONNX), "onnx", SHIPPED_ONNX)
    assert not spec.trainable


def test_the_kind_is_read_from_the_text_alone():
    assert [model_kind(s) for s in ("retinaface-mnet025", "absent.onnx", "absent.safetensors", "absent/")] == [
        "zoo",
        "onnx",
        "checkpoint",
        "checkpoint",
    ]


# ------------------------------------------------------------------------------------------- refusals


def test_a_missing_onnx_file_is_refused_naming_the_argument_and_the_file(tmp_path):
    missing = tmp_path / "missing.onnx"
    with pytest.raises(ModelSpecError) as raised:
        resolve_model(missing)
    assert str(raised.value) == f"model {missing}: no such file"


def test_a_name_that_is_neither_zoo_nor_file_lists_what_a_model_can_be(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(ModelSpecError) as raised:
        resolve_model(missing, argument="--model")
    assert str(raised.value) == (
        f"--model {missing}: no such model: give a zoo name (retinaface-mnet025, featherface-v1, nano-b, "
        "nano-b-pretrained, nano-b-distilled), a .safetensors checkpoint, a run directory or an .onnx file"
    )


def test_a_run_directory_without_a_checkpoint_is_refused(tmp_path):
    with pytest.raises(ModelSpecError) as raised:
        resolve_model(tmp_path, argument="teacher")
    assert str(raised.value) == (
        f"teacher {tmp_path}: run directory holds none of deployed.safetensors, best.safetensors, last.safetensors"
    )


def test_a_file_of_another_format_is_refused(tmp_path):
    weights = tmp_path / "weights.pt"
    weights.write_bytes(b"\x80\x02")
    with pytest.raises(ModelSpecError) as raised:
        resolve_model(weights)
    assert str(raised.value) == f"model {weights}: expected a .safetensors checkpoint"


def test_an_onnx_file_is_refused_where_a_torch_network_is_needed():
    with pytest.raises(ModelSpecError) as raised:
        require_trainable(SHIPPED_ONNX, argument="--teacher", purpose="distillation")
    assert str(raised.value) == (
        f"--teacher {SHIPPED_ONNX}: an ONNX file runs in onnxruntime only; distillation needs a torch model "
        "(a zoo name, a .safetensors checkpoint or a run directory)"
    )
    with pytest.raises(ModelSpecError, match=r"^model .*nano_b_pretrained\.onnx: an ONNX file .* this needs a torch"):
        load_model(SHIPPED_ONNX)


def test_detector_load_refuses_with_the_same_message(tmp_path):
    with pytest.raises(ModelSpecError) as raised:
        Detector.load(tmp_path / "missing.onnx")
    assert str(raised.value) == f"model {tmp_path / 'missing.onnx'}: no such file"


def test_from_pretrained_takes_zoo_names_only(checkpoint):
    with pytest.raises(ValueError, match=r"^unknown model .*model\.safetensors'; the zoo has retinaface-mnet025, "):
        Detector.from_pretrained(str(checkpoint))


# ------------------------------------------------------------------------------------- what gets built


def test_load_model_gives_the_checkpoints_tensors(checkpoint, tmp_path):
    shutil.copy(checkpoint, tmp_path / "best.safetensors")
    torch.manual_seed(0)  # the fixture's seed: the same random tensors
    saved = DetectorNet(nano_b_config())
    for spec in (checkpoint, tmp_path):
        loaded = load_model(spec).state_dict()
        assert loaded.keys() == saved.state_dict().keys()
        assert all(torch.equal(loaded[k], v) for k, v in saved.state_dict().items())


def test_detector_load_composes_the_runner_each_kind_runs_in(checkpoint, tmp_path):
    shutil.copy(checkpoint, tmp_path / "last.safetensors")
    assert type(Detector.load("nano-b-pretrained").runner) is OnnxRunner  # its shipped ONNX
    assert type(Detector.load("nano-b-pretrained", backend="torch").runner) is TorchRunner
    assert type(Detector.load(SHIPPED_ONNX).runner) is OnnxRunner
    assert type(Detector.load(checkpoint).runner) is TorchRunner
    assert type(Detector.load(tmp_path).runner) is TorchRunner


@pytest.mark.skipif(not YUNET.is_file(), reason=f"{YUNET} not present")
def test_a_peer_onnx_resolves_as_onnx_and_runs_in_its_own_runner():
    assert resolve_model(YUNET).kind == "onnx"
    detector = Detector.load(YUNET)
    assert type(detector.runner) is YuNetRunner
    assert (detector.size_multiple, detector.input_mean.tolist()) == (32, [0.0, 0.0, 0.0])


def test_resolving_needs_no_torch():
    script = (
        "import sys\n"
        "from featherface.models.loader import resolve_model\n"
        f"assert resolve_model({str(SHIPPED_ONNX)!r}).kind == 'onnx'\n"
        "assert resolve_model('nano-b').kind == 'zoo'\n"
        "loaded = [m for m in sys.modules if m.split('.')[0] == 'torch' or m == 'featherface.models.detector_net']\n"
        "assert not loaded, loaded\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]

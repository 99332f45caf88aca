import json

import pytest
import torch

from featherface.models.checkpoint import CheckpointError, load_checkpoint, resolve_checkpoint, save_checkpoint
from featherface.models.config import nano_b_config
from featherface.models.detector_net import DetectorNet

from .conftest import randomize_batchnorm


def test_save_load_round_trip_gives_identical_outputs(tmp_path):
    torch.manual_seed(0)
    net = randomize_batchnorm(DetectorNet(nano_b_config()))
    path = save_checkpoint(net, tmp_path / "model.safetensors", {"epoch": 3})
    loaded, metadata = load_checkpoint(path)
    assert metadata == {"epoch": 3}
    x = torch.randn(1, 3, 96, 128)
    with torch.no_grad():
        for a, b in zip(net(x), loaded.eval()(x), strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not list(tmp_path.glob("*.tmp"))


def test_pruned_widths_live_in_the_config(tmp_path):
    config = nano_b_config()
    config.neck.channels = 40
    config.attention_out.hidden_channels = [4, 4, 4]
    config.context.levels[1].out3x3 = 20
    path = save_checkpoint(DetectorNet(config), tmp_path / "small.safetensors")
    loaded, _ = load_checkpoint(path)
    assert loaded.config == config
    assert loaded.neck.out_channels == 40


def test_run_directory_prefers_deployed_then_best(tmp_path):
    net = DetectorNet(nano_b_config())
    save_checkpoint(net, tmp_path / "last.safetensors")
    assert resolve_checkpoint(tmp_path).name == "last.safetensors"
    save_checkpoint(net, tmp_path / "best.safetensors")
    assert resolve_checkpoint(tmp_path).name == "best.safetensors"
    save_checkpoint(net, tmp_path / "deployed.safetensors")
    assert resolve_checkpoint(tmp_path).name == "deployed.safetensors"


def plain_weights(net, path):
    """Weights as another tool would write them: tensors only, no embedded architecture."""
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))


def test_weights_file_alone_is_complete(tmp_path):
    path = save_checkpoint(DetectorNet(nano_b_config()), tmp_path / "m.safetensors", {"epoch": 7})
    path.with_suffix(".json").unlink()
    net, meta = load_checkpoint(path)
    assert meta == {"epoch": 7} and net.config == nano_b_config()


def test_kill_between_the_two_renames_leaves_a_loadable_checkpoint(tmp_path):
    path = save_checkpoint(DetectorNet(nano_b_config()), tmp_path / "last.safetensors", {"epoch": 1})
    old_json = path.with_suffix(".json").read_bytes()
    save_checkpoint(DetectorNet(nano_b_config()), path, {"epoch": 2})
    path.with_suffix(".json").write_bytes(old_json)  # as if killed before the JSON's rename
    _, meta = load_checkpoint(path)
    assert meta["epoch"] == 2  # the weights' own header wins: weights and description always agree


def test_plain_weights_from_another_save_are_detected(tmp_path):
    save_checkpoint(DetectorNet(nano_b_config()), tmp_path / "a.safetensors")
    torch.manual_seed(1)
    plain_weights(DetectorNet(nano_b_config()), tmp_path / "a.safetensors")
    with pytest.raises(CheckpointError, match="sha256"):
        load_checkpoint(tmp_path / "a.safetensors")
    (tmp_path / "a.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="unreadable"):
        load_checkpoint(tmp_path / "a.safetensors")


def test_missing_or_bad_config_is_named(tmp_path):
    net = DetectorNet(nano_b_config())
    path = save_checkpoint(net, tmp_path / "m.safetensors")
    plain_weights(net, path)
    doc = json.loads(path.with_suffix(".json").read_text())
    doc.pop("weights_sha256")
    path.with_suffix(".json").write_text(json.dumps(doc))
    assert load_checkpoint(path)[0].config == net.config  # plain weights + JSON: fine
    path.with_suffix(".json").write_text("{ not json")
    with pytest.raises(CheckpointError, match=r"m\.json"):
        load_checkpoint(path)
    path.with_suffix(".json").unlink()
    with pytest.raises(CheckpointError, match="no architecture file"):
        load_checkpoint(path)


def test_tensors_that_do_not_fit_are_refused(tmp_path):
    net = DetectorNet(nano_b_config())
    path = save_checkpoint(net, tmp_path / "m.safetensors")
    plain_weights(net, path)
    doc = json.loads(path.with_suffix(".json").read_text())
    doc["architecture"]["neck"]["channels"] = 64
    doc.pop("weights_sha256")
    path.with_suffix(".json").write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match="do not fit"):
        load_checkpoint(path)

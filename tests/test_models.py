import pytest
import torch
from safetensors.torch import load_file

from featherface.models.config import DetectorConfig, featherface_v1_config, nano_b_config, retinaface_mnet025_config
from featherface.models.detector_net import DetectorNet, count_parameters, parameters_by_group
from featherface.models.pretrained import (
    MOBILENET_025_IMAGENET,
    RETINAFACE_MNET025_WIDERFACE,
    convert_pytorch_retinaface,
    weights_path,
)
from featherface.models.zoo import create_model
from featherface.nn import SSH, channel_shuffle
from featherface.profiling import count_macs, model_info

V1_SEED_PARAMS = 487_103


def test_retinaface_mnet025_has_426608_parameters():
    assert count_parameters(DetectorNet(retinaface_mnet025_config())) == 426_608


def test_featherface_v1_parameters_within_one_percent_of_seed():
    params = count_parameters(DetectorNet(featherface_v1_config()))
    print(f"featherface-v1: {params:,} parameters (seed {V1_SEED_PARAMS:,}, {params / V1_SEED_PARAMS - 1:+.2%})")
    assert abs(params - V1_SEED_PARAMS) <= 0.01 * V1_SEED_PARAMS


def test_nano_b_module_table_next_to_seed_budget():
    info = model_info(DetectorNet(nano_b_config()))
    assert list(info["modules"]) == ["backbone", "attention_in", "neck", "attention_out", "context", "shuffle", "heads"]
    assert sum(row["params"] for row in info["modules"].values()) == info["params"]
    assert info["modules"]["shuffle"] == {"params": 0, "seed_budget": 0}
    assert 300_000 <= info["params"] <= 400_000  # SPEC: the unpruned student lands at ~300-400k
    # grouped SSH at 72 channels is ~22k per level (SPEC section 2)
    assert 3 * 21_000 <= info["modules"]["context"]["params"] <= 3 * 23_000


@pytest.mark.parametrize("factory", [retinaface_mnet025_config, featherface_v1_config, nano_b_config])
@pytest.mark.parametrize(("height", "width"), [(640, 640), (480, 736), (37, 101), (1, 1)])
def test_output_shapes_follow_priors(factory, height, width):
    from featherface.detection.priors import PriorBox

    net = DetectorNet(factory()).eval()
    with torch.no_grad():
        boxes, logits, landmarks = net(torch.zeros(2, 3, height, width))
    p = PriorBox().num_priors(height, width)
    assert boxes.shape == (2, p, 4) and logits.shape == (2, p, 2) and landmarks.shape == (2, p, 10)


@pytest.mark.parametrize("factory", [retinaface_mnet025_config, featherface_v1_config, nano_b_config])
def test_config_json_round_trip(factory):
    import json

    config = factory()
    assert DetectorConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_config_missing_key_is_named():
    data = nano_b_config().to_dict()
    del data["neck"]
    with pytest.raises(ValueError, match="neck"):
        DetectorConfig.from_dict(data)


def test_shipped_reference_weights_load_strictly():
    state = convert_pytorch_retinaface(load_file(weights_path(RETINAFACE_MNET025_WIDERFACE)))
    net = DetectorNet(retinaface_mnet025_config())
    assert set(state) == set(net.state_dict())


def test_converter_rejects_foreign_tensors():
    with pytest.raises(ValueError, match="not a Pytorch_Retinaface"):
        convert_pytorch_retinaface({"classifier.weight": torch.zeros(1)})


@pytest.mark.parametrize("name", ["featherface-v1", "nano-b"])
def test_students_start_from_imagenet_backbone(name):
    imagenet = load_file(weights_path(MOBILENET_025_IMAGENET))
    net = create_model(name)
    torch.testing.assert_close(net.backbone.stem.conv.weight, imagenet["stage1.0.0.weight"])
    torch.testing.assert_close(net.backbone.blocks[12].pw.bn.running_var, imagenet["stage3.1.4.running_var"])


def test_grouped_ssh_weight_shapes():
    ssh = SSH.uniform(72, 72, groups=2)
    assert ssh.branch3x3.conv.weight.shape == (36, 36, 3, 3)
    assert ssh.branch5x5_a.conv.weight.shape == (18, 36, 3, 3)
    assert ssh.out_channels == 72


def test_channel_shuffle_interleaves_groups():
    x = torch.arange(6.0).reshape(1, 6, 1, 1)
    assert channel_shuffle(x, 2).flatten().tolist() == [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]


def test_macs_of_a_single_conv_hand_computed():
    conv = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False))
    # output 8 x 32 x 32, each output needs 3 * 3 * 3 MACs
    assert count_macs(conv, 64, 64) == 8 * 32 * 32 * 27


def test_parameter_groups_cover_the_whole_net():
    net = DetectorNet(featherface_v1_config())
    assert sum(parameters_by_group(net).values()) == count_parameters(net)


def test_nano_b_can_start_from_the_teachers_wider_backbone():
    from featherface.models.zoo import start_from_teacher_backbone

    teacher = create_model("retinaface-mnet025")
    student = create_model("nano-b")
    imagenet_neck = {k: v.clone() for k, v in student.state_dict().items() if not k.startswith("backbone.")}
    assert start_from_teacher_backbone(student, teacher) == 162  # weights and BN statistics, layer for layer
    reference = convert_pytorch_retinaface(load_file(weights_path(RETINAFACE_MNET025_WIDERFACE)))
    for name, tensor in student.state_dict().items():
        if name.startswith("backbone."):
            assert torch.equal(tensor, reference[name]), name
        else:  # the rest of the student keeps its own initialisation
            assert torch.equal(tensor, imagenet_neck[name]), name


def test_teacher_backbone_start_refuses_a_backbone_of_other_widths():
    from featherface.models.zoo import start_from_teacher_backbone

    config = nano_b_config()
    config.backbone.stem_channels = 4  # as a pruned backbone would be
    with pytest.raises(ValueError, match="does not fit"):
        start_from_teacher_backbone(DetectorNet(config), create_model("retinaface-mnet025"))

"""The exported inference graph: exact rewrites of the trained network (stem padding, dense SSH, fused heads)."""

import copy

import pytest
import torch
from torch import nn

from featherface.export.deploy import NCHWC_BLOCK, DeploymentGraph, FusedHeads, dense_context, pad_stem
from featherface.models.config import nano_b_config
from featherface.models.detector_net import DetectorNet
from featherface.models.zoo import create_model
from featherface.pruning.hard import hard_prune
from featherface.pruning.masks import compute_masks

from .conftest import randomize_batchnorm


def _randomized(net: DetectorNet, seed: int = 0) -> DetectorNet:
    torch.manual_seed(seed)
    for name, module in net.named_modules():  # the stem too: pad_stem must carry its BN over exactly
        if isinstance(module, nn.BatchNorm2d) and name.startswith("backbone."):
            module.running_mean.uniform_(-0.5, 0.5)
            module.bias.data.uniform_(-0.5, 0.5)
    return randomize_batchnorm(net, seed)


def _pruned_nano_b() -> DetectorNet:
    net = _randomized(DetectorNet(nano_b_config()))
    rates = {"backbone_early": 0.2, "backbone_late": 0.4, "cbam": 0.4, "bifpn": 0.55, "ssh": 0.4, "heads": 0.2}
    return hard_prune(net, compute_masks(net, rates)).eval()


@pytest.mark.parametrize("name", ["retinaface-mnet025", "featherface-v1", "nano-b", "pruned"])
def test_deployment_graph_computes_the_network(name):
    net = _pruned_nano_b() if name == "pruned" else _randomized(create_model(name, pretrained=False))
    graph = DeploymentGraph(net).eval()
    images = torch.randn(2, 3, 96, 160) * 60
    with torch.no_grad():
        expected, got = net(images), graph(images)
    for e, g in zip(expected, got, strict=True):
        assert e.shape == g.shape
        torch.testing.assert_close(g, e, atol=1e-4, rtol=1e-4)
    assert graph.body.shuffle is None


def test_pad_stem_fills_one_block_with_dead_channels():
    net = _randomized(create_model("retinaface-mnet025", pretrained=False))
    padded = copy.deepcopy(net)
    pad_stem(padded)
    assert padded.backbone.stem.conv.out_channels == NCHWC_BLOCK == padded.backbone.blocks[0].pw.conv.in_channels
    stem_in = torch.randn(1, 3, 64, 64) * 60
    with torch.no_grad():
        extra = padded.backbone.blocks[0].dw(padded.backbone.stem(stem_in))[:, 8:]
        assert torch.equal(extra, torch.zeros_like(extra))  # BN scale 0, shift 0: the new channels stay 0
        torch.testing.assert_close(padded.backbone(stem_in)[0], net.backbone(stem_in)[0], atol=1e-5, rtol=1e-5)


def test_dense_context_keeps_block_aligned_groups():
    net = DetectorNet(nano_b_config())  # neck 72: 36 channels per group, not whole 16-blocks
    dense_context(net)
    assert all(m.groups == 1 for m in net.context.modules() if isinstance(m, nn.Conv2d))
    config = nano_b_config()
    config.neck.channels = 64
    for level in config.context.levels:
        level.out3x3, level.mid, level.out5x5, level.mid7x7, level.out7x7 = 64, 32, 32, 32, 32
    aligned = DetectorNet(config)
    dense_context(aligned)
    # 32 in / 32 out per group: onnxruntime runs these grouped convs in its blocked layout, so they stay grouped
    assert all(m.groups == 2 for m in aligned.context.modules() if isinstance(m, nn.Conv2d))


def test_fused_heads_order_box_class_landmarks_per_anchor():
    net = _randomized(create_model("nano-b", pretrained=False))
    heads = FusedHeads(net)
    conv, head = heads.convs[0], net.heads[0]
    assert conv.out_channels == 2 * 16
    # anchor 1's rows: box 4, class 2, landmarks 10, taken from the second half of each original conv
    torch.testing.assert_close(conv.weight[16:20], head.box.weight[4:8])
    torch.testing.assert_close(conv.weight[20:22], head.cls.weight[2:4])
    torch.testing.assert_close(conv.weight[22:32], head.landmarks.weight[10:20])
    torch.testing.assert_close(conv.bias[:4], head.box.bias[:4])

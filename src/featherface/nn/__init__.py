"""Network building blocks. They know about channels and tensors, nothing about faces or anchors."""

from featherface.nn.bifpn import BiFPN
from featherface.nn.cbam import CBAM
from featherface.nn.fpn import FPN
from featherface.nn.heads import DetectionHead
from featherface.nn.layers import ConvBNAct, SeparableConvBN
from featherface.nn.mobilenet import MobileNetV1
from featherface.nn.shuffle import ChannelShuffle, channel_shuffle
from featherface.nn.ssh import SSH

__all__ = [
    "CBAM",
    "FPN",
    "SSH",
    "BiFPN",
    "ChannelShuffle",
    "ConvBNAct",
    "DetectionHead",
    "MobileNetV1",
    "SeparableConvBN",
    "channel_shuffle",
]

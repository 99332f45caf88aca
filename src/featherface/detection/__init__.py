"""Priors, box coding, NMS, post-processing and the ``Detector`` API."""

from featherface.detection.api import Detector
from featherface.detection.boxes import (
    box_iou,
    cxcywh_to_xyxy,
    decode_boxes,
    decode_landmarks,
    encode_boxes,
    encode_landmarks,
    nms,
    xyxy_to_cxcywh,
)
from featherface.detection.postprocess import Detections, PostprocessConfig, postprocess
from featherface.detection.priors import PriorBox

__all__ = [
    "Detections",
    "Detector",
    "PostprocessConfig",
    "PriorBox",
    "box_iou",
    "cxcywh_to_xyxy",
    "decode_boxes",
    "decode_landmarks",
    "encode_boxes",
    "encode_landmarks",
    "nms",
    "postprocess",
    "xyxy_to_cxcywh",
]

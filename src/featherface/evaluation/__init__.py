"""Evaluation: the official WIDER FACE protocol, AP/recall/NME on labelled sets, PR plots."""

from featherface.evaluation.voc import DatasetResult, evaluate_dataset, match_detections
from featherface.evaluation.widerface import (
    SETTINGS,
    WiderResult,
    evaluate_wider,
    load_wider_ground_truth,
    read_predictions,
    voc_ap,
)

__all__ = [
    "SETTINGS",
    "DatasetResult",
    "WiderResult",
    "evaluate_dataset",
    "evaluate_wider",
    "load_wider_ground_truth",
    "match_detections",
    "read_predictions",
    "voc_ap",
]

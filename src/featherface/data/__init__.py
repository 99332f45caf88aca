"""Datasets: RetinaFace-layout label files, WIDER FACE split files, the embedded sample set."""

from featherface.data.labels import (
    ImageAnnotation,
    LabelError,
    LabelReport,
    parse_label_file,
)
from featherface.data.sample import resolve_dataset

__all__ = ["ImageAnnotation", "LabelError", "LabelReport", "parse_label_file", "resolve_dataset"]

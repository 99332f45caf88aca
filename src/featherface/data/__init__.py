"""Datasets: RetinaFace-layout label files, WIDER FACE split files, Pascal VOC XML, image pools, the sample set."""

from featherface.data.labels import (
    ImageAnnotation,
    LabelError,
    LabelReport,
    parse_label_file,
)
from featherface.data.sample import resolve_dataset
from featherface.data.voc import parse_voc_folder

__all__ = ["ImageAnnotation", "LabelError", "LabelReport", "parse_label_file", "parse_voc_folder", "resolve_dataset"]

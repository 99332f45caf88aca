"""Model configs, the detector network and the zoo of named models."""

from featherface.models.config import DetectorConfig
from featherface.models.detector_net import DetectorNet, count_parameters, parameters_by_group

__all__ = ["DetectorConfig", "DetectorNet", "count_parameters", "parameters_by_group"]

"""A torch ``Dataset`` over labelled images, with the bad-data policy applied at load time."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import Dataset

from featherface.data.labels import ImageAnnotation, LabelError
from featherface.data.transforms import AugmentConfig, Sample, augment, letterbox
from featherface.detection.api import preprocess
from featherface.detection.image import ImageError, read_image
from featherface.detection.matching import Targets

log = logging.getLogger(__name__)


@dataclass
class LoadReport:
    """What loading skipped, so a lenient run can say so at the end of an epoch."""

    unreadable_images: list[str] = field(default_factory=list)
    boxes_outside_image: int = 0


def clip_to_image(ann: ImageAnnotation, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Boxes clipped to the image, and a mask of those that keep a positive area."""
    boxes = ann.boxes.copy()
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, width)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, height)
    keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    return boxes, keep


class FaceDataset(Dataset):
    """``dataset[i] -> (image (3, S, S) float32 minus mean, Targets)`` with seeded augmentation.

    The augmentation of item i in epoch e draws from ``default_rng([seed, e, i])``; call ``set_epoch``
    before each epoch. ``repeats`` makes one epoch visit every image that many times (differently
    augmented), which keeps epochs meaningful on tiny sets. A file that cannot be decoded raises in
    ``strict`` mode and is otherwise replaced by the next readable image (and reported once).
    """

    def __init__(
        self,
        annotations: list[ImageAnnotation],
        augment_config: AugmentConfig | None = None,
        train: bool = True,
        seed: int = 0,
        repeats: int = 1,
        strict: bool = False,
    ) -> None:
        if not annotations:
            raise ValueError("dataset has no images")
        self.annotations = annotations
        self.config = augment_config or AugmentConfig()
        self.train = train
        self.seed = seed
        self.repeats = max(1, repeats)
        self.strict = strict
        self.epoch = 0
        self.report = LoadReport()

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.annotations) * self.repeats

    def load(self, index: int) -> Sample:
        ann = self.annotations[index % len(self.annotations)]
        for attempt in range(len(self.annotations)):
            ann = self.annotations[(index + attempt) % len(self.annotations)]
            try:
                image = read_image(ann.path)
                break
            except ImageError as exc:
                if self.strict:
                    raise LabelError(str(exc)) from None
                if str(ann.path) not in self.report.unreadable_images:
                    self.report.unreadable_images.append(str(ann.path))
                    log.warning("skipping unreadable image %s", ann.path)
        else:
            raise LabelError("no readable image in the dataset")
        boxes, keep = clip_to_image(ann, *image.shape[:2])
        if not keep.all():
            if self.strict:
                raise LabelError(f"{ann.path}: {int((~keep).sum())} face box(es) lie outside the image")
            self.report.boxes_outside_image += int((~keep).sum())
        return Sample(image, boxes[keep], ann.landmarks[keep], ann.has_landmarks[keep])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, Targets]:
        sample = self.load(index)
        if self.train:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            sample = augment(sample, self.config, rng)
        else:
            sample = letterbox(sample, self.config.image_size)
        size = float(self.config.image_size)
        targets = Targets(
            boxes=torch.from_numpy(sample.boxes.astype(np.float32) / size),
            landmarks=torch.from_numpy(sample.landmarks.reshape(-1, 10).astype(np.float32) / size),
            has_landmarks=torch.from_numpy(sample.has_landmarks.astype(bool)),
        )
        return torch.from_numpy(preprocess(sample.image)), targets


def collate(batch: list[tuple[torch.Tensor, Targets]]) -> tuple[torch.Tensor, list[Targets]]:
    images, targets = zip(*batch, strict=True)
    return torch.stack(images), list(targets)

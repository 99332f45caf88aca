"""Training augmentation (SPEC section 3, after Pytorch_Retinaface's ``data_augment.py``), seeded.

Every random choice draws from the ``numpy.random.Generator`` passed in, so a sample's augmentation is a
function of ``(seed, epoch, index)`` alone: reproducible, identical across DataLoader workers and resumes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from featherface.config_schema import Config, rule

# Mirror image: left eye <-> right eye, nose stays, left mouth corner <-> right mouth corner.
FLIP_LANDMARK_ORDER = (1, 0, 2, 4, 3)
_INTERPOLATIONS = (cv2.INTER_LINEAR, cv2.INTER_CUBIC, cv2.INTER_AREA, cv2.INTER_NEAREST, cv2.INTER_LANCZOS4)
_IMAGE_MEAN_BGR = (104, 117, 123)


@dataclass
class AugmentConfig(Config):
    # pixels; the coarsest feature map has stride 32. At most the detector's largest input (DEFAULT_MAX_SIZE): one
    # 30000-px sample is 10 GB as float32.
    image_size: int = field(default=640, metadata=rule(ge=32, le=4096))
    # square side as a fraction of the image's short side
    crop_scale: tuple[float, float] = field(default=(0.3, 1.0), metadata=rule(gt=0, le=1))
    crop_attempts: int = field(default=250, metadata=rule(ge=1, le=10_000))
    flip_probability: float = field(default=0.5, metadata=rule(ge=0, le=1))
    photometric: bool = True
    brightness_delta: float = field(default=32.0, metadata=rule(ge=0, le=255))
    contrast_range: tuple[float, float] = field(default=(0.5, 1.5), metadata=rule(ge=0))
    saturation_range: tuple[float, float] = field(default=(0.5, 1.5), metadata=rule(ge=0))
    hue_delta: int = field(default=18, metadata=rule(ge=0, le=180))  # OpenCV hue units (0-180)
    # faces smaller than this at image_size are dropped after the crop
    min_face_pixels: float = field(default=1.0, metadata=rule(ge=0))
    # Share of faces whose lower half (nose to chin) is covered by a random-colour patch after the resize, so the
    # student sees faces behind masks, scarves, hands and microphones. The face keeps its box and landmarks: the
    # detector must still find it. 0 (the default) draws nothing, so runs without it replay bit for bit.
    occlusion_probability: float = field(default=0.0, metadata=rule(ge=0, le=1))
    # faces smaller than this at image_size are never occluded: a covered 8-px face is no face at all
    occlusion_min_face_pixels: float = field(default=16.0, metadata=rule(ge=0))


@dataclass
class Sample:
    """An image and its faces: ``boxes (G, 4)`` xyxy and ``landmarks (G, 5, 2)`` in pixels."""

    image: np.ndarray
    boxes: np.ndarray
    landmarks: np.ndarray
    has_landmarks: np.ndarray


def random_square_crop(sample: Sample, config: AugmentConfig, rng: np.random.Generator) -> Sample:
    """A random square of the image holding at least one face centre; faces whose centre is outside are dropped.

    After ``crop_attempts`` failures (or for an image without faces) the whole image is padded to a square.
    """
    h, w = sample.image.shape[:2]
    short = min(h, w)
    centres = (sample.boxes[:, :2] + sample.boxes[:, 2:]) / 2
    for _ in range(config.crop_attempts if len(sample.boxes) else 1):
        side = max(1, int(rng.uniform(*config.crop_scale) * short))
        left = int(rng.integers(0, w - side + 1))
        top = int(rng.integers(0, h - side + 1))
        inside = (
            (centres[:, 0] > left)
            & (centres[:, 0] < left + side)
            & (centres[:, 1] > top)
            & (centres[:, 1] < top + side)
        )
        if len(sample.boxes) and not inside.any():
            continue
        offset = np.array([left, top], dtype=np.float32)
        boxes = sample.boxes[inside].copy()
        boxes[:, :2] = np.maximum(boxes[:, :2], offset)
        boxes[:, 2:] = np.minimum(boxes[:, 2:], offset + side)
        return Sample(
            sample.image[top : top + side, left : left + side],
            boxes - np.tile(offset, 2),
            sample.landmarks[inside] - offset,
            sample.has_landmarks[inside],
        )
    return pad_to_square(sample)


def pad_to_square(sample: Sample) -> Sample:
    """Pad right/bottom with the mean colour (zero after mean subtraction)."""
    h, w = sample.image.shape[:2]
    side = max(h, w)
    canvas = np.empty((side, side, 3), dtype=np.uint8)
    canvas[:] = _IMAGE_MEAN_BGR
    canvas[:h, :w] = sample.image
    return Sample(canvas, sample.boxes, sample.landmarks, sample.has_landmarks)


def photometric_distort(image: np.ndarray, config: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """Brightness, contrast, saturation and hue jitter, each with probability 1/2, contrast first or last."""
    image = image.astype(np.float32)
    contrast_first = rng.random() < 0.5
    if rng.random() < 0.5:
        image += rng.uniform(-config.brightness_delta, config.brightness_delta)
    if contrast_first and rng.random() < 0.5:
        image *= rng.uniform(*config.contrast_range)
    image = np.clip(image, 0, 255)
    hsv = cv2.cvtColor(image.astype(np.uint8), cv2.COLOR_BGR2HSV).astype(np.float32)
    if rng.random() < 0.5:
        hsv[:, :, 1] *= rng.uniform(*config.saturation_range)
    if rng.random() < 0.5:
        hsv[:, :, 0] = (hsv[:, :, 0] + rng.integers(-config.hue_delta, config.hue_delta + 1)) % 180
    image = cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2BGR).astype(np.float32)
    if not contrast_first and rng.random() < 0.5:
        image *= rng.uniform(*config.contrast_range)
    return np.clip(image, 0, 255).astype(np.uint8)


def horizontal_flip(sample: Sample) -> Sample:
    """Mirror the image; boxes and landmark x mirrored, left/right landmarks swapped."""
    w = sample.image.shape[1]
    boxes = sample.boxes.copy()
    boxes[:, 0], boxes[:, 2] = w - sample.boxes[:, 2], w - sample.boxes[:, 0]
    landmarks = sample.landmarks[:, FLIP_LANDMARK_ORDER].copy()
    landmarks[:, :, 0] = w - landmarks[:, :, 0]
    return Sample(np.ascontiguousarray(sample.image[:, ::-1]), boxes, landmarks, sample.has_landmarks)


def resize(sample: Sample, size: int, interpolation: int = cv2.INTER_LINEAR) -> Sample:
    """Resize a square sample to ``size x size``."""
    scale = size / sample.image.shape[0]
    image = cv2.resize(sample.image, (size, size), interpolation=interpolation)
    return Sample(image, sample.boxes * scale, sample.landmarks * scale, sample.has_landmarks)


def occlude_lower_face(sample: Sample, config: AugmentConfig, rng: np.random.Generator) -> Sample:
    """Cover the lower half of a share of the faces with a random-colour ellipse, as a mask or a scarf would.

    The patch runs from the nose (landmark 2, or 55 % down a face without landmarks) to just below the chin and
    spans the face's width or a little more. Faces below ``occlusion_min_face_pixels`` on either side are left
    alone. Boxes and landmarks are unchanged.
    """
    image = sample.image
    for i, box in enumerate(sample.boxes):
        x1, y1, x2, y2 = (float(v) for v in box)
        w, h = x2 - x1, y2 - y1
        if min(w, h) < config.occlusion_min_face_pixels or rng.random() >= config.occlusion_probability:
            continue
        if image is sample.image:
            image = image.copy()  # never write into the caller's (possibly cached) image
        nose_y = float(sample.landmarks[i, 2, 1]) if sample.has_landmarks[i] else y1 + 0.55 * h
        top = min(max(nose_y, y1 + 0.3 * h), y1 + 0.7 * h) + rng.uniform(-0.05, 0.05) * h
        bottom = y2 + rng.uniform(0.0, 0.1) * h
        centre = (round((x1 + x2) / 2), round(top))
        axes = (max(1, round(w * rng.uniform(0.5, 0.6))), max(1, round(bottom - top)))
        colour = tuple(int(c) for c in rng.integers(0, 256, size=3))
        # the lower half of an ellipse centred on the nose line (OpenCV's angles run clockwise, y down: 0-180 is
        # the half below the centre): straight across the nose, round under the chin, like a mask
        cv2.ellipse(image, centre, axes, 0, 0, 180, colour, thickness=-1)
    return Sample(image, sample.boxes, sample.landmarks, sample.has_landmarks)


def augment(sample: Sample, config: AugmentConfig, rng: np.random.Generator) -> Sample:
    """Crop, distort, flip, resize to ``config.image_size``, occlude; drops faces smaller than ``min_face_pixels``."""
    sample = random_square_crop(sample, config, rng)
    if config.photometric:
        sample = Sample(
            photometric_distort(sample.image, config, rng), sample.boxes, sample.landmarks, sample.has_landmarks
        )
    if rng.random() < config.flip_probability:
        sample = horizontal_flip(sample)
    sample = resize(sample, config.image_size, _INTERPOLATIONS[int(rng.integers(len(_INTERPOLATIONS)))])
    sizes = sample.boxes[:, 2:] - sample.boxes[:, :2]
    keep = (sizes >= config.min_face_pixels).all(axis=1)
    sample = Sample(sample.image, sample.boxes[keep], sample.landmarks[keep], sample.has_landmarks[keep])
    if config.occlusion_probability > 0:
        sample = occlude_lower_face(sample, config, rng)
    return sample


def letterbox(sample: Sample, size: int) -> Sample:
    """Deterministic evaluation-time transform: pad to square, resize to ``size``."""
    return resize(pad_to_square(sample), size)

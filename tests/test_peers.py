"""YuNet-n through ``Detector.load``: the peer finds the sample set's 25 faces with no false positive at score 0.5,
and its vectorised decoding equals a cell-by-cell loop written from OpenCV's FaceDetectorYN."""

import math
import subprocess
import sys

import cv2
import numpy as np
import pytest

from featherface.data.sample import resolve_dataset
from featherface.detection import Detector, PostprocessConfig
from featherface.detection.boxes import box_iou
from featherface.detection.peers import YUNET_STRIDES, YuNetRunner, yunet_postprocess

from .conftest import YUNET, needs_shared
from .test_boxes import brute_force_nms

# Peer weights live beside the repository (../shared), never in it.
pytestmark = needs_shared(YUNET)


@pytest.fixture(scope="module")
def yunet() -> Detector:
    detector = Detector.load(YUNET)
    assert isinstance(detector.runner, YuNetRunner)
    return detector


def test_yunet_finds_the_25_sample_faces_without_false_positives(yunet):
    yunet.postprocess_config = PostprocessConfig(conf_threshold=0.5)
    annotations = resolve_dataset("sample")
    assert sum(len(a) for a in annotations) == 25
    found = false_positives = 0
    for ann in annotations:
        faces = yunet.detect(cv2.imread(str(ann.path)))
        assert list(faces.scores) == sorted(faces.scores, reverse=True)
        overlaps = box_iou(faces.boxes, ann.boxes.astype(np.float32))  # (detections, faces)
        matched = set()
        for detection, row in enumerate(overlaps):
            best = int(row.argmax()) if row.size else -1
            if best < 0 or row[best] < 0.5 or best in matched:
                false_positives += 1
                continue
            matched.add(best)
            # landmarks in our order (the eye at the image's left first): within 10 % of the face's diagonal
            if ann.has_landmarks[best]:
                box = ann.boxes[best]
                error = np.linalg.norm(faces.landmarks[detection] - ann.landmarks[best], axis=1).mean()
                assert error < 0.1 * math.hypot(box[2] - box[0], box[3] - box[1]), (ann.name, error)
        found += len(matched)
    assert (found, false_positives) == (25, 0)


def cell_by_cell(raw: dict[str, np.ndarray], height: int, width: int, conf: float) -> tuple[np.ndarray, ...]:
    """OpenCV's FaceDetectorYN::postProcess as a plain loop (image 0, input pixels): boxes, scores, landmarks."""
    boxes, scores, points = [], [], []
    for stride in YUNET_STRIDES:
        cls, obj, bbox, kps = (raw[f"{head}_{stride}"][0] for head in ("cls", "obj", "bbox", "kps"))
        cols, rows = width // stride, height // stride
        for r in range(rows):
            for c in range(cols):
                i = r * cols + c
                score = math.sqrt(min(max(cls[i, 0], 0.0), 1.0) * min(max(obj[i, 0], 0.0), 1.0))
                if score <= conf:
                    continue
                cx, cy = (c + bbox[i, 0]) * stride, (r + bbox[i, 1]) * stride
                w, h = math.exp(bbox[i, 2]) * stride, math.exp(bbox[i, 3]) * stride
                boxes.append([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
                scores.append(score)
                points.append([[(kps[i, 2 * k] + c) * stride, (kps[i, 2 * k + 1] + r) * stride] for k in range(5)])
    return np.array(boxes).reshape(-1, 4), np.array(scores), np.array(points).reshape(-1, 5, 2)


def test_yunet_decoding_equals_a_cell_by_cell_loop(yunet, sample_images):
    image = cv2.imread(str(sample_images / "faceapi_sample5.jpg"))  # 746 x 1024: padded to 768 x 1024
    config = PostprocessConfig(conf_threshold=0.3, nms_threshold=0.4)
    batch, scales = yunet.prepare([image])
    assert batch.shape[2:] == (768, 1024) and scales == [(1024.0, 768.0)]
    runner: YuNetRunner = yunet.runner
    names = [o.name for o in runner.session.get_outputs()]
    raw = dict(zip(names, runner.session.run(names, {"input": batch}), strict=True))
    boxes, scores, points = cell_by_cell(raw, 768, 1024, config.conf_threshold)
    kept = brute_force_nms(boxes, scores, config.nms_threshold)
    assert len(kept) >= 5
    got = yunet_postprocess(*runner(batch), (768, 1024), scales, config)[0]
    assert len(got) == len(kept)
    np.testing.assert_allclose(got.scores, scores[kept], rtol=1e-6)
    np.testing.assert_allclose(got.boxes, boxes[kept], atol=1e-3)
    np.testing.assert_allclose(got.landmarks, points[kept], atol=1e-3)


def test_yunet_batch_and_resize_map_back_to_original_pixels(yunet, sample_images):
    yunet.postprocess_config = PostprocessConfig(conf_threshold=0.5)
    images = [cv2.imread(str(sample_images / n)) for n in ("astronaut.jpg", "faceapi_sample1.jpg")]
    for image, together in zip(images, yunet.detect_batch(images), strict=True):
        alone = yunet.detect(image)
        assert len(together) == len(alone) >= 1
        np.testing.assert_allclose(together.boxes, alone.boxes, atol=2.0)
    full, small = yunet.detect(images[1]), yunet.detect(images[1], size=640)
    assert len(small) == len(full)
    np.testing.assert_allclose(small.boxes, full.boxes, atol=12.0)


class _SessionWithoutYuNetOutputs:
    def get_inputs(self):
        return []

    def get_outputs(self):
        return []


def test_a_model_without_yunet_outputs_is_refused():
    with pytest.raises(ValueError, match="not a YuNet model"):
        YuNetRunner("other.onnx", session=_SessionWithoutYuNetOutputs())


def test_yunet_runs_without_torch(sample_images):
    script = (
        "import sys, cv2\n"
        "from featherface.detection import Detector\n"
        f"faces = Detector.load({str(YUNET)!r}).detect(cv2.imread({str(sample_images / 'astronaut.jpg')!r}))\n"
        "assert len(faces) == 1, len(faces)\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)

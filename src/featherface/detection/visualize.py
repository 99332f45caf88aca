"""Drawing detections on images, because people check detectors by looking."""

from __future__ import annotations

import cv2
import numpy as np

from featherface.detection.postprocess import Detections

# Left eye, right eye, nose, left mouth corner, right mouth corner (BGR).
LANDMARK_COLOURS = ((0, 0, 255), (0, 255, 255), (255, 0, 255), (0, 255, 0), (255, 0, 0))
BOX_COLOUR = (0, 200, 0)


def draw_detections(image: np.ndarray, detections: Detections) -> np.ndarray:
    """A copy of ``image`` (BGR) with boxes, scores and the five landmarks drawn."""
    canvas = image.copy()
    thickness = max(1, round(max(image.shape[:2]) / 500))
    for box, score, points in zip(detections.boxes, detections.scores, detections.landmarks, strict=True):
        x1, y1, x2, y2 = (round(float(v)) for v in box)
        cv2.rectangle(canvas, (x1, y1), (x2, y2), BOX_COLOUR, thickness)
        cv2.putText(
            canvas,
            f"{score:.2f}",
            (x1, max(0, y1 - 4)),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.4 * thickness,
            BOX_COLOUR,
            thickness,
        )
        for (x, y), colour in zip(points, LANDMARK_COLOURS, strict=True):
            cv2.circle(canvas, (round(float(x)), round(float(y))), thickness + 1, colour, -1)
    return canvas

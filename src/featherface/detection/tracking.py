"""A light face tracker for video: SORT (Bewley et al., "Simple Online and Realtime Tracking", ICIP 2016) in numpy.

Each track is a constant-velocity Kalman filter over ``(cx, cy, s, r)`` (box centre, area, aspect ratio) with the
velocities of the first three. Every frame the tracks predict their box, the frame's faces are assigned to them by
the Hungarian method on IoU (pairs below ``iou_threshold`` rejected; :func:`min_cost_assignment`, in numpy), matched
tracks take the face as a measurement, and unmatched faces start new tracks. A track missed for more than
``max_age`` frames ends.

Unlike SORT, every face gets an id in its first frame (no ``min_hits`` wait): detection output keeps every face.
Boxes come back as the filter's estimate (smoothed) unless ``smooth=False``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from featherface.config_schema import Config, rule
from featherface.detection.boxes import box_iou

# The Kalman filter's state (cx, cy, s, r, vcx, vcy, vs): one variance per component.
StateVector = tuple[float, float, float, float, float, float, float]


@dataclass(frozen=True)
class TrackerConfig(Config):
    """SORT's settings (its ``sort.py``), but ``max_age`` 5 (faces flicker more than pedestrians)."""

    # least IoU between a track's prediction and a face to match them
    iou_threshold: float = field(default=0.3, metadata=rule(ge=0, le=1))
    max_age: int = field(default=5, metadata=rule(ge=0))  # frames a track survives without a face
    smooth: bool = True  # report the filter's box (else the face's own box)
    # R: cx, cy, s, r (> 0: the innovation covariance stays invertible)
    measurement_noise: tuple[float, float, float, float] = field(default=(1.0, 1.0, 10.0, 10.0), metadata=rule(gt=0))
    # Q: state and velocities (0: that component does not drift)
    process_noise: StateVector = field(default=(1.0, 1.0, 1.0, 1.0, 1e-2, 1e-2, 1e-4), metadata=rule(ge=0))
    # P0: velocities unknown
    initial_variance: StateVector = field(default=(10.0, 10.0, 10.0, 10.0, 1e4, 1e4, 1e4), metadata=rule(ge=0))


def box_to_state(box: np.ndarray) -> np.ndarray:
    """xyxy ``(4,)`` -> ``(cx, cy, area, w / h)``."""
    w, h = box[2] - box[0], box[3] - box[1]
    return np.array([box[0] + w / 2, box[1] + h / 2, w * h, w / max(h, 1e-6)])


def state_to_box(state: np.ndarray) -> np.ndarray:
    """``(cx, cy, area, w / h, ...)`` -> xyxy ``(4,)``."""
    area, ratio = max(state[2], 0.0), max(state[3], 1e-6)
    w = np.sqrt(area * ratio)
    h = area / w if w > 0 else 0.0
    return np.array([state[0] - w / 2, state[1] - h / 2, state[0] + w / 2, state[1] + h / 2])


class KalmanBox:
    """One track's constant-velocity Kalman filter over ``x = (cx, cy, s, r, vcx, vcy, vs)``."""

    transition = np.eye(7) + np.eye(7, k=4)  # position += velocity each frame (r has none)
    observation = np.eye(4, 7)

    def __init__(self, box: np.ndarray, config: TrackerConfig) -> None:
        self.x = np.concatenate([box_to_state(box), np.zeros(3)])
        self.p = np.diag(config.initial_variance).astype(np.float64)
        self.q = np.diag(config.process_noise).astype(np.float64)
        self.r = np.diag(config.measurement_noise).astype(np.float64)

    def predict(self) -> np.ndarray:
        if self.x[2] + self.x[6] <= 0:  # the area would turn negative: stop shrinking (as SORT does)
            self.x[6] = 0.0
        self.x = self.transition @ self.x
        self.p = self.transition @ self.p @ self.transition.T + self.q
        return state_to_box(self.x)

    def update(self, box: np.ndarray) -> np.ndarray:
        h = self.observation
        residual = box_to_state(box) - h @ self.x
        s = h @ self.p @ h.T + self.r
        gain = self.p @ h.T @ np.linalg.inv(s)
        self.x = self.x + gain @ residual
        self.p = (np.eye(7) - gain @ h) @ self.p
        return state_to_box(self.x)


@dataclass
class Track:
    id: int
    filter: KalmanBox
    missed: int = 0  # frames since the last face


class FaceTracker:
    """SORT over a video's frames: call :meth:`update` once per frame, in order.

    >>> tracker = FaceTracker()
    >>> ids, boxes = tracker.update(detections.boxes)  # (K,) ids, (K, 4) boxes (smoothed), in the faces' order
    """

    def __init__(self, config: TrackerConfig | None = None) -> None:
        self.config = config or TrackerConfig()
        self.tracks: list[Track] = []
        self.next_id = 0

    def update(self, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Faces of the next frame ``boxes (K, 4)`` xyxy -> their track ids ``(K,)`` int64 and boxes ``(K, 4)``
        (the filter's estimate when ``smooth``, else ``boxes``)."""
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        predicted = np.array([t.filter.predict() for t in self.tracks]).reshape(-1, 4)
        matches = self._associate(predicted, boxes)
        ids = np.empty(len(boxes), dtype=np.int64)
        out = boxes.copy()
        matched_tracks = set()
        for track_index, face in matches:
            track = self.tracks[track_index]
            estimate = track.filter.update(boxes[face])
            track.missed = 0
            ids[face] = track.id
            if self.config.smooth:
                out[face] = estimate
            matched_tracks.add(track_index)
        for index, track in enumerate(self.tracks):
            if index not in matched_tracks:
                track.missed += 1
        matched_faces = {face for _, face in matches}
        for face in range(len(boxes)):
            if face not in matched_faces:
                self.tracks.append(Track(self.next_id, KalmanBox(boxes[face], self.config)))
                ids[face] = self.next_id
                self.next_id += 1
        self.tracks = [t for t in self.tracks if t.missed <= self.config.max_age]
        return ids, out

    def missing(self) -> tuple[np.ndarray, np.ndarray]:
        """Tracks not matched in the last frame but still alive: ids ``(M,)`` and their predicted boxes ``(M, 4)``
        (where a face the detector just missed probably is)."""
        lost = [t for t in self.tracks if t.missed > 0]
        boxes = np.array([state_to_box(t.filter.x) for t in lost]).reshape(-1, 4)
        return np.array([t.id for t in lost], dtype=np.int64), boxes

    def _associate(self, predicted: np.ndarray, boxes: np.ndarray) -> list[tuple[int, int]]:
        """``(track index, face index)`` pairs: the assignment of maximum total IoU, pairs under the threshold
        dropped."""
        if not len(predicted) or not len(boxes):
            return []
        iou = box_iou(predicted.astype(np.float64), boxes.astype(np.float64))
        rows, cols = min_cost_assignment(-iou)
        return [(int(r), int(c)) for r, c in zip(rows, cols, strict=True) if iou[r, c] >= self.config.iou_threshold]


def min_cost_assignment(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The assignment of least total cost in a finite ``cost (R, C)`` matrix: ``(rows, cols)``, ``min(R, C)`` pairs,
    rows ascending; the answer of ``scipy.optimize.linear_sum_assignment``, ties included.

    Shortest augmenting paths (Crouse, "On implementing 2D rectangular assignment algorithms", IEEE TAES 52(4),
    2016, pp. 1685-1686: the algorithm scipy implements), with its choices among equal costs, so the tracker keeps
    scipy's ids without needing scipy (the inference install has none). One augmenting path per row of the shorter
    side, each vectorised over the columns.
    """
    cost = np.asarray(cost, dtype=np.float64)
    if cost.ndim != 2:
        raise ValueError(f"expected a cost matrix (R, C), got shape {cost.shape}")
    if not np.isfinite(cost).all():
        raise ValueError("cost matrix has non-finite entries")
    transposed = cost.shape[1] < cost.shape[0]
    if transposed:  # rows are the shorter side: every row is assigned
        cost = cost.T
    rows, cols = cost.shape
    u, v = np.zeros(rows), np.zeros(cols)  # dual variables
    col_of_row = np.full(rows, -1, dtype=np.int64)
    row_of_col = np.full(cols, -1, dtype=np.int64)
    for start in range(rows):
        path = np.full(cols, -1, dtype=np.int64)
        shortest = np.full(cols, np.inf)  # shortest alternating-path cost to each column
        rows_seen = np.zeros(rows, dtype=bool)
        cols_seen = np.zeros(cols, dtype=bool)
        remaining = np.arange(cols)[::-1].copy()  # unscanned columns, in the order Crouse's pseudocode keeps them
        row, sink, lowest = start, -1, 0.0
        while sink < 0:
            rows_seen[row] = True
            reduced = lowest + cost[row, remaining] - u[row] - v[remaining]
            better = reduced < shortest[remaining]
            path[remaining[better]] = row
            shortest[remaining] = np.minimum(shortest[remaining], reduced)
            candidates = shortest[remaining]
            lowest = candidates.min()
            # among equally short paths, the last column still unassigned (it ends the path now), else the first
            ties = np.flatnonzero(candidates == lowest)
            free = ties[row_of_col[remaining[ties]] < 0]
            index = free[-1] if len(free) else ties[0]
            col = remaining[index]
            cols_seen[col] = True
            if row_of_col[col] < 0:
                sink = col
            else:
                row = row_of_col[col]
            remaining[index] = remaining[-1]
            remaining = remaining[:-1]
        u[start] += lowest
        others = rows_seen.copy()
        others[start] = False
        u[others] += lowest - shortest[col_of_row[others]]
        v[cols_seen] -= lowest - shortest[cols_seen]
        col = sink
        while True:  # flip the alternating path that ends at ``sink``
            row = path[col]
            row_of_col[col] = row
            col_of_row[row], col = col, col_of_row[row]
            if row == start:
                break
    if transposed:
        order = np.argsort(col_of_row, kind="stable")
        return col_of_row[order], order
    return np.arange(rows), col_of_row


def follow_boxes(landmarks: np.ndarray, old: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Move ``landmarks (K, 5, 2)`` with their boxes from ``old (K, 4)`` to ``new (K, 4)`` (xyxy): each point keeps
    its place relative to the box."""
    old_size = np.maximum(old[:, 2:] - old[:, :2], 1e-6)
    scale = (new[:, 2:] - new[:, :2]) / old_size
    return (landmarks - old[:, None, :2]) * scale[:, None, :] + new[:, None, :2]

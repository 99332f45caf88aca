"""Face alignment: a 5-point similarity transform onto the ArcFace template, for crops that recognisers expect.

No torch and no detector here: landmarks in (any detector's), crops out. The transform is the least-squares
similarity (rotation, uniform scale, translation; no reflection) of Umeyama (IEEE TPAMI 13(4), 1991), the one
insightface's ``norm_crop`` estimates, written out so it can be checked by eye.

Landmark order (SPEC section 1): left eye, right eye, nose, left mouth corner, right mouth corner, in image pixels.
"""

from __future__ import annotations

import cv2
import numpy as np

# insightface's arcface_dst: where the five points of a 112x112 recognition crop lie (pixels).
ARCFACE_TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float64,
)
ARCFACE_SIZE = 112  # the template's crop side (pixels)
# Five points spread across their main line by less than this fraction of their spread along it are taken as
# collinear: no face's are (the template: 0.80; the 25 faces the reference model finds in the sample photos: 0.39
# to 0.97), so such points are a detector's failure, and a crop fitted to them is not a face crop.
COLLINEAR_RATIO = 0.01


class DegenerateLandmarks(ValueError):
    """A face's landmarks from which no alignment can be made (:func:`landmarks_defect` says why)."""


def landmarks_defect(landmarks: np.ndarray) -> str | None:
    """Why ``landmarks (5, 2)`` cannot be aligned, or None: ``"landmarks not finite"``, ``"landmarks coincide"``
    (every point in one place: no scale, no rotation) or ``"landmarks collinear"`` (:data:`COLLINEAR_RATIO`)."""
    points = np.asarray(landmarks, dtype=np.float64).reshape(-1, 2)
    if not np.isfinite(points).all():
        return "landmarks not finite"
    # the singular values of the centred points: their spread along their main line, and across it
    along, across = np.linalg.svd(points - points.mean(axis=0), compute_uv=False)
    if along == 0:
        return "landmarks coincide"
    if across <= COLLINEAR_RATIO * along:
        return "landmarks collinear"
    return None


def umeyama_similarity(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The similarity ``M (2, 3)`` minimising ``sum |M [p, 1] - q|²`` over point pairs ``source (N, 2)`` ->
    ``target (N, 2)`` (N >= 2, not all source points equal). Rotation only, never a reflection.

    Umeyama's closed form: with centred points and ``cov = target_c.T @ source_c / N = U S V^T``,
    ``R = U D V^T`` (``D = diag(1, sign(det U det V))``), ``scale = trace(S D) / var(source)``,
    ``t = mean(target) - scale R mean(source)``.
    """
    source = np.asarray(source, dtype=np.float64).reshape(-1, 2)
    target = np.asarray(target, dtype=np.float64).reshape(-1, 2)
    if len(source) != len(target) or len(source) < 2:
        raise ValueError(f"need >= 2 matching points, got {len(source)} and {len(target)}")
    source_mean, target_mean = source.mean(axis=0), target.mean(axis=0)
    source_c, target_c = source - source_mean, target - target_mean
    variance = (source_c**2).sum() / len(source)
    if variance <= 0 or not np.isfinite(variance):
        raise ValueError("the source points must not all coincide (and must be finite)")
    u, s, vt = np.linalg.svd(target_c.T @ source_c / len(source))
    d = np.array([1.0, np.sign(np.linalg.det(u) * np.linalg.det(vt)) or 1.0])
    rotation = u @ np.diag(d) @ vt
    scale = (s * d).sum() / variance
    translation = target_mean - scale * rotation @ source_mean
    return np.hstack([scale * rotation, translation[:, None]])


def template(size: int | tuple[int, int] = ARCFACE_SIZE, margin: float = 0.0) -> np.ndarray:
    """The five template points ``(5, 2)`` for a crop of ``size`` (side, or ``(width, height)``) pixels.

    ``margin``: context added around the standard 112x112 frame on every side, as a fraction of its side
    (0 = the ArcFace crop; 0.25 shows the face at 1/1.5 of the side with hair and chin around it). The frame with
    its margin is scaled uniformly to fit the crop and centred in it (a non-square crop gets the extra on its
    longer axis).
    """
    width, height = (size, size) if isinstance(size, int) else size
    if width < 1 or height < 1:
        raise ValueError(f"crop size must be positive, got {size}")
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    frame = ARCFACE_SIZE * (1 + 2 * margin)  # the standard frame with its margin, in template pixels
    scale = min(width, height) / frame
    offset = np.array([width, height]) / 2 - scale * ARCFACE_SIZE / 2  # centre the standard frame
    return ARCFACE_TEMPLATE * scale + offset


def alignment_matrix(
    landmarks: np.ndarray, size: int | tuple[int, int] = ARCFACE_SIZE, margin: float = 0.0
) -> np.ndarray:
    """The similarity ``(2, 3)`` taking one face's ``landmarks (5, 2)`` (image pixels) to :func:`template`.
    Raises :class:`DegenerateLandmarks` for points that fix no alignment (:func:`landmarks_defect`)."""
    defect = landmarks_defect(landmarks)
    if defect is not None:
        raise DegenerateLandmarks(defect)
    return umeyama_similarity(landmarks, template(size, margin))


def align_face(
    image: np.ndarray,
    landmarks: np.ndarray,
    size: int | tuple[int, int] = ARCFACE_SIZE,
    margin: float = 0.0,
    border: int = cv2.BORDER_CONSTANT,
) -> np.ndarray:
    """The crop ``(height, width, C)`` of one face, its five ``landmarks (5, 2)`` on the ArcFace template.

    Bilinear sampling; pixels outside ``image`` take ``border`` (black by default, as insightface's crops).
    Raises :class:`DegenerateLandmarks` for landmarks that fix no alignment.
    """
    width, height = (size, size) if isinstance(size, int) else size
    matrix = alignment_matrix(landmarks, size, margin)
    return cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=border)


def align_faces(
    image: np.ndarray, landmarks: np.ndarray, size: int | tuple[int, int] = ARCFACE_SIZE, margin: float = 0.0
) -> list[np.ndarray]:
    """:func:`align_face` for every face of ``landmarks (K, 5, 2)``, in that order (:class:`DegenerateLandmarks`
    for the first face that cannot be aligned)."""
    return [align_face(image, points, size, margin) for points in np.asarray(landmarks).reshape(-1, 5, 2)]

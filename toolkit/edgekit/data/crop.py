"""Face crops at the model's input size, from a landmark bounding box or a given box."""

from __future__ import annotations

import cv2
import numpy as np

# Side of the square crop relative to the landmark box's longer side. SynthFaces frames faces so the landmark
# box spans 0.58-0.84 of the crop (mean 0.71), and 1 / 0.71 ~= 1.4 puts real crops in the middle of that range.
LANDMARK_CROP_SCALE = 1.4


def face_px(landmarks: np.ndarray) -> float:
    """A face's size in the pixels it was drawn or photographed at: its landmark box's longer side."""
    return float(np.max(landmarks.max(0) - landmarks.min(0)))


def square_box(landmarks: np.ndarray, scale: float = LANDMARK_CROP_SCALE) -> tuple[float, float, float]:
    """(centre x, centre y, side) of the square crop around a landmark set."""
    lo, hi = landmarks.min(0), landmarks.max(0)
    c = (lo + hi) / 2.0
    return float(c[0]), float(c[1]), float(max(hi - lo) * scale)


def crop(image: np.ndarray, center_x: float, center_y: float, side: float, size: int,
         landmarks: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Cut a `side`-pixel square around the centre, resize to `size`, and map landmarks to [0, 1] of the crop.

    Coordinates are continuous (pixel i spans [i, i+1)); outside the image the crop is padded by replication.
    """
    x0, y0 = center_x - side / 2.0, center_y - side / 2.0
    # Shrinking a lot with bilinear warping aliases, so cut at full resolution and resize with INTER_AREA.
    out = int(round(side)) if side > 2 * size else size
    s = out / side
    # cv2 puts pixel i's centre at i; convert from continuous coordinates on both sides of the map.
    m = np.array([[s, 0.0, (0.5 - x0) * s - 0.5], [0.0, s, (0.5 - y0) * s - 0.5]], np.float64)
    patch = cv2.warpAffine(image, m, (out, out), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    if out != size:
        patch = cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA)
    lm = None
    if landmarks is not None:
        lm = ((landmarks - np.array([x0, y0])) / side).astype(np.float32)
    return patch, lm


def crop_from_landmarks(image: np.ndarray, landmarks: np.ndarray, size: int,
                        scale: float = LANDMARK_CROP_SCALE):
    return crop(image, *square_box(landmarks, scale), size, landmarks)


def crop_from_box(image: np.ndarray, box: tuple[float, float, float, float], size: int,
                  landmarks: np.ndarray | None = None, scale: float = 1.0):
    """Crop the square around box (x0, y0, x1, y1), its longer side times `scale`."""
    x0, y0, x1, y1 = box
    return crop(image, (x0 + x1) / 2.0, (y0 + y1) / 2.0, max(x1 - x0, y1 - y0) * scale, size, landmarks)


def center_square(image: np.ndarray, size: int) -> np.ndarray:
    """An unlabeled image taken as a face crop: its central square, resized."""
    h, w = image.shape[:2]
    return crop(image, w / 2.0, h / 2.0, float(min(h, w)), size)[0]

"""Drawing primitives the SynthFaces renderers share: sub-pixel polygons, colours, blends, skin, JPEG.

One module below every `synth*` renderer, so that none of them imports another's helpers (no import cycles).
"""

from __future__ import annotations

import cv2
import numpy as np

_SHIFT = 4  # sub-pixel bits for cv2 drawing
_SCALE = float(1 << _SHIFT)


def _pts(p: np.ndarray) -> np.ndarray:
    # Continuous coordinates -> cv2 fixed-point pixel centres (cv2 puts pixel i's centre at i, we at i + 0.5).
    return np.round((p - 0.5) * _SCALE).astype(np.int32)


def _fill(img: np.ndarray, poly: np.ndarray, color) -> None:
    cv2.fillPoly(img, [_pts(poly)], color, lineType=cv2.LINE_AA, shift=_SHIFT)


def _line(img: np.ndarray, poly: np.ndarray, color, thickness: float, closed: bool = False) -> None:
    cv2.polylines(img, [_pts(poly)], closed, color, max(1, int(round(thickness))), cv2.LINE_AA, _SHIFT)


def _color(rng: np.random.Generator, lo: int = 0, hi: int = 256) -> tuple[int, int, int]:
    return tuple(rng.integers(lo, hi, 3).tolist())


def _gradient(corners: np.ndarray, size: int) -> np.ndarray:
    """A smooth (size, size, 3) uint8 image interpolated from a (2, 2, 3) grid of corner colours."""
    return cv2.resize(np.clip(corners, 0, 255).astype(np.uint8), (size, size), interpolation=cv2.INTER_LINEAR)


def _blend(img: np.ndarray, layer: np.ndarray, mask: np.ndarray, box: tuple[int, int, int, int]) -> None:
    """Alpha-composite `layer` over `img` in place inside `box`, with `mask` (uint8 coverage) as alpha."""
    x0, y0, x1, y1 = box
    if x1 <= x0 or y1 <= y0:
        return
    a = mask[y0:y1, x0:x1].astype(np.float32) * (1.0 / 255.0)
    img[y0:y1, x0:x1] = cv2.blendLinear(layer[y0:y1, x0:x1], img[y0:y1, x0:x1], a, 1.0 - a)


def _box(poly: np.ndarray, size: int, pad: float = 2.0) -> tuple[int, int, int, int]:
    lo = np.clip(np.floor(poly.min(0) - pad), 0, size).astype(int)
    hi = np.clip(np.ceil(poly.max(0) + pad), 0, size).astype(int)
    return int(lo[0]), int(lo[1]), int(hi[0]), int(hi[1])


# Skin tones from light to deep (RGB); a face takes a point between two neighbours plus a little tint.
_SKIN_TONES = np.array(
    [[255, 224, 196], [241, 194, 160], [224, 172, 128], [198, 134, 92], [160, 102, 66], [120, 74, 46],
     [86, 52, 34]],
    np.float32,
)  # fmt: skip


def _skin(rng: np.random.Generator) -> np.ndarray:
    t = rng.uniform(0, len(_SKIN_TONES) - 1)
    i = int(t)
    j = min(i + 1, len(_SKIN_TONES) - 1)
    tone = _SKIN_TONES[i] + (t - i) * (_SKIN_TONES[j] - _SKIN_TONES[i])
    return np.clip(tone + rng.normal(0, 8, 3), 0, 255).astype(np.float32)


def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    """The image after a JPEG round trip at `quality`: block artefacts as a camera or an upload leaves them."""
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if ok else img

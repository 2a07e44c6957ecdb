"""SynthFaces: a procedural face renderer with exact 68-point labels and part states.

Every image is a pure function of (seed, index): `render(seed, index)` gives the same pixels on every machine
with the same OpenCV build, in any order, so data needs no storage and a split is just a seed.

Drawn with OpenCV primitives (anti-aliased, sub-pixel polygons) because they are fast enough that rendering
never limits training: see benchmarks/synthface_rate.py.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..landmarks import states_from_points
from .crop import face_px
from .face_geometry import FaceShape, face_points, pose
from .sample import Sample
from .synth_draw import _SCALE, _SHIFT, _blend, _box, _color, _fill, _gradient, _line, _pts, _skin, jpeg

# Tiny images: OpenCV's thread pool costs more than it saves and would fight torch for the cores.
cv2.setNumThreads(1)

SPLIT_SEEDS = {"train": 1, "val": 2, "test": 3}
TEST_SPLIT_SIZE = 1000  # the fixed test split (seed SPLIT_SEEDS['test']) that model cards report on
# 1: flat 2-D drawings; 2: shaded, textured, photo backgrounds, camera effects; 3: v2 on a face re-proportioned
# to the 300-W convention's mean face (synth_proportions.py)
VERSIONS = (1, 2, 3)
DEFAULT_VERSION = 1
OPEN_THRESHOLD = 0.4  # openness >= this is labelled "open"; sampling leaves a margin around it



def _openness(rng: np.random.Generator) -> float:
    # Bimodal with a gap around the threshold, so labels are unambiguous.
    return float(rng.uniform(0.55, 1.05) if rng.random() < 0.6 else rng.uniform(0.0, 0.25))


def _sample_shape(rng: np.random.Generator) -> FaceShape:
    both = _openness(rng)
    wink = rng.random() < 0.15  # sometimes one eye differs from the other
    return FaceShape(
        jaw_width=rng.uniform(0.85, 1.12),
        face_length=rng.uniform(0.88, 1.12),
        chin_square=rng.uniform(0.5, 1.0),
        eye_spacing=rng.uniform(0.9, 1.1),
        eye_size=rng.uniform(0.8, 1.2),
        brow_height=rng.uniform(-0.06, 0.06),
        brow_arch=rng.uniform(0.0, 0.14),
        nose_length=rng.uniform(0.85, 1.15),
        nose_width=rng.uniform(0.8, 1.3),
        mouth_width=rng.uniform(0.8, 1.25),
        lip_thickness=rng.uniform(0.6, 1.4),
        eye_open_right=_openness(rng) if wink else both,
        eye_open_left=both,
        mouth_open=_openness(rng),
    )


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    img = _gradient(rng.uniform(0, 255, (2, 2, 3)), size)
    for _ in range(int(rng.integers(3, 10))):  # clutter
        c = _color(rng)
        kind = rng.integers(3)
        p = rng.uniform(-0.1, 1.1, (2, 2)) * size
        if kind == 0:
            cv2.rectangle(img, tuple(int(v) for v in p[0]), tuple(int(v) for v in p[1]), c, -1)
        elif kind == 1:
            cv2.circle(img, tuple(int(v) for v in p[0]), int(rng.uniform(0.03, 0.3) * size), c, -1, cv2.LINE_AA)
        else:
            _line(img, p, c, rng.uniform(1, 0.04 * size))
    return img


def _place(rng: np.random.Generator, size: int, lm2: np.ndarray, extra: np.ndarray, draws: dict | None = None):
    """Roll, scale and shift face-unit points into the crop, framed as a jittered landmark-box crop."""
    roll = np.deg2rad(rng.uniform(-35.0, 35.0))
    if draws is not None:
        draws["roll"] = float(np.rad2deg(roll))
    c, s = np.cos(roll), np.sin(roll)
    rot = np.array([[c, -s], [s, c]])
    lm = lm2 @ rot.T
    ex = extra @ rot.T
    lo, hi = lm.min(0), lm.max(0)
    scale = size * rng.uniform(0.58, 0.84) / max(hi - lo)
    center = (lo + hi) / 2.0
    target = size / 2.0 + rng.uniform(-0.08, 0.08, 2) * size
    return (lm - center) * scale + target, (ex - center) * scale + target, scale


def _draw_face(rng: np.random.Generator, img: np.ndarray, lm: np.ndarray, fh: np.ndarray, scale: float,
               shape: FaceShape) -> None:
    size = img.shape[0]
    skin = _skin(rng)
    hair = _color(rng, 0, 90)
    outline = np.concatenate([lm[0:17], fh[1:-1]])

    if rng.random() < 0.7:  # hair mass behind the head
        _fill(img, np.concatenate([fh, fh[::-1] + (fh[::-1] - fh.mean(0)) * 0.25]), hair)
    neck = np.array([lm[5], lm[11], lm[11] + (lm[11] - lm[27]) * 1.2, lm[5] + (lm[5] - lm[27]) * 1.2])
    _fill(img, neck, tuple(float(v) for v in skin * 0.8))

    # Skin with a directional lighting gradient.
    mask = np.zeros((size, size), np.uint8)
    _fill(mask, outline, 255)
    ang, strength = rng.uniform(0, 2 * np.pi), rng.uniform(0.1, 0.6)
    corner = np.array([[-0.5, -0.5], [0.5, -0.5], [-0.5, 0.5], [0.5, 0.5]]) @ [np.cos(ang), np.sin(ang)]
    light = (1.0 + strength * corner).reshape(2, 2, 1)
    _blend(img, _gradient(skin * light, size), mask, _box(outline, size))

    if rng.random() < 0.5:  # fringe
        k = rng.uniform(0.2, 0.5)
        _fill(img, np.concatenate([fh, fh[::-1] * (1 - k) + lm[27] * k]), hair)

    unit = scale * 0.01  # thicknesses relative to the face size
    _line(img, lm[17:22], hair, 3.5 * unit)
    _line(img, lm[22:27], hair, 3.5 * unit)

    dark = tuple(float(v) for v in skin * 0.55)
    _line(img, lm[27:31], tuple(float(v) for v in skin * 0.85), 1.5 * unit)
    _line(img, lm[31:36], dark, 1.4 * unit)
    for i in (32, 34):
        cv2.circle(img, tuple(int(v) for v in _pts(lm[i])), int(1.2 * unit * _SCALE), (40, 25, 25), -1,
                   cv2.LINE_AA, _SHIFT)

    iris = _color(rng, 20, 140)
    for eye, openness in ((lm[36:42], shape.eye_open_right), (lm[42:48], shape.eye_open_left)):
        if openness > 0.3:
            _fill(img, eye, (235, 235, 228))
            emask = np.zeros((size, size), np.uint8)
            _fill(emask, eye, 255)
            box = _box(eye, size)
            layer = img.copy()
            c = eye.mean(0) + rng.uniform(-0.2, 0.2, 2) * (eye[3] - eye[0])
            r = 0.38 * np.linalg.norm(eye[3] - eye[0])
            cv2.circle(layer, tuple(int(v) for v in _pts(c)), int(r * _SCALE), iris, -1, cv2.LINE_AA, _SHIFT)
            cv2.circle(layer, tuple(int(v) for v in _pts(c)), int(r * 0.45 * _SCALE), (10, 10, 10), -1,
                       cv2.LINE_AA, _SHIFT)
            _blend(img, layer, emask, box)
            _line(img, eye[[0, 1, 2, 3]], (30, 20, 20), 1.3 * unit)
            _line(img, eye[[3, 4, 5, 0]], dark, 0.8 * unit)
        else:
            _line(img, eye[[0, 1, 2, 3]], (30, 20, 20), 1.5 * unit)

    lip = tuple(float(v) for v in np.clip(skin * np.array([1.0, 0.6, 0.6]) + rng.uniform(-30, 30), 0, 255))
    _fill(img, lm[48:60], lip)
    if shape.mouth_open > 0.3:
        _fill(img, lm[60:68], (45, 15, 20))
        teeth = np.concatenate([lm[60:65], lm[[63, 62, 61]] * 0.6 + lm[[65, 66, 67]] * 0.4])
        _fill(img, teeth, (225, 220, 210))
    else:
        _line(img, lm[60:65], tuple(float(v) for v in skin * 0.4), 1.0 * unit)


def _occlude(rng: np.random.Generator, img: np.ndarray, lm: np.ndarray, scale: float) -> None:
    c = lm[rng.integers(68)] + rng.normal(0, 0.1 * scale, 2)
    r = scale * rng.uniform(0.15, 0.45)
    color = _color(rng)
    if rng.random() < 0.5:
        ang = rng.uniform(0, 180)
        cv2.ellipse(img, tuple(int(v) for v in _pts(c)), (int(r * _SCALE), int(r * rng.uniform(0.3, 1) * _SCALE)),
                    ang, 0, 360, color, -1, cv2.LINE_AA, _SHIFT)
    else:
        poly = c + rng.uniform(-r, r, (int(rng.integers(3, 7)), 2))
        _fill(img, poly, color)


def _degrade(rng: np.random.Generator, img: np.ndarray, draws: dict) -> np.ndarray:
    """Contrast, brightness, blur, noise and JPEG; what was drawn goes to `draws` (the same draws, in order)."""
    alpha, beta = rng.uniform(0.7, 1.3), rng.uniform(-30, 30)
    img = cv2.convertScaleAbs(img, alpha=alpha, beta=beta)
    draws.update(light=(127.5 * alpha + beta) / 127.5, blur=0.0, noise=0.0)
    if rng.random() < 0.35:
        draws["blur"] = rng.uniform(0.4, 1.6)
        img = cv2.GaussianBlur(img, (0, 0), draws["blur"])
    if rng.random() < 0.5:
        noise = rng.standard_normal(img.shape, dtype=np.float32)
        draws["noise"] = rng.uniform(2, 10)
        img = cv2.add(img, noise * draws["noise"], dtype=cv2.CV_8U)
    if rng.random() < 0.35:
        img = jpeg(img, int(rng.integers(15, 85)))
    return img


def render(seed: int, index: int, size: int = 112, version: int = DEFAULT_VERSION) -> Sample:
    """Render face `index` of the stream `seed` as a `size`x`size` crop, with renderer `version` (1 flat, 2
    shaded: see synth_shaded.py, 3 shaded on a real head's geometry: see synth_proportions.py)."""
    if version in (2, 3):
        return _render_shaded(seed, index, size, version)
    if version != 1:
        raise ValueError(f"unknown SynthFaces version {version}; expected one of {VERSIONS}")
    rng = np.random.default_rng([seed, index])
    shape = _sample_shape(rng)
    lm3, fh3 = face_points(shape)
    yaw, pitch = np.deg2rad(rng.uniform(-32.0, 32.0)), np.deg2rad(rng.uniform(-12.0, 12.0))
    draws = {"yaw": float(np.rad2deg(yaw)), "pitch": float(np.rad2deg(pitch)), "glasses": 0.0}
    lm, fh, scale = _place(rng, size, pose(lm3, yaw, pitch), pose(fh3, yaw, pitch), draws)

    img = _background(rng, size)
    _draw_face(rng, img, lm, fh, scale, shape)
    draws["occluded"] = float(rng.random() < 0.35)
    if draws["occluded"]:
        _occlude(rng, img, lm, scale)
    img = _degrade(rng, img, draws)

    return Sample(np.ascontiguousarray(img), (lm / size).astype(np.float32), _states(lm), f"synth:{seed}:{index}",
                  {**draws, "face_px": face_px(lm)})



def _states(lm: np.ndarray) -> np.ndarray:
    """Labels by the points, as for every labeled set (landmarks.states_from_points): the drawn openness leaves a
    gap around the thresholds on v1 (every label the same as openness >= OPEN_THRESHOLD); on v3's proportions ~1%
    of the barely open eyes drawn as "closed" read open by the definition."""
    return states_from_points(lm[None])[0]


def shaded_face(rng: np.random.Generator, version: int) -> tuple[FaceShape, np.ndarray, np.ndarray]:
    """(shape, 3-D landmarks, 3-D forehead outline) of a v2 or v3 face, before pose: its identity and expression."""
    from . import synth_proportions as v3
    from . import synth_shaded as v2

    shape = _sample_shape(rng)
    if version == 3:
        shape = v3.reshaped(shape)
    lm3, fh3 = face_points(shape)
    lm3 = v2.smile_and_brows(rng, v2.lower_face(rng, lm3))
    return (shape, *v3.proportioned(lm3, fh3)) if version == 3 else (shape, lm3, fh3)


def _render_shaded(seed: int, index: int, size: int, version: int) -> Sample:
    from . import synth_proportions as v3
    from . import synth_shaded as v2
    from .synth_backgrounds import background

    rng = np.random.default_rng([seed, index, 2])  # its own stream: v1 faces stay as they were; v3 reuses v2's
    shape, lm3, fh3 = shaded_face(rng, version)
    yaw, pitch = np.deg2rad(rng.uniform(-55.0, 55.0)), np.deg2rad(rng.uniform(-18.0, 18.0))
    draws = {"yaw": float(np.rad2deg(yaw)), "pitch": float(np.rad2deg(pitch))}
    depth = rng.uniform(0.7, 0.9)
    lm2 = pose(lm3, yaw, pitch)
    lm2[:17] = v2.evenly_spaced(v2.silhouette_pose(lm3[:17], yaw, pitch, depth, outline=True))
    lm, fh, scale = _place(rng, size, lm2, v2.silhouette_pose(fh3, yaw, pitch, depth, outline=True), draws)
    img = background(rng, size)
    v2.draw_face(rng, img, lm, fh, scale, shape, v3.V3_FRAME if version == 3 else v2.FaceFrame())
    draws["glasses"] = float(rng.random() < 0.2)
    if draws["glasses"]:
        v2.glasses(rng, img, lm, scale * 0.01)
    draws["occluded"] = float(rng.random() < 0.3)
    if draws["occluded"]:
        v2.textured_occluder(rng, img, lm, scale)
    img = v2.camera(rng, img, draws)
    return Sample(np.ascontiguousarray(img), (lm / size).astype(np.float32), _states(lm),
                  f"synth@{version}:{seed}:{index}", {**draws, "face_px": face_px(lm)})


class SynthFaces:
    """A deterministic, indexable set of rendered faces: `len(ds)` images of stream `seed`."""

    def __init__(self, split: str = "train", size: int = 112, length: int = 10_000, offset: int = 0,
                 seed: int | None = None, version: int = DEFAULT_VERSION):
        if seed is None:
            if split not in SPLIT_SEEDS:
                raise ValueError(f"unknown SynthFaces split {split!r}; expected one of {sorted(SPLIT_SEEDS)}")
            seed = SPLIT_SEEDS[split]
        self.seed, self.size, self.length, self.offset = seed, size, length, offset
        self.split, self.version = split, version

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> Sample:
        if not 0 <= i < self.length:
            raise IndexError(i)
        return render(self.seed, self.offset + i, self.size, self.version)

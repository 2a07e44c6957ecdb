"""SynthFaces v2 ("shaded"): the v1 face geometry rendered to look like a photograph, for transfer to real faces.

What v1 lacks and real crops have, each added here at a cost that keeps the rate >= 300 faces/s on one core
(benchmarks/synthface_rate.py):
- shading from a 3-D surface: a height field (a dome over the face outline, a nose ridge and tip, eye sockets,
  cheeks, lips) gives per-pixel normals, lit by a directional light with ambient and specular terms; the face
  outline shows as shading, not a drawn line;
- skin texture (low-frequency blotches, pores), hair and eyebrows as strands;
- glasses and textured occluders; backgrounds cut from the photographs scikit-image ships or procedural clutter
  (synth_backgrounds);
- wider yaw and pitch, smiles and raised brows;
- camera effects: greyscale, colour casts, gamma, defocus, motion blur, noise, JPEG.

Still a pure function of (seed, index) for a given OpenCV and scikit-image install.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from .face_geometry import FaceShape, pose
from .synth_backgrounds import photo_patch
from .synth_draw import _SCALE, _blend, _box, _color, _fill, _line, _pts, _skin, jpeg


def _soft(img: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(img, (0, 0), max(sigma, 0.3))


def height_field(lm: np.ndarray, outline: np.ndarray, size: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """(face mask uint8, height float32 in pixels): a dome over the outline plus the features' relief."""
    mask = np.zeros((size, size), np.uint8)
    _fill(mask, outline, 255)
    dist = cv2.distanceTransform(mask, cv2.DIST_L2, cv2.DIST_MASK_5)  # mask 3 leaves radial ridges
    r = max(float(dist.max()), 1.0)
    t = np.minimum(dist / r, 1.0)
    h = np.sqrt(t * (2.0 - t)) * (0.55 * r)  # a rounded dome: steep at the outline, flat in the middle
    relief = np.zeros((size, size), np.float32)
    u = scale * 0.01
    _line(relief, lm[27:31], 255, 9 * u)  # nose ridge
    cv2.circle(relief, tuple(int(v) for v in _pts(lm[30])), int(9 * u * _SCALE), 255, -1, cv2.LINE_AA, 4)
    _fill(relief, lm[[30, 31, 33, 35]], 200)  # nose tip and wings
    _fill(relief, lm[48:60], 90)  # lips
    for cheek in (lm[[2, 31, 48]].mean(0), lm[[14, 35, 54]].mean(0)):
        cv2.circle(relief, tuple(int(v) for v in _pts(cheek)), int(14 * u * _SCALE), 110, -1, cv2.LINE_AA, 4)
    for eye, brow in ((lm[36:42], lm[17:22]), (lm[42:48], lm[22:27])):  # sockets: negative relief
        c = (eye.mean(0) * 2 + brow.mean(0)) / 3
        axes = (int(0.75 * np.linalg.norm(eye[3] - eye[0]) * _SCALE), int(12 * u * _SCALE))
        ang = float(np.degrees(np.arctan2(*(eye[3] - eye[0])[::-1])))
        cv2.ellipse(relief, tuple(int(v) for v in _pts(c)), axes, ang, 0, 360, -200, -1, cv2.LINE_AA, 4)
    # One blur for dome and features (it is linear): it also smooths the distance transform's ridge along the
    # outline's medial axis, which would light up as a crease.
    h = _soft((h + relief * (0.05 * u)).astype(np.float32), 5 * u)
    return mask, h


def lighting(rng: np.random.Generator, height: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(diffuse+ambient multiplier, specular term), both (size, size) float32, from the height field's normals."""
    gx = cv2.Sobel(height, cv2.CV_32F, 1, 0, ksize=3) * 0.125
    gy = cv2.Sobel(height, cv2.CV_32F, 0, 1, ksize=3) * 0.125
    inv = 1.0 / np.sqrt(gx * gx + gy * gy + 1.0)
    az, el = rng.uniform(0, 2 * np.pi), rng.uniform(np.deg2rad(20), np.deg2rad(80))
    light = np.array([np.cos(az) * np.cos(el), np.sin(az) * np.cos(el), np.sin(el)], np.float32)
    ndotl = np.maximum((-gx * light[0] - gy * light[1] + light[2]) * inv, 0.0)
    ambient = rng.uniform(0.25, 0.6)
    diffuse = ambient + (1.0 - ambient) * ndotl / max(light[2], 0.3) * rng.uniform(0.7, 1.0)
    half = light + np.array([0, 0, 1], np.float32)
    half /= np.linalg.norm(half)
    ndoth = np.maximum((-gx * half[0] - gy * half[1] + half[2]) * inv, 0.0)
    specular = rng.uniform(0.0, 0.35) * ndoth ** rng.uniform(12, 40)
    return diffuse.astype(np.float32), specular.astype(np.float32)


def skin_texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Multiplicative (height, width, 1) texture: blotches and pores."""
    low = cv2.resize(rng.normal(0, 1, (6, 6)).astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC)
    fine = rng.standard_normal((height, width), dtype=np.float32)
    return (1.0 + rng.uniform(0.02, 0.07) * low + rng.uniform(0.0, 0.04) * fine)[..., None]


# Natural hair colours (RGB): black, dark brown, brown, auburn, blond, grey.
_HAIR = np.array([[20, 16, 14], [45, 30, 22], [85, 60, 40], [110, 55, 30], [170, 135, 85], [150, 148, 145]],
                 np.float32)


def hair_layer(rng: np.random.Generator, size: int) -> np.ndarray:
    """A (size, size, 3) uint8 hair colour with strand-like streaks (noise stretched along one direction)."""
    color = _HAIR[int(rng.integers(len(_HAIR)))] * rng.uniform(0.7, 1.3)
    streaks = cv2.resize(rng.standard_normal((size // 6, size), dtype=np.float32), (size, size),
                         interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.5:
        streaks = streaks.T
    return np.clip(color * (1.0 + rng.uniform(0.15, 0.4) * streaks[..., None]), 0, 255).astype(np.uint8)


def silhouette_pose(points: np.ndarray, yaw: float, pitch: float, depth: float, outline: bool) -> np.ndarray:
    """`face_geometry.pose`, except that outline points (jaw, forehead) land on the head's visible silhouette, as
    300-W annotators place them, not where the 3-D curve projects. Each outline point is taken as the widest point
    of the head's cross-section at its height, an ellipse of half-width |x| and half-depth `depth` * |x| centred at
    the point's depth; turned by `yaw`, that section's edge on the point's side sits at
    z sin(yaw) + sign(x) sqrt(x^2 cos^2(yaw) + (depth x)^2 sin^2(yaw)). Frontal faces are unchanged; turned ones
    keep a fuller outline instead of folding the far cheek into the face."""
    posed = pose(points, yaw, pitch)
    if outline:
        x, z = points[..., 0], points[..., 2]
        edge = np.sqrt(x * x * np.cos(yaw) ** 2 + (depth * x) ** 2 * np.sin(yaw) ** 2)
        posed[..., 0] = z * np.sin(yaw) + np.sign(x) * edge
    return posed


def evenly_spaced(points: np.ndarray) -> np.ndarray:
    """The same polyline resampled at equal arc length, end points kept. 300-W annotators spaced the jaw points
    evenly along the face contour; v1 spaces them evenly in the curve's parameter, which bunches them towards
    the chin."""
    seg = np.linalg.norm(np.diff(points, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    at = np.linspace(0.0, s[-1], len(points))
    return np.stack([np.interp(at, s, points[:, 0]), np.interp(at, s, points[:, 1])], 1)


def lower_face(rng: np.random.Generator, lm3: np.ndarray) -> np.ndarray:
    """Lengthen the face below the nose base. v1's chin sits 0.95 outer-eye-corner distances below the eyes; adult
    anthropometry (about 110 mm eyes-to-menton over 90 mm between the outer corners) puts it near 1.2-1.3, which is
    also where 300-W annotations put it. v1 keeps its geometry; v2 stretches by 1.35-1.75 below point 33."""
    lm3 = lm3.copy()
    base = lm3[33, 1]
    k = rng.uniform(1.35, 1.75)
    corners = (lm3[48, 1] + lm3[54, 1]) / 2
    lm3[48:68, 1] += (corners - base) * (k - 1)  # the mouth moves down as a block: longer face, not taller lips
    jaw = lm3[:17, 1] > base
    lm3[:17, 1][jaw] = base + (lm3[:17, 1][jaw] - base) * k
    return lm3


def smile_and_brows(rng: np.random.Generator, lm3: np.ndarray) -> np.ndarray:
    """Expressions on the 3-D points: mouth corners up and out (smile), brows raised."""
    lm3 = lm3.copy()
    smile = rng.uniform(0, 0.07) if rng.random() < 0.5 else 0.0
    for i, side in ((48, -1), (54, 1), (60, -1), (64, 1)):
        lm3[i, 1] -= smile
        lm3[i, 0] += side * smile * 0.5
    for i, w in ((49, 0.5), (53, 0.5), (59, 0.4), (55, 0.4)):
        lm3[i, 1] -= smile * w
    if rng.random() < 0.3:
        lm3[17:27, 1] -= rng.uniform(0.0, 0.08)
    return lm3


def facial_hair(rng: np.random.Generator, img: np.ndarray, lm: np.ndarray, hair: np.ndarray, unit: float) -> None:
    """A moustache over the upper lip, and sometimes a beard or goatee round the mouth and chin, in `hair`'s
    texture; the lips stay visible above it, as on real faces."""
    size = img.shape[0]
    mask = np.zeros((size, size), np.uint8)
    if rng.random() < 0.8:
        upper = lm[48:55]
        nose = lm[[31, 32, 33, 34, 35]]
        top = np.concatenate([[upper[0]], nose * 0.75 + upper[[1, 2, 3, 4, 5]] * 0.25, [upper[-1]]])
        _fill(mask, np.concatenate([top, upper[::-1] + [0, 0.3 * unit]]), int(rng.uniform(150, 240)))
    if rng.random() < 0.5:
        k = rng.uniform(0.0, 0.6)  # 0: a goatee on the chin only, up to a full beard along the jaw
        lo, hi = int(round(8 - 2 - 4 * k)), int(round(8 + 2 + 4 * k))
        jaw = lm[lo:hi + 1]
        inner = lm[[54, 55, 56, 57, 58, 59, 48]]
        _fill(mask, np.concatenate([jaw, inner]), int(rng.uniform(120, 230)))
    _blend(img, (hair * rng.uniform(0.6, 1.1)).astype(np.uint8), _soft(mask, 0.8 * unit), (0, 0, size, size))


def glasses(rng: np.random.Generator, img: np.ndarray, lm: np.ndarray, unit: float) -> None:
    color = _color(rng, 0, 120) if rng.random() < 0.7 else _color(rng, 140, 230)
    thick = max(1, int(round(rng.uniform(0.8, 2.5) * unit)))
    centers = []
    for eye in (lm[36:42], lm[42:48]):
        c = eye.mean(0)
        w = np.linalg.norm(eye[3] - eye[0])
        ang = float(np.degrees(np.arctan2(*(eye[3] - eye[0])[::-1])))
        axes = (int(w * rng.uniform(0.85, 1.05) * _SCALE), int(w * rng.uniform(0.55, 0.8) * _SCALE))
        cv2.ellipse(img, tuple(int(v) for v in _pts(c)), axes, ang, 0, 360, color, thick, cv2.LINE_AA, 4)
        centers.append((c, w))
    (c0, w0), (c1, w1) = centers
    d = (c1 - c0) / max(np.linalg.norm(c1 - c0), 1e-6)
    _line(img, np.array([c0 + d * w0 * 0.95, c1 - d * w1 * 0.95]), color, thick)
    _line(img, np.array([c0 - d * w0 * 0.95, lm[0] * 0.7 + c0 * 0.3]), color, thick)
    _line(img, np.array([c1 + d * w1 * 0.95, lm[16] * 0.7 + c1 * 0.3]), color, thick)


def textured_occluder(rng: np.random.Generator, img: np.ndarray, lm: np.ndarray, scale: float) -> None:
    """A hand, mic or object over part of the face: a polygon or ellipse filled with a photo texture."""
    size = img.shape[0]
    c = lm[rng.integers(68)] + rng.normal(0, 0.1 * scale, 2)
    r = scale * rng.uniform(0.12, 0.4)
    mask = np.zeros((size, size), np.uint8)
    if rng.random() < 0.5:
        cv2.ellipse(mask, tuple(int(v) for v in _pts(c)), (int(r * _SCALE), int(r * rng.uniform(0.3, 1) * _SCALE)),
                    rng.uniform(0, 180), 0, 360, 255, -1, cv2.LINE_AA, 4)
    else:
        _fill(mask, c + rng.uniform(-r, r, (int(rng.integers(3, 7)), 2)), 255)
    layer = photo_patch(rng, size) if rng.random() < 0.6 else np.full_like(img, _color(rng))
    _blend(img, layer, mask, (0, 0, size, size))


def camera(rng: np.random.Generator, img: np.ndarray, draws: dict | None = None) -> np.ndarray:
    """Colour, light, blur, noise and JPEG of a photograph; what was drawn goes to `draws` (same draws, in order)."""
    draws = {} if draws is None else draws
    if rng.random() < 0.2:  # greyscale photographs
        img = cv2.cvtColor(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    # White balance / colour cast, gamma, contrast and brightness as one per-channel lookup table.
    levels = np.arange(256, dtype=np.float32)[:, None] / 255.0
    gamma = rng.uniform(0.7, 1.4)
    cast, gain, offset = rng.uniform(0.8, 1.2, 3), rng.uniform(0.7, 1.2), rng.uniform(-25, 25)
    curve = 255.0 * levels ** gamma * cast * gain + offset
    draws["light"] = float((255.0 * 0.5 ** gamma * cast.mean() * gain + offset) / 127.5)  # where mid-grey lands
    out = cv2.LUT(img, np.clip(curve, 0, 255).astype(np.uint8).reshape(1, 256, 3))
    r = rng.random()
    draws["blur"] = 0.0
    if r < 0.3:
        draws["blur"] = rng.uniform(0.5, 1.8)
        out = cv2.GaussianBlur(out, (0, 0), draws["blur"])  # defocus
    elif r < 0.45:
        k = int(rng.integers(3, 8))
        draws["blur"] = float(k)
        kernel = np.zeros((k, k), np.float32)
        kernel[k // 2] = 1.0 / k
        rot = cv2.getRotationMatrix2D(((k - 1) / 2, (k - 1) / 2), rng.uniform(0, 180), 1.0)
        kernel = cv2.warpAffine(kernel, rot, (k, k))
        out = cv2.filter2D(out, -1, kernel / max(kernel.sum(), 1e-6))  # motion blur
    # Every photograph has sensor noise; flat fills with none are a synthetic tell.
    noise = rng.standard_normal(out.shape, dtype=np.float32)
    draws["noise"] = rng.uniform(1.5, 8)
    out = cv2.add(out, noise * draws["noise"], dtype=cv2.CV_8U)
    if rng.random() < 0.4:
        out = jpeg(out, int(rng.integers(20, 90)))
    return out


def face_outline(lm: np.ndarray, fh: np.ndarray) -> np.ndarray:
    """v2's face silhouette: the jaw, then the forehead over the head."""
    return np.concatenate([lm[0:17], fh[1:-1]])


def draw_neck(rng: np.random.Generator, img: np.ndarray, lm: np.ndarray, fh: np.ndarray, hair: np.ndarray,
              skin: np.ndarray, unit: float) -> None:
    """v2's neck, as wide as the jaw's lower half."""
    neck = np.array([lm[5], lm[11], lm[11] + (lm[11] - lm[27]) * 1.2, lm[5] + (lm[5] - lm[27]) * 1.2])
    _fill(img, neck, tuple(float(v) for v in skin * rng.uniform(0.5, 0.8)))


@dataclass(frozen=True)
class FaceFrame:
    """Around the face: its silhouette from the posed points, and what lies behind it (v3: V3_FRAME)."""

    outline: Callable[[np.ndarray, np.ndarray], np.ndarray] = face_outline
    behind: Callable[..., None] = draw_neck


def draw_face(rng: np.random.Generator, img: np.ndarray, lm: np.ndarray, fh: np.ndarray, scale: float,
              shape: FaceShape, frame: FaceFrame = FaceFrame()) -> None:
    size = img.shape[0]
    unit = scale * 0.01
    skin = _skin(rng)
    hair = hair_layer(rng, size)
    outline = frame.outline(lm, fh)
    full = (0, 0, size, size)
    hmask = np.zeros((size, size), np.uint8)

    if rng.random() < 0.75:  # hair mass behind the head
        _fill(hmask, np.concatenate([fh, fh[::-1] + (fh[::-1] - fh.mean(0)) * rng.uniform(0.1, 0.4)]), 255)
        _blend(img, hair, hmask, full)
    frame.behind(rng, img, lm, fh, hair, skin, unit)

    mask, height = height_field(lm, outline, size, scale)
    diffuse, specular = lighting(rng, height)
    lip = skin * np.array([1.0, 0.72, 0.72], np.float32) * rng.uniform(0.8, 1.0)
    lmask = np.zeros((size, size), np.uint8)
    _fill(lmask, lm[48:60], 255)
    lmask = _soft(lmask, 0.6 * unit).astype(np.float32)[..., None] * (1.0 / 255.0)
    x0, y0, x1, y1 = box = _box(outline, size)
    win = (slice(y0, y1), slice(x0, x1))  # shade only the face's box
    shade = skin_texture(rng, y1 - y0, x1 - x0) * diffuse[win][..., None]
    face = np.empty_like(img)
    face[win] = np.clip((skin + (lip - skin) * lmask[win]) * shade + 255.0 * specular[win][..., None], 0, 255)
    _blend(img, face, _soft(mask, 0.5), box)

    if rng.random() < 0.45:  # fringe
        k = rng.uniform(0.15, 0.45)
        hmask[:] = 0
        _fill(hmask, np.concatenate([fh, fh[::-1] * (1 - k) + lm[27] * k]), 255)
        _blend(img, hair, _soft(hmask, 0.7 * unit), _box(fh, size))

    if rng.random() < 0.25:
        facial_hair(rng, img, lm, hair, unit)

    bmask = np.zeros((size, size), np.uint8)
    alpha = int(rng.uniform(110, 230))
    _line(bmask, lm[17:22], alpha, rng.uniform(2.5, 4.5) * unit)
    _line(bmask, lm[22:27], alpha, rng.uniform(2.5, 4.5) * unit)
    _blend(img, (hair * rng.uniform(0.5, 1.0)).astype(np.uint8), _soft(bmask, 0.6 * unit), full)

    nostril = tuple(float(v) for v in skin * 0.35)
    for i in (32, 34):
        cv2.ellipse(img, tuple(int(v) for v in _pts(lm[i] * 0.8 + lm[33] * 0.2)),
                    (int(1.6 * unit * _SCALE), int(0.9 * unit * _SCALE)), 0, 0, 360, nostril, -1, cv2.LINE_AA, 4)

    # Eyes as a camera sees them at this size: a greyish, soft-edged sclera, a large dark iris, and a heavy upper
    # lid (lashes) with its crease above; no crisp white almond whose edge gives the points away.
    iris = _color(rng, 15, 110)
    lid = tuple(float(v) for v in skin * rng.uniform(0.15, 0.35))
    crease = tuple(float(v) for v in skin * 0.7)
    sclera = np.clip(rng.uniform(110, 215) * np.array([1, 0.97, 0.93]) * 0.8 + skin * 0.2, 0, 255).astype(np.uint8)
    for eye, openness in ((lm[36:42], shape.eye_open_right), (lm[42:48], shape.eye_open_left)):
        width = np.linalg.norm(eye[3] - eye[0])
        up = np.array([eye[3, 1] - eye[0, 1], eye[0, 0] - eye[3, 0]]) / max(width, 1e-6)  # towards the brow
        _line(img, eye[[0, 1, 2, 3]] + up * width * rng.uniform(0.2, 0.35), crease, 0.7 * unit)
        if openness > 0.3:
            emask = np.zeros((size, size), np.uint8)
            _fill(emask, eye, 255)
            box = _box(eye, size)
            layer = np.empty_like(img)
            layer[box[1]:box[3], box[0]:box[2]] = sclera
            c = eye.mean(0) + rng.uniform(-0.15, 0.15, 2) * (eye[3] - eye[0])
            r = rng.uniform(0.19, 0.25) * width
            cv2.circle(layer, tuple(int(v) for v in _pts(c)), int(r * _SCALE), iris, -1, cv2.LINE_AA, 4)
            cv2.circle(layer, tuple(int(v) for v in _pts(c)), int(r * 0.45 * _SCALE), (10, 10, 10), -1,
                       cv2.LINE_AA, 4)
            _blend(img, layer, _soft(emask, 0.35 * unit), box)
            _line(img, eye[[0, 1, 2, 3]], lid, rng.uniform(1.2, 2.8) * unit)
        else:
            _line(img, eye[[0, 1, 2, 3]], lid, rng.uniform(1.2, 2.2) * unit)

    if shape.mouth_open > 0.3:
        _fill(img, lm[60:68], (40, 15, 20))
        if rng.random() < 0.7:
            teeth = np.concatenate([lm[60:65], lm[[63, 62, 61]] * 0.6 + lm[[65, 66, 67]] * 0.4])
            _fill(img, teeth, tuple(float(v) for v in rng.uniform(170, 225) * np.array([1, 0.97, 0.9])))
    else:
        _line(img, lm[60:65], tuple(float(v) for v in skin * 0.35), 0.8 * unit)

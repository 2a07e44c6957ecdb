"""A parametric 3-D face: 68 iBUG points plus outline helpers, posed and projected.

Face units: x to the image right, y down, z towards the camera; the face spans x in about [-1, 1], the eyes sit
near y = -0.18 and the chin near y = 1. Each point has a depth so that yaw foreshortens the face the way a turned
head does (the nose swings further than the cheeks).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FOREHEAD_POINTS = 13  # outline from the right jaw top over the forehead to the left jaw top

# Curve parameters shared by every face (computed once: this runs per rendered image).
_JAW_T = np.linspace(0.0, np.pi, 17)
_BROW_K = np.linspace(0.0, 1.0, 5)
_FOREHEAD_T = np.linspace(0.0, np.pi, FOREHEAD_POINTS)
_SIN_FOREHEAD = np.sin(_FOREHEAD_T)


@dataclass(frozen=True)
class FaceShape:
    """Identity and expression parameters of one face (all dimensionless)."""

    jaw_width: float = 1.0
    face_length: float = 1.0
    chin_square: float = 0.75  # exponent < 1 makes a squarer jaw
    eye_spacing: float = 1.0
    eye_size: float = 1.0
    brow_height: float = 0.0
    brow_arch: float = 0.08
    nose_length: float = 1.0
    nose_width: float = 1.0
    mouth_width: float = 1.0
    lip_thickness: float = 1.0
    eye_open_right: float = 1.0  # subject's right eye = points 36-41; 0 closed .. 1 wide open
    eye_open_left: float = 1.0  # subject's left eye = points 42-47
    mouth_open: float = 0.0  # 0 closed .. 1 wide open


def _eye(cx: float, cy: float, half_w: float, openness: float, size: float) -> np.ndarray:
    """Six eye points in iBUG order, which for both eyes runs: left corner, two upper-lid points,
    right corner, two lower-lid points (clockwise in the image)."""
    upper = 0.115 * size * openness
    lower = 0.055 * size * openness
    lid_y = cy + 0.02 * (1.0 - openness)  # closed lids meet a little below the eye's centre
    third = half_w / 3.0
    return np.array(
        [
            [cx - half_w, cy], [cx - third, lid_y - upper], [cx + third, lid_y - upper],
            [cx + half_w, cy], [cx + third, lid_y + lower], [cx - third, lid_y + lower],
        ]
    )  # fmt: skip


def face_points(shape: FaceShape) -> tuple[np.ndarray, np.ndarray]:
    """Return (landmarks (68, 3), forehead outline (FOREHEAD_POINTS, 3)) in face units with depth."""
    s = shape
    jaw_top, chin = -0.12, 1.0 * s.face_length
    gap = 0.26 * s.mouth_open

    # Jaw 0-16: image left ear, down round the chin, up to the image right ear.
    t = _JAW_T
    drop = np.sin(t) ** s.chin_square
    jaw_x = -s.jaw_width * np.cos(t) * (1.0 - 0.12 * np.sin(t) ** 2)
    jaw_y = jaw_top + (chin - jaw_top + 0.45 * gap) * drop
    jaw_z = 0.55 * np.sin(t) - 0.15
    jaw = np.stack([jaw_x, jaw_y, jaw_z], 1)

    # Brows 17-21 (image left, outer to inner) and 22-26 (image right, inner to outer).
    k = _BROW_K
    brow_y = -0.48 + s.brow_height - s.brow_arch * np.sin(np.pi * (0.2 + 0.65 * k))
    bx = (0.84 - 0.64 * k) * s.eye_spacing
    brow_l = np.stack([-bx, brow_y, 0.42 - 0.3 * bx], 1)
    brow_r = np.stack([bx[::-1], brow_y[::-1], 0.42 - 0.3 * bx[::-1]], 1)

    # Nose bridge 27-30 down to the tip, then the base 31-35.
    tip_y = 0.28 * s.nose_length
    bridge = np.stack([np.zeros(4), np.linspace(-0.2, tip_y, 4), np.linspace(0.5, 0.85, 4)], 1)
    base_y = 0.36 * s.nose_length
    nb = np.array([-0.2, -0.1, 0.0, 0.1, 0.2]) * s.nose_width
    base = np.stack([nb, base_y + np.array([0.0, 0.03, 0.05, 0.03, 0.0]), 0.62 - 0.6 * np.abs(nb)], 1)

    # Eyes 36-41 (image left) and 42-47 (image right).
    ex, ey, ew = 0.42 * s.eye_spacing, -0.18, 0.2 * s.eye_size
    eye_r = _eye(-ex, ey, ew, s.eye_open_right, s.eye_size)
    eye_l = _eye(ex, ey, ew, s.eye_open_left, s.eye_size)
    eyes = np.concatenate([eye_r, eye_l])
    eyes = np.concatenate([eyes, (0.38 - 0.25 * np.abs(eyes[:, :1]))], 1)

    # Mouth: outer 48-59, inner 60-67. The lower lip and the inner gap drop as the mouth opens.
    my = 0.64 * s.face_length
    mw, ut, lt = 0.36 * s.mouth_width, 0.065 * s.lip_thickness, 0.075 * s.lip_thickness
    up, lo = my - 0.2 * gap, my + 0.8 * gap
    outer = np.array(
        [
            [-mw, my], [-0.6 * mw, up - 0.9 * ut], [-0.22 * mw, up - ut - 0.01], [0.0, up - ut + 0.012],
            [0.22 * mw, up - ut - 0.01], [0.6 * mw, up - 0.9 * ut], [mw, my],
            [0.6 * mw, lo + 0.9 * lt], [0.22 * mw, lo + lt], [0.0, lo + lt + 0.005],
            [-0.22 * mw, lo + lt], [-0.6 * mw, lo + 0.9 * lt],
        ]
    )  # fmt: skip
    inner = np.array(
        [
            [-0.8 * mw, my], [-0.35 * mw, up], [0.0, up + 0.004], [0.35 * mw, up],
            [0.8 * mw, my], [0.35 * mw, lo], [0.0, lo - 0.004], [-0.35 * mw, lo],
        ]
    )  # fmt: skip
    mouth = np.concatenate([outer, inner])
    mouth = np.concatenate([mouth, 0.55 - 0.35 * np.abs(mouth[:, :1])], 1)

    landmarks = np.concatenate([jaw, brow_l, brow_r, bridge, base, eyes, mouth])

    # Forehead outline, from the image-right jaw top over the head to the image-left jaw top.
    fx = s.jaw_width * np.cos(_FOREHEAD_T) * 1.02
    fy = jaw_top - (0.95 + 0.1 * s.face_length) * _SIN_FOREHEAD**0.8
    fz = 0.4 * _SIN_FOREHEAD - 0.1
    forehead = np.stack([fx, fy, fz], 1)
    return landmarks, forehead


def pose(points: np.ndarray, yaw: float, pitch: float) -> np.ndarray:
    """Rotate (..., 3) points by yaw then pitch (radians) and drop depth (orthographic projection)."""
    x, y, z = points[..., 0], points[..., 1], points[..., 2]
    cy, sy = np.cos(yaw), np.sin(yaw)
    x2 = x * cy + z * sy
    z2 = -x * sy + z * cy
    cp, sp = np.cos(pitch), np.sin(pitch)
    y2 = y * cp - z2 * sp
    return np.stack([x2, y2], -1)

"""Parsers for real landmark data: 300-W/iBUG `.pts`, landmark CSV files, and images.

Every problem raises EdgekitError naming the file and, where there is one, the line.

Coordinate conventions (converted here to edgekit's continuous pixel coordinates, pixel i spanning [i, i+1)):
- `.pts` (300-W): 1-based pixel centres, the Matlab convention of the original annotations -> subtract 0.5;
- CSV: 0-based pixel centres, the OpenCV/numpy convention -> add 0.5.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import EdgekitError
from ..landmarks import NUM_POINTS, STATE_NAMES

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp")
PTS_OFFSET = -0.5
CSV_OFFSET = 0.5


@dataclass(frozen=True)
class LabeledImage:
    image_path: Path
    landmarks: np.ndarray  # (68, 2) continuous pixel coordinates in the full image
    states: np.ndarray | None = None  # (3,) in {0, 1}, or None when the source has no states


def read_pts(path: str | Path) -> np.ndarray:
    """Parse a 300-W `.pts` file into (68, 2) continuous pixel coordinates."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8", errors="strict").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise EdgekitError(f"cannot read .pts file ({exc.__class__.__name__})", path=path) from None
    if not lines:
        raise EdgekitError("empty .pts file; expected 'version: 1', 'n_points: 68', '{', 68 'x y' lines, '}'",
                           path=path)
    declared = None
    i = 0
    while i < len(lines) and lines[i].strip() != "{":
        key, _, value = lines[i].partition(":")
        if key.strip() == "n_points":
            try:
                declared = int(value)
            except ValueError:
                raise EdgekitError(f"n_points is {value.strip()!r}, expected an integer", path=path,
                                   line=i + 1) from None
        elif key.strip() not in ("version", ""):
            raise EdgekitError(f"unexpected header line {lines[i].strip()!r}; expected 'version:', 'n_points:' "
                               "or '{'", path=path, line=i + 1)
        i += 1
    if declared is None:
        raise EdgekitError("missing 'n_points:' header", path=path, line=1)
    if declared != NUM_POINTS:
        raise EdgekitError(f"n_points is {declared}, expected {NUM_POINTS} (iBUG 68-point scheme)", path=path,
                           line=i)
    if i == len(lines):
        raise EdgekitError("missing '{' before the points", path=path, line=len(lines))
    points = []
    for j in range(i + 1, len(lines)):
        text = lines[j].strip()
        if text == "}":
            break
        parts = text.split()
        try:
            if len(parts) != 2:
                raise ValueError
            points.append((float(parts[0]), float(parts[1])))
        except ValueError:
            raise EdgekitError(f"expected 'x y' (two numbers), got {text!r}", path=path, line=j + 1) from None
    else:
        raise EdgekitError(f"truncated: file ends after {len(points)} of {NUM_POINTS} points with no closing '}}'",
                           path=path, line=len(lines))
    if len(points) != NUM_POINTS:
        raise EdgekitError(f"has {len(points)} points, expected {NUM_POINTS}", path=path, line=j + 1)
    arr = np.asarray(points, np.float32) + PTS_OFFSET
    if not np.all(np.isfinite(arr)):
        raise EdgekitError("contains non-finite coordinates", path=path)
    return arr


def image_next_to(pts_path: Path) -> Path:
    for ext in IMAGE_EXTS + tuple(e.upper() for e in IMAGE_EXTS):
        candidate = pts_path.with_suffix(ext)
        if candidate.exists():
            return candidate
    raise EdgekitError(f"no image next to it (looked for {', '.join(IMAGE_EXTS)})", path=pts_path)


def check_image(path: Path) -> None:
    """Cheap validity check (file signature only), so bad files fail before a long run starts."""
    if not path.is_file():
        raise EdgekitError("image not found", path=path)
    if not cv2.haveImageReader(str(path)):
        raise EdgekitError("not a readable image (expected JPEG, PNG or BMP)", path=path)


def read_image(path: str | Path) -> np.ndarray:
    """Decode an image file into (H, W, 3) uint8 RGB."""
    path = Path(path)
    try:
        data = np.fromfile(path, np.uint8)
    except OSError as exc:
        raise EdgekitError(f"cannot read image ({exc.strerror or exc})", path=path) from None
    img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if img is None:
        raise EdgekitError("cannot decode image (expected JPEG, PNG or BMP)", path=path)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def read_landmark_csv(path: str | Path) -> list[LabeledImage]:
    """Rows of `path, x0, y0, ..., x67, y67[, left_eye_open, right_eye_open, mouth_open]`.

    An optional header row starts with `path`. Image paths are relative to the CSV's folder.
    """
    path = Path(path)
    n_coords = 2 * NUM_POINTS
    rows: list[LabeledImage] = []
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            for lineno, row in enumerate(csv.reader(fh), start=1):
                if not row or (lineno == 1 and row[0].strip().lower() == "path"):
                    continue
                if len(row) not in (1 + n_coords, 1 + n_coords + len(STATE_NAMES)):
                    raise EdgekitError(
                        f"expected {1 + n_coords} columns (path + {n_coords} coordinates) or "
                        f"{1 + n_coords + len(STATE_NAMES)} (with {', '.join(STATE_NAMES)}), got {len(row)}",
                        path=path, line=lineno)
                try:
                    values = np.array([float(v) for v in row[1:]], np.float32)
                except ValueError:
                    bad = next(v for v in row[1:] if not _is_float(v))
                    raise EdgekitError(f"{bad!r} is not a number", path=path, line=lineno) from None
                states = None
                if len(values) > n_coords:
                    states = values[n_coords:]
                    if not np.all(np.isin(states, (0.0, 1.0))):
                        raise EdgekitError(f"states must be 0 or 1, got {row[1 + n_coords:]}", path=path,
                                           line=lineno)
                image = (path.parent / row[0].strip()).resolve()
                rows.append(LabeledImage(image, values[:n_coords].reshape(NUM_POINTS, 2) + CSV_OFFSET, states))
    except OSError as exc:
        raise EdgekitError(f"cannot read CSV ({exc.strerror or exc})", path=path) from None
    except UnicodeDecodeError:
        raise EdgekitError("not a UTF-8 text CSV file", path=path) from None
    if not rows:
        raise EdgekitError("CSV has no data rows", path=path)
    return rows


def _is_float(v: str) -> bool:
    try:
        float(v)
        return True
    except ValueError:
        return False

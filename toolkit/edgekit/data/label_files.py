"""Parsers for real landmark data: 300-W/iBUG `.pts` (any n_points), WFLW annotation lists (98 points), landmark
CSV files (any point count), dlib/imglab XML files (any part count), and images.

Every problem raises EdgekitError naming the file and, where there is one, the line.

Coordinate conventions (converted here to edgekit's continuous pixel coordinates, pixel i spanning [i, i+1)):
- `.pts` (300-W): 1-based pixel centres, the Matlab convention of the original annotations -> subtract 0.5;
- CSV, WFLW and dlib XML: 0-based pixel centres, the OpenCV/numpy convention -> add 0.5.
"""

from __future__ import annotations

import csv
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import EdgekitError
from ..landmarks import STATE_NAMES

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp")
PTS_OFFSET = -0.5
CSV_OFFSET = 0.5


@dataclass(frozen=True)
class LabeledImage:
    image_path: Path
    landmarks: np.ndarray  # (K, 2) continuous pixel coordinates in the full image
    states: np.ndarray | None = None  # (3,) in {0, 1}, or None when the source has no states


def read_pts(path: str | Path, points: int | None = None) -> np.ndarray:
    """Parse a 300-W `.pts` file into (K, 2) continuous pixel coordinates; `points` checks K when given."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8", errors="strict").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise EdgekitError(f"cannot read .pts file ({exc.__class__.__name__})", path=path) from None
    if not lines:
        raise EdgekitError("empty .pts file; expected 'version: 1', 'n_points: K', '{', K 'x y' lines, '}'",
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
    if declared < 1 or (points is not None and declared != points):
        raise EdgekitError(f"n_points is {declared}, expected {points or 'a positive count'}", path=path, line=i)
    if i == len(lines):
        raise EdgekitError("missing '{' before the points", path=path, line=len(lines))
    coords = []
    for j in range(i + 1, len(lines)):
        text = lines[j].strip()
        if text == "}":
            break
        parts = text.split()
        try:
            if len(parts) != 2:
                raise ValueError
            coords.append((float(parts[0]), float(parts[1])))
        except ValueError:
            raise EdgekitError(f"expected 'x y' (two numbers), got {text!r}", path=path, line=j + 1) from None
    else:
        raise EdgekitError(f"truncated: file ends after {len(coords)} of {declared} points with no closing '}}'",
                           path=path, line=len(lines))
    if len(coords) != declared:
        raise EdgekitError(f"has {len(coords)} points, expected {declared}", path=path, line=j + 1)
    arr = np.asarray(coords, np.float32) + PTS_OFFSET
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
    """Rows of `path, x0, y0, ..., xK-1, yK-1[, left_eye_open, right_eye_open, mouth_open]`, K the same on every
    row (68 for iBUG; any K for your scheme). An even number of columns after the path is K points; an odd one
    ends with the three states. An optional header row starts with `path`. Image paths are relative to the
    CSV's folder.
    """
    path = Path(path)
    rows: list[LabeledImage] = []
    n_coords = None
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            for lineno, row in enumerate(csv.reader(fh), start=1):
                if not row or (lineno == 1 and row[0].strip().lower() == "path"):
                    continue
                coords = len(row) - 1 - (len(STATE_NAMES) if (len(row) - 1) % 2 else 0)
                if coords < 2 or (n_coords is not None and coords != n_coords):
                    want = (f"{1 + n_coords} columns (path + {n_coords} coordinates) or "
                            f"{1 + n_coords + len(STATE_NAMES)} (with {', '.join(STATE_NAMES)})") if n_coords \
                        else "path, then x y pairs, then optionally the three states"
                    raise EdgekitError(f"expected {want}, got {len(row)}", path=path, line=lineno)
                n_coords = coords
                try:
                    values = np.array([float(v) for v in row[1:]], np.float32)
                except ValueError:
                    bad = next(v for v in row[1:] if not _is_float(v))
                    raise EdgekitError(f"{bad!r} is not a number", path=path, line=lineno) from None
                if not np.all(np.isfinite(values)):  # 'nan' and 'inf' parse as floats; .pts and XML refuse them
                    bad = next(v for v, f in zip(row[1:], values, strict=True) if not np.isfinite(f))
                    raise EdgekitError(f"{bad.strip()!r} is not a finite coordinate", path=path, line=lineno)
                states = None
                if len(values) > n_coords:
                    states = values[n_coords:]
                    if not np.all(np.isin(states, (0.0, 1.0))):
                        raise EdgekitError(f"states must be 0 or 1, got {row[1 + n_coords:]}", path=path,
                                           line=lineno)
                image = (path.parent / row[0].strip()).resolve()
                rows.append(LabeledImage(image, values[:n_coords].reshape(-1, 2) + CSV_OFFSET, states))
    except OSError as exc:
        raise EdgekitError(f"cannot read CSV ({exc.strerror or exc})", path=path) from None
    except UnicodeDecodeError:
        raise EdgekitError("not a UTF-8 text CSV file", path=path) from None
    if not rows:
        raise EdgekitError("CSV has no data rows", path=path)
    return rows


WFLW_FIELDS = 98 * 2 + 4 + 6 + 1  # 98 x y, box x_min y_min x_max y_max, 6 attribute flags, image path


def read_wflw(path: str | Path) -> list[LabeledImage]:
    """A WFLW annotation list (`list_98pt_rect_attr_*.txt`): per line 196 coordinates, the face box, six
    attribute flags (pose, expression, illumination, make-up, occlusion, blur) and the image path. Images are
    looked up relative to the list's folder, then in a `WFLW_images` folder beside it or above it."""
    path = Path(path)
    roots = [path.parent] + [p / "WFLW_images" for p in (path.parent, *path.parents)]
    rows = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise EdgekitError(f"cannot read WFLW list ({exc.__class__.__name__})", path=path) from None
    for lineno, line in enumerate(lines, start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != WFLW_FIELDS:
            raise EdgekitError(f"expected {WFLW_FIELDS} fields (196 coordinates, 4 box, 6 attributes, image), got "
                               f"{len(parts)}", path=path, line=lineno)
        try:
            values = np.array([float(v) for v in parts[:196]], np.float32)
        except ValueError:
            raise EdgekitError("coordinates must be numbers", path=path, line=lineno) from None
        if not np.all(np.isfinite(values)):
            raise EdgekitError("coordinates must be finite numbers (no nan or inf)", path=path, line=lineno)
        image = next((r / parts[-1] for r in roots if (r / parts[-1]).is_file()), roots[0] / parts[-1])
        rows.append(LabeledImage(image, values.reshape(98, 2) + CSV_OFFSET))
    if not rows:
        raise EdgekitError("WFLW list has no lines", path=path)
    return rows


def read_dlib_xml(path: str | Path, points: int | None = None) -> list[LabeledImage]:
    """The labeled faces of a dlib/imglab XML file (`<image file=...><box ...><part name="00" x= y=/>...`): one
    item per box with parts, the parts in the order of their numeric names, the same count in every box (`points`
    checks it when given). Boxes marked `ignore="1"` and boxes without parts (detection labels) are skipped.
    Image paths are relative to the XML's folder, as imglab writes them."""
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except OSError as exc:
        raise EdgekitError(f"cannot read XML ({exc.strerror or exc})", path=path) from None
    except ET.ParseError as exc:
        raise EdgekitError(f"not well-formed XML ({exc})", path=path) from None
    items = []
    for image in root.iter("image"):
        name = image.get("file")
        if not name:
            raise EdgekitError("an <image> has no file attribute", path=path)
        for box in image.iter("box"):
            parts = list(box.iter("part"))
            if box.get("ignore") == "1" or not parts:
                continue
            try:
                xy = sorted((int(p.get("name")), float(p.get("x")), float(p.get("y"))) for p in parts)
            except (TypeError, ValueError):
                raise EdgekitError(f"a <part> of a box in {name} lacks a numeric name, x or y (imglab writes "
                                   "<part name='00' x='..' y='..'/>)", path=path) from None
            if len({n for n, _, _ in xy}) != len(xy) or not np.all(np.isfinite([v[1:] for v in xy])):
                raise EdgekitError(f"a box in {name} repeats a part name or has a non-finite x or y", path=path)
            want = points or (len(items[0].landmarks) if items else len(xy))
            if len(xy) != want:
                like = "" if points else " like the first box"
                raise EdgekitError(f"a box in {name} has {len(xy)} parts, expected {want}{like}", path=path)
            items.append(LabeledImage(path.parent / name, np.array([v[1:] for v in xy], np.float32) + CSV_OFFSET))
    if not items:
        raise EdgekitError("no box with landmark parts (expected dlib/imglab XML: <image file=..><box><part "
                           "name='00' x='..' y='..'/>...)", path=path)
    return items


def _is_float(v: str) -> bool:
    try:
        float(v)
        return True
    except ValueError:
        return False

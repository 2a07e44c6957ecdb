"""`edgekit data preview`: a grid of crops with landmarks drawn by region, to check data and labels by eye."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..atomic import write_bytes
from ..landmarks import REGIONS

REGION_COLORS = {"jaw": (0, 220, 0), "brows": (255, 60, 60), "nose": (255, 220, 0), "eyes": (0, 230, 255),
                 "mouth": (255, 0, 255)}
# Contours drawn as lines so a misplaced point shows as a broken shape.
CONTOURS = [(0, 17, False), (17, 22, False), (22, 27, False), (27, 31, False), (31, 36, False), (36, 42, True),
            (42, 48, True), (48, 60, True), (60, 68, True)]


def draw(sample, scale: int = 2, predicted: np.ndarray | None = None) -> np.ndarray:
    size = sample.image.shape[0] * scale
    img = cv2.resize(sample.image, (size, size), interpolation=cv2.INTER_NEAREST)
    if sample.landmarks is not None:
        pts = sample.landmarks * size
        for a, b, closed in CONTOURS:
            cv2.polylines(img, [np.round(pts[a:b] * 16).astype(np.int32)], closed, (255, 255, 255), 1,
                          cv2.LINE_AA, 4)
        for name, (a, b) in REGIONS.items():
            for x, y in pts[a:b]:
                cv2.circle(img, (int(x * 16), int(y * 16)), 2 * 16, REGION_COLORS[name], -1, cv2.LINE_AA, 4)
    if predicted is not None:
        for x, y in predicted * size:
            cv2.drawMarker(img, (int(x), int(y)), (255, 255, 255), cv2.MARKER_CROSS, 5, 1)
    if sample.states is not None:
        text = "".join(label if v > 0.5 else "-" for label, v in zip("LRM", sample.states, strict=True))
        cv2.putText(img, text, (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
    return img


def preview_grid(dataset, out: str | Path, n: int = 24, columns: int = 6, scale: int = 2) -> Path:
    n = min(n, len(dataset))
    tiles = [draw(dataset[i], scale) for i in range(n)]
    blank = np.zeros_like(tiles[0])
    tiles += [blank] * (-n % columns)
    rows = [np.concatenate(tiles[r:r + columns], 1) for r in range(0, len(tiles), columns)]
    grid = cv2.cvtColor(np.concatenate(rows, 0), cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".png", grid)
    write_bytes(out, buf.tobytes())
    return Path(out)

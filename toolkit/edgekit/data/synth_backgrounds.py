"""SynthFaces v2 and v3 backgrounds: patches cut from the photographs scikit-image ships (read from the installed
package, never copied), or procedural clutter, often out of focus."""

from __future__ import annotations

import functools
from pathlib import Path

import cv2
import numpy as np

from .synth_draw import _color, _gradient

# scikit-image's bundled photographs usable as backgrounds: no faces (astronaut is left out), no synthetic plots.
BACKGROUND_PHOTOS = ("brick.png", "camera.png", "chelsea.png", "clock_motion.png", "coffee.png", "coins.png",
                     "grass.png", "gravel.png", "hubble_deep_field.jpg", "ihc.png", "moon.png",
                     "motorcycle_left.png", "motorcycle_right.png", "page.png", "rocket.jpg", "text.png")


@functools.lru_cache(maxsize=1)
def background_photos() -> tuple[np.ndarray, ...]:
    """The photographs as RGB uint8, decoded once per process and shrunk to a 256-pixel short side, so cutting a
    patch is cheap (about 2 MB)."""
    import skimage  # a core dependency: the renderer's output must not depend on whether it is installed

    root = Path(skimage.__file__).parent / "data"
    out = []
    for name in BACKGROUND_PHOTOS:
        img = _decode(root / name)
        k = 256 / min(img.shape[:2])
        if k < 1:
            img = cv2.resize(img, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
        out.append(img)
    return tuple(out)


def _decode(path: Path) -> np.ndarray:
    """RGB uint8. PNGs through Pillow (lossless, so the same pixels as OpenCV's decoder), because libpng inside
    OpenCV prints a warning for page.png's ICC profile on every process start; JPEGs through OpenCV."""
    if path.suffix == ".png":
        from PIL import Image

        try:
            with Image.open(path) as im:
                return np.asarray(im.convert("RGB"))
        except OSError:
            raise FileNotFoundError(f"cannot read scikit-image's {path.name} in {path.parent}; reinstall "
                                    "scikit-image") from None
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise FileNotFoundError(f"scikit-image's {path.name} is missing from {path.parent}; reinstall scikit-image")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def photo_patch(rng: np.random.Generator, size: int) -> np.ndarray:
    photos = background_photos()
    src = photos[int(rng.integers(len(photos)))]
    h, w = src.shape[:2]
    side = int(rng.uniform(0.25, 1.0) * min(h, w))
    y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    patch = cv2.resize(src[y:y + side, x:x + side], (size, size), interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.5:
        patch = patch[:, ::-1]
    return np.ascontiguousarray(patch)


def _procedural(rng: np.random.Generator, size: int) -> np.ndarray:
    """Smooth colour field with soft-edged blobs and stripes: walls, curtains, out-of-focus rooms."""
    img = _gradient(rng.uniform(0, 255, (3, 3, 3)), size)
    for _ in range(int(rng.integers(2, 8))):
        c = _color(rng)
        p = rng.uniform(-0.2, 1.2, (2, 2)) * size
        if rng.random() < 0.5:
            cv2.rectangle(img, tuple(int(v) for v in p[0]), tuple(int(v) for v in p[1]), c, -1)
        else:
            cv2.circle(img, tuple(int(v) for v in p[0]), int(rng.uniform(0.05, 0.4) * size), c, -1, cv2.LINE_AA)
    return cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 4.0))


def background(rng: np.random.Generator, size: int) -> np.ndarray:
    img = photo_patch(rng, size) if rng.random() < 0.65 else _procedural(rng, size)
    if rng.random() < 0.5:  # depth of field: the background is often out of focus
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.8, 3.0))
    return img

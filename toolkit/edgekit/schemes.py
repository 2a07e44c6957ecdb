"""Landmark schemes: how many points, what normalises NME, which points swap under a flip, and the regions.

Built in: `ibug68` (300-W), `wflw98` (WFLW) and `five` (eye centres, nose tip, mouth corners, the order of
RetinaFace/InsightFace). Any other scheme is a YAML file (see `load_scheme`). numpy only: the device-side bench
runner imports this.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import landmarks as ibug
from .errors import EdgekitError


@dataclass(frozen=True)
class Scheme:
    name: str
    points: int
    # NME divides by the distance between the centres of these two point groups (one point each: two corners).
    normalise: tuple[tuple[int, ...], tuple[int, ...]]
    flip_pairs: tuple[tuple[int, int], ...] = ()
    regions: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> [start, stop) point indices

    def normaliser(self, gt: np.ndarray) -> np.ndarray:
        """Per-image normalising distance of ground truth (N, K, 2), shape (N,)."""
        a, b = (gt[:, list(g)].mean(axis=1) for g in self.normalise)
        return np.linalg.norm(a - b, axis=-1)

    def flip_permutation(self) -> np.ndarray:
        """flipped[i] = original[perm[i]] for a horizontal flip."""
        perm = np.arange(self.points)
        for a, b in self.flip_pairs:
            perm[a], perm[b] = b, a
        return perm

    def to_json(self) -> dict:
        return {"name": self.name, "points": self.points, "normalise": [list(g) for g in self.normalise],
                "flip_pairs": [list(p) for p in self.flip_pairs],
                "regions": {k: list(v) for k, v in self.regions.items()}}

    @classmethod
    def from_json(cls, d: dict) -> Scheme:
        return cls(d["name"], int(d["points"]), tuple(tuple(int(i) for i in g) for g in d["normalise"]),
                   tuple((int(a), int(b)) for a, b in d.get("flip_pairs", [])),
                   {k: (int(v[0]), int(v[1])) for k, v in d.get("regions", {}).items()})


IBUG68 = Scheme("ibug68", 68, ((ibug.OUTER_EYE_CORNERS[0],), (ibug.OUTER_EYE_CORNERS[1],)),
                tuple((int(i), int(p)) for i, p in enumerate(ibug.FLIP_PERMUTATION) if i < p), dict(ibug.REGIONS))

# WFLW: outer eye corners 60 and 72 normalise; flip pairs as in the HRNet facial-landmark code.
_WFLW_PAIRS = ([(i, 32 - i) for i in range(16)]
               + [(33, 46), (34, 45), (35, 44), (36, 43), (37, 42), (38, 50), (39, 49), (40, 48), (41, 47)]
               + [(60, 72), (61, 71), (62, 70), (63, 69), (64, 68), (65, 75), (66, 74), (67, 73)]
               + [(55, 59), (56, 58), (76, 82), (77, 81), (78, 80), (87, 83), (86, 84), (88, 92), (89, 91),
                  (95, 93), (96, 97)])
WFLW98 = Scheme("wflw98", 98, ((60,), (72,)), tuple(_WFLW_PAIRS),
                {"jaw": (0, 33), "brows": (33, 51), "nose": (51, 60), "eyes": (60, 76), "mouth": (76, 96),
                 "pupils": (96, 98)})

# Five points: the subject's right eye (image left), left eye, nose tip, right and left mouth corners.
FIVE = Scheme("five", 5, ((0,), (1,)), ((0, 1), (3, 4)), {"eyes": (0, 2), "nose": (2, 3), "mouth": (3, 5)})

BUILTIN = {s.name: s for s in (IBUG68, WFLW98, FIVE)}


def _indices(value, where: str, points: int, path) -> tuple[int, ...]:
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(i, int) and 0 <= i < points for i in items):
        raise EdgekitError(f"{where}: expected a point index or a list of indices in 0..{points - 1}, got "
                           f"{value!r}", path=path)
    return tuple(items)


def load_scheme(spec: str | Scheme | None) -> Scheme:
    """A built-in name, or a YAML file:

        name: my106
        points: 106
        normalise: {between: [[66, 67, 68, 69], [75, 76, 77, 78]]}   # two points, or two groups' centres
        flip_pairs: [[0, 32], [1, 31]]
        regions: {jaw: [0, 32], brows: [33, 50]}                       # inclusive ranges
    """
    if spec is None:
        return IBUG68
    if isinstance(spec, Scheme):
        return spec
    if spec in BUILTIN:
        return BUILTIN[spec]
    path = Path(spec)
    if path.suffix not in (".yaml", ".yml"):
        raise EdgekitError(f"--scheme {spec!r}: expected {', '.join(BUILTIN)} or a .yaml scheme file")
    if not path.is_file():
        raise EdgekitError("scheme file not found", path=path)
    import yaml

    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise EdgekitError(f"not valid YAML ({str(exc).splitlines()[0]})", path=path) from None
    if not isinstance(doc, dict):
        raise EdgekitError("expected a mapping with name, points, normalise", path=path)
    unknown = set(doc) - {"name", "points", "normalise", "flip_pairs", "regions"}
    if unknown:
        raise EdgekitError(f"unknown key {sorted(unknown)[0]!r}; expected name, points, normalise, flip_pairs, "
                           "regions", path=path)
    k = doc.get("points")
    if not isinstance(k, int) or k < 2:
        raise EdgekitError(f"points: expected an integer >= 2, got {k!r}", path=path)
    between = (doc.get("normalise") or {}).get("between") if isinstance(doc.get("normalise"), dict) else None
    if not isinstance(between, list) or len(between) != 2:
        raise EdgekitError("normalise: expected {between: [A, B]} with two point indices or two index lists",
                           path=path)
    norm = tuple(_indices(g, f"normalise.between[{i}]", k, path) for i, g in enumerate(between))
    pairs = []
    for i, p in enumerate(doc.get("flip_pairs") or []):
        if not (isinstance(p, list) and len(p) == 2):
            raise EdgekitError(f"flip_pairs[{i}]: expected [a, b], got {p!r}", path=path)
        pairs.append(_indices(p, f"flip_pairs[{i}]", k, path))
    seen = [i for p in pairs for i in p]
    if len(seen) != len(set(seen)):
        raise EdgekitError("flip_pairs: a point appears in two pairs", path=path)
    regions = {}
    for name, r in (doc.get("regions") or {}).items():
        lo, hi = _indices(r, f"regions.{name}", k, path) if isinstance(r, list) and len(r) == 2 else (None, None)
        if lo is None or hi < lo:
            raise EdgekitError(f"regions.{name}: expected an inclusive range [first, last], got {r!r}", path=path)
        regions[str(name)] = (lo, hi + 1)
    return Scheme(str(doc.get("name") or path.stem), k, norm, tuple(pairs), regions)

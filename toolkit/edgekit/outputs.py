"""How to read a model's outputs: which one holds landmarks, its layout and units, and which holds part states.

Every other output (a box, a face probability, anything) is carried through the stages unchanged and scored as
fidelity to the original. Decoding works on numpy arrays and torch tensors alike (reshape, swapaxes, divide),
so training, export parity and the device-side bench runner (numpy only) share it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import EdgekitError
from .schemes import IBUG68, Scheme

LAYOUTS = ("xy", "planar")  # (N,K,2) or (N,2K) x0,y0,x1,y1,...; or (N,2K) x0..xK-1,y0..yK-1
UNITS = ("unit", "pixels")  # [0, 1] of the crop, or pixels of the model's input


@dataclass
class OutputContract:
    names: list[str]
    landmarks: str | None = "landmarks"  # the output holding landmarks; None: no landmark output
    layout: str = "xy"
    units: str = "unit"
    input_size: tuple[int, int] = (112, 112)  # (H, W): pixels -> unit
    scheme: Scheme = IBUG68
    states: str | None = "states"  # the output holding part-state logits, if any
    shapes: list[tuple[int, ...]] = field(default_factory=list)  # per output, batch dimension left out

    def index(self, name: str | None) -> int | None:
        return self.names.index(name) if name is not None and name in self.names else None

    @property
    def landmark_index(self) -> int | None:
        return self.index(self.landmarks)

    @property
    def state_index(self) -> int | None:
        return self.index(self.states)

    @property
    def other_indices(self) -> list[int]:
        used = {self.landmark_index, self.state_index}
        return [i for i in range(len(self.names)) if i not in used]

    def decode(self, outputs):
        """The landmark output of `outputs` (a tuple in `names` order) as (N, K, 2) in [0, 1] of the crop."""
        out = outputs[self.landmark_index]
        n, k = out.shape[0], self.scheme.points
        if self.layout == "planar":
            out = out.reshape(n, 2, k).swapaxes(1, 2)
        else:
            out = out.reshape(n, k, 2)
        if self.units == "pixels":
            h, w = self.input_size
            out = out / out.new_tensor([w, h]) if hasattr(out, "new_tensor") else out / [float(w), float(h)]
        return out

    def encode(self, unit_landmarks):
        """The inverse of `decode` for one (N, K, 2) tensor: what a student head emits in this contract."""
        out = unit_landmarks
        if self.units == "pixels":
            h, w = self.input_size
            out = out * out.new_tensor([w, h])
        if self.layout == "planar":
            out = out.swapaxes(1, 2)
        shape = self.shapes[self.landmark_index] if self.shapes else (2 * self.scheme.points,)
        return out.reshape(out.shape[0], *shape)

    def check(self, where: str = "--model") -> None:
        """Declared landmark output against the model's output shapes: one clear line when they disagree."""
        if self.layout not in LAYOUTS:
            raise EdgekitError(f"--landmarks-layout {self.layout!r}: expected {' or '.join(LAYOUTS)}")
        if self.units not in UNITS:
            raise EdgekitError(f"--landmarks-units {self.units!r}: expected {' or '.join(UNITS)}")
        for flag, name in (("--landmarks-output", self.landmarks), ("--states-output", self.states)):
            if name is not None and name not in self.names:
                raise EdgekitError(f"{flag} {name!r} is not an output of {where}; its outputs: {self.names}")
        i = self.landmark_index
        if i is None:
            return
        k, shape = self.scheme.points, tuple(self.shapes[i])
        allowed = [(2 * k,)] + ([(k, 2)] if self.layout == "xy" else [])
        if shape not in allowed:
            raise EdgekitError(f"{where}: output {self.landmarks!r} has shape (N, {', '.join(map(str, shape))}), "
                               f"but scheme {self.scheme.name} with layout {self.layout} needs "
                               f"{' or '.join('(N, ' + ', '.join(map(str, a)) + ')' for a in allowed)}")

    def to_json(self) -> dict:
        return {"names": self.names, "landmarks": self.landmarks, "layout": self.layout, "units": self.units,
                "input_size": list(self.input_size), "scheme": self.scheme.to_json(), "states": self.states,
                "shapes": [list(s) for s in self.shapes]}

    @classmethod
    def from_json(cls, d: dict) -> OutputContract:
        return cls(list(d["names"]), d.get("landmarks"), d.get("layout", "xy"), d.get("units", "unit"),
                   tuple(d.get("input_size", (112, 112))), Scheme.from_json(d["scheme"]) if "scheme" in d else IBUG68,
                   d.get("states"), [tuple(s) for s in d.get("shapes", [])])


def edgekit_contract(input_size: int) -> OutputContract:
    """The built-in families: (landmarks (N, 68, 2) in [0, 1], states (N, 3) logits)."""
    return OutputContract(["landmarks", "states"], input_size=(input_size, input_size),
                          shapes=[(68, 2), (3,)])

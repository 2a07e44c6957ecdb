"""Checkpoints: safetensors weights plus JSON metadata in the safetensors header. Never pickle.

The metadata says how to rebuild and feed the model: arch and kwargs, input size, mean/std, landmark scheme,
output names, metrics and provenance (command, data seed, versions).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file
from torch import nn

from ..atomic import atomic_path
from ..data.transforms import DEFAULT_MEAN, DEFAULT_STD
from ..errors import EdgekitError
from ..jsonio import is_finite_number
from ..landmarks import SCHEME, STATE_NAMES
from .registry import OUTPUT_NAMES, build
from .resize import resize_to_state_dict

FORMAT = "edgekit-checkpoint/1"
META_KEY = "edgekit"
ZOO_DIR = Path(__file__).resolve().parent.parent / "zoo"


@dataclass
class CheckpointMeta:
    arch: str
    arch_kwargs: dict = field(default_factory=dict)
    input_size: int = 112
    mean: tuple[float, ...] = DEFAULT_MEAN
    std: tuple[float, ...] = DEFAULT_STD
    landmark_scheme: str = SCHEME
    outputs: tuple[str, ...] = OUTPUT_NAMES
    state_names: tuple[str, ...] = STATE_NAMES
    metrics: dict = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)
    pruned: bool = False  # channel counts differ from the family's; rebuilt from the weights' shapes
    format: str = FORMAT

    @classmethod
    def from_json(cls, text: str, path: Path) -> CheckpointMeta:
        try:
            raw = json.loads(text)
            if raw.get("format") != FORMAT:
                raise EdgekitError(f"metadata format is {raw.get('format')!r}, expected {FORMAT!r}", path=path)
            known = {k: v for k, v in raw.items() if k in cls.__dataclass_fields__}
            meta = cls(**known)
        except (json.JSONDecodeError, TypeError, AttributeError) as exc:
            raise EdgekitError(f"unreadable edgekit metadata ({exc})", path=path) from None
        meta._check(path)
        meta.mean, meta.std = tuple(meta.mean), tuple(meta.std)
        meta.outputs, meta.state_names = tuple(meta.outputs), tuple(meta.state_names)
        return meta

    def _check(self, path: Path) -> None:
        """Every field's type and range, so a hand-edited header fails here with the key, not deep in a build."""
        def bad(key: str, expected: str) -> EdgekitError:
            return EdgekitError(f"metadata key {key!r}: expected {expected}, got {getattr(self, key)!r}", path=path)

        if not isinstance(self.arch, str) or not self.arch:
            raise bad("arch", "a model family name")
        # Numbers in arch_kwargs size the model (width multipliers, head channels): a wild one would allocate
        # without bound.
        if not isinstance(self.arch_kwargs, dict) or not all(_sane_size(k, v) for k, v in self.arch_kwargs.items()):
            raise bad("arch_kwargs", "an object of names and sizes: multipliers (width) in (0, 16], integer "
                                     "sizes from 1 to 4096")
        size = self.input_size
        if not isinstance(size, int) or isinstance(size, bool) or not 8 <= size <= 1024:
            raise bad("input_size", "an integer from 8 to 1024")
        for key, positive in (("mean", False), ("std", True)):
            v = getattr(self, key)
            if not isinstance(v, list | tuple) or len(v) != 3 or not all(
                    is_finite_number(x) and (x > 0 or not positive) for x in v):
                raise bad(key, "three finite numbers" + (" > 0" if positive else ""))
        for key in ("outputs", "state_names"):
            v = getattr(self, key)
            if not isinstance(v, list | tuple) or not all(isinstance(x, str) for x in v):
                raise bad(key, "a list of names")
        for key in ("metrics", "provenance"):
            if not isinstance(getattr(self, key), dict):
                raise bad(key, "an object")
        if not isinstance(self.landmark_scheme, str):
            raise bad("landmark_scheme", "a scheme name")
        if not isinstance(self.pruned, bool):
            raise bad("pruned", "true or false")


def _sane_size(key: str, v) -> bool:
    if isinstance(v, str | bool | dict | list) or v is None:  # dict, list: a contract student's output contract
        return _sane_nested(v)
    if key == "width" or isinstance(v, float):
        return is_finite_number(v) and 0 < v <= 16
    return isinstance(v, int) and 1 <= v <= 4096


def _sane_nested(v) -> bool:
    if isinstance(v, str | bool) or v is None:
        return True
    if isinstance(v, dict | list):
        return all(_sane_nested(x) for x in (v.values() if isinstance(v, dict) else v))
    if isinstance(v, float):
        return is_finite_number(v)
    return isinstance(v, int) and 0 <= v <= 4096


def resolve(path: str | Path) -> Path:
    """`zoo:NAME` names a checkpoint shipped in the package; anything else is a file path."""
    text = str(path)
    if text.startswith("zoo:"):
        p = ZOO_DIR / f"{text[4:]}.safetensors"
        if not p.exists():
            shipped = sorted(q.stem for q in ZOO_DIR.glob("*.safetensors"))
            raise EdgekitError(f"no zoo model {text[4:]!r}; shipped: {', '.join(shipped) or 'none'}")
        return p
    p = Path(text)
    if not p.exists():
        raise EdgekitError("file not found", path=p)
    return p


def save_checkpoint(path: str | Path, model: nn.Module, meta: CheckpointMeta, half: bool = False) -> Path:
    """Write weights (optionally FP16) and metadata atomically."""
    state = {}
    for k, v in model.state_dict().items():
        v = v.detach().cpu().contiguous()
        state[k] = v.half() if half and v.is_floating_point() else v
    path = Path(path)
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata={META_KEY: json.dumps(asdict(meta))})
    return path


def read_meta(path: str | Path) -> CheckpointMeta:
    p = resolve(path)
    try:
        with safe_open(str(p), framework="pt") as fh:
            header = fh.metadata() or {}
    except (SafetensorError, OSError) as exc:
        raise EdgekitError(f"not a safetensors file ({exc})", path=p) from None
    if META_KEY not in header:
        raise EdgekitError(f"safetensors file has no {META_KEY!r} metadata; use --model/--weights for "
                           "bring-your-own models", path=p)
    return CheckpointMeta.from_json(header[META_KEY], p)


def load_checkpoint(path: str | Path) -> tuple[nn.Module, CheckpointMeta]:
    """Rebuild the model from metadata and load its weights in float32, in eval mode."""
    p = resolve(path)
    meta = read_meta(p)
    try:
        model = build(meta.arch, input_size=meta.input_size, **meta.arch_kwargs)
    except (TypeError, ValueError, KeyError, RuntimeError, ZeroDivisionError) as exc:
        raise EdgekitError(f"cannot build {meta.arch!r} with {meta.arch_kwargs!r}: {exc}", path=p) from None
    try:
        state = {k: (v.float() if v.is_floating_point() else v) for k, v in load_file(str(p)).items()}
    except (SafetensorError, OSError) as exc:
        raise EdgekitError(f"unreadable weights ({exc})", path=p) from None
    if meta.pruned:
        resize_to_state_dict(model, state)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise EdgekitError(f"weights do not match architecture {meta.arch!r}: {first}", path=p) from None
    model.eval()
    return model, meta

"""Load a YAML file into a pydantic model; any problem becomes one line with file:line and the key path.

pydantic does the validation (types, ranges, unknown keys); this module only remembers on which line each key
sits (from PyYAML's node marks) so that an error can point at it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from ..errors import EdgekitError

M = TypeVar("M", bound=BaseModel)


def _lines(node, path=(), out=None) -> dict[tuple, int]:
    """Map each key path to its 1-based line."""
    out = {} if out is None else out
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            sub = (*path, key.value)
            out[sub] = key.start_mark.line + 1
            _lines(value, sub, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            out[(*path, i)] = item.start_mark.line + 1
            _lines(item, (*path, i), out)
    return out


def key_path(loc: tuple) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _describe(err: dict, model: type[BaseModel]) -> str:
    kind, given = err["type"], err.get("input")
    if kind == "extra_forbidden":
        return f"unknown key (given {given!r}); allowed keys: {', '.join(_allowed(model, err['loc']))}"
    if kind == "missing":
        return "required key is missing"
    msg = err["msg"].removeprefix("Value error, ")
    return f"{msg} (given {given!r})"


def _allowed(model: type[BaseModel], loc: tuple) -> list[str]:
    """Field names of the model that holds the offending key (best effort through lists and unions)."""
    current: object = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        fields = getattr(current, "model_fields", {})
        if part not in fields:
            return []
        current = _model_of(fields[part].annotation)
    return sorted(getattr(current, "model_fields", {}))


def _model_of(annotation):
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def load_yaml_model(path: str | Path, model: type[M]) -> M:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise EdgekitError(f"cannot read ({exc.strerror or exc})", path=path) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise EdgekitError(f"invalid YAML: {problem}", path=path,
                           line=mark.line + 1 if mark else None) from None
    if not isinstance(data, dict):
        raise EdgekitError(f"expected a mapping of keys at the top level, got {type(data).__name__}", path=path,
                           line=1)
    lines = _lines(node) if node is not None else {}
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err["loc"])
        line = next((lines[loc[:i]] for i in range(len(loc), -1, -1) if loc[:i] in lines), None)
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise EdgekitError(f"{key_path(loc)}: {_describe(err, model)}{more}", path=path, line=line) from None

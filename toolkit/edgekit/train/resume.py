"""Per-epoch training state on disk, so a killed run resumes where it stopped (no pickle).

Tensors (model, best weights, optimizer moments, the torch RNG) go into a safetensors file; everything else
(epoch counters, history, optimizer hyper-parameters, the scheduler's counters, a fingerprint of the config)
into its JSON metadata. The file is replaced atomically after each epoch.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from ..atomic import write_with
from ..errors import EdgekitError
from ..hashing import sha256_json

SCHEMA = "edgekit-train-state/1"


@dataclass
class LoopState:
    epoch: int = 0  # epochs finished
    best: float = float("inf")
    best_epoch: int = -1
    bad: int = 0
    history: list[dict] = field(default_factory=list)


def _flatten_optimizer(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for idx, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"opt.{idx}.{k}"] = v.contiguous()
            else:
                scalars[f"{idx}.{k}"] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict] = {}
    for key, v in tensors.items():
        if key.startswith("opt."):
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = v
    for key, v in meta["scalars"].items():
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = v
    return {"state": state, "param_groups": meta["param_groups"]}


def save_state(path: Path, config: dict, loop: LoopState, model: torch.nn.Module, best_state: dict | None,
               opt: torch.optim.Optimizer, sched) -> None:
    tensors = {f"model.{k}": v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    if best_state is not None:
        tensors.update({f"best.{k}": v.detach().contiguous().clone() for k, v in best_state.items()})
    opt_tensors, opt_meta = _flatten_optimizer(opt)
    tensors.update(opt_tensors)
    tensors["rng.torch"] = torch.get_rng_state()
    meta = {"schema": SCHEMA, "config": sha256_json(config), "loop": asdict(loop), "optimizer": opt_meta,
            "scheduler": sched.state_dict()}
    write_with(path, lambda tmp: save_file(tensors, str(tmp), metadata={"edgekit": json.dumps(meta, default=float)}))


def load_state(path: Path, config: dict, model: torch.nn.Module, opt: torch.optim.Optimizer, sched
               ) -> tuple[LoopState, dict | None]:
    """Restore model, optimizer, scheduler and RNG from `path`; returns the loop counters and best weights."""
    try:
        with safe_open(str(path), "pt") as f:
            meta = json.loads((f.metadata() or {}).get("edgekit", "{}"))
        tensors = load_file(str(path))
    except (SafetensorError, OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EdgekitError(f"not a training state file ({exc.__class__.__name__}: {exc})", path=path) from None
    if meta.get("schema") != SCHEMA:
        raise EdgekitError(f"not a training state file: schema {meta.get('schema')!r}, expected {SCHEMA!r}",
                           path=path)
    if meta["config"] != sha256_json(config):
        raise EdgekitError("the training state was written with other settings; resume with the same options, "
                           "or delete the file to start over", path=path)
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    best = {k[5:]: v for k, v in tensors.items() if k.startswith("best.")} or None
    opt.load_state_dict(_unflatten_optimizer(tensors, meta["optimizer"]))
    sched.load_state_dict(meta["scheduler"])
    torch.set_rng_state(tensors["rng.torch"])
    return LoopState(**meta["loop"]), best

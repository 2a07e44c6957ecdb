"""Channel importance criteria for pruning: a small registry of torch-pruning `Importance` objects by name.

A recipe names one (`prune: {importance: taylor}`); the pruner gets the object, as torch-pruning expects, and the
prune code asks the criterion what it needs (gradients) instead of comparing names. A new criterion is one
`register(...)` call. torch-pruning is imported only when a criterion is built, so reading a recipe stays light.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Criterion:
    name: str
    build: Callable[[], object]  # -> tp.importance.Importance, scores normalised within a group
    needs_gradients: bool = False  # scored from gradients: the prune loop backpropagates a few batches first
    # Scores that compare across groups (an estimate of the loss a channel carries), for the group-by-group trim;
    # None: the trim compares this criterion's scores within a group only.
    build_across_groups: Callable[[], object] | None = None
    without_gradients: str | None = None  # the criterion to use where no gradients exist (trial copies)

    def importance(self, gradients: bool = True):
        """The torch-pruning Importance object; without gradients, a gradient criterion's stand-in's."""
        if self.needs_gradients and not gradients:
            return criterion(self.without_gradients or "l2").importance()
        return self.build()

    def across_groups(self, gradients: bool):
        """Scores comparable across groups, or None where this criterion (or the lack of gradients) has none."""
        return self.build_across_groups() if self.build_across_groups and gradients else None


_REGISTRY: dict[str, Criterion] = {}


def register(c: Criterion) -> Criterion:
    _REGISTRY[c.name] = c
    return c


def names() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def criterion(name: str) -> Criterion:
    if name not in _REGISTRY:
        raise ValueError(f"unknown importance {name!r}; expected one of {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def _tp():
    import torch_pruning as tp

    return tp.importance


register(Criterion("l1", lambda: _tp().MagnitudeImportance(p=1)))
register(Criterion("l2", lambda: _tp().MagnitudeImportance(p=2)))
register(Criterion("bn_scale", lambda: _tp().BNScaleImportance()))
# Taylor scores summed over the group and left unnormalised estimate the loss a channel carries, comparable across
# groups; magnitudes are not.
register(Criterion("taylor", lambda: _tp().TaylorImportance(), needs_gradients=True, without_gradients="l2",
                   build_across_groups=lambda: _tp().TaylorImportance(group_reduction="sum", normalizer=None)))

"""The timing protocol, modelled on trtexec, onnxruntime_perf_test and LiteRT's benchmark_model.

Warm-up until both a run count and a duration are reached, then timed runs until both are reached again; each
trial runs in a fresh process (the sweep's job). Standard library only: the device-side runner uses it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Protocol:
    warmup_runs: int = 10
    warmup_s: float = 1.0
    runs: int = 50
    min_s: float = 2.0
    trials: int = 3
    batch_sizes: tuple[int, ...] = (1, 8, 32)
    throughput_runs: int = 10
    throughput_s: float = 1.0
    eval_images: int = 500
    interleave: bool = False  # trial-major across cells (round robin) instead of cell by cell
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["batch_sizes"] = list(self.batch_sizes)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Protocol:
        return cls(**{**d, "batch_sizes": tuple(d.get("batch_sizes", cls.batch_sizes))})


# Labeled data bench and the deploy decision score on when nothing else is named.
DEFAULT_DATA = "synth:test"
FULL = Protocol()
# The deploy decision: batch 1 only, three fresh-process trials per artifact, accuracy on 200 images. Enough to
# rank artifacts whose p50s differ by more than a few percent; `edgekit bench` (FULL) is the published figure.
DEPLOY = Protocol(warmup_runs=10, warmup_s=0.2, runs=50, min_s=0.5, trials=3, batch_sizes=(1,), throughput_runs=1,
                  throughput_s=0.0, eval_images=200, interleave=True)
# Smoke tests: enough to prove every cell runs, not enough to compare anything.
QUICK = Protocol(warmup_runs=3, warmup_s=0.1, runs=20, min_s=0.3, trials=2, batch_sizes=(1, 8), throughput_runs=3,
                 throughput_s=0.2, eval_images=64)

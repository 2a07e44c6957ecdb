"""A candidate that is worse on profile faces only: an ONNX model whose landmarks are shifted whenever its own
points say the head is turned past a yaw threshold (the nose far off the middle of the jaw's ends), for the gate's
per-slice test."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def worse_when_turned(src: Path, dst: Path, ratio: float, shift: float) -> Path:
    """`dst` = `src`, but where |2 x_nose - x_jaw0 - x_jaw16| / (x_jaw16 - x_jaw0) > `ratio` (points 30, 0, 16 of
    its own landmarks output, (N, 68, 2)), every point moves by `shift` (a fraction of the crop) in x and y."""
    m = onnx.load(str(src))
    out = next(o for o in m.graph.output if o.name == "landmarks")
    for node in m.graph.node:  # the model's own landmarks now feed the damage
        node.output[:] = ["raw_landmarks" if o == "landmarks" else o for o in node.output]
    c = lambda name, v: numpy_helper.from_array(np.asarray(v), name)  # noqa: E731
    m.graph.initializer.extend([c("idx_x", np.array(0, np.int64)), c("idx_jaw0", np.array(0, np.int64)),
                                c("idx_jaw16", np.array(16, np.int64)), c("idx_nose", np.array(30, np.int64)),
                                c("two", np.float32(2)), c("limit", np.float32(ratio)),
                                c("shift", np.full((1, 1, 1), shift, np.float32)), c("axes12", np.array([1, 2]))])
    g = lambda *a, **k: helper.make_node(*a, **k)  # noqa: E731
    m.graph.node.extend([
        g("Gather", ["raw_landmarks", "idx_x"], ["xs"], axis=2),  # (N, 68)
        g("Gather", ["xs", "idx_jaw0"], ["x0"], axis=1), g("Gather", ["xs", "idx_jaw16"], ["x16"], axis=1),
        g("Gather", ["xs", "idx_nose"], ["xn"], axis=1),
        g("Mul", ["xn", "two"], ["xn2"]), g("Sub", ["xn2", "x0"], ["d1"]), g("Sub", ["d1", "x16"], ["num"]),
        g("Sub", ["x16", "x0"], ["den"]), g("Div", ["num", "den"], ["r"]), g("Abs", ["r"], ["absr"]),
        g("Greater", ["absr", "limit"], ["turned"]), g("Cast", ["turned"], ["turnedf"], to=TensorProto.FLOAT),
        g("Unsqueeze", ["turnedf", "axes12"], ["mask"]), g("Mul", ["mask", "shift"], ["delta"]),
        g("Add", ["raw_landmarks", "delta"], [out.name]),
    ])
    onnx.checker.check_model(m)
    onnx.save(m, str(dst))
    return dst

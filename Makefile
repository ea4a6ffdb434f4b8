# Two entry points: `make demo` (install + run the demo sweep and its analysis) and
# `make test` (install + run the whole test suite). Both create .venv when it is missing.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/a2c-sweep run sweeps/demo.yaml
	$(BIN)/a2c-sweep analyze results/demo

test: $(STAMP)
	SDL_VIDEODRIVER=dummy $(BIN)/python -m pytest -x -q

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: $(STAMP)
	$(BIN)/python bench/epoch_throughput.py

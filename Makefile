# Two entry points: `make demo` (install + run the demo sweep and its analysis) and
# `make test` (install + run the whole test suite). Both create .venv when it is missing.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
# pytest-xdist workers: much of the suite waits (Ray start, subprocesses, signals), so two
# workers halve its wall time even on one core; the tests that start their own Ray cluster
# share one worker (xdist_group "ray_cluster")
TEST_WORKERS ?= 2

.PHONY: demo test install lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install -c constraints.txt -e '.[dev]'
	touch $(STAMP)

# the tests' independent references (rliable, playwright), the MuJoCo / Box2D envs of the
# generic-env tests (extra "mujoco") and bench/peers.py's Stable-Baselines3 (extra "bench",
# for its smoke test) stay out of the demo's install
$(TEST_STAMP): $(STAMP)
	$(BIN)/python -m pip install -c constraints.txt -e '.[dev,test,mujoco,bench]'
	touch $(TEST_STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/a2c-sweep run sweeps/demo.yaml
	$(BIN)/a2c-sweep analyze results/demo
	$(BIN)/a2c-sweep report results/demo

test: $(TEST_STAMP)
	@command -v chromium >/dev/null || { echo "installing Debian's chromium for the offline report test"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }
	SDL_VIDEODRIVER=dummy $(BIN)/python -m pytest -x -q -n $(TEST_WORKERS) --dist loadgroup

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: $(TEST_STAMP)
	$(BIN)/python bench/epoch_throughput.py
	$(BIN)/python bench/envs.py
	$(BIN)/python bench/peers.py

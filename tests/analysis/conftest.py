"""Shared fixtures: small hand-made results directories with known numbers."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

from fake_results import build_results, rows_from  # noqa: E402

from runner.spec import RunSpec, Sweep  # noqa: E402

# Final returns (last epoch of 10, so the final score is exactly this value) per
# (policy_lr, seed). Known answers, computed by hand in the tests:
#   0.1  : done [10, 20, 30, 100]                 IQM 25, median 25, mean 40
#   0.01 : done [50, 60, 70], seed 4 diverged     IQM 60 (n=3 trims nothing), median 60
#   0.001: done [1], failed (no epoch), running, pending
KNOWN_FINAL = {
    (0.1, 1): ("done", 10.0),
    (0.1, 2): ("done", 20.0),
    (0.1, 3): ("done", 30.0),
    (0.1, 4): ("done", 100.0),
    (0.01, 1): ("done", 50.0),
    (0.01, 2): ("done", 60.0),
    (0.01, 3): ("done", 70.0),
    (0.01, 4): ("diverged", 1000.0),
    (0.001, 1): ("done", 1.0),
    (0.001, 2): ("failed", None),
    (0.001, 3): ("running", 5.0),
    (0.001, 4): ("pending", None),
}


def known_run(run: RunSpec) -> tuple[str, list | None]:
    state, final = KNOWN_FINAL[(run.swept["policy_lr"], run.seed)]
    if final is None:
        return state, None
    epochs = 10 if state != "running" else 4
    return state, rows_from([0.0] * (epochs - 1) + [final])


@pytest.fixture
def known(tmp_path: Path) -> tuple[Path, Sweep]:
    """results/known: policy_lr in {0.1, 0.01, 0.001} x seeds 1-4, final scores above."""
    return build_results(
        tmp_path / "results", "known", {"policy_lr": [0.1, 0.01, 0.001]}, [1, 2, 3, 4], known_run
    )


@pytest.fixture
def grid2(tmp_path: Path) -> tuple[Path, Sweep]:
    """2 x 2 grid (policy_lr x value_lr) x 2 seeds: return = 10*epoch*policy_lr*100 + seed
    for 10 epochs of 100 env steps; value_lr has no effect."""

    def run_fn(run: RunSpec) -> tuple[str, list]:
        scale = run.swept["policy_lr"] * 100
        return "done", rows_from([scale * e + run.seed for e in range(1, 11)])

    grid = {"policy_lr": [0.1, 0.01], "value_lr": [0.01, 0.001]}
    return build_results(tmp_path / "results", "grid2", grid, [1, 2], run_fn)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")

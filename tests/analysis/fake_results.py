"""Hand-made results directories for the analysis tests, written through runner.store.Store
(the real writer of the layout), so the tests read exactly what a sweep leaves on disk."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from runner.spec import RunSpec, Sweep, load_spec
from runner.store import Store

RunFn = Callable[[RunSpec], tuple[str, Sequence[Mapping[str, float]] | None]]
"""run -> (state or "pending", epoch rows or None). Rows need epoch, env_steps, return_mean."""


def row(epoch: int, env_steps: int, return_mean: float) -> dict[str, float]:
    """A returns.csv row; columns other than the three given are plausible constants."""
    return {
        "epoch": epoch,
        "env_steps": env_steps,
        "episodes": 0 if math.isnan(return_mean) else 5,
        "return_mean": return_mean,
        "return_median": return_mean,
        "return_min": return_mean - 1.0 if math.isfinite(return_mean) else math.nan,
        "return_max": return_mean + 1.0 if math.isfinite(return_mean) else math.nan,
        "length_mean": 20.0,
        "value_loss": 1.0 / epoch,
        "policy_loss": -0.01,
        "entropy": 0.69,
        "explained_variance": 0.5,
        "wall_s": 0.1,
    }


def rows_from(returns: Sequence[float], steps_per_epoch: int = 100) -> list[dict[str, float]]:
    """Epochs 1..n with env_steps k * steps_per_epoch and the given return_mean values."""
    return [row(e, e * steps_per_epoch, r) for e, r in enumerate(returns, start=1)]


def write_sweep_yaml(directory: Path, name: str, grid: Mapping[str, list], seeds: list[int],
                     fixed: Mapping[str, Any] | None = None) -> Path:  # fmt: skip
    spec = {"name": name, **dict(fixed or {"epochs": 10}), "grid": dict(grid), "seeds": seeds}
    path = directory / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def build_results(
    root: Path,
    name: str,
    grid: Mapping[str, list],
    seeds: list[int],
    run_fn: RunFn,
    *,
    fixed: Mapping[str, Any] | None = None,
) -> tuple[Path, Sweep]:
    """Write <root>/<name>/ for a sweep: sweep.yaml, runs.csv and each run's files."""
    sweep = load_spec(write_sweep_yaml(root.parent / f"{root.name}-sweeps", name, grid, seeds,
                                       fixed))  # fmt: skip
    store = Store(root, name)
    store.init_sweep(sweep)
    for run in sweep.runs():
        state, rows = run_fn(run)
        if state == "pending":
            continue
        store.write_config(run.run_id, run.config, run.seed)
        if rows:
            store.append_returns(run.run_id, rows)
        store.write_status(run.run_id, state, epochs_done=len(rows or []))
    store.write_runs_csv_for(sweep)
    return store.dir, sweep


def learning_curve_sweep(root: Path, name: str = "fake-grid", *, epochs: int = 40,
                         seeds: Sequence[int] = (1, 2, 3)) -> Path:  # fmt: skip
    """A realistic 2x2x2 grid (policy_lr x value_lr x gamma) x 3 seeds: saturating learning
    curves whose speed and plateau depend on the parameters, noisy per seed, env steps that
    differ per run; one run diverged, one failed, one still running (shorter)."""
    grid = {"policy_lr": [0.1, 0.01], "value_lr": [0.01, 0.001], "gamma": [0.99, 0.999]}

    def run_fn(run: RunSpec) -> tuple[str, list[dict[str, float]]]:
        p = run.swept
        rng = np.random.default_rng(run.seed * 7919 + int(p["policy_lr"] * 1e4)
                                    + int(p["value_lr"] * 1e5) + int(p["gamma"] * 1e3))  # fmt: skip
        speed = {0.1: 0.12, 0.01: 0.04}[p["policy_lr"]] * {0.01: 1.0, 0.001: 0.7}[p["value_lr"]]
        plateau = 195.0 if p["gamma"] == 0.99 else 170.0
        plateau -= 25.0 * (p["value_lr"] == 0.001)
        plateau += rng.normal(0, 12)
        n = epochs
        state = "done"
        if (p["policy_lr"], p["value_lr"], p["gamma"], run.seed) == (0.1, 0.001, 0.999, 2):
            state, n = "diverged", epochs // 3
        if (p["policy_lr"], p["value_lr"], p["gamma"], run.seed) == (0.01, 0.01, 0.99, 3):
            state, n = "failed", 0
        if (p["policy_lr"], p["value_lr"], p["gamma"], run.seed) == (0.01, 0.001, 0.999, 1):
            state, n = "running", epochs * 2 // 3
        steps, rows = 0, []
        for e in range(1, n + 1):
            mean = 20 + (plateau - 20) * (1 - math.exp(-speed * e)) + rng.normal(0, 8)
            steps += int(4000 - rng.integers(0, 200))  # episode-end dummies are not steps
            rows.append(row(e, steps, float(min(200.0, mean))))
        return state, rows

    results, _ = build_results(root, name, grid, list(seeds), run_fn,
                               fixed={"epochs": epochs})  # fmt: skip
    return results


def dedent(text: str) -> str:
    return textwrap.dedent(text)

"""Hand-made results directories for the analysis tests, written through runner.store.Store
(the real writer of the layout), so the tests read exactly what a sweep leaves on disk."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from a2c_core.config import A2CConfig
from runner.spec import RunSpec, Sweep, load_spec
from runner.store import Store

RunFn = Callable[[RunSpec], tuple[str, Sequence[Mapping[str, float]] | None]]
"""run -> (state or "pending", epoch rows or None). Rows need epoch, env_steps, return_mean.
A "stopped" run (racing) is stopped at its last row's epoch, its rung."""


def isclose(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12)


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


def keep_epochs(path: Path, keep: Sequence[int]) -> None:
    """Rewrite a returns.csv keeping the header and the rows of the epochs in ``keep``."""
    header, *rows = path.read_text().splitlines()
    kept = [r for r in rows if int(r.split(",", 1)[0]) in set(keep)]
    path.write_text("\n".join([header, *kept]) + "\n")


def write_sweep_yaml(
    directory: Path,
    name: str,
    grid: Mapping[str, list],
    seeds: list[int],
    fixed: Mapping[str, Any] | None = None,
) -> Path:
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
    sweep = load_spec(
        write_sweep_yaml(root.parent / f"{root.name}-sweeps", name, grid, seeds, fixed)
    )
    store = Store(root, name)
    store.init_sweep(sweep)
    for run in sweep.runs():
        state, rows = run_fn(run)
        if state == "pending":
            continue
        store.write_config(run.run_id, run.config, run.seed)
        if rows:
            store.append_returns(run.run_id, rows)
        epochs = len(rows or [])
        if state == "stopped":  # as racing leaves it: rung and reason
            store.write_status(run.run_id, state, epochs_done=epochs, rung=epochs, reason=REASON)
        else:
            store.write_status(run.run_id, state, epochs_done=epochs)
    store.write_runs_csv_for(sweep)
    return store.dir, sweep


REASON = "IQM 21.3 [19.8, 23.0] below the lower bound 150.2 of the 1st best (...) at epoch R"
"""the ``reason`` of the stopped runs :func:`build_results` writes."""


def stop_status(path: Path, rung: int | None) -> None:
    """Rewrite a finished run's status.json as stopped by racing at ``rung`` (its rows are
    left as they are); ``rung`` None: a status without rung or reason (an old or hand-edited
    one)."""
    status = json.loads(path.read_text(encoding="utf-8"))
    status.pop("rung", None)
    status.pop("reason", None)
    status["state"] = "stopped"
    if rung is not None:
        status.update(epochs_done=rung, rung=rung, reason=REASON)
    path.write_text(json.dumps(status, indent=2) + "\n", encoding="utf-8")


def learning_curve_sweep(
    root: Path,
    name: str = "fake-grid",
    *,
    epochs: int = 40,
    seeds: Sequence[int] = (1, 2, 3),
    stopped: Mapping[tuple[float, float, float], int] | None = None,
) -> Path:
    """A realistic 2x2x2 grid (policy_lr x value_lr x gamma) x 3 seeds: saturating learning
    curves whose speed and plateau depend on the parameters, noisy per seed, env steps that
    differ per run; one run diverged, one failed, one still running (shorter).

    ``stopped``: (policy_lr, value_lr, gamma) -> rung: every seed of those configurations is
    stopped by racing at that epoch (its rows end there), as the runner leaves them."""
    grid = {"policy_lr": [0.1, 0.01], "value_lr": [0.01, 0.001], "gamma": [0.99, 0.999]}

    def run_fn(run: RunSpec) -> tuple[str, list[dict[str, float]]]:
        p = run.swept
        rng = np.random.default_rng(
            run.seed * 7919
            + int(p["policy_lr"] * 1e4)
            + int(p["value_lr"] * 1e5)
            + int(p["gamma"] * 1e3)
        )
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
        rung = (stopped or {}).get((p["policy_lr"], p["value_lr"], p["gamma"]))
        if rung is not None:
            state, n = "stopped", rung
        steps, rows = 0, []
        for e in range(1, n + 1):
            mean = 20 + (plateau - 20) * (1 - math.exp(-speed * e)) + rng.normal(0, 8)
            steps += int(4000 - rng.integers(0, 200))  # episode-end dummies are not steps
            rows.append(row(e, steps, float(min(200.0, mean))))
        return state, rows

    results, _ = build_results(root, name, grid, list(seeds), run_fn, fixed={"epochs": epochs})
    return results


def write_policy(run_dir: Path, env: str, seed: int = 0) -> Path:
    """policy.pt as the engine writes it (format 1), with random parameters."""
    import torch

    rng = np.random.default_rng(seed)
    config = A2CConfig(env=env, hidden=16)
    if env.startswith("CartPoleSwingUp"):
        params = {
            "W1": rng.normal(0, 0.5, (5, 16)),
            "b1": np.zeros(16),
            "W2": rng.normal(0, 0.5, (16, 1)),
            "b2": np.zeros(1),
            "log_std": np.full(1, -0.5),
        }
    else:
        params = {"W": rng.normal(0, 1.0, (4, 2)), "b": np.zeros(2)}
    run_dir.mkdir(parents=True, exist_ok=True)
    state = {
        "format": 1,
        "config": config.to_dict(),
        "seed": seed,
        "params": {k: torch.tensor(v, dtype=torch.float32) for k, v in params.items()},
    }
    torch.save(state, run_dir / "policy.pt")
    return run_dir


def gif_frames(path: Path) -> int:
    from PIL import Image

    with Image.open(path) as image:
        return image.n_frames

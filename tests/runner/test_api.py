"""The Python API: run_sweep from a dict, resume by calling it again, typed errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner import SweepError, SweepResult, run_sweep
from runner.spec import load_spec

SPEC = {
    "name": "api",
    "env": "CartPole-v0",
    "num_envs": 2,
    "steps_per_epoch": 64,
    "value_iters": 2,
    "epochs": 4,
    "grid": {"policy_lr": [0.1, 0.01]},
    "seeds": {"count": 2},
    "execution": {"num_cpus": 1},
}


@pytest.mark.timeout(240)
def test_run_sweep_from_a_dict_then_resume(tmp_path: Path) -> None:
    lines: list[str] = []
    events = []
    result = run_sweep(SPEC, tmp_path / "results", log=lines.append, on_event=events.append)
    assert isinstance(result, SweepResult) and result.ok
    assert result.runs == 4 and result.trained == 4 and result.already_finished == 0
    assert result.counts == {
        "done": 4,
        "stopped": 0,
        "failed": 0,
        "diverged": 0,
        "running": 0,
        "pending": 0,
    }
    assert result.results_dir == tmp_path / "results" / "api"
    assert any("4 to train" in line for line in lines), lines
    assert events and events[-1].epochs_done == 16 and events[-1].done == 4
    runs = load_spec(SPEC).runs()
    for r in runs:
        rows = (result.results_dir / "runs" / r.run_id / "returns.csv").read_text().splitlines()
        assert [int(x.split(",")[0]) for x in rows[1:]] == [1, 2, 3, 4]
    again = run_sweep(SPEC, tmp_path / "results", log=None)
    assert again.trained == 0 and again.already_finished == 4 and again.ok
    assert again.ray_start_s == 0.0  # nothing to train: Ray is never started


def test_run_sweep_bad_input_raises_one_line(tmp_path: Path) -> None:
    with pytest.raises(SweepError, match=r"<dict>: grid.polcy_lr: unknown"):
        run_sweep({**SPEC, "grid": {"polcy_lr": [0.1]}}, tmp_path / "results", log=None)
    with pytest.raises(SweepError, match="exceed the limit of 3 runs"):
        run_sweep(SPEC, tmp_path / "results", log=None, max_runs=3)
    with pytest.raises(SweepError, match="malformed Ray address"):
        run_sweep(SPEC, tmp_path / "results", log=None, address="not an address")
    assert not (tmp_path / "results").exists()

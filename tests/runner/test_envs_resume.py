"""Sweeps over the envs beyond CartPole, killed with SIGKILL mid-sweep and relaunched: every
returns.csv equals the uninterrupted sweep's (except ``wall_s``).

- ``classic``: ``env`` as a grid key over Acrobot-v1 and Pendulum-v1 (own pack envs, fused
  rollouts; the two envs form separate packs);
- ``knobs``: Pendulum-v1 runs with entropy bonus, clipping, init_log_std, obs_norm and two
  policy shapes (issue #15);
- ``mujoco``: HalfCheetah-v5 through the generic gymnasium path and its environment-state
  protocol (simulator state, the env's RNG, the TimeLimit counter), a short run.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from test_launch import (
    _checkpoint_epoch,
    assert_epochs_once,
    driver,
    read_rows,
    row_count,
    run_cli,
    run_dir,
    session_pids,
    state_of,
    wait_for,
    without_wall,
    write_sweep,
)

from runner.spec import load_spec

SWEEPS = {
    "classic": {
        "name": "envs-classic",
        "num_envs": 4,
        "steps_per_epoch": 500,
        "value_iters": 40,
        "epochs": 200,
        "grid": {"env": ["Acrobot-v1", "Pendulum-v1"], "policy_lr": [0.05, 0.01]},
        "seeds": [1],
        "execution": {"checkpoint_every_s": 0.2, "num_cpus": 2},
    },
    "knobs": {  # issue #15's per-run knobs, obs statistics in the checkpoint, two policy shapes
        "name": "envs-knobs",
        "env": "Pendulum-v1",
        "num_envs": 4,
        "steps_per_epoch": 500,
        "value_iters": 20,
        "epochs": 150,
        "entropy_coef": 0.01,
        "max_grad_norm": 0.5,
        "init_log_std": -0.5,
        "grid": {"obs_norm": [False, True], "policy_hidden": [[64], [16, 16]]},
        "seeds": [1],
        "execution": {"checkpoint_every_s": 0.2, "num_cpus": 2},
    },
    "mujoco": {
        "name": "envs-mujoco",
        "env": "HalfCheetah-v5",
        "num_envs": 2,
        "steps_per_epoch": 150,  # not a divisor of the 1000-step episodes: checkpoints and
        "value_iters": 5,  # kills land mid-episode
        "epochs": 40,
        "grid": {"policy_lr": [0.01, 0.001]},
        "seeds": [1],
        "execution": {"checkpoint_every_s": 0.2, "num_cpus": 2},
    },
}


def _rows_by_run(results: Path, spec_path: Path, name: str, epochs: int) -> dict[str, list]:
    out = {}
    for r in load_spec(spec_path).runs():
        assert state_of(results, name, r.run_id)["state"] == "done", r.run_id
        rows = read_rows(run_dir(results, name, r.run_id) / "returns.csv")
        assert_epochs_once(rows, epochs, r.run_id)
        out[r.run_id] = without_wall(rows)
    return out


@pytest.mark.timeout(420)
@pytest.mark.parametrize("case", sorted(SWEEPS))
def test_sigkill_mid_sweep_then_relaunch_is_bitwise(tmp_path: Path, case: str) -> None:
    if case == "mujoco":
        pytest.importorskip("mujoco", reason="the mujoco extra: pip install -e '.[mujoco]'")
    spec = SWEEPS[case]
    name, epochs = spec["name"], spec["epochs"]
    path = write_sweep(tmp_path / f"{case}.yaml", spec)
    runs = load_spec(path).runs()
    envs = {r.config.env for r in runs}
    assert len(envs) == (2 if case == "classic" else 1)

    ref = tmp_path / "reference"
    out = run_cli("run", path, "--results", ref, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    want = _rows_by_run(ref, path, name, epochs)

    results = tmp_path / "results"
    dirs = [run_dir(results, name, r.run_id) for r in runs]
    total = epochs * len(runs)
    with driver(["run", path, "--results", results], tmp_path / "first.log") as proc:
        wait_for(
            lambda: (
                any((d / "checkpoint.pt").exists() for d in dirs)
                and sum(row_count(d / "returns.csv") for d in dirs) >= 0.3 * total
            ),
            timeout=240,
            what="rows and a checkpoint",
            interval=0.05,
        )
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and its embedded Ray
        proc.wait(timeout=30)
        wait_for(lambda: not session_pids(proc.pid), 30, "the embedded Ray to end")
    assert proc.returncode == -signal.SIGKILL
    checkpoints = [_checkpoint_epoch(d / "checkpoint.pt") for d in dirs]
    unfinished = [row_count(d / "returns.csv") < epochs for d in dirs]
    # at least one run is resumed from a mid-sweep checkpoint (not redone from scratch)
    assert any(0 < c < epochs and u for c, u in zip(checkpoints, unfinished, strict=True))

    out = run_cli("run", path, "--results", results, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "from checkpoints" in out.stdout, out.stdout
    got = _rows_by_run(results, path, name, epochs)
    assert got.keys() == want.keys()
    for run_id in want:
        assert got[run_id] == want[run_id], f"{case} {run_id}: rows differ after the relaunch"

"""Files of obs_norm runs (issue #15, attacker review): observation statistics damaged in a
checkpoint.pt are never resumed from (the run is recomputed), and policy.pt's statistics
are read, checked and used by `a2c-sweep gif`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from a2c_core.results import ResultsFileError, read_policy
from runner import run_sweep
from runner.spec import load_spec

SPEC = {
    "name": "normed",
    "env": "CartPole-v1",
    "num_envs": 2,
    "steps_per_epoch": 64,
    "value_iters": 2,
    "epochs": 3,
    "obs_norm": True,
    "grid": {"entropy_coef": [0.0, 0.01]},
    "seeds": [1],
    "execution": {"num_cpus": 1},
}


def _rows(results: Path, run_id: str) -> list[str]:
    lines = (results / "normed" / "runs" / run_id / "returns.csv").read_text().splitlines()
    return [line.rsplit(",", 1)[0] for line in lines]  # wall_s is the last column


@pytest.mark.timeout(300)
@pytest.mark.parametrize("damage", ["missing", "nan", "shape"])
def test_damaged_obs_statistics_in_a_checkpoint_are_never_resumed_from(tmp_path, damage, capfd):
    straight = run_sweep({**SPEC, "epochs": 5}, tmp_path / "straight", log=None)
    assert straight.ok
    first = run_sweep(SPEC, tmp_path / "results", log=None)
    assert first.ok
    runs = load_spec(SPEC).runs()
    victim = runs[0].run_id
    path = tmp_path / "results" / "normed" / "runs" / victim / "checkpoint.pt"
    ckpt = torch.load(path, weights_only=True)
    if damage == "missing":
        del ckpt["obs_rms"]
    elif damage == "nan":
        ckpt["obs_rms"]["mean"][0] = float("nan")
    else:
        ckpt["obs_rms"]["var"] = ckpt["obs_rms"]["var"][:2]
    torch.save(ckpt, path)
    lines: list[str] = []
    again = run_sweep({**SPEC, "epochs": 5}, tmp_path / "results", log=lines.append)
    assert again.ok and again.counts["done"] == 2, again.counts
    said = [
        line
        for line in [*lines, *capfd.readouterr().err.splitlines()]
        if victim in line and "damaged" in line
    ]  # a warning: on stderr
    assert len(said) == 1 and "recomputing from epoch 0" in said[0], lines
    for r in runs:  # the damaged run recomputed, the other extended: both as if straight
        assert _rows(tmp_path / "results", r.run_id) == _rows(tmp_path / "straight", r.run_id)


@pytest.mark.timeout(300)
def test_policy_pt_statistics_are_read_checked_and_played(tmp_path):
    from analysis.gif import run_episodes
    from analysis.load import AnalysisError

    assert run_sweep(SPEC, tmp_path / "results", log=None).ok
    run_id = load_spec(SPEC).runs()[1].run_id
    path = tmp_path / "results" / "normed" / "runs" / run_id / "policy.pt"
    data = read_policy(path)
    assert set(data["obs_rms"]) == {"count", "mean", "var"}
    assert data["obs_rms"]["count"][0] == 3 * 2 * 64
    played = run_episodes(data, deterministic=True, seed=0, max_steps=40)[0]
    raw = run_episodes({**data, "obs_rms": {"count": np.zeros(1), "mean": np.zeros(4),
                                            "var": np.ones(4)}},
                       deterministic=True, seed=0, max_steps=40)[0]  # fmt: skip
    assert played.frames[-1].tobytes() != raw.frames[-1].tobytes()  # the statistics act
    saved = torch.load(path, weights_only=True)
    saved["obs_rms"]["var"][1] = -1.0
    torch.save(saved, path)
    with pytest.raises(ResultsFileError, match="corrupt policy.pt of an obs_norm run"):
        read_policy(path)
    with pytest.raises(AnalysisError, match="obs_norm run: observation statistics have shapes"):
        run_episodes({**data, "obs_rms": {**data["obs_rms"], "mean": np.zeros(3)}})
    with pytest.raises(AnalysisError, match="do not fit the policy"):
        run_episodes({**data, "params": {**data["params"], "W": np.zeros((4, 1))}})
    with pytest.raises(AnalysisError, match="bad config.*activation"):
        run_episodes({**data, "config": {**data["config"], "activation": "sigmoid"}})

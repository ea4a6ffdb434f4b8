"""Workers of the embedded Ray run at the driver's own priority by default (Ray's own default
is nice 15: on a shared workstation a sweep then got ~4 % of a core next to two busy
processes), and `execution.worker_niceness` lowers it on request. Each worker reports its
niceness with its peak memory; the test reads it."""

from __future__ import annotations

import os

import pytest

from runner import run_sweep

SPEC = {
    "name": "nice",
    "env": "CartPole-v0",
    "num_envs": 2,
    "steps_per_epoch": 64,
    "value_iters": 2,
    "epochs": 2,
    "grid": {"policy_lr": [0.1, 0.01]},
    "seeds": [1],
    "execution": {"num_cpus": 1},
}


@pytest.mark.timeout(300)
@pytest.mark.parametrize("asked", [None, 4])
def test_worker_niceness(tmp_path, asked) -> None:
    spec = dict(SPEC)
    if asked is not None:
        spec["execution"] = {**SPEC["execution"], "worker_niceness": asked}
    result = run_sweep(spec, tmp_path, log=None)
    assert result.ok and result.worker_nice, result
    driver = os.getpriority(os.PRIO_PROCESS, 0)
    want = driver if asked is None else min(19, driver + asked)
    assert set(result.worker_nice.values()) == {want}, (result.worker_nice, driver)


@pytest.mark.parametrize("bad", [-1, 20, 1.5, True, "low"])
def test_bad_worker_niceness_names_the_key(bad) -> None:
    from runner.spec import SpecError, load_spec

    with pytest.raises(SpecError, match=r"execution\.worker_niceness: expected an integer from 0"):
        load_spec({**SPEC, "execution": {"worker_niceness": bad}})

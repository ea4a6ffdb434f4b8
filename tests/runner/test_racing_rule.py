"""Racing's rule on synthetic scores (runner.racing) and the `racing:` block's validation
(a2c_core.spec). No Ray, no training: tests/runner/test_racing.py runs raced sweeps."""

from __future__ import annotations

import math
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from a2c_core.spec import Racing, SpecError, load_spec
from runner.racing import (
    RunRows,
    describe,
    interval,
    judge,
    scores_at,
    seed_score,
    simulate,
    warning,
)

BIN = Path(sys.executable).parent


def racing(**kw) -> Racing:
    base = {"rungs": (10,), "keep_top": 1, "min_seeds_done": 3}
    return Racing(**{**base, **kw})


def spread(center: float, n: int = 5, width: float = 2.0) -> list[float]:
    return [center + width * (i - (n - 1) / 2) / n for i in range(n)]


# --------------------------------------------------------------------------- the rule


def test_a_clearly_worse_configuration_is_stopped_and_the_best_is_not() -> None:
    v = judge({"good": spread(150), "bad": spread(20)}, racing(), 10)
    assert v["bad"].stop and not v["good"].stop
    assert v["bad"].high < v["good"].low  # the reason the rule gives
    assert "below the lower bound" in v["bad"].reason and "epoch 10" in v["bad"].reason
    assert v["good"].n == v["bad"].n == 5


def test_overlapping_intervals_stop_nothing() -> None:
    # bimodal seeds (swing-up like): wide intervals overlap, racing must not decide
    v = judge({"a": [-28, -28, 300, 320, -27], "b": [-28, -27, -28, 310, -28]}, racing(), 10)
    assert not any(x.stop for x in v.values())


@pytest.mark.parametrize("keep_top", [1, 2, 3])
def test_never_stops_the_best_keep_top(keep_top: int) -> None:
    # the 2nd and 3rd are clearly below the 1st: only keep_top protects them
    scores = {"c1": spread(200), "c2": spread(100), "c3": spread(50), "c4": spread(10)}
    v = judge(scores, racing(keep_top=keep_top), 10)
    order = ["c1", "c2", "c3", "c4"]
    assert [k for k in order if not v[k].stop] == order[:keep_top]
    # the bar is the keep_top-th best's lower bound
    bar = v[order[keep_top - 1]].low
    assert all(v[k].high < bar for k in order[keep_top:])


def test_never_judged_before_min_seeds_done() -> None:
    scores = {"good": spread(150, n=5), "few": spread(10, n=2)}
    v = judge(scores, racing(min_seeds_done=3), 10)
    assert not v["few"].stop and "fewer than min_seeds_done" in v["few"].reason
    v = judge(scores, racing(min_seeds_done=2), 10)
    assert v["few"].stop


def test_a_configuration_with_too_few_seeds_is_no_bar() -> None:
    # "lucky" has 2 great seeds; with min_seeds_done 3 it cannot set the bar for the others
    scores = {"lucky": [500.0, 510.0], "mid": spread(100, width=40), "low": spread(90, width=40)}
    v = judge(scores, racing(min_seeds_done=3), 10)
    assert not v["mid"].stop and not v["low"].stop


def test_threshold_stops_below_it_but_never_the_top() -> None:
    scores = {"a": spread(50, width=30), "b": spread(45, width=30), "c": spread(20, width=30)}
    assert not judge(scores, racing(keep_top=1), 10)["b"].stop  # b overlaps a
    v = judge(scores, racing(keep_top=1, threshold=100.0), 10)
    assert not v["a"].stop and v["b"].stop and v["c"].stop
    assert "threshold 100" in v["b"].reason
    v = judge(scores, racing(keep_top=3, threshold=100.0), 10)
    assert not any(x.stop for x in v.values())


def test_verdicts_do_not_depend_on_order_and_repeat_exactly() -> None:
    rng = random.Random(0)
    scores = {f"cfg{i}": [rng.gauss(20 * i, 15) for _ in range(5)] for i in range(6)}
    first = judge(scores, racing(), 10)
    shuffled = {k: rng.sample(v, len(v)) for k, v in reversed(list(scores.items()))}
    again = judge(shuffled, racing(), 10)
    assert first == again
    assert any(x.stop for x in first.values()) and not all(x.stop for x in first.values())


def test_interval_is_a_percentile_bootstrap_over_seeds() -> None:
    x = [1.0, 2.0, 3.0, 10.0, 11.0, 12.0, 50.0]
    est, low, high = interval(x, racing(statistic="mean", resamples=4000), 10)
    assert est == pytest.approx(np.mean(x))
    # against an independent bootstrap of the mean (same resample count, other draws)
    rng = np.random.default_rng(123)
    boots = np.asarray(x)[rng.integers(0, len(x), (20000, len(x)))].mean(axis=1)
    ref_low, ref_high = np.quantile(boots, [0.025, 0.975])
    spread_ = ref_high - ref_low
    assert abs(low - ref_low) < 0.1 * spread_ and abs(high - ref_high) < 0.1 * spread_
    # a wider confidence gives a wider interval; identical seeds give a point
    _, low99, high99 = interval(x, racing(statistic="mean", confidence=0.99), 10)
    assert low99 < low and high99 > high
    assert interval([5.0] * 4, racing(), 10) == (5.0, 5.0, 5.0)


def test_iqm_is_the_interquartile_mean() -> None:
    from scipy import stats

    x = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 100.0]
    est, *_ = interval(x, racing(statistic="iqm"), 10)
    assert est == pytest.approx(stats.trim_mean(x, 0.25)) == pytest.approx(3.5)
    est, *_ = interval(x, racing(statistic="median"), 10)
    assert est == pytest.approx(3.5)


def test_seed_score_window() -> None:
    returns = [float(e) for e in range(1, 31)]  # return_mean = epoch number
    assert seed_score(returns, 10, racing(window=0.1)) == 10.0  # ceil(0.1 x 10) = 1 epoch
    assert seed_score(returns, 20, racing(window=0.1)) == 19.5  # epochs 19, 20
    assert seed_score(returns, 10, racing(window=4)) == 8.5  # epochs 7-10
    assert seed_score(returns, 10, racing(window=1.0)) == 5.5  # every epoch up to the rung
    # non-finite rows are skipped; a run that diverged before the rung scores its last rows
    assert seed_score([1.0, math.nan, 3.0], 3, racing(window=3)) == 2.0
    assert seed_score([4.0, 6.0], 10, racing(window=2)) == 5.0
    assert seed_score([math.nan], 1, racing(window=1)) is None


def test_scores_at_takes_the_runs_in_the_race() -> None:
    r = racing(window=1)
    runs = {
        "a1": RunRows("A", [1.0] * 12, "running"),
        "a2": RunRows("A", [2.0] * 10, "running"),  # waiting at the rung
        "a3": RunRows("A", [3.0] * 9, "running"),  # behind the rung: not scored yet
        "a4": RunRows("A", [4.0] * 4, "diverged"),  # diverged before it: scored on its rows
        "a5": RunRows("A", [5.0] * 12, "failed"),
        "b1": RunRows("B", [7.0] * 5, "stopped", 5),  # B left the race at epoch 5
        "b2": RunRows("B", [8.0] * 3, "diverged"),
        "c1": RunRows("C", [9.0] * 10, "stopped", 10),  # stopped at this rung: still in it
    }
    assert scores_at(runs, r, 10) == {"A": [1.0, 2.0, 4.0], "C": [9.0]}


def test_simulate_replays_the_rungs_in_order() -> None:
    # A learns, B plateaus at 50 after epoch 5, C never learns
    def run(cfg: str, f) -> RunRows:
        return RunRows(cfg, [f(e) for e in range(1, 41)], "done")

    runs = {}
    for s in range(5):
        runs[f"a{s}"] = run("A", lambda e, s=s: 10.0 * e + 5 * s)
        runs[f"b{s}"] = run("B", lambda e, s=s: min(10.0 * e, 50.0) + 5 * s)
        runs[f"c{s}"] = run("C", lambda e, s=s: 10.0 + s)
    sim = simulate(runs, racing(rungs=(4, 20), window=1))
    # at 4: A and B alike (40-60), C (10-14) below; at 20: A (200-220) far above B (50-70)
    assert sim.stopped_at == {"C": 4, "B": 20}
    assert sim.full_run_epochs == 15 * 40
    assert sim.run_epochs == 5 * 40 + 5 * 20 + 5 * 4
    assert set(sim.verdicts) == {4, 20} and "C" not in sim.verdicts[20]


# --------------------------------------------------------------------------- the spec


def spec(tmp_path: Path, racing_block, **more) -> Path:
    data = {"name": "r", "env": "CartPole-v0", "epochs": 100, "grid": {"policy_lr": [0.1, 0.01]},
            "seeds": [1, 2, 3], **more}  # fmt: skip
    if racing_block is not ...:
        data["racing"] = racing_block
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_default_rungs_fit_short_sweeps(tmp_path: Path) -> None:
    # the defaults (0.1, 0.25 of epochs) keep the rungs that exist: 10 epochs -> 1 and 3
    # (half up), 5 epochs -> 1 only; 1 epoch leaves none, said naming `racing`
    assert load_spec(spec(tmp_path, {}, epochs=10)).racing.rungs == (1, 3)
    assert load_spec(spec(tmp_path, {}, epochs=5)).racing.rungs == (1,)
    with pytest.raises(SpecError, match=r"racing: epochs: 1 leaves no epoch for a rung"):
        load_spec(spec(tmp_path, {}, epochs=1))


def test_identical_configurations_never_stop_each_other() -> None:
    # common random numbers: equal scores, equal intervals, even at the lowest confidence
    rng = random.Random(3)
    for trial in range(30):
        same = [rng.gauss(100, 30) for _ in range(5)]
        scores = {f"c{i}": rng.sample(same, 5) for i in range(8)}
        v = judge(scores, racing(confidence=0.5, resamples=100, seed=trial), 10)
        assert not any(x.stop for x in v.values())


def test_racing_defaults_and_forms(tmp_path: Path) -> None:
    assert load_spec(spec(tmp_path, ...)).racing is None
    assert load_spec(spec(tmp_path, False)).racing is None
    default = load_spec(spec(tmp_path, {})).racing
    assert default == load_spec(spec(tmp_path, True)).racing
    assert default.rungs == (10, 25) and default.keep_top == 3 and default.statistic == "iqm"
    r = load_spec(spec(tmp_path, {"rungs": [60, 0.2, 7], "threshold": 50, "window": 3})).racing
    assert r.rungs == (7, 20, 60) and r.threshold == 50.0 and r.window == 3
    # racing is not part of any run id, and not of what makes a relaunch the same experiment
    plain = load_spec(spec(tmp_path, ...))
    raced = load_spec(spec(tmp_path, {"keep_top": 1}))
    assert [r.run_id for r in plain.runs()] == [r.run_id for r in raced.runs()]
    assert "racing at epochs 10, 25" in describe(default)
    assert warning(default, 2) is not None and warning(default, 3) is None


BAD = [
    (None, "racing: expected a mapping"),
    ([10, 20], "racing: expected a mapping"),
    ({"rungs": []}, "racing.rungs: expected a non-empty list"),
    ({"rungs": "10"}, "racing.rungs: expected a non-empty list"),
    ({"rungs": [100]}, "racing.rungs[0]: rung at epoch 100 is not between 1 and 99"),
    ({"rungs": [0]}, "racing.rungs[0]: rung at epoch 0"),
    ({"rungs": [10, 1.5]}, "racing.rungs[1]: expected an epoch"),
    ({"rungs": [10, 0.1]}, "racing.rungs[1]: rung at epoch 10 given twice (10 and 0.1 of epochs"),
    ({"rungs": [True]}, "racing.rungs[0]: expected an epoch"),
    ({"keeptop": 2}, "racing.keeptop: unknown racing option (did you mean 'keep_top'?)"),
    ({"statistic": "max"}, "racing.statistic: expected one of iqm, median, mean"),
    ({"confidence": 1.5}, "racing.confidence: expected a number in [0.5, 1)"),
    ({"confidence": 0.3}, "racing.confidence: expected a number in [0.5, 1)"),
    ({"resamples": 10**12}, "racing.resamples: must be <= 100,000"),
    ({"confidence": "high"}, "racing.confidence"),
    ({"resamples": 10}, "racing.resamples: must be >= 100"),
    ({"keep_top": 0}, "racing.keep_top: must be >= 1"),
    ({"keep_top": 1.5}, "racing.keep_top: expected an integer"),
    ({"min_seeds_done": 1}, "racing.min_seeds_done: must be >= 2"),
    ({"seed": -1}, "racing.seed: must be >= 0"),
    ({"threshold": "x"}, "racing.threshold: expected a number or null"),
    ({"threshold": float("nan")}, "racing.threshold: expected a number or null"),
    ({"window": 0}, "racing.window: must be >= 1 epoch"),
    ({"window": 1.5}, "racing.window: expected a number of epochs"),
]


@pytest.mark.parametrize(("block", "message"), BAD)
def test_bad_racing_blocks_name_the_key(tmp_path: Path, block, message: str) -> None:
    with pytest.raises(SpecError) as info:
        load_spec(spec(tmp_path, block))
    text = str(info.value)
    assert message in text and "\n" not in text


def cli() -> list[str]:
    exe = BIN / "a2c-sweep"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "runner.cli"]


@pytest.mark.parametrize(("block", "key"), [({"keep_top": -1}, "racing.keep_top"),
                                            ({"rungs": [500]}, "racing.rungs[0]"),
                                            ({"bogus": 1}, "racing.bogus")])  # fmt: skip
def test_cli_exits_2_naming_the_racing_key(tmp_path: Path, block, key: str) -> None:
    path = spec(tmp_path, block)
    results = tmp_path / "results"
    out = subprocess.run([*cli(), "run", str(path), "--results", str(results)],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.returncode == 2, out.stdout + out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and key in lines[0], out.stderr
    assert not results.exists()  # nothing written for a refused sweep


def test_dry_run_says_what_racing_does(tmp_path: Path) -> None:
    path = spec(tmp_path, {"rungs": [0.2], "keep_top": 2}, seeds=[1, 2])
    out = subprocess.run([*cli(), "run", str(path), "--dry-run", "--results", str(tmp_path)],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "racing at epochs 20" in out.stdout and "the 2nd best" in out.stdout
    assert "fewer than min_seeds_done (3): racing will stop nothing" in out.stdout


def test_fates_seal_a_configuration_for_its_late_seeds() -> None:
    from runner.racing import fates

    runs = {
        "a1": RunRows("A", [1.0] * 10, "stopped", 10),  # A stopped at 10
        "a9": RunRows("A", [], "running"),  # a seed added later: at 10 and after, A's fate
        "b1": RunRows("B", [1.0] * 30, "running"),  # B went past 10 in an earlier launch
        "b9": RunRows("B", [1.0] * 10, "running"),
        "c1": RunRows("C", [1.0] * 10, "running"),  # C: not decided yet
        "d1": RunRows("D", [1.0] * 40, "stopped", 40),  # stopped later than 10: open at 10
    }
    at10 = fates(runs, 10)
    assert at10["A"].stop and "stopped at epoch 10" in at10["A"].reason
    assert not at10["B"].stop and "C" not in at10 and not at10["D"].stop
    assert fates(runs, 40)["D"].stop and not fates(runs, 5)["A"].stop  # A passed 5

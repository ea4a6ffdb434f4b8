"""analysis.aggregate against hand-computed answers."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from fake_results import build_results, isclose, rows_from

from analysis import aggregate
from analysis.load import load

pytestmark = pytest.mark.timeout(60)


def by_config(table, config: str):
    return table[table["config"] == config].iloc[0]


# --------------------------------------------------------------------------- statistics


def test_iqm_median_mean_by_hand() -> None:
    x = np.array([8.0, 1, 7, 2, 6, 3, 5, 4])
    assert aggregate.iqm(x) == 4.5  # drops 1, 2 and 7, 8: mean(3, 4, 5, 6)
    assert aggregate.iqm(np.array([10.0, 20, 30, 100])) == 25.0
    assert aggregate.iqm(np.array([50.0, 60, 70])) == 60.0  # int(0.75) = 0 trimmed


def test_probability_of_improvement_by_hand() -> None:
    # pairs: 1 vs 2, 2 -> 0, 0; 2 vs 2, 2 -> 0.5, 0.5; 3 vs 2, 2 -> 1, 1; mean 3 / 6
    assert aggregate.probability_of_improvement([1, 2, 3], [2, 2]) == 0.5
    assert aggregate.probability_of_improvement([50, 60, 70], [10, 20, 30, 100]) == 0.75
    assert aggregate.probability_of_improvement([5], [4]) == 1.0
    assert math.isnan(aggregate.probability_of_improvement([], [1]))


@pytest.mark.parametrize("statistic", ["iqm", "median", "mean"])
def test_bootstrap_ci_is_reproducible_and_contains_the_estimate(statistic: str) -> None:
    x = np.random.default_rng(5).normal(100, 20, 12)
    a = aggregate.bootstrap_ci(x, statistic, seed=3)
    b = aggregate.bootstrap_ci(x, statistic, seed=3)
    c = aggregate.bootstrap_ci(x, statistic, seed=4)
    assert a == b
    if statistic != "median":  # resampled medians take few values: their quantiles can agree
        assert a != c
    point = aggregate.STATISTICS[statistic](x)
    assert a[0] <= point <= a[1]
    assert a[0] < a[1]


def test_bootstrap_ci_degenerate_inputs() -> None:
    assert aggregate.bootstrap_ci([7.0], seed=0) == (7.0, 7.0)
    low, high = aggregate.bootstrap_ci([math.nan], seed=0)
    assert math.isnan(low) and math.isnan(high)


# --------------------------------------------------------------------------- final scores


@pytest.mark.parametrize(
    ("returns", "expected"),
    [
        ([1.0] * 9 + [5.0], 5.0),  # 10 epochs: the last one
        ([1.0] * 9 + [5.0, 7.0], 6.0),  # 11 epochs: ceil(1.1) = 2
        ([0.0] * 27 + [3.0, 6.0, 9.0], 6.0),  # 30 epochs: the last 3
        ([2.0, 4.0], 4.0),  # 2 epochs: at least one
        ([0.0] * 18 + [5.0, math.nan], 5.0),  # NaN epochs skipped
        ([1.0] * 18 + [math.nan, math.nan], math.nan),  # nothing left
    ],
    ids=["10", "11", "30", "2", "nan-skipped", "all-nan"],
)
def test_final_score(tmp_path: Path, returns: list[float], expected: float) -> None:
    results, _ = build_results(
        tmp_path / "results",
        "fs",
        {"policy_lr": [0.1]},
        [0],
        lambda run: ("done", rows_from(returns)),
    )
    scores = aggregate.final_scores(load(results))
    assert len(scores) == 1
    score = scores["final_score"].iloc[0]
    assert (math.isnan(score) and math.isnan(expected)) or isclose(score, expected)
    assert scores["epochs"].iloc[0] == len(returns)


def test_final_scores_of_the_known_sweep(known) -> None:
    results, _ = known
    scores = aggregate.final_scores(load(results))
    assert len(scores) == 12
    got = {(r.policy_lr, r.seed): r.final_score for r in scores.itertuples()}
    assert got[(0.1, 4)] == 100.0
    assert got[(0.01, 4)] == 1000.0  # a diverged run has a score; the ranking ignores it
    assert got[(0.001, 3)] == 5.0  # running: last 1 of 4 epochs
    assert math.isnan(got[(0.001, 2)]) and math.isnan(got[(0.001, 4)])  # failed, pending
    assert scores.loc[scores["seed"] == 4, "state"].tolist() == ["done", "diverged", "pending"]


# --------------------------------------------------------------------------- ranking


def test_ranking_by_hand(known) -> None:
    results, _ = known
    scores = aggregate.final_scores(load(results))
    table = aggregate.ranking(scores, seed=0, n_resamples=2000)
    assert list(table["config"]) == ["policy_lr=0.01", "policy_lr=0.1", "policy_lr=0.001"]
    assert list(table["rank"]) == [1, 2, 3]
    best, second, third = (table.iloc[i] for i in range(3))
    # 0.01: done [50, 60, 70] (the diverged 1000 scores nothing)
    assert (best["iqm"], best["median"], best["mean"]) == (60.0, 60.0, 60.0)
    assert isclose(best["std"], 10.0)
    # 0.1: done [10, 20, 30, 100]
    assert (second["iqm"], second["median"], second["mean"]) == (25.0, 25.0, 40.0)
    assert (third["iqm"], third["median"], third["mean"]) == (1.0, 1.0, 1.0)
    # P(best > runner-up): 9 of 12 pairs; P(0.1 > 0.001) = 1; last row has none
    assert best["p_beats_next"] == 0.75
    assert second["p_beats_next"] == 1.0
    assert math.isnan(third["p_beats_next"])
    counts = ["n_done", "n_running", "n_pending", "n_diverged", "n_failed"]
    assert best[counts].tolist() == [3, 0, 0, 1, 0]
    assert second[counts].tolist() == [4, 0, 0, 0, 0]
    assert third[counts].tolist() == [1, 1, 1, 0, 1]
    for row in table.itertuples():
        assert row.ci_low <= row.iqm <= row.ci_high
    assert (third["ci_low"], third["ci_high"]) == (1.0, 1.0)  # one done run


def test_ranking_ci_reproducible_with_seed(known) -> None:
    results, _ = known
    scores = aggregate.final_scores(load(results))
    a = aggregate.ranking(scores, seed=11, n_resamples=500)
    b = aggregate.ranking(scores, seed=11, n_resamples=500)
    c = aggregate.ranking(scores, seed=12, n_resamples=500)
    assert a.equals(b)
    assert not a[["ci_low", "ci_high"]].equals(c[["ci_low", "ci_high"]])


def test_configuration_without_done_runs_ranks_last(tmp_path: Path) -> None:
    def run_fn(run):
        if run.swept["policy_lr"] == 0.1:
            return "diverged", rows_from([500.0])
        return "done", rows_from([3.0])

    results, _ = build_results(tmp_path / "results", "nd", {"policy_lr": [0.1, 0.01]}, [0], run_fn)
    table = aggregate.ranking(aggregate.final_scores(load(results)))
    assert list(table["config"]) == ["policy_lr=0.01", "policy_lr=0.1"]
    assert math.isnan(table["iqm"].iloc[1]) and table["n_diverged"].iloc[1] == 1
    assert math.isnan(table["p_beats_next"].iloc[0])  # nothing to beat


def test_best_run(known) -> None:
    results, sweep = known
    scores = aggregate.final_scores(load(results))
    table = aggregate.ranking(scores, n_resamples=100)
    best = next(r for r in sweep.runs() if r.swept["policy_lr"] == 0.01 and r.seed == 3)
    assert aggregate.best_run(scores, table) == best.run_id  # 70, not the diverged 1000


# --------------------------------------------------------------------------- curves


def test_curves_by_hand_on_a_shared_step_grid(grid2) -> None:
    results, _ = grid2
    frame = load(results)
    curves = aggregate.aggregate_curves(frame, points=10, seed=0, n_resamples=200)
    # all runs log env_steps 100..1000, so the 10-point grid is exactly those steps
    c = curves[curves["config"] == "policy_lr=0.1, value_lr=0.01"]
    assert np.allclose(c["env_steps"], np.arange(100, 1001, 100))
    # seeds 1 and 2: return = 10 * epoch + seed -> median = mean = IQM = 10 * epoch + 1.5
    expected = 10.0 * np.arange(1, 11) + 1.5
    for name in ("median", "mean", "iqm"):
        assert np.allclose(c[name], expected)
        assert (c[f"{name}_low"] <= c[name] + 1e-12).all()
        assert (c[f"{name}_high"] >= c[name] - 1e-12).all()
    assert (c["n_runs"] == 2).all()
    again = aggregate.aggregate_curves(frame, points=10, seed=0, n_resamples=200)
    assert curves.equals(again)


def test_curves_with_unequal_lengths_and_nan_epochs(tmp_path: Path) -> None:
    def run_fn(run):
        if run.seed == 1:
            return "done", rows_from([1.0, 2.0, 3.0, 4.0, 5.0])
        if run.seed == 2:  # no episode ended in epoch 2: interpolated across
            return "running", rows_from([3.0, math.nan, 5.0])
        return "diverged", rows_from([100.0, 100.0])  # left out of the curves

    results, _ = build_results(tmp_path / "results", "ul", {"policy_lr": [0.1]}, [1, 2, 3], run_fn)
    curves = aggregate.aggregate_curves(load(results), points=5, n_resamples=100)
    assert np.allclose(curves["env_steps"], [100, 200, 300, 400, 500])
    assert curves["n_runs"].tolist() == [2, 2, 2, 1, 1]
    # step 200: seed 1 -> 2, seed 2 -> 4 (between 3 and 5); later only seed 1
    assert np.allclose(curves["mean"], [2.0, 3.0, 4.0, 4.0, 5.0])
    assert np.allclose(curves["median"], curves["mean"])


# --------------------------------------------------------------------------- other tables


def test_performance_profile_by_hand(known) -> None:
    results, _ = known
    scores = aggregate.final_scores(load(results))
    profile = aggregate.performance_profile(
        scores, configs=["policy_lr=0.1"], taus=[0.0, 15.0, 50.0, 100.0]
    )
    p = profile[profile["config"] == "policy_lr=0.1"]
    assert p["fraction"].tolist() == [1.0, 0.75, 0.25, 0.0]
    pooled = profile[profile["config"] == "all configurations"]
    # done runs: 10 20 30 100 | 50 60 70 | 1 -> above 15: 6 of 8; above 50 (strictly): 3 of 8
    assert pooled["fraction"].tolist() == [1.0, 0.75, 0.375, 0.0]


def test_sensitivity_and_cell_table_by_hand(grid2) -> None:
    results, _ = grid2
    scores = aggregate.final_scores(load(results))
    # final score = last epoch = 10 * 100 * lr + seed: 0.1 -> 101, 102; 0.01 -> 11, 12
    table = aggregate.sensitivity(scores, "policy_lr", n_resamples=100)
    assert table["policy_lr"].tolist() == [0.01, 0.1]
    assert table["n_runs"].tolist() == [4, 4]
    assert table["iqm"].tolist() == [11.5, 101.5]
    assert table["best_config"].tolist() == [11.5, 101.5]
    cells = aggregate.cell_table(scores, "policy_lr", "value_lr", statistic="mean")
    assert cells.loc[0.01, 0.1] == 101.5 and cells.loc[0.001, 0.01] == 11.5


def test_outcome_bins_cover_every_score_by_hand() -> None:
    import pandas as pd

    scores = pd.DataFrame(
        {
            "config": ["a"] * 6 + ["b"] * 3,
            "state": ["done"] * 5 + ["diverged"] + ["done"] * 2 + ["running"],
            "final_score": [-30.0, 0.0, 99.9, 100.0, 400.0, 999.0, 350.0, 200.0, 50.0],
        }
    )
    out = aggregate.outcome_bins(scores, aggregate.SWINGUP_BINS)
    assert list(out.columns) == ["config", "n", "< 0", "0-100", "100-200", "200-350", ">= 350"]
    a, b, total = (out[out["config"] == c].iloc[0] for c in ("a", "b", "all"))
    assert [a[c] for c in out.columns[1:]] == [5, 1, 2, 1, 0, 1]  # diverged 999 not counted
    assert [b[c] for c in out.columns[1:]] == [2, 0, 0, 0, 1, 1]  # running run not counted
    assert [total[c] for c in out.columns[1:]] == [7, 1, 2, 1, 1, 2]
    with pytest.raises(ValueError, match="increasing"):
        aggregate.outcome_bins(scores, [100, 0])


def test_solved_epoch_is_first_epoch_where_the_median_reaches_the_threshold() -> None:
    import pandas as pd

    rows = []
    # config a: seeds reach 195 at epochs 2, 3, 5 -> median (of 3) >= 195 first at epoch 3
    for seed, reach in ((1, 2), (2, 3), (3, 5)):
        for epoch in range(1, 7):
            rows.append(("a", seed, "done", epoch, 200.0 if epoch >= reach else 20.0))
    # config b never reaches it; a diverged run with high returns must not count
    for epoch in range(1, 7):
        rows.append(("b", 1, "done", epoch, 50.0))
        rows.append(("b", 2, "diverged", epoch, 500.0))
    frame = pd.DataFrame(rows, columns=["config", "seed", "state", "epoch", "return_mean"])
    out = aggregate.solved_epochs(frame, 195.0).set_index("config")["solved_epoch"]
    assert out["a"] == 3 and math.isnan(out["b"])

"""analysis.aggregate and analysis.stats against independent implementations: rliable's
metrics (point estimates), scipy.stats.bootstrap (intervals) and plain Python loops.

scipy 1.17's ``bootstrap`` draws its resamples as ``rng.integers(0, n, (n_resamples, n))``
from the Generator it is given, the same call as ``aggregate._bootstrap``, so with the same
seed both see the same index matrix and the intervals must agree to rounding (1e-12), for
the percentile method and for BCa alike."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from analysis import aggregate, stats

pytestmark = pytest.mark.timeout(60)

TOL = 1e-12


def close(a: float, b: float, tol: float = TOL) -> bool:
    return math.isclose(a, b, rel_tol=tol, abs_tol=tol)


def hand_iqm(values) -> float:
    """IQM by definition: sort, drop int(n / 4) values at each end, average the rest."""
    ordered = sorted(float(v) for v in values)
    cut = int(0.25 * len(ordered))
    kept = ordered[cut : len(ordered) - cut]
    return math.fsum(kept) / len(kept)


def hand_quantile(values, q: float) -> float:
    """Linear interpolation between order statistics (numpy's default, Hyndman-Fan 7)."""
    ordered = sorted(values)
    h = (len(ordered) - 1) * q
    lo = math.floor(h)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (h - lo) * (ordered[hi] - ordered[lo])


# --------------------------------------------------------------------------- rliable


@pytest.mark.parametrize("runs, tasks", [(5, 1), (8, 1), (13, 3), (20, 2), (37, 1), (50, 4)])
def test_iqm_equals_rliable_aggregate_iqm(runs: int, tasks: int) -> None:
    metrics = pytest.importorskip("rliable.metrics")
    rng = np.random.default_rng(runs * 100 + tasks)
    scores = rng.normal(50.0, 20.0, size=(runs, tasks)) * rng.gamma(1.0, size=(runs, tasks))
    expected = float(metrics.aggregate_iqm(scores))  # [runs, tasks] pooled
    assert close(float(aggregate.iqm(scores.ravel())), expected)
    assert close(hand_iqm(scores.ravel()), expected)
    for task in range(tasks):  # one task at a time: aggregate.iqm along the run axis
        one = float(metrics.aggregate_iqm(scores[:, [task]]))
        assert close(float(aggregate.iqm(scores, axis=0)[task]), one)
        assert close(float(aggregate.iqm(scores[:, task])), one)


@pytest.mark.parametrize("nx, ny", [(5, 5), (7, 12), (30, 4)])
@pytest.mark.parametrize("ties", [False, True])
def test_probability_of_improvement_equals_rliable(nx: int, ny: int, ties: bool) -> None:
    metrics = pytest.importorskip("rliable.metrics")
    rng = np.random.default_rng(nx * 7 + ny)
    if ties:  # few distinct values: many ties, which count one half
        x, y = rng.integers(0, 4, nx).astype(float), rng.integers(0, 4, ny).astype(float)
    else:
        x, y = rng.normal(1.0, 1.0, nx), rng.normal(0.5, 1.0, ny)
    # rliable: scores [runs, tasks], one task here; P(X > Y) averaged over tasks
    expected = float(metrics.probability_of_improvement(x[:, None], y[:, None]))
    assert close(aggregate.probability_of_improvement(x, y), expected)
    assert close(aggregate.probability_of_improvement(y, x), 1.0 - expected)
    assert aggregate.probability_of_improvement(x, x) == 0.5
    assert float(metrics.probability_of_improvement(x[:, None], x[:, None])) == 0.5


# --------------------------------------------------------------------------- scipy bootstrap


SAMPLES = {
    "gamma17": np.random.default_rng(1).gamma(2.0, 30.0, 17),
    "normal8": np.random.default_rng(2).normal(100.0, 15.0, 8),
    "skewed40": np.random.default_rng(3).lognormal(3.0, 1.0, 40),
    "ties12": np.random.default_rng(4).integers(0, 5, 12).astype(float),
    "two": np.array([3.0, 9.0]),
}


def scipy_interval(x, statistic: str, method: str, seed: int, n_resamples: int, confidence):
    result = scipy_stats.bootstrap(
        (x,),
        aggregate.STATISTICS[statistic],
        vectorized=True,
        method=method,
        n_resamples=n_resamples,
        confidence_level=confidence,
        rng=np.random.default_rng(seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


@pytest.mark.parametrize("sample", sorted(SAMPLES))
@pytest.mark.parametrize("statistic", ["iqm", "median", "mean"])
def test_percentile_bootstrap_equals_scipy(sample: str, statistic: str) -> None:
    x = SAMPLES[sample]
    for seed, n_resamples, confidence in [(0, 2000, 0.95), (7, 999, 0.9)]:
        expected = scipy_interval(x, statistic, "percentile", seed, n_resamples, confidence)
        kwargs = {"seed": seed, "n_resamples": n_resamples, "confidence": confidence}
        ours = aggregate.bootstrap_ci(x, statistic, **kwargs)
        also = stats.bootstrap_interval(x, statistic, method="percentile", **kwargs)
        assert ours == also  # stats delegates to aggregate: the very same numbers
        assert close(ours[0], expected[0]) and close(ours[1], expected[1]), (ours, expected)
        assert ours[0] < ours[1]


def test_percentile_bootstrap_skips_nan_like_a_finite_sample() -> None:
    x = SAMPLES["gamma17"]
    with_nan = np.concatenate([x[:5], [np.nan, np.inf], x[5:]])
    expected = scipy_interval(x, "iqm", "percentile", 3, 2000, 0.95)
    ours = stats.bootstrap_interval(with_nan, seed=3)
    assert close(ours[0], expected[0]) and close(ours[1], expected[1])


def bias_corrected_interval(x, function, seed: int, n_resamples: int, confidence: float):
    """BCa with zero acceleration, one resample at a time: quantiles at Phi(2 z0 + z)."""
    rng = np.random.default_rng(seed)
    index = rng.integers(0, x.size, (n_resamples, x.size))
    replicates = [float(function(x[row])) for row in index]
    theta = float(function(x))
    below = sum(r < theta for r in replicates) + 0.5 * sum(r == theta for r in replicates)
    z0 = scipy_stats.norm.ppf(below / n_resamples)
    alpha = (1.0 - confidence) / 2.0
    levels = scipy_stats.norm.cdf(2 * z0 + scipy_stats.norm.ppf([alpha, 1.0 - alpha]))
    return hand_quantile(replicates, levels[0]), hand_quantile(replicates, levels[1])


@pytest.mark.parametrize("sample", sorted(SAMPLES))
@pytest.mark.parametrize("statistic", ["iqm", "median", "mean"])
def test_bca_equals_scipy(sample: str, statistic: str) -> None:
    x = SAMPLES[sample]
    for seed, n_resamples, confidence in [(0, 2000, 0.95), (11, 1500, 0.8)]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scipy warns (and gives NaN) where BCa fails
            expected = scipy_interval(x, statistic, "BCa", seed, n_resamples, confidence)
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always")
            ours = stats.bootstrap_interval(
                x, statistic, method="bca", seed=seed, n_resamples=n_resamples,
                confidence=confidence,
            )  # fmt: skip
        if math.isnan(expected[0]):
            # scipy's acceleration is 0 / 0 when every jackknife value is the same (the
            # median of 12 tied values here); ours is then 0: the bias-corrected interval
            function = aggregate.STATISTICS[statistic]
            jackknife = [function(np.delete(x, i)) for i in range(x.size)]
            assert len(set(jackknife)) == 1, "scipy's BCa failed for another reason"
            expected = bias_corrected_interval(x, function, seed, n_resamples, confidence)
        assert close(ours[0], expected[0]) and close(ours[1], expected[1]), (ours, expected)


def test_bca_differs_from_percentile_on_skewed_data() -> None:
    """Not a relabelled percentile interval: on right-skewed data BCa moves right."""
    x = SAMPLES["skewed40"]
    pct = stats.bootstrap_interval(x, "mean", method="percentile", seed=5)
    bca = stats.bootstrap_interval(x, "mean", method="bca", seed=5)
    assert bca[0] > pct[0] and bca[1] > pct[1]


def test_bca_by_hand_for_the_mean() -> None:
    """For the mean the jackknife values are (n x_bar - x_i) / (n - 1), so the acceleration
    is skew(x) / (6 sqrt(n)) with skew the plain third standardised moment (Efron 1987)."""
    x = SAMPLES["skewed40"]
    n, seed, n_resamples = x.size, 9, 4000
    index = np.random.default_rng(seed).integers(0, n, (n_resamples, n))
    replicates = [math.fsum(x[row]) / n for row in index]
    mean = math.fsum(x) / n
    below = sum(r < mean for r in replicates) + 0.5 * sum(r == mean for r in replicates)
    z0 = scipy_stats.norm.ppf(below / n_resamples)
    centred = x - mean
    m2, m3 = np.mean(centred**2), np.mean(centred**3)
    a = m3 / m2**1.5 / (6.0 * math.sqrt(n))
    levels = []
    for z in scipy_stats.norm.ppf([0.025, 0.975]):
        levels.append(scipy_stats.norm.cdf(z0 + (z0 + z) / (1.0 - a * (z0 + z))))
    expected = [hand_quantile(replicates, q) for q in levels]
    ours = stats.bootstrap_interval(x, "mean", method="bca", seed=seed, n_resamples=n_resamples)
    assert close(ours[0], expected[0], 1e-10) and close(ours[1], expected[1], 1e-10)


@pytest.mark.parametrize("method", ["percentile", "bca"])
def test_degenerate_samples(method: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        low, high = stats.bootstrap_interval([], method=method)
        assert math.isnan(low) and math.isnan(high)
        low, high = stats.bootstrap_interval([np.nan, np.inf], method=method)
        assert math.isnan(low) and math.isnan(high)
        assert stats.bootstrap_interval([4.5], method=method) == (4.5, 4.5)
        assert stats.bootstrap_interval([0.1] * 7, method=method) == (0.1, 0.1)
        assert stats.bootstrap_interval([0.1] * 7 + [np.nan], "mean", method=method) == (
            0.1,
            0.1,
        )


def test_bca_undefined_when_every_replicate_is_on_one_side() -> None:
    """The number of distinct values: 30 for the data, fewer for (almost) every resample of
    30 runs, so no replicate reaches the estimate, z0 is infinite and BCa is undefined."""

    def distinct(values, axis=None):
        if axis is None:
            return float(np.unique(values).size)
        ordered = np.sort(values, axis=axis)
        return 1.0 + np.count_nonzero(np.diff(ordered, axis=axis) != 0, axis=axis)

    x = np.arange(30.0)
    with pytest.warns(RuntimeWarning, match="BCa interval undefined"):
        low, high = stats.bootstrap_interval(x, distinct, method="bca", n_resamples=500)
    assert math.isnan(low) and math.isnan(high)
    low, high = stats.bootstrap_interval(x, distinct, method="percentile", n_resamples=500)
    assert 15 < low < high < 30


def test_bootstrap_interval_rejects_unknown_method_and_statistic() -> None:
    with pytest.raises(ValueError, match="method"):
        stats.bootstrap_interval([1.0, 2.0], method="basic")
    with pytest.raises(ValueError, match="statistic"):
        stats.bootstrap_interval([1.0, 2.0], "mode")


# --------------------------------------------------------------------------- across tasks


def sweep_frame(per_cell: dict[tuple[str, float], list[float]], extra=()) -> pd.DataFrame:
    """A final_scores-like frame: params env and lr, one done run per score, plus ``extra``
    rows (env, lr, state, score)."""
    rows = []
    for (env, lr), values in per_cell.items():
        for seed, value in enumerate(values, start=1):
            rows.append((env, lr, "done", value, seed))
    for seed, (env, lr, state, value) in enumerate(extra, start=100):
        rows.append((env, lr, state, value, seed))
    frame = pd.DataFrame(
        [
            {
                "env": env,
                "lr": lr,
                "config": f"env={env}, lr={lr:.4g}",
                "run_id": f"{env}-{lr}-{seed}",
                "seed": seed,
                "state": state,
                "final_score": value,
            }
            for env, lr, state, value, seed in rows
        ]
    )
    frame.attrs["params"] = ["env", "lr"]
    return frame


def test_normalize_scores_by_hand() -> None:
    frame = sweep_frame(
        {
            ("A", 0.1): [10.0, 20.0],
            ("A", 0.01): [30.0, 50.0],
            ("B", 0.1): [200.0, 100.0],
            ("B", 0.01): [500.0, 300.0],
        },
        extra=[("A", 0.1, "diverged", 90.0), ("B", 0.01, "failed", math.nan)],
    )
    out = stats.normalize_scores(frame)
    assert "normalized_score" not in frame.columns  # a copy
    assert out.attrs["params"] == ["env", "lr"]
    got = dict(zip(out["run_id"], out["normalized_score"], strict=True))
    # A: done scores span 10..50 (the diverged 90 sets no bound); B: 100..500
    assert got["A-0.1-1"] == 0.0 and got["A-0.1-2"] == 0.25
    assert got["A-0.01-1"] == 0.5 and got["A-0.01-2"] == 1.0
    assert got["A-0.1-100"] == 2.0  # the diverged run is normalised too, outside [0, 1]
    assert got["B-0.1-1"] == 0.25 and got["B-0.1-2"] == 0.0
    assert got["B-0.01-1"] == 1.0 and got["B-0.01-2"] == 0.5
    assert math.isnan(got["B-0.01-101"])

    given = stats.normalize_scores(frame, bounds={"A": (0.0, 100.0), "B": (100.0, 1100.0)})
    got = dict(zip(given["run_id"], given["normalized_score"], strict=True))
    assert got["A-0.1-2"] == 0.2 and got["B-0.01-1"] == 0.4 and got["B-0.1-2"] == 0.0

    with pytest.raises(ValueError, match="no \\(low, high\\)"):
        stats.normalize_scores(frame, bounds={"A": (0.0, 1.0)})
    with pytest.raises(ValueError, match="low < high"):
        stats.normalize_scores(frame, bounds={"A": (0.0, 1.0), "B": (2.0, 2.0)})


def test_normalize_scores_task_without_spread_is_nan() -> None:
    frame = sweep_frame({("A", 0.1): [1.0, 3.0], ("B", 0.1): [7.0, 7.0], ("C", 0.1): [5.0]})
    out = stats.normalize_scores(frame)
    assert out.loc[out["env"] == "A", "normalized_score"].tolist() == [0.0, 1.0]
    assert out.loc[out["env"] != "A", "normalized_score"].isna().all()


def test_task_free_configs() -> None:
    frame = sweep_frame({("A", 0.1): [1.0], ("B", 0.1): [2.0], ("A", 0.01): [3.0]})
    out = stats.task_free_configs(frame)
    assert out["config_key"].tolist() == ["lr=0.1", "lr=0.1", "lr=0.01"]
    only_env = frame.drop(columns="lr")
    only_env.attrs["params"] = ["env"]
    assert set(stats.task_free_configs(only_env)["config_key"]) == {"all runs"}


def test_stratified_bootstrap_by_hand() -> None:
    """Two tasks, one run per task and configuration: min-max normalisation gives 0 and 1,
    every stratified resample is the sample itself, so the CI has zero width."""
    frame = sweep_frame(
        {("A", 0.1): [10.0], ("A", 0.01): [30.0], ("B", 0.1): [500.0], ("B", 0.01): [100.0]}
    )
    scores = stats.task_free_configs(stats.normalize_scores(frame))
    table = stats.stratified_bootstrap_ci(scores, "mean", group_col="config_key")
    assert table["config_key"].tolist() == ["lr=0.1", "lr=0.01"]
    assert table["n_tasks"].tolist() == [2, 2] and table["n_runs"].tolist() == [2, 2]
    # lr=0.1: A 0 (worst), B 1 (best) -> mean 0.5; lr=0.01: A 1, B 0 -> 0.5
    assert table["estimate"].tolist() == [0.5, 0.5]
    assert table["ci_low"].tolist() == [0.5, 0.5] and table["ci_high"].tolist() == [0.5, 0.5]


def test_stratified_bootstrap_keeps_each_task_share() -> None:
    """Task A's runs all score 0 and task B's all 1 (normalised): resampling within each task
    always pools 2 zeros and 6 ones, so every resample's mean is 6/8 and the CI has zero
    width. A bootstrap over the pooled runs would vary the share of A's runs."""
    scores = pd.DataFrame(
        {
            "env": ["A"] * 2 + ["B"] * 6,
            "config_key": "c",
            "state": "done",
            "normalized_score": [0.0] * 2 + [1.0] * 6,
        }
    )
    table = stats.stratified_bootstrap_ci(scores, "mean", group_col="config_key")
    row = table.iloc[0]
    assert row["estimate"] == 0.75 and row["ci_low"] == 0.75 and row["ci_high"] == 0.75
    pooled = stats.bootstrap_interval(scores["normalized_score"], "mean")
    assert pooled[1] - pooled[0] > 0.3


def loop_stratified(scores: pd.DataFrame, seed: int, n_resamples: int, confidence: float):
    """Plain Python reference: same documented draw order (groups, then tasks in order of
    first appearance; per task n_resamples x n_task draws), one scalar draw at a time."""
    rng = np.random.default_rng(seed)
    alpha = (1.0 - confidence) / 2.0
    out = {}
    for group in dict.fromkeys(scores["config_key"]):
        rows = [
            r
            for r in scores.itertuples()
            if r.config_key == group and r.state == "done" and math.isfinite(r.normalized_score)
        ]
        tasks: dict[str, list[float]] = {}
        for r in rows:
            tasks.setdefault(r.env, []).append(r.normalized_score)
        draws = {
            task: [[rng.integers(0, len(v)) for _ in v] for _ in range(n_resamples)]
            for task, v in tasks.items()
        }
        replicates = []
        for b in range(n_resamples):
            pool = [v[i] for task, v in tasks.items() for i in draws[task][b]]
            replicates.append(hand_iqm(pool))
        pooled = [s for v in tasks.values() for s in v]
        out[group] = (
            hand_iqm(pooled),
            hand_quantile(replicates, alpha),
            hand_quantile(replicates, 1.0 - alpha),
        )
    return out


def test_stratified_bootstrap_equals_a_plain_loop() -> None:
    rng = np.random.default_rng(42)
    cells = {}
    for env, runs in [("A", 7), ("B", 3), ("C", 10)]:
        for lr, shift in [(0.1, 0.0), (0.01, 40.0), (0.001, -25.0)]:
            n = runs - (1 if lr == 0.001 else 0)  # unequal run counts per task and config
            cells[(env, lr)] = list(rng.normal(100.0 + shift, 30.0, n) * (1 + (env == "C")))
    frame = sweep_frame(cells, extra=[("A", 0.1, "diverged", 1e6), ("B", 0.01, "running", 0.0)])
    scores = stats.task_free_configs(stats.normalize_scores(frame))
    scores = scores.sample(frac=1.0, random_state=np.random.default_rng(3)).reset_index()
    seed, n_resamples, confidence = 5, 600, 0.9
    table = stats.stratified_bootstrap_ci(
        scores, group_col="config_key", seed=seed, n_resamples=n_resamples,
        confidence=confidence,
    )  # fmt: skip
    expected = loop_stratified(scores, seed, n_resamples, confidence)
    assert table["config_key"].tolist() == list(expected)
    for row in table.itertuples():
        estimate, low, high = expected[row.config_key]
        assert row.n_tasks == 3
        assert close(row.estimate, estimate) and close(row.ci_low, low)
        assert close(row.ci_high, high), (row, expected[row.config_key])
        assert row.ci_low < row.estimate < row.ci_high


def test_stratified_bootstrap_empty_group_and_missing_column() -> None:
    frame = sweep_frame(
        {("A", 0.1): [1.0, 2.0], ("B", 0.1): [3.0, 5.0]},
        extra=[("A", 0.01, "failed", math.nan), ("B", 0.01, "pending", math.nan)],
    )
    scores = stats.task_free_configs(stats.normalize_scores(frame))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = stats.stratified_bootstrap_ci(scores, group_col="config_key")
    empty = table[table["config_key"] == "lr=0.01"].iloc[0]
    assert empty["n_runs"] == 0 and empty["n_tasks"] == 0
    assert math.isnan(empty["estimate"]) and math.isnan(empty["ci_low"])
    with pytest.raises(KeyError, match="normalized_score"):
        stats.stratified_bootstrap_ci(frame, group_col="config")

"""Bootstrap intervals (percentile and BCa) and cross-task aggregates (rliable's way).

Every function is stateless and takes its randomness only from an explicit ``seed`` turned
into a fresh ``numpy.random.Generator`` per call, like :mod:`analysis.aggregate`.

- :func:`bootstrap_interval`: one CI over runs, percentile (the numbers of
  :func:`analysis.aggregate.bootstrap_ci`) or BCa (bias-corrected and accelerated).
- :func:`normalize_scores`: per-task min-max normalisation of final scores, so that scores
  of different environments can be pooled.
- :func:`task_free_configs`: a key identifying a configuration across tasks (its swept
  parameters other than the task one).
- :func:`stratified_bootstrap_ci`: per configuration, a statistic of its normalised scores
  pooled over tasks, with a percentile CI from a bootstrap stratified by task.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri

from analysis.aggregate import _finite, _statistic, bootstrap_ci, swept_envs
from analysis.load import config_labels, param_columns

__all__ = [
    "cross_task",
    "bootstrap_interval",
    "normalize_scores",
    "stratified_bootstrap_ci",
    "task_free_configs",
]

Statistic = str | Callable[..., np.ndarray | float]


def _resample_runs(rng: np.random.Generator, runs: int, n_resamples: int) -> np.ndarray:
    """[n_resamples, runs] run indices drawn with replacement, the draws of
    :func:`analysis.aggregate._bootstrap` (one ``integers`` call per sample)."""
    return rng.integers(0, runs, size=(n_resamples, runs))


def bootstrap_interval(
    values: Sequence[float] | np.ndarray,
    statistic: Statistic = "iqm",
    *,
    method: str = "percentile",
    seed: int = 0,
    n_resamples: int = 2000,
    confidence: float = 0.95,
) -> tuple[float, float]:
    """Bootstrap CI of ``statistic`` over the finite ``values`` (one per run).

    ``statistic`` is ``"iqm"``, ``"median"``, ``"mean"`` or a function ``f(x, axis)``.
    ``method``:

    - ``"percentile"``: the ``alpha`` and ``1 - alpha`` quantiles of the bootstrap
      distribution, ``alpha = (1 - confidence) / 2``; exactly
      :func:`analysis.aggregate.bootstrap_ci` (same draws, same numbers).
    - ``"bca"``: bias-corrected and accelerated (Efron 1987). With theta the statistic of
      the data, theta*_b its bootstrap replicates and Phi the standard normal CDF:
      bias correction ``z0 = Phi^-1(p)``, p the fraction of replicates below theta (a
      replicate equal to theta counts one half); acceleration from the jackknife,
      ``a = sum(d^3) / (6 (sum(d^2))^1.5)``, ``d_i = mean_j(theta_(j)) - theta_(i)`` with
      theta_(i) the statistic without run i (``a = 0`` when every d_i is 0 up to rounding,
      where scipy's BCa gives NaN); the bounds are the replicates' quantiles at
      ``Phi(z0 + (z0 + z) / (1 - a (z0 + z)))`` for ``z = Phi^-1(alpha)`` and
      ``Phi^-1(1 - alpha)`` (linear interpolation). The draws are the percentile method's. When every replicate lies on one side of theta, z0 is
      infinite and BCa is undefined: (NaN, NaN) with a RuntimeWarning. Otherwise the
      numbers of ``scipy.stats.bootstrap(method="BCa")`` given the same Generator.

    Degenerate samples, either method: no value gives (NaN, NaN); one value, or values that
    are all equal, give the zero-width interval (v, v), without warnings.
    """
    if method not in ("percentile", "bca"):
        raise ValueError(f"method: expected 'percentile' or 'bca', got {method!r}")
    function = _statistic(statistic)
    x = _finite(values)
    if x.size == 0:
        return math.nan, math.nan
    if np.all(x == x[0]):
        return float(x[0]), float(x[0])
    if method == "percentile":
        return bootstrap_ci(x, function, seed=seed, n_resamples=n_resamples, confidence=confidence)
    return _bca(x, function, np.random.default_rng(seed), n_resamples, confidence)


def _bca(
    x: np.ndarray,
    statistic: Callable,
    rng: np.random.Generator,
    n_resamples: int,
    confidence: float,
) -> tuple[float, float]:
    n = x.size
    replicates = np.asarray(statistic(x[_resample_runs(rng, n, n_resamples)], axis=1))
    theta = float(statistic(x))
    below = np.count_nonzero(replicates < theta) + 0.5 * np.count_nonzero(replicates == theta)
    z0 = ndtri(below / n_resamples)
    # jackknife: row i holds every run but run i
    leave_one_out = np.where(
        np.arange(n - 1)[None, :] < np.arange(n)[:, None],
        np.arange(n - 1)[None, :],
        np.arange(1, n)[None, :],
    )
    jackknife = np.asarray(statistic(x[leave_one_out], axis=1), dtype=float)
    d = jackknife.mean() - jackknife
    # jackknife values equal up to rounding carry no skewness: 0 rather than noise / noise
    flat = np.max(np.abs(d)) <= 1e-12 * max(1.0, float(np.max(np.abs(jackknife))))
    a = 0.0 if flat else float(np.sum(d**3)) / (6.0 * float(np.sum(d**2)) ** 1.5)
    if not np.isfinite(z0):
        warnings.warn(
            "BCa interval undefined: every bootstrap replicate lies on one side of the estimate",
            RuntimeWarning,
            stacklevel=3,
        )
        return math.nan, math.nan
    alpha = (1.0 - confidence) / 2.0
    z = ndtri(np.array([alpha, 1.0 - alpha]))
    levels = ndtr(z0 + (z0 + z) / (1.0 - a * (z0 + z)))
    low, high = np.quantile(replicates, levels)
    return float(low), float(high)


# --------------------------------------------------------------------------- across tasks


def normalize_scores(
    scores: pd.DataFrame,
    env_col: str = "env",
    bounds: Mapping[object, tuple[float, float]] | None = None,
) -> pd.DataFrame:
    """A copy of ``scores`` with a column ``normalized_score``: each run's final score
    min-max normalised within its task, ``(final_score - low) / (high - low)``.

    ``scores`` is a per-run frame (columns ``env_col``, config, state, final_score), e.g.
    :func:`analysis.aggregate.final_scores`' frame of a sweep over environments.

    ``bounds`` maps each task to ``(low, high)``, e.g. a random policy's score and the best
    known one; it must name every task of the frame, with ``high > low``. Without it, each
    task's bounds are the lowest and highest finite final score of the ``done`` runs of that
    task over the whole frame (every configuration), so that within each task the worst
    done run scores 0 and the best scores 1. Such a task with fewer than two distinct done
    scores (no spread to normalise by), or with no done run, gets NaN for all its runs.

    Every run gets a value, whatever its state (a diverged run may fall outside [0, 1]);
    a NaN final score stays NaN.
    """
    for column in (env_col, "final_score"):
        if column not in scores.columns:
            raise KeyError(f"column {column!r} is not in the frame")
    out = scores.copy()
    score = out["final_score"].to_numpy(dtype=float)
    tasks = list(dict.fromkeys(out[env_col]))
    if bounds is None:
        done = out[(out["state"] == "done") & np.isfinite(score)]
        by_task = done.groupby(env_col, sort=False)["final_score"]
        low, high = by_task.min(), by_task.max()
        table = {t: (float(low.get(t, math.nan)), float(high.get(t, math.nan))) for t in tasks}
    else:
        missing = [t for t in tasks if t not in bounds]
        if missing:
            raise ValueError(f"bounds: no (low, high) for task(s) {missing}")
        table = {t: (float(bounds[t][0]), float(bounds[t][1])) for t in tasks}
        bad = {t: b for t, b in table.items() if not b[1] > b[0]}
        if bad:
            raise ValueError(f"bounds: expected low < high, got {bad}")
    lows = out[env_col].map({t: b[0] for t, b in table.items()}).to_numpy(dtype=float)
    highs = out[env_col].map({t: b[1] for t, b in table.items()}).to_numpy(dtype=float)
    span = highs - lows
    with np.errstate(divide="ignore", invalid="ignore"):
        normalized = np.where(span > 0, (score - lows) / span, np.nan)
    out["normalized_score"] = normalized
    return out


def task_free_configs(
    scores: pd.DataFrame, task_col: str = "env", name: str = "config_key"
) -> pd.DataFrame:
    """A copy of ``scores`` with a column ``name`` that identifies each configuration across
    tasks: the label of its swept parameters other than ``task_col`` (the project's
    :func:`analysis.load.config_labels`; ``"all runs"`` when only the task is swept). Use it
    as ``group_col`` of :func:`stratified_bootstrap_ci`."""
    params = [p for p in param_columns(scores) if p != task_col]
    out = scores.copy()
    rows = out[params].to_dict("records") if params else [{} for _ in range(len(out))]
    keys = [tuple(row.items()) for row in rows]
    distinct = list(dict.fromkeys(keys))
    labels = dict(zip(distinct, config_labels([dict(k) for k in distinct]), strict=True))
    out[name] = [labels[k] for k in keys]
    return out


def stratified_bootstrap_ci(
    scores: pd.DataFrame,
    statistic: Statistic = "iqm",
    *,
    task_col: str = "env",
    group_col: str = "config",
    score_col: str = "normalized_score",
    seed: int = 0,
    n_resamples: int = 2000,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Per group (a configuration across tasks), ``statistic`` of its scores pooled over
    tasks, with a percentile CI from a bootstrap stratified by task (rliable's way).

    ``scores`` holds one row per run with ``task_col``, ``group_col``, state and
    ``score_col`` (the output of :func:`normalize_scores`; ``group_col`` must not depend on
    the task: see :func:`task_free_configs`). Only done runs with a finite score count.

    Each bootstrap resample draws, within each task separately, as many runs as the task
    has (with replacement), pools the draws of all tasks and applies the statistic; the
    bounds are the ``alpha`` and ``1 - alpha`` quantiles of the resampled statistics,
    ``alpha = (1 - confidence) / 2``. One Generator from ``seed`` serves the whole call:
    groups in order of first appearance, within a group tasks in order of first appearance,
    one ``integers(0, n_task, size=(n_resamples, n_task))`` draw per task.

    Returns one row per group: ``group_col``, n_tasks, n_runs, estimate, ci_low, ci_high
    (NaN when the group has no scored run; a zero-width interval when every task has a
    single run).
    """
    for column in (task_col, group_col, "state", score_col):
        if column not in scores.columns:
            raise KeyError(f"column {column!r} is not in the frame")
    function = _statistic(statistic)
    rng = np.random.default_rng(seed)
    alpha = (1.0 - confidence) / 2.0
    value = scores[score_col].to_numpy(dtype=float)
    used = scores[(scores["state"] == "done").to_numpy() & np.isfinite(value)]
    rows = []
    for group in dict.fromkeys(scores[group_col]):
        at = used[used[group_col] == group]
        per_task = [
            task_scores[score_col].to_numpy(dtype=float)
            for _, task_scores in at.groupby(task_col, sort=False)
        ]
        n_runs = sum(t.size for t in per_task)
        estimate = low = high = math.nan
        if n_runs:
            pooled = np.concatenate(per_task)
            estimate = float(function(pooled))
            resampled = np.concatenate(
                [t[_resample_runs(rng, t.size, n_resamples)] for t in per_task], axis=1
            )  # [B, n_runs]: task by task, each task keeping its run count
            replicates = function(resampled, axis=1)
            low, high = (float(q) for q in np.quantile(replicates, [alpha, 1.0 - alpha]))
        rows.append(
            {
                group_col: group,
                "n_tasks": len(per_task),
                "n_runs": n_runs,
                "estimate": estimate,
                "ci_low": low,
                "ci_high": high,
            }
        )
    out = pd.DataFrame(
        rows, columns=[group_col, "n_tasks", "n_runs", "estimate", "ci_low", "ci_high"]
    )
    out.attrs["statistic"] = statistic if isinstance(statistic, str) else repr(statistic)
    return out


def cross_task(
    scores: pd.DataFrame,
    *,
    statistic: str = "iqm",
    minimize: bool = False,
    seed: int = 0,
    n_resamples: int = 2000,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """The normalised cross-task aggregate of a sweep over several envs (rliable's way).

    Each run's final score is min-max normalised within its env: (score - low) / (high -
    low), with low and high the lowest and highest final score of that env's done runs in
    this sweep (so 0 = the worst run of the sweep on that task, 1 = its best; with
    ``minimize`` the scale is flipped so that 1 is still the best). A configuration is its
    parameters other than env; its estimate is ``statistic`` over its normalised scores of
    every env pooled, with a percentile CI from a bootstrap stratified by env (runs resampled
    within each env). One row per configuration, best first: config, the parameters, n_tasks,
    n_runs, estimate, ci_low, ci_high. Empty when ``env`` is not swept. ``attrs["excluded"]``
    lists the envs left out: fewer than two distinct done scores, nothing to normalise by."""
    envs = swept_envs(scores)
    if not envs:
        return pd.DataFrame()
    frame = scores.copy()
    if minimize:
        frame["final_score"] = -frame["final_score"].astype(float)
    frame = task_free_configs(normalize_scores(frame), name="config_key")
    spread = frame.groupby("env")["normalized_score"].apply(lambda v: v.notna().any())
    excluded = [str(e) for e in envs if not spread.get(e, False)]
    table = stratified_bootstrap_ci(
        frame,
        statistic,
        task_col="env",
        group_col="config_key",
        seed=seed,
        n_resamples=n_resamples,
        confidence=confidence,
    )
    params = [p for p in param_columns(scores) if p != "env"]
    first = frame.drop_duplicates("config_key").set_index("config_key")
    for p in params:
        table[p] = [first.loc[k, p] for k in table["config_key"]]
    table = table.sort_values("estimate", ascending=False, na_position="last", kind="stable")
    table = table.rename(columns={"config_key": "config"}).reset_index(drop=True)
    table.insert(0, "rank", range(1, len(table) + 1))
    table = table[["rank", *params, "config", "n_tasks", "n_runs", "estimate", "ci_low", "ci_high"]]
    table.attrs.update(params=params, envs=envs, statistic=statistic, excluded=excluded)
    return table

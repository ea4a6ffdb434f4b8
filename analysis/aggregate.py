"""Aggregates over seeds: final scores, curves on a common env-step grid, the ranking.

Every function is stateless: frames in (the long form of :func:`analysis.load.load`, or the
per-run frame of :func:`final_scores`), frames out. Randomness (bootstrap) comes only from an
explicit ``seed`` turned into a fresh ``numpy.random.Generator`` per call.

Definitions (docs/design.md "Definitions"):

- final score of a run: mean of the metric over its last ceil(10 %) epochs (at least one),
  NaN epochs skipped; NaN if none is left.
- IQM: interquartile mean, ``scipy.stats.trim_mean(x, 0.25)`` (rliable's definition).
- confidence intervals: percentile bootstrap over runs (seeds), ``n_resamples`` resamples.
- rankings use runs whose state is ``done``; diverged / failed / running / pending runs are
  counted but score nothing. A configuration stopped early by racing (its runs ``stopped``,
  none done or running) is listed after all the others, ranked among the stopped ones by
  its stopped runs' scores at their rung (the final-score rule over the rows they have); it
  is never the best configuration.
- P(X > Y): rliable's probability of improvement for one task, the mean over all pairs
  (x_i, y_j) of 1[x_i > y_j] + 0.5 * 1[x_i == y_j].
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from analysis.load import STATES, param_columns

__all__ = [
    "STATISTICS",
    "X_AXES",
    "aggregate_curves",
    "best_run",
    "bootstrap_ci",
    "cell_estimates",
    "cell_table",
    "final_scores",
    "iqm",
    "performance_profile",
    "probability_of_improvement",
    "ranking",
    "ranking_by_env",
    "sensitivity",
    "stopped_configs",
    "survivors",
    "swept_envs",
    "with_wall_time",
]


def iqm(values: np.ndarray, axis: int | None = None) -> np.ndarray | float:
    """Interquartile mean: the mean of the middle 50 % (trim 25 % at each end)."""
    return stats.trim_mean(values, 0.25, axis=axis)


def _median(values: np.ndarray, axis: int | None = None) -> np.ndarray | float:
    return np.median(values, axis=axis)


def _mean(values: np.ndarray, axis: int | None = None) -> np.ndarray | float:
    return np.mean(values, axis=axis)


STATISTICS: dict[str, Callable[..., np.ndarray | float]] = {
    "median": _median,
    "mean": _mean,
    "iqm": iqm,
}
"""name -> statistic(values, axis) over runs."""


def _finite(values: Sequence[float] | np.ndarray) -> np.ndarray:
    array = np.asarray(values, dtype=float).ravel()
    return array[np.isfinite(array)]


def bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    statistic: str | Callable[..., np.ndarray | float] = "iqm",
    *,
    seed: int = 0,
    n_resamples: int = 2000,
    confidence: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap CI of ``statistic`` over the finite ``values`` (one per run).

    Resamples runs with replacement from ``numpy.random.default_rng(seed)``. One value gives a
    zero-width interval at it; no value gives (NaN, NaN).
    """
    rng = np.random.default_rng(seed)
    low, high = _bootstrap(
        _finite(values)[:, None], _statistic(statistic), rng, n_resamples, confidence
    )
    return float(low[0]), float(high[0])


def _statistic(statistic: str | Callable[..., np.ndarray | float]) -> Callable:
    if callable(statistic):
        return statistic
    try:
        return STATISTICS[statistic]
    except KeyError:
        raise ValueError(
            f"statistic: expected one of {sorted(STATISTICS)}, got {statistic!r}"
        ) from None


def _bootstrap(
    values: np.ndarray,
    statistic: Callable,
    rng: np.random.Generator,
    n_resamples: int,
    confidence: float,
) -> tuple[np.ndarray, np.ndarray]:
    """values [R, K] (R runs, K points, all finite) -> CI bounds [K] over resampled runs."""
    runs, points = values.shape
    if runs == 0:
        return np.full(points, np.nan), np.full(points, np.nan)
    if runs == 1:
        return values[0].copy(), values[0].copy()
    index = rng.integers(0, runs, size=(n_resamples, runs))
    resampled = statistic(values[index], axis=1)  # [B, K]
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(resampled, [alpha, 1.0 - alpha], axis=0)
    return low, high


def probability_of_improvement(x: Sequence[float], y: Sequence[float]) -> float:
    """P(X > Y) over all pairs of finite scores: mean of 1[x > y] + 0.5 * 1[x == y]."""
    a, b = _finite(x), _finite(y)
    if a.size == 0 or b.size == 0:
        return math.nan
    greater = (a[:, None] > b[None, :]).mean()
    ties = (a[:, None] == b[None, :]).mean()
    return float(greater + 0.5 * ties)


# --------------------------------------------------------------------------- final scores


def _last_fraction(count: int, fraction: float) -> int:
    # round first: 100 * 0.07 is 7.000000000000001 in floating point (ceil would give 8)
    return max(1, math.ceil(round(count * fraction, 9)))


def final_scores(
    frame: pd.DataFrame, metric: str = "return_mean", fraction: float = 0.1
) -> pd.DataFrame:
    """One row per run: params, config, run_id, seed, state, stopped_at, epochs, env_steps,
    final_score.

    ``final_score`` is the mean of ``metric`` over the run's last ceil(fraction x epochs)
    recorded epochs, NaN epochs skipped (NaN if none is left or the run has no epoch); for a
    run stopped by racing that is its score at its rung ``stopped_at`` (<NA> for the others).
    ``epochs`` counts recorded epochs, ``env_steps`` is the last one recorded.
    """
    if metric not in frame.columns:
        raise KeyError(f"metric {metric!r} is not a column of the frame")
    params = param_columns(frame)
    rows = []
    for run_id, run in frame.groupby("run_id", sort=False):
        recorded = run[run["epoch"].notna()].sort_values("epoch")
        epochs = len(recorded)
        score = math.nan
        if epochs:
            tail = recorded[metric].to_numpy(dtype=float)[-_last_fraction(epochs, fraction) :]
            tail = tail[np.isfinite(tail)]
            if tail.size:
                score = float(tail.mean())
        first = run.iloc[0]
        steps = recorded["env_steps"].iloc[-1] if epochs else pd.NA
        rows.append(
            {
                **{p: first[p] for p in params},
                "config": first["config"],
                "run_id": run_id,
                "seed": int(first["seed"]),
                "state": first["state"],
                "stopped_at": first["stopped_at"] if "stopped_at" in run.columns else pd.NA,
                "epochs": epochs,
                "env_steps": steps,
                "final_score": score,
            }
        )
    out = pd.DataFrame(rows)
    out["env_steps"] = out["env_steps"].astype("Int64")
    out["stopped_at"] = out["stopped_at"].astype("Int64")
    out.attrs.update(params=params, metric=metric, window=fraction)
    return out


def stopped_configs(runs: pd.DataFrame) -> dict[str, int | None]:
    """Configurations stopped early by racing -> the epoch they were stopped at (the largest
    ``stopped_at`` of their runs; None when the frame has no such column), in frame order.

    ``runs`` is :func:`analysis.load.load`'s frame or :func:`final_scores`' frame. A
    configuration is stopped when some run of it is ``stopped`` and none is done or running
    (racing stops every seed of a configuration together; a seed that diverged or failed
    before the rung keeps its state)."""
    out: dict[str, int | None] = {}
    for config, group in runs.groupby("config", sort=False):
        states = group["state"]
        if not (states == "stopped").any() or states.isin(("done", "running")).any():
            continue
        rungs = group.loc[states == "stopped"].get("stopped_at")
        rungs = rungs.dropna() if rungs is not None else pd.Series(dtype="Int64")
        out[config] = int(rungs.max()) if len(rungs) else None
    return out


# --------------------------------------------------------------------------- curves

X_AXES = {"env_steps": "env_steps", "epoch": "epoch", "wall": "wall_time_s"}
"""``--x`` choice -> the x column of :func:`aggregate_curves`' frame."""


def with_wall_time(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy sorted by run and epoch with ``wall_time_s``: each run's training seconds so
    far (the cumulative sum of its ``wall_s``, missing values as 0)."""
    out = frame.sort_values(["run_id", "epoch"], kind="stable").copy()
    wall = out["wall_s"].astype(float).fillna(0.0)
    out["wall_time_s"] = wall.groupby(out["run_id"], sort=False).cumsum()
    return out


def aggregate_curves(
    frame: pd.DataFrame,
    metric: str = "return_mean",
    *,
    x: str = "env_steps",
    states: Sequence[str] = ("done", "running", "stopped"),
    points: int = 100,
    seed: int = 0,
    n_resamples: int = 1000,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Median, mean and IQM of ``metric`` over the seeds of each configuration, with CIs.

    ``x`` is the axis the runs are aligned on: ``"env_steps"`` (default), ``"epoch"``, or
    ``"wall"`` (seconds of training since the run's start: the cumulative sum of its
    ``wall_s``, output column ``wall_time_s``); :data:`X_AXES` maps each to its column.
    Runs do not share env steps (episode ends differ), so each run is linearly interpolated
    onto one common grid of ``points`` x values spanning all runs; a run enters a grid
    point only inside its own recorded range (no extrapolation), so partial runs shorten the
    set of seeds late in training rather than bias it. NaN epochs are skipped. Only runs
    whose state is in ``states`` are used (default: done, running and stopped: a stopped run
    simply ends at its rung; diverged and failed runs would pull the aggregate toward their
    frozen values). ``n_runs`` says how many runs each point aggregates.

    Returns one row per (configuration, grid point) with at least one run: params, config,
    the x column, n_runs, and for each of median / mean / iqm the value and ``_low`` /
    ``_high`` bootstrap bounds.
    """
    if x not in X_AXES:
        raise ValueError(f"x: expected one of {sorted(X_AXES)}, got {x!r}")
    x_col = X_AXES[x]
    params = param_columns(frame)
    used = frame[frame["state"].isin(states) & frame["epoch"].notna()]
    if x == "wall":
        used = with_wall_time(used)
    used = used[np.isfinite(used[metric].to_numpy(dtype=float))]
    columns = [*params, "config", x_col, "n_runs"]
    for name in STATISTICS:
        columns += [name, f"{name}_low", f"{name}_high"]
    if used.empty:
        out = pd.DataFrame(columns=columns)
        out.attrs.update(params=params, metric=metric, x=x_col)
        return out
    steps = used[x_col].to_numpy(dtype=float)
    grid = np.linspace(steps.min(), steps.max(), max(2, points))
    rng = np.random.default_rng(seed)
    pieces = []
    for config, group in used.groupby("config", sort=False):
        curves, covered = [], []
        for _, run in group.groupby("run_id", sort=False):
            xs = run[x_col].to_numpy(dtype=float)
            y = run[metric].to_numpy(dtype=float)
            curves.append(np.interp(grid, xs, y))
            covered.append((grid >= xs.min()) & (grid <= xs.max()))
        values, mask = np.array(curves), np.array(covered)  # [R, K]
        result = {name: np.full(grid.size, np.nan) for name in columns[len(params) + 3 :]}
        # grid points with the same set of covering runs are bootstrapped together
        patterns, which = np.unique(mask.T, axis=0, return_inverse=True)
        for k, pattern in enumerate(patterns):
            cols = np.flatnonzero(which.ravel() == k)
            if not pattern.any():
                continue
            block = values[pattern][:, cols]
            for name, statistic in STATISTICS.items():
                result[name][cols] = statistic(block, axis=0)
                low, high = _bootstrap(block, statistic, rng, n_resamples, confidence)
                result[f"{name}_low"][cols], result[f"{name}_high"][cols] = low, high
        n_runs = mask.sum(axis=0)
        first = group.iloc[0]
        piece = pd.DataFrame(
            {
                **{p: first[p] for p in params},
                "config": config,
                x_col: grid,
                "n_runs": n_runs,
                **{name: result[name] for name in columns[len(params) + 3 :]},
            }
        )
        pieces.append(piece[piece["n_runs"] > 0])
    out = pd.concat(pieces, ignore_index=True)[columns]
    out.attrs.update(params=params, metric=metric, x=x_col)
    return out


# --------------------------------------------------------------------------- ranking


def ranking(
    scores: pd.DataFrame,
    *,
    statistic: str = "iqm",
    minimize: bool = False,
    seed: int = 0,
    n_resamples: int = 10000,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Configurations ranked by the IQM (or ``statistic``: median, mean) of the final scores
    of their done runs; highest first, lowest first with ``minimize`` (a loss).

    ``scores`` is :func:`final_scores`' frame. One row per configuration, best first (NaN IQM,
    e.g. no done run yet, last; ties keep grid order): rank, params, config, iqm, ci_low,
    ci_high (bootstrap CI of ``statistic``, the IQM by default), median, mean, std, n_done,
    n_running, n_pending, n_diverged, n_failed, n_stopped, stopped_at, and ``p_beats_next``:
    P(a done run of this configuration scores better than one of the next-ranked
    configuration) (better: more, or less with ``minimize``; NaN for the last row).
    ``attrs`` records params, statistic and minimize.

    Configurations stopped early by racing (:func:`stopped_configs`) come after all the
    others, ranked among themselves the same way but over their stopped runs' scores at
    their rung, which ``stopped_at`` names (<NA> for the other configurations). Their
    P(> next) compares stopped configurations only: NaN on the last other configuration.
    """
    params = param_columns(scores)
    ranked_by = _statistic(statistic)
    stopped = stopped_configs(scores)
    rng = np.random.default_rng(seed)
    rows = []
    samples = []
    groups = list(scores.groupby("config", sort=False))
    # the others first: their bootstrap draws are those of the sweep without the stopped ones
    groups = [g for g in groups if g[0] not in stopped] + [g for g in groups if g[0] in stopped]
    for config, group in groups:
        scored = "stopped" if config in stopped else "done"  # stopped: scores at the rung
        values = _finite(group.loc[group["state"] == scored, "final_score"])
        low, high = _bootstrap(values[:, None], ranked_by, rng, n_resamples, confidence)
        counts = group["state"].value_counts()
        first = group.iloc[0]
        rows.append(
            {
                **{p: first[p] for p in params},
                "config": config,
                "score": float(ranked_by(values)) if values.size else math.nan,
                "iqm": float(iqm(values)) if values.size else math.nan,
                "ci_low": float(low[0]),
                "ci_high": float(high[0]),
                "median": float(np.median(values)) if values.size else math.nan,
                "mean": float(values.mean()) if values.size else math.nan,
                "std": float(values.std(ddof=1)) if values.size > 1 else math.nan,
                **{f"n_{state}": int(counts.get(state, 0)) for state in STATES},
                "stopped_at": stopped[config] if config in stopped else pd.NA,
            }
        )
        samples.append(values)
    table = pd.DataFrame(rows)
    # best first; configurations without a score last; ties (and NaNs) in grid order;
    # stopped configurations after all the others (lexsort: the last key sorts first)
    is_stopped = table["config"].isin(list(stopped)).to_numpy()
    sign = 1.0 if minimize else -1.0
    order = np.lexsort(
        (np.arange(len(table)), (sign * table["score"]).fillna(np.inf).to_numpy(), is_stopped)
    )
    table = table.iloc[order].reset_index(drop=True).drop(columns="score")
    ranked = [samples[i] for i in order]
    if minimize:  # P(X < Y) = P(-X > -Y)
        ranked = [-values for values in ranked]
    block = is_stopped[order]
    table["p_beats_next"] = [
        probability_of_improvement(ranked[i], ranked[i + 1])
        if i + 1 < len(ranked) and block[i] == block[i + 1]
        else math.nan
        for i in range(len(ranked))
    ]
    table["stopped_at"] = table["stopped_at"].astype("Int64")
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    counts = ["n_done", "n_running", "n_pending", "n_diverged", "n_failed", "n_stopped"]
    front = ["rank", *params, "config", "iqm", "ci_low", "ci_high", "median", "mean", "std"]
    table = table[[*front, *counts, "stopped_at", "p_beats_next"]]
    table.attrs.update(params=params, statistic=statistic, minimize=minimize)
    return table


def swept_envs(scores: pd.DataFrame) -> list[str]:
    """The env ids of a sweep that sweeps ``env`` (a grid key), else []."""
    if "env" not in param_columns(scores) or scores["env"].nunique() < 2:
        return []
    return [str(e) for e in dict.fromkeys(scores["env"])]


def ranking_by_env(scores: pd.DataFrame, **options) -> pd.DataFrame:
    """:func:`ranking` within each env when ``env`` is swept (returns of different tasks are
    not comparable): the tables one after the other in env order, ``rank`` counted within
    each env. Without a swept env, :func:`ranking` itself."""
    envs = swept_envs(scores)
    if not envs:
        return ranking(scores, **options)
    tables = [ranking(scores[scores["env"] == env], **options) for env in envs]
    out = pd.concat(tables, ignore_index=True)
    out.attrs.update(tables[0].attrs, by_env=True)
    return out


def survivors(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of :func:`ranking`'s table that were not stopped by racing (the candidates
    for the best configuration), in ranking order. Same rule as :func:`stopped_configs`."""
    if "n_stopped" not in table.columns:
        return table
    stopped = (table["n_stopped"] > 0) & (table["n_done"] == 0) & (table["n_running"] == 0)
    return table[~stopped]


# --------------------------------------------------------------------------- sensitivity


def sensitivity(
    scores: pd.DataFrame,
    param: str,
    *,
    statistic: str = "iqm",
    minimize: bool = False,
    seed: int = 0,
    n_resamples: int = 2000,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Final score against one swept parameter, every other parameter marginalised.

    For each value of ``param`` (sorted), over the done runs of every configuration with that
    value: n_runs, ``estimate`` (``statistic``, the IQM by default) with bootstrap ci_low /
    ci_high, iqm, median, q25, q75, min, max, and ``best_config`` (the ``statistic`` of the
    best configuration with that value, i.e. the value's best case when the other parameters
    are tuned; the lowest with ``minimize``).
    """
    function = _statistic(statistic)
    rng = np.random.default_rng(seed)
    done = scores[(scores["state"] == "done") & np.isfinite(scores["final_score"].astype(float))]
    rows = []
    for value in sorted(scores[param].unique()):
        at = done[done[param] == value]
        x = at["final_score"].to_numpy(dtype=float)
        low, high = _bootstrap(x[:, None], function, rng, n_resamples, confidence)
        per_config = at.groupby("config")["final_score"].apply(lambda s: function(s.to_numpy()))
        best = per_config.min() if minimize else per_config.max()
        rows.append(
            {
                param: value,
                "n_runs": x.size,
                "estimate": float(function(x)) if x.size else math.nan,
                "ci_low": float(low[0]),
                "ci_high": float(high[0]),
                "iqm": float(iqm(x)) if x.size else math.nan,
                "median": float(np.median(x)) if x.size else math.nan,
                "q25": float(np.quantile(x, 0.25)) if x.size else math.nan,
                "q75": float(np.quantile(x, 0.75)) if x.size else math.nan,
                "min": float(x.min()) if x.size else math.nan,
                "max": float(x.max()) if x.size else math.nan,
                "best_config": float(best) if x.size else math.nan,
            }
        )
    return pd.DataFrame(rows)


def cell_table(
    scores: pd.DataFrame, x: str, y: str, *, statistic: str = "iqm", where: dict | None = None
) -> pd.DataFrame:
    """Pivot of ``statistic`` of done runs' final scores: rows = values of ``y`` (sorted),
    columns = values of ``x``; other parameters marginalised unless fixed by ``where``."""
    done = scores[(scores["state"] == "done") & np.isfinite(scores["final_score"].astype(float))]
    for key, value in (where or {}).items():
        done = done[done[key] == value]
    function = _statistic(statistic)
    xs, ys = sorted(scores[x].unique()), sorted(scores[y].unique())
    table = pd.DataFrame(np.nan, index=pd.Index(ys, name=y), columns=pd.Index(xs, name=x))
    for (xv, yv), group in done.groupby([x, y]):
        table.loc[yv, xv] = float(function(group["final_score"].to_numpy(dtype=float)))
    return table


def cell_estimates(
    scores: pd.DataFrame,
    x: str,
    y: str,
    *,
    statistic: str = "iqm",
    where: dict | None = None,
    seed: int = 0,
    n_resamples: int = 2000,
    confidence: float = 0.95,
) -> dict[str, pd.DataFrame]:
    """:func:`cell_table` with the uncertainty a reader needs to judge a cell: pivots (rows =
    ``y`` values, columns = ``x`` values) ``estimate``, ``low``, ``high`` (percentile
    bootstrap CI over the cell's done runs) and ``n`` (done runs with a score)."""
    done = scores[(scores["state"] == "done") & np.isfinite(scores["final_score"].astype(float))]
    for key, value in (where or {}).items():
        done = done[done[key] == value]
    function = _statistic(statistic)
    rng = np.random.default_rng(seed)
    xs, ys = sorted(scores[x].unique()), sorted(scores[y].unique())
    index, columns = pd.Index(ys, name=y), pd.Index(xs, name=x)
    out = {
        k: pd.DataFrame(np.nan, index=index, columns=columns) for k in ("estimate", "low", "high")
    }
    out["n"] = pd.DataFrame(0, index=index, columns=columns)
    for (xv, yv), group in done.groupby([x, y]):
        values = group["final_score"].to_numpy(dtype=float)
        low, high = _bootstrap(values[:, None], function, rng, n_resamples, confidence)
        out["estimate"].loc[yv, xv] = float(function(values))
        out["low"].loc[yv, xv], out["high"].loc[yv, xv] = float(low[0]), float(high[0])
        out["n"].loc[yv, xv] = values.size
    return out


# --------------------------------------------------------------------------- profiles


def performance_profile(
    scores: pd.DataFrame,
    *,
    configs: Sequence[str] | None = None,
    below: bool = False,
    taus: Sequence[float] | np.ndarray | None = None,
    seed: int = 0,
    n_resamples: int = 2000,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Fraction of done runs whose final score exceeds each threshold tau (is below it, with
    ``below``: a loss), per configuration.

    ``configs`` selects configurations (default all) and adds an ``"all configurations"``
    curve pooling every done run. ``taus`` defaults to 201 values over the range of the
    scores, widened by 2 % at each end so that every curve starts at 1 and ends at 0.
    Returns long form: config, n_runs, tau, fraction, low, high (bootstrap over runs).
    """
    done = scores[(scores["state"] == "done") & np.isfinite(scores["final_score"].astype(float))]
    all_scores = done["final_score"].to_numpy(dtype=float)
    if taus is None:
        if all_scores.size:
            pad = 0.02 * (all_scores.max() - all_scores.min()) or 1.0
            taus = np.linspace(all_scores.min() - pad, all_scores.max() + pad, 201)
        else:
            taus = np.zeros(1)
    taus = np.asarray(taus, dtype=float)
    rng = np.random.default_rng(seed)
    groups: list[tuple[str, np.ndarray]] = []
    for config in configs if configs is not None else list(dict.fromkeys(scores["config"])):
        at = done.loc[done["config"] == config, "final_score"].to_numpy(dtype=float)
        groups.append((config, at))
    if configs is not None:
        groups.append(("all configurations", all_scores))
    pieces = []
    for config, x in groups:
        if below:  # a loss: the fraction of runs scoring below tau
            above = (x[:, None] < taus[None, :]).astype(float)
        else:
            above = (x[:, None] > taus[None, :]).astype(float)  # [R, taus]
        fraction = above.mean(axis=0) if x.size else np.full(taus.size, np.nan)
        low, high = _bootstrap(above, _mean, rng, n_resamples, confidence)
        pieces.append(
            pd.DataFrame(
                {
                    "config": config,
                    "n_runs": x.size,
                    "tau": taus,
                    "fraction": fraction,
                    "low": low,
                    "high": high,
                }
            )
        )
    out = pd.concat(pieces, ignore_index=True)
    out.attrs["below"] = below
    return out


def solved_epochs(
    frame: pd.DataFrame, threshold: float, metric: str = "return_mean"
) -> pd.DataFrame:
    """Per configuration: the first epoch at which the median over its done runs of ``metric``
    reaches ``threshold`` (NaN epochs skipped; NaN if never). Columns: config, solved_epoch."""
    done = frame[(frame["state"] == "done") & frame["epoch"].notna()]
    rows = []
    for config in frame["config"].unique():
        runs = done[done["config"] == config]
        first = math.nan
        if len(runs):
            median = runs.groupby("epoch")[metric].median().sort_index()
            hit = median[median >= threshold]
            first = float(hit.index[0]) if len(hit) else math.nan
        rows.append({"config": config, "solved_epoch": first})
    return pd.DataFrame(rows)


SWINGUP_BINS = (0.0, 100.0, 200.0, 350.0)


def outcome_bins(scores: pd.DataFrame, edges: Sequence[float]) -> pd.DataFrame:
    """Count finished runs' final scores in bins that cover every score.

    ``edges`` e1 < e2 < ... give the bins ``< e1``, ``e1-e2``, ..., ``>= ek`` (each bin holds
    its lower edge). One row per configuration (ranking order of ``scores``) plus an ``all``
    row; columns: config, n (done runs with a score), then one count column per bin.
    """
    edges = [float(e) for e in edges]
    if sorted(edges) != edges or len(set(edges)) != len(edges) or not edges:
        raise ValueError(f"bins: edges must be strictly increasing, got {edges}")

    def fmt(x: float) -> str:
        return f"{x:g}"

    labels = [f"< {fmt(edges[0])}"]
    labels += [f"{fmt(a)}-{fmt(b)}" for a, b in zip(edges[:-1], edges[1:], strict=True)]
    labels += [f">= {fmt(edges[-1])}"]
    done = scores[(scores["state"] == "done") & scores["final_score"].notna()]

    def counts(values: np.ndarray) -> list[int]:
        index = np.searchsorted(np.asarray(edges), values, side="right")
        return np.bincount(index, minlength=len(labels)).tolist()

    rows = []
    for config, group in done.groupby("config", sort=False):
        values = group["final_score"].to_numpy(dtype=float)
        rows.append(
            {"config": config, "n": len(values), **dict(zip(labels, counts(values), strict=True))}
        )
    values = done["final_score"].to_numpy(dtype=float)
    rows.append(
        {"config": "all", "n": len(values), **dict(zip(labels, counts(values), strict=True))}
    )
    return pd.DataFrame(rows)


def best_run(scores: pd.DataFrame, table: pd.DataFrame) -> str:
    """run_id of the best done run (highest final score) of the top-ranked configuration
    (never one stopped by racing)."""
    candidates = survivors(table)
    for config in candidates.loc[candidates["iqm"].notna(), "config"]:
        runs = scores[(scores["config"] == config) & (scores["state"] == "done")]
        runs = runs[np.isfinite(runs["final_score"].astype(float))]
        if not runs.empty:
            return str(
                runs.sort_values("final_score", ascending=False, kind="stable").iloc[0]["run_id"]
            )
    raise ValueError("no done run has a final score")

"""Racing: stop whole configurations that are clearly behind, at rung epochs, across seeds.

A configuration (one grid point, all its seeds) is judged at each rung epoch R of the sweep's
``racing:`` block (:class:`a2c_core.spec.Racing`) from the rows its seeds have recorded up to
R, and nothing else:

- a seed's score at R is the mean ``return_mean`` over its last w epochs up to R (w =
  ``window``, or ceil(window x R) for a fraction: analyze's final-score rule at horizon R);
- a configuration's estimate is the ``statistic`` (IQM by default) of its seeds' scores, with
  a percentile bootstrap interval (``resamples`` resamples over seeds, ``confidence``), drawn
  from a generator seeded with (``seed``, R, number of seeds): the same rows give the same
  interval whatever the order or the machine's load, and equal scores equal intervals;
- configurations with at least ``min_seeds_done`` scored seeds are ranked by estimate; the
  best ``keep_top`` are never stopped; any other is stopped when its upper bound is below the
  lower bound of the ``keep_top``-th best, or below ``threshold`` when one is set.

The driver (runner.launch) pauses every run at each rung until all runs that can still reach
the rung have, so every decision sees the same rows in an interrupted and an uninterrupted
sweep. This module is pure: rows in, verdicts out.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from a2c_core.spec import Racing

__all__ = ["RunRows", "Simulation", "Verdict", "config_key", "describe", "fates", "judge",
           "scores_at", "seed_score", "simulate", "warning"]  # fmt: skip


@dataclass(frozen=True)
class Verdict:
    """A configuration's standing at one rung."""

    n: int
    """seeds scored."""
    estimate: float
    low: float
    high: float
    stop: bool
    reason: str


def config_key(swept: Mapping[str, Any]) -> str:
    """A configuration's identity among a sweep's grid points: its swept values as JSON."""
    return json.dumps(dict(swept), sort_keys=True, default=str)


def config_label(swept: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in swept.items()) or "(fixed config)"


def window_epochs(racing: Racing, rung: int) -> int:
    w = racing.window
    if isinstance(w, int) and not isinstance(w, bool):
        return max(1, min(w, rung))
    return max(1, math.ceil(w * rung))


def seed_score(returns: Sequence[float], rung: int, racing: Racing) -> float | None:
    """A seed's score at ``rung`` from its ``return_mean`` of epochs 1, 2, ...: the mean of
    the finite values among its last w epochs up to the rung (a run that diverged before the
    rung is scored on the rows it has); None when there is none."""
    rows = list(returns[:rung])
    tail = [v for v in rows[-window_epochs(racing, rung) :] if math.isfinite(v)]
    return sum(tail) / len(tail) if tail else None


def _statistic(name: str):
    from scipy import stats

    if name == "iqm":
        return lambda x, axis=None: stats.trim_mean(x, 0.25, axis=axis)
    if name == "median":
        return lambda x, axis=None: np.median(x, axis=axis)
    return lambda x, axis=None: np.mean(x, axis=axis)


def _generator(racing: Racing, rung: int, n: int) -> np.random.Generator:
    """The resampling draws at a rung depend on the number of seeds only (common random
    numbers): configurations with the same scores get the same interval, so identical
    configurations never stop each other, whatever the confidence."""
    return np.random.default_rng([racing.seed, rung, n])


_CHUNK = 1 << 20  # resampled values per bootstrap chunk (8 MB of float64)


def interval(scores: Sequence[float], racing: Racing, rung: int) -> tuple[float, float, float]:
    """(estimate, low, high): the statistic and its percentile bootstrap interval over seeds
    (the draws depend on the seed count only)."""
    stat = _statistic(racing.statistic)
    x = np.asarray(sorted(scores), dtype=np.float64)  # order-free: the same set, the same draw
    estimate = float(stat(x))
    rng = _generator(racing, rung, len(x))
    step = max(1, _CHUNK // len(x))
    boot = np.concatenate([
        stat(x[rng.integers(0, len(x), size=(min(step, racing.resamples - i), len(x)))], axis=1)
        for i in range(0, racing.resamples, step)
    ])  # fmt: skip
    alpha = (1.0 - racing.confidence) / 2
    low, high = np.quantile(boot, [alpha, 1.0 - alpha])
    return estimate, float(low), float(high)


def describe(racing: Racing) -> str:
    """One line: what racing does in this sweep."""
    bar = f"the {_ordinal(racing.keep_top)} best's lower bound"
    if racing.threshold is not None:
        bar += f" or {racing.threshold:g}"
    window = (f"{racing.window} epochs" if isinstance(racing.window, int)
              else f"{racing.window:g} x the rung epoch")  # fmt: skip
    return (f"racing at epochs {', '.join(map(str, racing.rungs))}: {racing.statistic.upper()} of "
            f"the seeds' mean return over the last {window}, {racing.confidence:.0%} bootstrap "
            f"interval (seed {racing.seed}); a configuration whose upper bound is below {bar} "
            f"stops; the best {racing.keep_top} never do; judged from {racing.min_seeds_done} "
            "scored seeds")  # fmt: skip


def warning(racing: Racing, seeds: int) -> str | None:
    """A racing block that can never stop anything, said before the sweep starts."""
    if seeds < racing.min_seeds_done:
        return (f"racing: the sweep has {seeds} seeds per configuration, fewer than "
                f"min_seeds_done ({racing.min_seeds_done}): racing will stop nothing")  # fmt: skip
    return None


def _ordinal(k: int) -> str:
    suffix = "th" if 10 <= k % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(k % 10, "th")
    return f"{k}{suffix}"


def judge(scores: Mapping[str, Sequence[float]], racing: Racing, rung: int,
          labels: Mapping[str, str] | None = None) -> dict[str, Verdict]:  # fmt: skip
    """The verdict at ``rung`` for every configuration in ``scores`` (key -> per-seed scores)."""
    labels = labels or {}
    stat = racing.statistic.upper() if racing.statistic == "iqm" else racing.statistic
    out: dict[str, Verdict] = {}
    judged: dict[str, tuple[float, float, float]] = {}
    for key in sorted(scores):
        s = [float(v) for v in scores[key]]
        if len(s) < racing.min_seeds_done:
            out[key] = Verdict(len(s), math.nan, math.nan, math.nan, False,
                               f"{len(s)} seeds scored, fewer than min_seeds_done "
                               f"({racing.min_seeds_done}): not judged")  # fmt: skip
        else:
            judged[key] = interval(s, racing, rung)
    order = sorted(judged, key=lambda k: (-judged[k][0], k))
    top = set(order[: racing.keep_top])
    bar_key = order[racing.keep_top - 1] if len(order) >= racing.keep_top else None
    bar = judged[bar_key][1] if bar_key is not None else None
    for key, (est, low, high) in judged.items():
        n = len(scores[key])
        mine = f"{stat} {est:.4g} [{low:.4g}, {high:.4g}] over {n} seeds"
        if key in top:
            out[key] = Verdict(n, est, low, high, False,
                               f"{mine}: among the best {racing.keep_top}")  # fmt: skip
            continue
        if bar is not None and high < bar:
            which = labels.get(bar_key, bar_key)
            why = (f"{mine} at epoch {rung}: upper bound below the lower bound {bar:.4g} of "
                   f"the {_ordinal(racing.keep_top)} best ({which})")  # fmt: skip
            out[key] = Verdict(n, est, low, high, True, why)
        elif racing.threshold is not None and high < racing.threshold:
            why = f"{mine} at epoch {rung}: upper bound below the threshold {racing.threshold:.4g}"
            out[key] = Verdict(n, est, low, high, True, why)
        else:
            out[key] = Verdict(n, est, low, high, False, f"{mine}: still in the race")
    return out


@dataclass(frozen=True)
class RunRows:
    """What racing reads of one run."""

    config: str
    """its configuration's :func:`config_key`."""
    returns: Sequence[float]
    """return_mean of epochs 1, 2, ... as recorded."""
    state: str
    stopped_at: int | None = None
    """the rung a stopped run was stopped at."""


def scores_at(runs: Mapping[str, RunRows], racing: Racing, rung: int) -> dict[str, list[float]]:
    """Per-configuration seed scores at ``rung``. The configurations in the race are those
    none of whose runs was stopped at an earlier rung; a run of one counts when its rows reach
    the rung, or when it diverged before it (scored on the rows it has). Failed runs do not."""
    out: dict[str, list[float]] = {}
    out_of_race = {r.config for r in runs.values()
                   if r.state == "stopped" and r.stopped_at is not None and r.stopped_at < rung}  # fmt: skip
    for run in runs.values():
        key, values, state = run.config, run.returns, run.state
        if key in out_of_race or state == "failed":
            continue
        if len(values) < rung and state != "diverged":
            continue
        score = seed_score(values, rung, racing)
        if score is not None:
            out.setdefault(key, []).append(score)
    return out


def fates(runs: Mapping[str, RunRows], rung: int) -> dict[str, Verdict]:
    """Configurations whose fate at ``rung`` is already sealed by their other runs: stopped
    at this rung or an earlier one (stop), or gone past this rung in the race (go on). Their
    runs that reach the rung later (seeds added to the sweep, a damaged run recomputed)
    share it instead of being judged apart from their siblings."""
    out: dict[str, Verdict] = {}
    nan = math.nan
    for run in runs.values():
        if run.state == "stopped" and run.stopped_at is not None and run.stopped_at <= rung:
            why = f"its configuration was stopped at epoch {run.stopped_at} by racing"
            out[run.config] = Verdict(0, nan, nan, nan, True, why)
    for run in runs.values():
        passed = run.state in ("running", "done", "stopped") and len(run.returns) > rung
        if passed and run.config not in out:
            out[run.config] = Verdict(0, nan, nan, nan, False, "past this rung already")
    return out


@dataclass(frozen=True)
class Simulation:
    """What racing would have done to a finished sweep (every run's full rows known)."""

    stopped_at: dict[str, int]
    """config key -> the rung it is stopped at (survivors are absent)."""
    verdicts: dict[int, dict[str, Verdict]]
    run_epochs: int
    """run-epochs trained with racing."""
    full_run_epochs: int


def simulate(runs: Mapping[str, RunRows], racing: Racing) -> Simulation:
    """Replay racing over a sweep whose runs all trained to the end (no run stopped): a run's
    rows do not depend on racing, so this is exactly what a raced sweep decides (runner.launch
    stops runs at the same rungs), and costs no training."""
    stopped: dict[str, int] = {}
    verdicts: dict[int, dict[str, Verdict]] = {}
    for rung in racing.rungs:
        now = {rid: RunRows(r.config, r.returns, "stopped", stopped[r.config])
               if r.config in stopped else r for rid, r in runs.items()}  # fmt: skip
        verdicts[rung] = judge(scores_at(now, racing, rung), racing, rung)
        for key, verdict in verdicts[rung].items():
            if verdict.stop:
                stopped[key] = rung
    used = full = 0
    for run in runs.values():
        full += len(run.returns)
        used += min(len(run.returns), stopped.get(run.config, len(run.returns)))
    return Simulation(stopped, verdicts, used, full)

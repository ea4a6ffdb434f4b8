"""Coarse-to-fine: a follow-up sweep YAML around the best configurations of a finished one.

For each swept parameter:

- did not matter, or a single value: fixed at the best configuration's value. Whether it
  matters is judged on the done runs' final scores with statistics that survive bimodal
  outcomes (swing-up: a seed ends stuck near -28 or at 100-340, so every median is -28
  whatever the parameter does to the share of good seeds). Per value, the IQM over every
  run with that value (other parameters pooled, as in the sensitivity table); the effect is
  the gap IQM(best value) - IQM(worst value), with a percentile bootstrap CI (``1 - alpha``,
  seeds resampled within each configuration: the grid is the design, the seeds the noise;
  within each value when some configuration has a single done run). Three outcomes:
  "did not matter" (fixed) only when the CI lies within +-``tolerance`` (10 %) of the score
  range (max - min of all done final scores): fixing it costs little, with confidence;
  "matters" when the CI excludes 0; otherwise "may matter": the CI is too wide to tell, and
  few seeds detect little, so it stays in the grid. P(best > worst), over pairs of runs of
  otherwise identical configurations, is reported but does not decide (a rank effect also
  flags consistent differences too small to matter). The YAML header says all this: the
  statistic, then per parameter its per-value IQMs, the gap with its CI, P and the decision;
- learning rates and other positive numbers: log-spaced neighbours of each top-K value,
  ``v * 10**linspace(-s, s, points)``, where s is half the distance in decades to the nearest
  other value of the old grid (0.5 when there is none), so the new grid fills the gaps;
- gamma and lam: the same on the 1 - x scale (0.99 -> 0.9968, 0.99, 0.9684), kept in [0, 1];
- init_log_std (already a log, any sign): evenly spaced neighbours, ``v + linspace(-s, s,
  points)`` with s half the distance to the nearest other old value (0.5 when there is none),
  kept in its range [-10, 5];
- layer widths and a null max_grad_norm: the values taken by the top-K configurations;
- integers: log-spaced neighbours rounded to positive integers;
- booleans and strings: the values taken by the top-K configurations.

Every top-K configuration's own values are kept exactly, so the best configuration is a point
of the new grid. New seeds by default: ``{count, start}`` starting after the largest old seed.
The name is ``<old>-refined``; the file is checked with :func:`a2c_core.spec.load_spec` before
it is moved to ``out``, which must not exist yet (``force``: replace it) and is never a file
of the results directory itself.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.load import AnalysisError, format_value

__all__ = [
    "Effect",
    "Refinement",
    "check_output",
    "effect",
    "method_note",
    "neighbours",
    "refine",
    "write_refined",
]

UNIT_INTERVAL = ("gamma", "lam")
LINEAR = {"init_log_std": (-10.0, 5.0)}
"""signed parameters refined on a linear scale, with their ranges."""
_MERGE_DECADES = 0.02  # neighbours closer than this (in log10) to a kept value are dropped
TOLERANCE = 0.1
"""A parameter "did not matter" only if the CI of its IQM gap lies within +- this fraction of
the score range (max - min of every done run's final score)."""


@dataclass(frozen=True)
class Refinement:
    """A follow-up sweep: ``spec`` is the YAML mapping; ``notes`` say what was decided."""

    spec: dict[str, Any]
    grid: dict[str, list[Any]]
    fixed: dict[str, Any]
    notes: list[str]
    best: dict[str, Any]

    @property
    def num_runs(self) -> int:
        seeds = self.spec["seeds"]
        count = seeds["count"] if isinstance(seeds, dict) else len(seeds)
        return math.prod(len(v) for v in self.grid.values()) * count


def _round_sig(value: float, digits: int = 3) -> float:
    if value == 0 or not math.isfinite(value):
        return value
    return float(f"{value:.{digits}g}")


def _half_gap(center: float, others: Sequence[float]) -> float:
    """Half the log10 distance from ``center`` to the nearest other positive value (0.5 if
    there is none)."""
    gaps = [abs(math.log10(o) - math.log10(center)) for o in others if o > 0 and o != center]
    return min(gaps) / 2 if gaps else 0.5


def neighbours(name: str, kind: type, center: Any, old_values: Sequence[Any], points: int) -> list:
    """Values around ``center`` for parameter ``name`` (``kind`` its type), ``center`` first.

    See the module docstring for the rule per kind. ``old_values`` is the old grid's list.
    """
    points = max(1, int(points))
    if kind is bool or kind is str or isinstance(center, bool | str):
        return [center]  # also layer widths (their text): no neighbours by arithmetic
    if isinstance(center, float) and math.isinf(center):  # max_grad_norm: null (no clipping)
        return [center]
    old_values = [v for v in old_values if v is not None]
    if name in LINEAR:
        low, high = LINEAR[name]
        gaps = [abs(float(o) - float(center)) for o in old_values if float(o) != float(center)]
        span = min(gaps) / 2 if gaps else 0.5
        values = [round(min(high, max(low, float(center) + o)), 6)
                  for o in np.linspace(-span, span, points)]  # fmt: skip
        return [center, *values]
    if name in UNIT_INTERVAL:
        u = 1.0 - float(center)
        others = [1.0 - float(v) for v in old_values]
        if u > 0:
            span = _half_gap(u, others)
            us = u * 10 ** np.linspace(-span, span, points)
        else:  # center == 1: fill between 1 and the nearest old value
            nearest = min((o for o in others if o > 0), default=0.01)
            us = nearest * 10 ** np.linspace(-1.5, -0.5, max(1, points - 1))
        us = np.clip(us, 0.0, 1.0)
        values = [round(1.0 - _round_sig(float(x)), 12) for x in us]
        return [center, *values]
    if kind is int:
        span = _half_gap(float(center), [float(v) for v in old_values])
        values = [max(1, round(float(center) * 10**o)) for o in np.linspace(-span, span, points)]
        return [center, *values]
    center = float(center)
    if center <= 0:
        return [center]
    span = _half_gap(center, [float(v) for v in old_values])
    values = [_round_sig(center * 10**o) for o in np.linspace(-span, span, points)]
    return [center, *values]


def _merge(candidates: Sequence[Any], centers: Sequence[Any], name: str) -> list:
    """Sorted union: centers exactly, other candidates unless within _MERGE_DECADES of a kept
    value (measured on the 1 - x scale for gamma / lam)."""

    def scale(v: Any) -> float | None:
        if name in LINEAR:  # already a log: compared as is
            return float(v)
        x = 1.0 - float(v) if name in UNIT_INTERVAL else float(v)
        return math.log10(x) if x > 0 else None

    kept: list[Any] = []
    for value in [*centers, *candidates]:
        if isinstance(value, bool | str):
            if value not in kept:
                kept.append(value)
            continue
        s = scale(value)
        close = any(
            (s is None and scale(k) is None)
            or (s is not None and scale(k) is not None and abs(s - scale(k)) < _MERGE_DECADES)
            or k == value
            for k in kept
        )
        if not close:
            kept.append(value)
    if all(isinstance(v, bool | str) for v in kept):
        return kept
    return sorted(kept)


@dataclass(frozen=True)
class Effect:
    """How much one parameter moves the final score of done runs (others marginalised).

    Uncertainty: percentile bootstrap over seeds, resampled within each configuration (the
    grid is the design, the seeds the noise), ``confidence`` level. ``stratified`` False:
    some configuration has a single done run, so runs are resampled within each value.
    """

    values: tuple[Any, ...]
    """the parameter's values with a done score, sorted."""
    iqms: tuple[float, ...]
    """per value: IQM of the final scores of its done runs, every other parameter pooled."""
    iqm_cis: tuple[tuple[float, float], ...]
    """per value: bootstrap CI of that IQM."""
    best: Any
    """the value with the highest IQM (the first one on ties)."""
    worst: Any
    """the value with the lowest IQM (never ``best``)."""
    gap: float
    """IQM(best) - IQM(worst), >= 0."""
    gap_ci: tuple[float, float]
    """bootstrap CI of IQM(best) - IQM(worst) (the same two values in every resample)."""
    p_better: float
    """P(a run with ``best`` scores more than one with ``worst``; ties count half), over the
    pairs of runs of otherwise identical configurations (all pairs when not stratified)."""
    p_ci: tuple[float, float]
    """bootstrap CI of ``p_better``."""
    tolerance: float
    """``TOLERANCE`` x the range of every done run's final score: what "small" means."""
    confidence: float
    stratified: bool

    @property
    def decision(self) -> str:
        """``"did not matter"``: the gap's CI lies within +-``tolerance`` (even if it excludes
        0: then the effect is real but negligible); ``"matters"``: the CI excludes 0;
        ``"may matter"``: neither, the CI is too wide to tell. ``p_better`` is reported, not
        used: a rank effect also flags consistent differences of no practical size."""
        low, high = self.gap_ci
        if -self.tolerance <= low and high <= self.tolerance:
            return "did not matter"
        if low > 0 or high < 0:
            return "matters"
        return "may matter"

    def matters(self) -> bool:
        """False only for ``"did not matter"``: a parameter is fixed only on evidence."""
        return self.decision != "did not matter"

    def describe(self) -> str:
        b, w = format_value(self.best), format_value(self.worst)
        iqms = ", ".join(
            f"{format_value(v)}: {_num(m)}" for v, m in zip(self.values, self.iqms, strict=True)
        )
        p = (
            f"P({b} > {w}) {self.p_better:.2f} {_ci(self.p_ci, '.2f')}"
            if math.isfinite(self.p_better)
            else f"P({b} > {w}) n/a"
        )
        return (
            f"{self.decision}: IQM {iqms}; gap ({b} vs {w}) {_num(self.gap)} "
            f"{_ci(self.gap_ci)}, tolerance +-{_num(self.tolerance)}; {p}"
        )


def _num(x: float) -> str:
    return f"{x:.1f}" if abs(x) >= 1 else f"{x:.3g}"


def _ci(ci: tuple[float, float], spec: str | None = None) -> str:
    if spec is None:
        return f"[{_num(ci[0])}, {_num(ci[1])}]"
    return f"[{ci[0]:{spec}}, {ci[1]:{spec}}]"


def _done(scores: pd.DataFrame) -> pd.DataFrame:
    return scores[(scores["state"] == "done") & np.isfinite(scores["final_score"].astype(float))]


def _stratified(done: pd.DataFrame) -> bool:
    """Resample seeds within each configuration: only when each has two done runs or more."""
    sizes = done.groupby("config").size()
    return bool(len(sizes)) and int(sizes.min()) >= 2


def _wins(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Over the last axis: #(x_i > y_j) + 0.5 #(x_i == y_j) (Mann-Whitney U, via midranks)."""
    from scipy import stats

    ranks = stats.rankdata(np.concatenate([x, y], axis=-1), axis=-1)
    n = x.shape[-1]
    return ranks[..., :n].sum(axis=-1) - n * (n + 1) / 2


def effect(
    scores: pd.DataFrame,
    param: str,
    *,
    seed: int = 0,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    tolerance: float = TOLERANCE,
) -> Effect | None:
    """The :class:`Effect` of ``param`` in :func:`analysis.aggregate.final_scores`' frame
    (None: fewer than two of its values have a done run with a score).

    The bootstrap draws from ``numpy.random.default_rng(seed)``: the same ``seed``, the same
    CIs. ``tolerance`` is a fraction of the range of the done runs' final scores."""
    from analysis.aggregate import iqm

    done = _done(scores)
    values = sorted(done[param].unique())
    if len(values) < 2:
        return None
    stratified = _stratified(done)
    others = [q for q in scores.attrs.get("params", ()) if q != param and q in done.columns]
    keys = [*others, param] if stratified else [param]
    rng = np.random.default_rng(seed)
    cells: list[tuple[tuple, Any, np.ndarray, np.ndarray]] = []  # context, value, runs, draws
    for key, group in done.groupby(keys, sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        x = group["final_score"].to_numpy(dtype=float)
        cells.append((key[:-1], key[-1], x, x[rng.integers(0, x.size, (n_resamples, x.size))]))

    def pooled(value: Any, index: int) -> np.ndarray:
        return np.concatenate([c[index] for c in cells if c[1] == value], axis=-1)

    tail = (1.0 - confidence) / 2.0

    def interval(draws: np.ndarray) -> tuple[float, float]:
        low, high = np.quantile(draws, [tail, 1.0 - tail])
        return float(low), float(high)

    iqms = [float(iqm(pooled(v, 2))) for v in values]
    draws = {v: iqm(pooled(v, 3), axis=1) for v in values}
    first = int(np.argmax(iqms))
    last = min((i for i in range(len(values)) if i != first), key=lambda i: iqms[i])
    best, worst = values[first], values[last]

    wins, pairs, drawn_wins = 0.0, 0, np.zeros(n_resamples)
    for context in dict.fromkeys(c[0] for c in cells):
        at = {c[1]: c for c in cells if c[0] == context}
        if best in at and worst in at:
            (_, _, xb, db), (_, _, xw, dw) = at[best], at[worst]
            wins += float(_wins(xb, xw))
            drawn_wins += _wins(db, dw)
            pairs += xb.size * xw.size
    p_better, p_ci = math.nan, (math.nan, math.nan)
    if pairs:
        p_better, p_ci = wins / pairs, interval(drawn_wins / pairs)
    scale = float(done["final_score"].max() - done["final_score"].min())
    return Effect(
        values=tuple(_plain(v) for v in values),
        iqms=tuple(iqms),
        iqm_cis=tuple(interval(draws[v]) for v in values),
        best=_plain(best),
        worst=_plain(worst),
        gap=iqms[first] - iqms[last],
        gap_ci=interval(draws[best] - draws[worst]),
        p_better=p_better,
        p_ci=p_ci,
        tolerance=tolerance * scale,
        confidence=confidence,
        stratified=stratified,
    )


def method_note(
    scores: pd.DataFrame,
    *,
    seed: int = 0,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    tolerance: float = TOLERANCE,
) -> str:
    """One line for the YAML header: the statistic :func:`effect` decides with."""
    done = _done(scores)
    scale = float(done["final_score"].max() - done["final_score"].min()) if len(done) else 0.0
    within = (
        "the seeds within each configuration"
        if _stratified(done)
        else "the runs within each value (some configuration has a single done run)"
    )
    pairs = "otherwise identical configurations" if _stratified(done) else "all runs"
    return (
        f"what matters: per value, the IQM of the done runs' final scores (other parameters "
        f"pooled); effect: gap = IQM(best value) - IQM(worst value), {confidence:.0%} bootstrap "
        f"CI ({n_resamples} resamples of {within}, seed {seed}); fixed only when that CI lies "
        f"within +-{tolerance:.0%} of the score range (+-{_num(tolerance * scale)}), else kept "
        f"(matters: the CI excludes 0; may matter: too wide to tell); P(best > worst) over "
        f"pairs of runs of {pairs}, with its CI, for information only"
    )


def refine(
    sweep: Any,
    scores: pd.DataFrame,
    table: pd.DataFrame,
    *,
    top: int = 3,
    points: int = 5,
    seeds: int | None = None,
    same_seeds: bool = False,
    alpha: float = 0.05,
    tolerance: float = TOLERANCE,
    seed: int = 0,
    n_resamples: int = 2000,
) -> Refinement:
    """The follow-up sweep around the top-``top`` configurations of ``table``.

    ``sweep`` is the old :class:`a2c_core.spec.Sweep`, ``scores`` / ``table`` the frames of
    :func:`analysis.aggregate.final_scores` / :func:`analysis.aggregate.ranking`. ``seeds``
    sets the number of new seeds (default: as many as before); ``same_seeds`` reuses the old
    seed list instead. Configurations stopped early by racing are never among the top K.
    What matters is decided by :func:`effect` with ``1 - alpha`` CIs, ``tolerance``, and
    ``n_resamples`` bootstrap resamples drawn from ``seed``.
    """
    from a2c_core.config import FIELD_TYPES
    from a2c_core.spec import MAX_SEED
    from analysis.aggregate import survivors

    candidates = survivors(table)
    ranked = candidates[candidates["iqm"].notna()]
    if ranked.empty:
        raise AnalysisError(f"{sweep.name}: no done run has a final score yet; nothing to refine")
    if top < 1:
        raise AnalysisError(f"--top: must be >= 1, got {top}")
    if points < 1:
        raise AnalysisError(f"--points: must be >= 1, got {points}")
    best_rows = ranked.head(top)
    best = {p: _plain(best_rows.iloc[0][p]) for p in sweep.grid}
    notes = [
        f"around the top {len(best_rows)} configuration(s) of {sweep.name!r} by IQM of final "
        f"score; best: {', '.join(f'{k}={format_value(v)}' for k, v in best.items()) or '-'}"
    ]
    if len(candidates) < len(table):
        notes.append(
            f"{len(table) - len(candidates)} configuration(s) stopped early by racing left out"
        )
    how = {
        "seed": seed,
        "n_resamples": n_resamples,
        "confidence": 1.0 - alpha,
        "tolerance": tolerance,
    }
    if any(len(v) > 1 for v in sweep.grid.values()):
        notes.append(method_note(scores, **how))
    grid: dict[str, list[Any]] = {}
    fixed: dict[str, Any] = {}
    for param, old_values in sweep.grid.items():
        if len(old_values) == 1:
            fixed[param] = best[param]
            notes.append(f"{param}: fixed at {format_value(best[param])} (one value)")
            continue
        found = effect(scores, param, **how)
        why = (
            found.describe()
            if found is not None
            else "may matter: fewer than two values have a done run, not testable"
        )
        if found is not None and not found.matters():
            fixed[param] = best[param]
            notes.append(f"{param}: fixed at {format_value(best[param])} ({why})")
            continue
        centers = list(dict.fromkeys(_plain(v) for v in best_rows[param]))
        candidates = []
        for center in centers:
            candidates += neighbours(
                param, FIELD_TYPES.get(param, float), center, old_values, points
            )
        values = _merge(candidates, centers, param)
        if len(values) == 1:
            fixed[param] = values[0]
            notes.append(f"{param}: fixed at {format_value(values[0])} (no neighbour; {why})")
            continue
        grid[param] = values
        notes.append(f"{param}: {len(values)} values around {len(centers)} best ({why})")

    old_seeds = list(sweep.seeds)
    if same_seeds:
        new_seeds: Any = old_seeds if seeds is None else old_seeds[:seeds]
        notes.append("seeds: the old ones")
    else:
        count = seeds if seeds is not None else len(old_seeds)
        if count < 1:
            raise AnalysisError(f"--seeds: must be >= 1, got {count}")
        start = max(old_seeds) + 1
        if start + count - 1 > MAX_SEED:
            raise AnalysisError(f"{sweep.name}: no room for {count} new seeds above {start - 1}")
        new_seeds = {"count": count, "start": start}
        notes.append(f"seeds: {count} new ones from {start} (old ones excluded)")

    name = f"{sweep.name}-refined"
    spec: dict[str, Any] = {
        "name": name,
        "description": f"refinement of {sweep.name} around its top {len(best_rows)} "
        "configuration(s) (a2c-sweep refine)",
    }
    for key, value in sweep.raw.items():  # the old fixed fields, as written
        if key not in ("name", "description", "grid", "seeds", "execution"):
            spec[key] = value
    spec.update({k: _sweep_value(k, v) for k, v in fixed.items()})
    if grid:
        spec["grid"] = {k: [_sweep_value(k, v) for v in vs] for k, vs in grid.items()}
    spec["seeds"] = new_seeds
    if sweep.raw.get("execution") is not None:
        spec["execution"] = sweep.raw["execution"]
    return Refinement(spec=spec, grid=grid, fixed=fixed, notes=notes, best=best)


def _plain(value: Any) -> Any:
    """numpy scalars -> Python values (yaml.safe_dump cannot write numpy types)."""
    return value.item() if hasattr(value, "item") else value


def _sweep_value(param: str, value: Any) -> Any:
    """An analysis value (analysis.load.param_value) as the sweep file writes it: widths'
    text back to a list, inf max_grad_norm back to null."""
    from a2c_core.config import FIELD_TYPES, OPTIONAL_FLOAT, WIDTHS

    value = _plain(value)
    kind = FIELD_TYPES.get(param)
    if kind == WIDTHS and isinstance(value, str):
        return json.loads(value)
    if kind == OPTIONAL_FLOAT and isinstance(value, float) and math.isinf(value):
        return None
    return value


def to_yaml(refinement: Refinement, source: str) -> str:
    import yaml

    header = [f"# written by `a2c-sweep refine {source}`"]
    header += [f"# {note}" for note in refinement.notes]
    body = yaml.safe_dump(refinement.spec, sort_keys=False, default_flow_style=None, width=100)
    return "\n".join(header) + "\n" + body


def _one_task(sweep: Any, frame: pd.DataFrame, env: str | None) -> tuple[Any, pd.DataFrame]:
    """The sweep and rows of one env: as they are for a one-env sweep, else ``env``'s (which
    must be given and be one of the swept envs), with ``env`` fixed in the sweep."""
    import dataclasses

    envs = [str(e) for e in sweep.grid.get("env", [])]
    if len(envs) <= 1:
        if env is not None and env not in (envs or [str(sweep.fixed.get("env", env))]):
            raise AnalysisError(f"--env: {env!r} is not this sweep's env")
        return sweep, frame
    if env is None:
        raise AnalysisError(f"{sweep.name}: the sweep spans {len(envs)} envs ({', '.join(envs)});"
                            " refine one task at a time: pass --env ENV")  # fmt: skip
    if env not in envs:
        raise AnalysisError(f"--env: {env!r} is not one of the swept envs: {', '.join(envs)}")
    grid = {k: v for k, v in sweep.grid.items() if k != "env"}
    raw = {**sweep.raw, "env": env, "grid": grid}
    name = re.sub(r"[^A-Za-z0-9._-]", "-", f"{sweep.name}-{env}")
    narrowed = dataclasses.replace(sweep, name=name, grid=grid, fixed={**sweep.fixed, "env": env},
                                   raw=raw)  # fmt: skip
    return narrowed, frame[frame["env"].astype(str) == env]


def write_refined(
    results_dir: str | Path,
    out: str | Path,
    *,
    top: int = 3,
    points: int = 5,
    seeds: int | None = None,
    same_seeds: bool = False,
    metric: str = "return_mean",
    seed: int = 0,
    force: bool = False,
    env: str | None = None,
) -> tuple[Path, Refinement]:
    """Load ``results_dir``, rank it, write the refined sweep to ``out`` (validated first).

    A sweep over several envs is refined one task at a time: ``env`` picks it (returns of
    different tasks are never pooled, and the env is not a parameter to tune).

    ``out`` is checked before anything is loaded (:func:`check_output`): an existing file is
    replaced only with ``force``. The file appears whole or not at all."""
    from a2c_core.spec import SpecError, load_spec
    from analysis.aggregate import final_scores, ranking
    from analysis.load import load

    results = Path(results_dir)
    out = Path(out)
    check_output(out, results, force=force)
    frame = load(results)
    sweep_yaml = results / "sweep.yaml"
    if not sweep_yaml.is_file():
        raise AnalysisError(f"{sweep_yaml}: missing (refine needs the sweep as launched)")
    try:
        sweep = load_spec(sweep_yaml)
    except SpecError as exc:
        raise AnalysisError(str(exc)) from None
    if metric not in frame.columns:
        raise AnalysisError(f"--metric: {metric!r} is not a returns.csv column")
    sweep, frame = _one_task(sweep, frame, env)
    scores = final_scores(frame, metric)
    table = ranking(scores, seed=seed, n_resamples=1000)
    refinement = refine(
        sweep,
        scores,
        table,
        top=top,
        points=points,
        seeds=seeds,
        same_seeds=same_seeds,
        seed=seed,
    )
    text = to_yaml(refinement, str(results))
    check_output(out, results, force=force)  # again: the ranking took a while
    from analysis.output import write_new

    def validate(tmp: Path) -> None:
        try:
            load_spec(tmp)
        except SpecError as exc:
            raise AnalysisError(f"refined sweep does not validate: {exc}") from None

    write_new(out, text.encode("utf-8"), validate)
    return out, refinement


def check_output(out: Path, results: Path, *, force: bool = False) -> None:
    """Raise :class:`AnalysisError` (one line naming the path) unless ``out`` can take the
    refined sweep: not a directory, in an existing directory, not an existing file (unless
    ``force``), and never a file of the results directory ``results`` (its sweep.yaml is the
    sweep as launched), even with ``force``."""
    if out.is_dir():
        raise AnalysisError(f"{out}: is a directory; -o takes the new sweep's file name")
    parent = out.parent
    if not parent.exists():
        raise AnalysisError(f"{parent}: no such directory (for -o {out})")
    if not parent.is_dir():
        raise AnalysisError(f"{parent}: not a directory (for -o {out})")
    if not os.path.lexists(out):
        return
    try:
        inside = out.resolve().is_relative_to(results.resolve())
    except OSError:
        inside = False
    if inside and results.is_dir():
        raise AnalysisError(
            f"{out}: is a file of the results directory {results}; refine never overwrites "
            "it (write the new sweep elsewhere, e.g. sweeps/)"
        )
    if not force:
        raise AnalysisError(f"{out}: already exists; pass --force to overwrite it")

"""Coarse-to-fine: a follow-up sweep YAML around the best configurations of a finished one.

For each swept parameter:

- did not matter, or a single value: fixed at the best configuration's value. "Did not
  matter" needs both: no detectable effect on the done runs' final scores (Kruskal-Wallis
  over its values, other parameters marginalised, p >= ``alpha``) and an effect (range of
  the per-value median scores) smaller than the seed-to-seed spread (pooled standard
  deviation within configurations). Few seeds detect little, so the second condition keeps a
  parameter with a large but not yet significant effect in the grid;
- learning rates and other positive numbers: log-spaced neighbours of each top-K value,
  ``v * 10**linspace(-s, s, points)``, where s is half the distance in decades to the nearest
  other value of the old grid (0.5 when there is none), so the new grid fills the gaps;
- gamma and lam: the same on the 1 - x scale (0.99 -> 0.9968, 0.99, 0.9684), kept in [0, 1];
- integers: log-spaced neighbours rounded to positive integers;
- booleans and strings: the values taken by the top-K configurations.

Every top-K configuration's own values are kept exactly, so the best configuration is a point
of the new grid. New seeds by default: ``{count, start}`` starting after the largest old seed.
The name is ``<old>-refined``; the file is checked with :func:`a2c_core.spec.load_spec` before
it is moved to ``out``, which must not exist yet (``force``: replace it) and is never a file
of the results directory itself.
"""

from __future__ import annotations

import math
import os
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
    "neighbours",
    "refine",
    "write_refined",
]

UNIT_INTERVAL = ("gamma", "lam")
_MERGE_DECADES = 0.02  # neighbours closer than this (in log10) to a kept value are dropped


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
    if kind is bool or kind is str or isinstance(center, bool):
        return [center]
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
    """How much one parameter moves the final score of done runs (others marginalised)."""

    p_value: float
    """Kruskal-Wallis over the parameter's values (NaN: fewer than two values with scores)."""
    size: float
    """max - min of the per-value median final scores."""
    noise: float
    """pooled standard deviation of final scores within configurations (NaN: one seed each)."""

    def matters(self, alpha: float) -> bool:
        if not math.isfinite(self.p_value):
            return True  # cannot tell: refine it
        if self.p_value < alpha:
            return True
        return math.isfinite(self.noise) and self.size >= self.noise

    def describe(self) -> str:
        p = f"p={self.p_value:.2g}" if math.isfinite(self.p_value) else "not testable"
        if not math.isfinite(self.noise):
            return p
        return f"{p}, effect {self.size:.3g} vs seed spread {self.noise:.3g}"


def effect(scores: pd.DataFrame, param: str) -> Effect:
    """The :class:`Effect` of ``param`` in :func:`analysis.aggregate.final_scores`' frame."""
    from scipy import stats

    done = scores[(scores["state"] == "done") & np.isfinite(scores["final_score"].astype(float))]
    groups = [g["final_score"].to_numpy(dtype=float) for _, g in done.groupby(param)]
    groups = [g for g in groups if g.size]
    if len(groups) < 2:
        return Effect(math.nan, math.nan, math.nan)
    try:
        p_value = float(stats.kruskal(*groups).pvalue)
    except ValueError:  # all scores identical: no effect at all
        p_value = 1.0
    medians = [float(np.median(g)) for g in groups]
    per_config = done.groupby("config")["final_score"]
    variances = per_config.var(ddof=1).dropna()
    counts = per_config.count()[variances.index] - 1
    noise = (
        math.sqrt(float((variances * counts).sum() / counts.sum())) if counts.sum() else math.nan
    )
    return Effect(p_value, max(medians) - min(medians), noise)


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
) -> Refinement:
    """The follow-up sweep around the top-``top`` configurations of ``table``.

    ``sweep`` is the old :class:`a2c_core.spec.Sweep`, ``scores`` / ``table`` the frames of
    :func:`analysis.aggregate.final_scores` / :func:`analysis.aggregate.ranking`. ``seeds``
    sets the number of new seeds (default: as many as before); ``same_seeds`` reuses the old
    seed list instead. Configurations stopped early by racing are never among the top K.
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
    grid: dict[str, list[Any]] = {}
    fixed: dict[str, Any] = {}
    for param, old_values in sweep.grid.items():
        found = effect(scores, param) if len(old_values) > 1 else None
        if found is None or not found.matters(alpha):
            fixed[param] = best[param]
            why = "one value" if found is None else f"did not matter: {found.describe()}"
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
            notes.append(f"{param}: fixed at {format_value(values[0])}")
            continue
        grid[param] = values
        notes.append(
            f"{param}: {len(values)} values around {len(centers)} best ({found.describe()})"
        )

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
    spec.update(fixed)
    if grid:
        spec["grid"] = grid
    spec["seeds"] = new_seeds
    if sweep.raw.get("execution") is not None:
        spec["execution"] = sweep.raw["execution"]
    return Refinement(spec=spec, grid=grid, fixed=fixed, notes=notes, best=best)


def _plain(value: Any) -> Any:
    """numpy scalars -> Python values (yaml.safe_dump cannot write numpy types)."""
    return value.item() if hasattr(value, "item") else value


def to_yaml(refinement: Refinement, source: str) -> str:
    import yaml

    header = [f"# written by `a2c-sweep refine {source}`"]
    header += [f"# {note}" for note in refinement.notes]
    body = yaml.safe_dump(refinement.spec, sort_keys=False, default_flow_style=None, width=100)
    return "\n".join(header) + "\n" + body


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
) -> tuple[Path, Refinement]:
    """Load ``results_dir``, rank it, write the refined sweep to ``out`` (validated first).

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
    scores = final_scores(frame, metric)
    table = ranking(scores, seed=seed, n_resamples=1000)
    refinement = refine(
        sweep, scores, table, top=top, points=points, seeds=seeds, same_seeds=same_seeds
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

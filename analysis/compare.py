"""`a2c-sweep compare RESULTS/A RESULTS/B`: the configurations of two sweeps side by side.

For instance the article's configuration against the refined one (docs/results.md section 3).
Per configuration of either sweep: the statistic (IQM by default) of its done runs' final
scores with a 95 % percentile-bootstrap CI, median, mean, and P(X > Y) against a reference
configuration (the best of A unless ``--against`` names another); and a headline, P(best of
B > best of A), with a bootstrap CI that resamples the runs of each sweep separately.

:func:`compare` is the pure part (two frames of :func:`analysis.load.load` in, one frame
out); :func:`cmd_compare` reads the directories, prints a table and writes compare.csv,
compare.md, compare.png and compare.svg into ``compare-<A>-vs-<B>/`` in the current
directory (``-o`` to choose): neither results directory is written to.

Module-level imports are stdlib only (the parser is built for every `a2c-sweep` command).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from matplotlib.figure import Figure

__all__ = [
    "cmd_compare",
    "compare",
    "compare_markdown",
    "main",
    "plot_compare",
    "read_configs",
    "register_compare",
]

CONFIDENCE = 0.95
"""of every CI here (that of :func:`analysis.aggregate.bootstrap_ci`'s default)."""
STAT_NAMES = {"iqm": "IQM", "median": "median", "mean": "mean"}


# --------------------------------------------------------------------------- labels


def _canonical(value: Any) -> Any:
    """A value as compared across sweeps: 64 and 64.0 are the same, True is not 1."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | float) or hasattr(value, "dtype"):
        try:
            return ("number", float(value))
        except (TypeError, ValueError):
            pass
    if isinstance(value, list | tuple):
        return ("list", tuple(_canonical(v) for v in value))
    return ("other", str(value))


_MISSING = ("missing",)


def _same(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return set(a) == set(b) and all(_canonical(a[k]) == _canonical(b[k]) for k in a)


def _labels(params: Sequence[Mapping[str, Any]], fallback: Sequence[str]) -> tuple[list[str], str]:
    """Row labels naming only the parameters whose value differs between the configurations
    of the two sweeps (one missing in some counts as differing), and the shared rest as
    text. Nothing differs (a sweep against itself, or no parameter known): ``fallback``."""
    from analysis.load import config_labels, format_value

    keys = list(dict.fromkeys(k for p in params for k in p))
    varying = [k for k in keys if len({_canonical(p.get(k, _MISSING)) for p in params}) > 1]
    common = [k for k in keys if k not in varying and all(k in p for p in params)]
    shared = ", ".join(f"{k}={format_value(params[0][k])}" for k in common) if params else ""
    if not varying:
        return list(fallback), shared
    labels = config_labels([{k: p[k] for k in varying if k in p} for p in params])
    return [fb if lb == "all runs" else lb for lb, fb in zip(labels, fallback, strict=True)], shared


def read_configs(results_dir: str | Path, frame: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Configuration label -> its full parameters (config.json's ``config`` of its first run
    that has one), for the ``configs_a`` / ``configs_b`` of :func:`compare`. A configuration
    none of whose runs has a config.json is left out (it is then known by its swept
    parameters). A corrupt config.json raises :class:`analysis.load.AnalysisError`."""
    import dataclasses

    from a2c_core.config import A2CConfig
    from analysis.load import _read_json

    # fields a config.json written before them lacks hold their defaults (the knobs)
    defaults = {f.name: f.default for f in dataclasses.fields(A2CConfig)}
    out: dict[str, dict[str, Any]] = {}
    runs = Path(results_dir) / "runs"
    for config, group in frame.drop_duplicates("run_id").groupby("config", sort=False):
        for run_id in group["run_id"]:
            data = _read_json(runs / str(run_id) / "config.json")
            if data is not None and isinstance(data.get("config"), dict):
                out[str(config)] = {**defaults, **data["config"]}
                break
    return out


# --------------------------------------------------------------------------- statistics


def _p_better(x: np.ndarray, y: np.ndarray, minimize: bool) -> float:
    """P(X better than Y): P(X > Y), or P(X < Y) = P(Y > X) with ``minimize``."""
    from analysis.aggregate import probability_of_improvement

    return probability_of_improvement(y, x) if minimize else probability_of_improvement(x, y)


def _p_better_ci(
    x: np.ndarray, y: np.ndarray, minimize: bool, seed: int, n_resamples: int
) -> tuple[float, float]:
    """Percentile-bootstrap CI of P(X better than Y), resampling the runs of X and those of Y
    separately (stratified: each resample keeps both sample sizes). The pairwise wins are
    computed once; a resample's P is then its runs' counts through that matrix."""
    import numpy as np

    if x.size == 0 or y.size == 0:
        return math.nan, math.nan
    if minimize:
        x, y = -x, -y
    wins = (x[:, None] > y[None, :]) + 0.5 * (x[:, None] == y[None, :])  # [nx, ny]
    rng = np.random.default_rng(seed)
    count_x = _resample_counts(rng, x.size, n_resamples)  # [B, nx]
    count_y = _resample_counts(rng, y.size, n_resamples)  # [B, ny]
    p = ((count_x @ wins) * count_y).sum(axis=1) / (x.size * y.size)
    alpha = (1.0 - CONFIDENCE) / 2.0
    low, high = np.quantile(p, [alpha, 1.0 - alpha])
    return float(low), float(high)


def _resample_counts(rng: np.random.Generator, n: int, n_resamples: int) -> np.ndarray:
    """How often each of n runs is drawn, per resample (n draws with replacement)."""
    import numpy as np

    index = rng.integers(0, n, size=(n_resamples, n))
    counts = np.zeros((n_resamples, n))
    np.add.at(counts, (np.arange(n_resamples)[:, None], index), 1.0)
    return counts


def _rows(
    scores: pd.DataFrame, side: str, sweep: str, statistic: str, seed: int, n_resamples: int
) -> tuple[list[dict[str, Any]], list[np.ndarray]]:
    """One row per configuration of a sweep (grid order) and the scores each one uses."""
    import numpy as np

    from analysis import aggregate

    stopped = aggregate.stopped_configs(scores)
    rows, samples = [], []
    for config, group in scores.groupby("config", sort=False):
        scored = "stopped" if config in stopped else "done"  # stopped: scores at the rung
        values = group.loc[group["state"] == scored, "final_score"].to_numpy(dtype=float)
        values = values[np.isfinite(values)]
        # the same seed for every row: a row's CI is bootstrap_ci(its scores, seed) whatever
        # it is compared with (for a one-configuration sweep, the CI `analyze` reports)
        low, high = aggregate.bootstrap_ci(
            values, statistic, seed=seed, n_resamples=n_resamples, confidence=CONFIDENCE
        )
        stats = {
            name: float(function(values)) if values.size else math.nan
            for name, function in aggregate.STATISTICS.items()
        }
        rows.append(
            {
                "side": side,
                "sweep": sweep,
                "config": str(config),
                "n": int(values.size),
                "n_runs": int(group["run_id"].nunique()),
                **stats,
                "ci_low": low,
                "ci_high": high,
                "stopped_at": stopped[config] if config in stopped else None,
            }
        )
        samples.append(values)
    return rows, samples


def _best(rows: list[dict[str, Any]], side: str, statistic: str, minimize: bool) -> int:
    """Index of the best row of a sweep: best statistic among its configurations with a
    score that racing did not stop; ties go to the first in grid order."""
    best = None
    for i, row in enumerate(rows):
        value = row[statistic]
        if row["side"] != side or row["stopped_at"] is not None or not math.isfinite(value):
            continue
        if best is None or (value < rows[best][statistic] if minimize else value > rows[best][statistic]):  # fmt: skip
            best = i
    if best is None:  # compare() has checked that each sweep has a score
        raise ValueError(f"sweep {side}: no configuration with a final score")
    return best


def _find(rows: list[dict[str, Any]], against: str) -> int:
    """The row ``--against`` names: by its label in the comparison or in its own sweep, in A
    first (prefix ``A:`` or ``B:`` to choose the sweep)."""
    text, sides = against.strip(), ("A", "B")
    if text[:2] in ("A:", "B:"):
        text, sides = text[2:].strip(), (text[0],)
    for side in sides:
        for i, row in enumerate(rows):
            if row["side"] == side and text in (row["label"], row["config"]):
                return i
    known = list(dict.fromkeys(row["label"] for row in rows))
    shown = "; ".join(known[:5]) + ("; ..." if len(known) > 5 else "")
    raise ValueError(f"--against: no configuration {against!r} in either sweep (known: {shown})")


def compare(
    frame_a: pd.DataFrame,
    frame_b: pd.DataFrame,
    *,
    metric: str = "return_mean",
    window: float = 0.1,
    statistic: str = "iqm",
    minimize: bool = False,
    seed: int = 0,
    n_resamples: int = 10000,
    configs_a: Mapping[str, Mapping[str, Any]] | None = None,
    configs_b: Mapping[str, Mapping[str, Any]] | None = None,
    against: str | None = None,
) -> pd.DataFrame:
    """The configurations of two sweeps side by side (frames of :func:`analysis.load.load`).

    Final score of a run: :func:`analysis.aggregate.final_scores` with ``fraction=window``.
    One row per configuration, A's then B's, each in grid order. Columns: ``side`` (A / B),
    ``sweep`` (its name; "name (A)" / "name (B)" when both have the same), ``config`` (the
    label in its own sweep), ``label`` (in the comparison: only the parameters whose value
    differs between configurations of the two sweeps), ``same_as`` (on a B row: the label of
    the A configuration with the same parameters, else ""), ``n`` (runs scored: done runs
    with a finite score; for a configuration stopped by racing, its stopped runs), ``n_runs``
    (every run of the configuration, whatever its state), ``iqm``, ``median``, ``mean``, ``ci_low`` /
    ``ci_high`` (95 % percentile-bootstrap CI of ``statistic`` over runs, from
    :func:`analysis.aggregate.bootstrap_ci` with ``seed``), ``p_better`` (P(X > Y) of the
    configuration's runs against the reference's, rliable's probability of improvement; with
    ``minimize``, P(X < Y)), ``best`` (best of its sweep), ``reference`` and ``stopped_at``.

    A configuration stopped early by racing is scored over its stopped runs at their rung,
    as in :func:`analysis.aggregate.ranking`, marked by ``stopped_at`` and never the best
    or the reference; its ``p_better`` is NaN (a score at the rung is no final score).

    ``configs_a`` / ``configs_b``: configuration label -> its full parameters (e.g. from
    :func:`read_configs`); default, and for a label missing there, its swept parameters.
    They decide the labels and ``same_as``: without them, two single-configuration sweeps
    are both "all runs". ``against``: the reference, a label of A (or of B: prefix "B:";
    default the best of A).

    ``attrs``: metric, window, statistic, minimize, seed, n_resamples, names (A, B), shared
    (the parameters every configuration has in common, as text), and ``headline``: a dict
    with p = P(best of B better than best of A), its ci_low / ci_high (bootstrap resampling
    the runs of each sweep separately, ``seed``), best_a / best_b (their labels), n_a, n_b.

    Raises ValueError (one line) for a metric that is not a column, a window outside (0, 1],
    an unknown statistic or ``against``, or a sweep without a done run with a finite score.
    """
    import pandas as pd

    from analysis import aggregate
    from analysis.load import param_columns

    if statistic not in aggregate.STATISTICS:
        raise ValueError(f"statistic: expected one of iqm, median, mean; got {statistic!r}")
    if not (isinstance(window, int | float) and 0.0 < window <= 1.0):
        raise ValueError(f"window: the final-score fraction must be in (0, 1], got {window!r}")
    names = [str(f.attrs.get("name", side)) for f, side in ((frame_a, "A"), (frame_b, "B"))]
    if names[0] == names[1]:
        names = [f"{names[0]} (A)", f"{names[1]} (B)"]
    rows: list[dict[str, Any]] = []
    samples: list[np.ndarray] = []
    params: list[Mapping[str, Any]] = []
    for side, frame, name, configs in (
        ("A", frame_a, names[0], configs_a),
        ("B", frame_b, names[1], configs_b),
    ):
        if metric not in frame.columns:
            raise ValueError(f"metric: {metric!r} is not a column of sweep {name}")
        scores = aggregate.final_scores(frame, metric, fraction=window)
        side_rows, side_samples = _rows(scores, side, name, statistic, seed, n_resamples)
        if not any(row["n"] for row in side_rows if row["stopped_at"] is None):  # done runs
            raise ValueError(f"sweep {side} ({name}): no done run with a finite final score")
        swept = param_columns(scores)
        first = scores.drop_duplicates("config").set_index("config")
        for row in side_rows:
            full = (configs or {}).get(row["config"])
            params.append(dict(full) if full is not None else {p: first.loc[row["config"], p] for p in swept})  # fmt: skip
        rows += side_rows
        samples += side_samples
    labels, shared = _labels(params, [row["config"] for row in rows])
    a_rows = [i for i, row in enumerate(rows) if row["side"] == "A"]
    for i, (row, label) in enumerate(zip(rows, labels, strict=True)):
        row["label"] = label
        same = [j for j in a_rows if _same(params[i], params[j])] if row["side"] == "B" else []
        row["same_as"] = labels[same[0]] if same else ""

    best = {side: _best(rows, side, statistic, minimize) for side in ("A", "B")}
    ref = best["A"] if against is None else _find(rows, against)
    if rows[ref]["stopped_at"] is not None:
        raise ValueError(
            f"--against: {rows[ref]['label']!r} was stopped by racing at epoch "
            f"{rows[ref]['stopped_at']}: it has no final scores"
        )
    if rows[ref]["n"] == 0:
        raise ValueError(f"--against: {rows[ref]['label']!r} has no done run with a score")
    for i, row in enumerate(rows):
        row["best"] = i in best.values()
        row["reference"] = i == ref
        row["p_better"] = (
            _p_better(samples[i], samples[ref], minimize) if row["stopped_at"] is None else math.nan
        )

    ia, ib = best["A"], best["B"]
    low, high = _p_better_ci(samples[ib], samples[ia], minimize, seed, n_resamples)
    headline = {
        "p": _p_better(samples[ib], samples[ia], minimize),
        "ci_low": low,
        "ci_high": high,
        "best_a": rows[ia]["label"],
        "best_b": rows[ib]["label"],
        "n_a": rows[ia]["n"],
        "n_b": rows[ib]["n"],
    }
    others = [s for s in ("iqm", "median", "mean") if s != statistic]
    columns = ["side", "sweep", "config", "label", "same_as", "n", "n_runs", statistic]
    columns += ["ci_low", "ci_high", *others, "p_better", "best", "reference", "stopped_at"]
    out = pd.DataFrame(rows)[columns]
    out["stopped_at"] = out["stopped_at"].astype("Int64")
    out.attrs.update(
        metric=metric,
        window=float(window),
        statistic=statistic,
        minimize=bool(minimize),
        seed=seed,
        n_resamples=n_resamples,
        names=tuple(names),
        shared=shared,
        against=against,
        headline=headline,
    )
    return out


# --------------------------------------------------------------------------- presentation


def _shown(table: pd.DataFrame, top: int) -> pd.DataFrame:
    """The top ``top`` configurations of each sweep by the statistic (best first; those
    without a score, then those racing stopped, last), plus the reference wherever it
    ranks. Order: A's, then B's."""
    import numpy as np
    import pandas as pd

    statistic, minimize = table.attrs["statistic"], table.attrs["minimize"]
    pieces = []
    for side in ("A", "B"):
        rows = table[table["side"] == side]
        value = rows[statistic].to_numpy(dtype=float)
        key = np.where(np.isfinite(value), value if minimize else -value, np.inf)
        order = np.lexsort((np.arange(len(rows)), key, rows["stopped_at"].notna().to_numpy()))
        ranked = rows.iloc[order]
        keep = np.zeros(len(ranked), dtype=bool)
        keep[:top] = True
        keep |= ranked["reference"].to_numpy(dtype=bool)
        pieces.append(ranked[keep])
    out = pd.concat(pieces)
    out.attrs.update(table.attrs)
    return out


def _stopped(row: Mapping[str, Any]) -> int | None:
    """The epoch racing stopped a row's configuration at, else None."""
    import pandas as pd

    value = row["stopped_at"]
    return None if value is None or pd.isna(value) else int(value)


def _p_name(minimize: bool) -> str:
    return "P(X < ref)" if minimize else "P(X > ref)"


def _headline_text(table: pd.DataFrame) -> str:
    h = table.attrs["headline"]
    op = "<" if table.attrs["minimize"] else ">"
    return f"P(best of B {op} best of A) = {h['p']:.2f} [{h['ci_low']:.2f}, {h['ci_high']:.2f}]"


def _note(row: Mapping[str, Any]) -> str:
    notes = []
    if row["best"]:
        notes.append(f"best of {row['side']}")
    if row["reference"]:
        notes.append("reference")
    if row["same_as"]:
        notes.append("also in A (same parameters)")
    if _stopped(row) is not None:
        notes.append(f"stopped by racing at epoch {_stopped(row)} (score there)")
    return "; ".join(notes)


def _cells(row: Mapping[str, Any], statistic: str) -> list[str]:
    from analysis.common import _fmt

    p = row["p_better"]
    return [
        row["sweep"],
        row["label"],
        str(row["n"]),
        _fmt(row[statistic]),
        f"[{_fmt(row['ci_low'])}, {_fmt(row['ci_high'])}]",
        *[_fmt(row[s]) for s in ("median", "mean") if s != statistic],
        "-" if p != p else f"{p:.2f}",
        _note(row),
    ]


def _header(statistic: str, minimize: bool) -> list[str]:
    others = [s for s in ("median", "mean") if s != statistic]
    return ["sweep", "configuration", "n", STAT_NAMES[statistic], "95% CI", *others,
            _p_name(minimize), "note"]  # fmt: skip


def _versus(a: str, b: str) -> str:
    """The "a (A) vs b (B)" title; names already tagged (two sweeps of one name) stay as they are."""

    def tag(name: str, side: str) -> str:
        return name if name.endswith(f" ({side})") else f"{name} ({side})"

    return f"{tag(a, 'A')} vs {tag(b, 'B')}"


def _window_text(window: float) -> str:
    return f"{window * 100:g}%"


def _reference(table: pd.DataFrame) -> Mapping[str, Any]:
    return table[table["reference"]].iloc[0].to_dict()


def compare_markdown(table: pd.DataFrame, *, top: int | None = None) -> str:
    """:func:`compare`'s frame as a Markdown document: title, definitions, the headline, one
    table (the top ``top`` of each sweep and the reference; all rows when None)."""
    a, b = table.attrs["names"]
    statistic, minimize = table.attrs["statistic"], table.attrs["minimize"]
    name = STAT_NAMES[statistic]
    ref = _reference(table)
    which = "named by --against" if table.attrs.get("against") else "the best of A"
    h = table.attrs["headline"]
    better, more = ("lower", "less") if minimize else ("higher", "more")
    op = "<" if minimize else ">"
    shown = table if top is None else _shown(table, top)
    lines = [
        f"# {_versus(a, b)}",
        "",
        f"Final score of a run: mean `{table.attrs['metric']}` over its last "
        f"{_window_text(table.attrs['window'])} of epochs (at least one). Per configuration, "
        f"over its done runs (n): the {name} of the final scores with a 95% percentile-"
        f"bootstrap CI over runs ({table.attrs['n_resamples']} resamples, seed "
        f"{table.attrs['seed']}), the median and the mean; {better} is better. "
        f"{_p_name(minimize)}: the probability that a done run of the configuration scores "
        f"{more} than a done run of the reference configuration, {ref['label']} of "
        f"{ref['sweep']} ({which}; "
        "rliable's probability of improvement, ties counting one half: 0.5 is no difference). "
        f"The best configuration of a sweep has the {better} {name} among those racing did "
        "not stop.",
        "",
        f"**{_headline_text(table)}**: {h['best_b']} ({b}, {h['n_b']} runs) against "
        f"{h['best_a']} ({a}, {h['n_a']} runs); the 95% CI resamples the runs of each sweep "
        f"separately. P(best of B {op} best of A) + P(best of A {op} best of B) = 1.",
        "",
    ]
    for caveat in table.attrs.get("caveats", []):
        lines += [f"**Caveat:** {caveat}.", ""]
    if table.attrs.get("shared"):
        lines += [f"Common to every configuration: {table.attrs['shared']}.", ""]
    if len(shown) < len(table):
        lines += [
            f"Top {top} configurations of each sweep by {name} (and the reference) of "
            f"{len(table)}; compare.csv has them all.",
            "",
        ]
    header = _header(statistic, minimize)
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join("---" if h in ("sweep", "configuration", "note") else "---:" for h in header) + "|")  # fmt: skip
    for _, row in shown.iterrows():
        cells = [c.replace("|", "\\|") for c in _cells(row.to_dict(), statistic)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _print_table(table: pd.DataFrame, top: int) -> None:
    from rich.console import Console
    from rich.table import Table

    statistic, minimize = table.attrs["statistic"], table.attrs["minimize"]
    shown = _shown(table, top)
    a, b = table.attrs["names"]
    rich_table = Table(
        title=f"{_versus(a, b)}: {len(shown)} of {len(table)} configurations "
        f"(final score = mean {table.attrs['metric']} over the last "
        f"{_window_text(table.attrs['window'])} of epochs)"
    )
    for column in _header(statistic, minimize):
        left = column in ("sweep", "configuration", "note")
        rich_table.add_column(column, justify="left" if left else "right")
    for _, row in shown.iterrows():
        rich_table.add_row(*_cells(row.to_dict(), statistic))
    Console(width=None if sys.stdout.isatty() else 160).print(rich_table)


def plot_compare(table: pd.DataFrame, *, top: int = 5) -> Figure:
    """Forest plot of :func:`compare`'s frame: one row per configuration shown (the top
    ``top`` of each sweep and the reference), its statistic as a point with the 95% CI as a
    horizontal bar, A and B in two colours, P(X > ref) written at the right of each row, the
    headline in the title. A dashed line marks the reference's statistic."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.transforms import blended_transform_factory

    from analysis.plots import PALETTE, metric_label

    statistic, minimize = table.attrs["statistic"], table.attrs["minimize"]
    shown = _shown(table, top)
    names = dict(zip(("A", "B"), table.attrs["names"], strict=True))
    colors = {"A": PALETTE[0], "B": PALETTE[1]}
    y, ys, gap = 0.0, [], 0.6
    previous = None
    for side in shown["side"]:
        if previous is not None and side != previous:
            y += gap
        ys.append(y)
        previous, y = side, y + 1.0
    labels = []
    for _, row in shown.iterrows():
        same = "  (= A)" if row["same_as"] else ""
        labels.append(f"{row['label']}{same}  n={row['n']}")
    # room for the row labels (about 0.065 inch per character at 8.5 pt) beside a 4.5-inch axes
    width = max(7.5, 5.3 + 0.065 * max(len(label) for label in labels))
    fig, ax = plt.subplots(figsize=(width, 0.42 * len(shown) + 2.0), layout="constrained")
    ref = _reference(table)
    ax.axvline(ref[statistic], color="0.5", linestyle="--", linewidth=1.0, zorder=1)
    text_at = blended_transform_factory(ax.transAxes, ax.transData)
    for pos, (_, row) in zip(ys, shown.iterrows(), strict=True):
        color = colors[row["side"]]
        value, low, high = row[statistic], row["ci_low"], row["ci_high"]
        stopped = _stopped(row) is not None
        if math.isfinite(value):
            ax.errorbar(
                [value],
                [pos],
                xerr=[[value - low], [high - value]],
                fmt="D" if row["reference"] else "o",
                color=color,
                markerfacecolor="white" if stopped else color,
                markersize=6,
                elinewidth=2.0,
                capsize=3,
                zorder=3,
            )
        if row["reference"]:
            note = "reference"
        elif stopped:
            note = f"stopped @{_stopped(row)}"
        elif row["p_better"] == row["p_better"]:
            note = f"{row['p_better']:.2f}"
        else:
            note = "-"
        ax.text(1.02, pos, note, transform=text_at, va="center", ha="left", fontsize=9)
    ax.text(1.02, -0.9, _p_name(minimize), transform=text_at, va="center", ha="left",
            fontsize=9, fontweight="bold")  # fmt: skip
    ax.set_yticks(ys, labels, fontsize=8.5)
    for tick, side in zip(ax.get_yticklabels(), shown["side"], strict=True):
        tick.set_color(colors[side])
    ax.set_ylim(ys[-1] + 0.6, -1.3)  # A on top
    ax.grid(axis="y", visible=False)
    name = STAT_NAMES[statistic]
    ax.set_xlabel(
        f"{name} final score ({metric_label(table.attrs['metric'])}, last "
        f"{_window_text(table.attrs['window'])} of epochs)"
        + (", lower is better" if minimize else "")
    )
    caveats = "".join(f"\n({c})" for c in table.attrs.get("caveats", []))
    fig.suptitle(
        f"{_versus(names['A'], names['B'])}: {name} with 95% bootstrap CI\n"
        f"{_headline_text(table)}{caveats}"
    )
    handles = [
        Line2D([], [], color=colors[s], marker="o", linewidth=2, label=f"{s}: {names[s]}")
        for s in ("A", "B")
    ]
    handles.append(Line2D([], [], color="0.5", linestyle="--", linewidth=1, label="reference"))
    # figure-level: a legend under the axes would widen the axes' margins on both sides
    fig.legend(handles=handles, loc="outside lower center", ncols=3, frameon=False)
    return fig


# --------------------------------------------------------------------------- command


def default_output(name_a: str, name_b: str) -> Path:
    """``compare-<A>-vs-<B>`` in the current directory."""
    return Path(f"compare-{name_a}-vs-{name_b}")


def cmd_compare(args: argparse.Namespace) -> int:
    from analysis.common import EXIT_OK, _write_text, fail, warn

    # options first: nothing is read or written when one is wrong
    try:
        window = float(args.window)
    except ValueError:
        return fail(f"--window: expected a number in (0, 1], got {args.window!r}")
    if not 0.0 < window <= 1.0:  # NaN fails too
        return fail(f"--window: the final-score fraction must be in (0, 1], got {args.window}")
    if args.stat not in STAT_NAMES:
        return fail(f"--stat: expected iqm, median or mean, got {args.stat!r}")
    try:
        top = int(args.top)
    except ValueError:
        top = 0
    if top < 1:
        return fail(f"--top: expected a positive integer, got {args.top!r}")

    import matplotlib

    matplotlib.use("Agg")  # files only, no window

    from analysis.load import AnalysisError, load, row_problems

    paths = [Path(args.a), Path(args.b)]
    frames, configs, warnings = [], [], []  # warnings wait: an error is one line alone
    try:
        for path in paths:
            frame = load(path)
            frames.append(frame)
            configs.append(read_configs(path, frame))
            for run_id, problem in row_problems(path).items():
                warnings.append(f"{path}: run {run_id}: {problem}")
    except AnalysisError as exc:
        return fail(str(exc))
    if paths[0].resolve() == paths[1].resolve():
        warnings.append(
            f"comparing {paths[0]} with itself: each configuration meets its own runs "
            "(P(X > Y) = 0.5)"
        )
    from analysis.common import _sweep_envs

    envs = [sorted(set(_sweep_envs(path))) for path in paths]
    if envs[0] and envs[1] and envs[0] != envs[1]:
        warnings.append(
            f"the sweeps ran on different envs ({', '.join(envs[0])} vs {', '.join(envs[1])}): "
            "their returns are on different scales, P(X > Y) compares numbers, not skill"
        )
    for path, frame in zip(paths, frames, strict=True):
        numeric = [c for c in frame.columns[frame.columns.get_loc("epoch") :] if c != "epoch"]
        if args.metric not in numeric:
            return fail(
                f"--metric: {args.metric!r} is not a returns.csv column ({', '.join(numeric)})"
            )
        done = frame[(frame["state"] == "done") & frame["epoch"].notna()]
        if done.empty:
            counts = frame.drop_duplicates("run_id")["state"].value_counts()
            states = ", ".join(f"{n} {s}" for s, n in counts.items())
            return fail(f"{path}: no done run to compare yet ({states})")
    try:
        table = compare(
            frames[0],
            frames[1],
            metric=args.metric,
            window=window,
            statistic=args.stat,
            minimize=args.minimize,
            seed=args.seed,
            configs_a=configs[0],
            configs_b=configs[1],
            against=args.against,
        )
    except ValueError as exc:
        return fail(str(exc))
    for message in warnings:
        warn(message)
    if envs[0] and envs[1] and envs[0] != envs[1]:  # the files say it too, not only stderr
        table.attrs["caveats"] = [
            f"different envs ({', '.join(envs[0])} vs {', '.join(envs[1])}): returns on "
            "different scales"
        ]

    a, b = (frame.attrs.get("name", path.name) for frame, path in zip(frames, paths, strict=True))
    out_dir = Path(args.output) if args.output else default_output(a, b)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return fail(f"{out_dir}: cannot write the comparison there ({exc.strerror or exc})")
    from analysis.plots import save_figure, style

    written = []
    try:
        with style():  # the figure first: a failure leaves the old files as they were
            figure = plot_compare(table, top=top)
        path = out_dir / "compare.csv"
        _write_text(path, table.to_csv(index=False))
        written.append(path)
        path = out_dir / "compare.md"
        _write_text(path, compare_markdown(table, top=top))
        written.append(path)
        with style():
            written += save_figure(figure, out_dir / "compare")
    except (OSError, UnicodeError) as exc:
        message = getattr(exc, "strerror", None) or exc
        return fail(f"{out_dir}: cannot write the comparison there ({message})")

    for side, path, frame in zip(("A", "B"), paths, frames, strict=True):
        runs = frame.drop_duplicates("run_id")
        counts = runs["state"].value_counts()
        states = ", ".join(f"{n} {s}" for s, n in counts.items())
        n_configs = frame["config"].nunique()
        print(
            f"{side}: {path}: {len(runs)} runs ({states}), "
            f"{n_configs} configuration{'s' * (n_configs != 1)}"
        )
    _print_table(table, top)
    h = table.attrs["headline"]
    print(
        f"{_headline_text(table)}: {h['best_b']} ({h['n_b']} runs) against "
        f"{h['best_a']} ({h['n_a']} runs), 95% bootstrap CI"
    )
    same = table.loc[(table["side"] == "B") & (table["same_as"] != ""), "label"].tolist()
    if same:
        n_b = int((table["side"] == "B").sum())
        listed = "; ".join(same[:3]) + ("; ..." if len(same) > 3 else "")
        print(
            f"{len(same)} of B's {n_b} configurations have the same parameters as one of A's "
            f"(note 'also in A'): {listed}"
        )
    print(f"wrote {len(written)} files to {out_dir}/:")
    for path in written:
        print(f"  {path}")
    return EXIT_OK


def register_compare(subparsers: Any) -> None:
    """Add `compare` to the `a2c-sweep` subparsers (``set_defaults(func=cmd_compare)``)."""
    p = subparsers.add_parser(
        "compare",
        help="configurations of two sweeps side by side: IQM with CIs and P(X > Y)",
        description="Compare the configurations of two sweeps (e.g. the article's and the "
        "refined one): per configuration the IQM (or --stat) of its done runs' final scores "
        "with a 95% bootstrap CI and P(X > Y) against the best of A (or --against), and "
        "P(best of B > best of A). Prints a table; writes compare.csv, compare.md, "
        "compare.png and compare.svg into -o DIR (default ./compare-A-vs-B/).",
    )
    p.add_argument("a", metavar="RESULTS/A", help="the first sweep (the reference's)")
    p.add_argument("b", metavar="RESULTS/B", help="the second sweep")
    p.add_argument(
        "-o",
        "--output",
        metavar="DIR",
        default=None,
        help="output directory (default: compare-<A>-vs-<B> in the current directory)",
    )
    p.add_argument(
        "--metric", default="return_mean", help="returns.csv column (default: return_mean)"
    )
    p.add_argument(
        "--stat", default="iqm", help="iqm, median or mean of the final scores (default: iqm)"
    )
    p.add_argument(
        "--window",
        default="0.1",
        metavar="FRACTION",
        help="final score: mean over this last fraction of epochs, in (0, 1] (default: 0.1)",
    )
    p.add_argument("--minimize", action="store_true", help="lower is better: P(X < Y)")
    p.add_argument(
        "--against",
        metavar="CONFIG",
        default=None,
        help="the reference configuration, by its label in the table (default: the best of "
        "A; prefix 'B:' for one of B)",
    )
    p.add_argument("--seed", type=int, default=0, help="bootstrap RNG seed (0)")
    p.add_argument("--top", default="5", help="configurations shown per sweep (5)")
    p.set_defaults(func=cmd_compare)


def main(argv: list[str] | None = None) -> int:
    """Run `compare` without the rest of `a2c-sweep` (tests, debugging)."""
    parser = argparse.ArgumentParser(prog="a2c-sweep")
    register_compare(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

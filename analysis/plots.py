"""Paper-ready plots of a sweep. Each function draws on ``ax`` (created when None) and returns
the Axes; facet grids take ``fig`` and return the array of Axes. Nothing here reads or writes
files except :func:`save_figure` / :func:`write_plots`. The backend is left to the caller
(``a2c-sweep analyze`` selects Agg before importing this module), so notebooks keep theirs.

Inputs are the frames of :mod:`analysis.aggregate` (and :func:`analysis.load.load` for the
thin per-seed lines). The x axis of every learning curve is environment steps.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from analysis import aggregate
from analysis.load import format_value, param_columns

__all__ = [
    "METRIC_LABELS",
    "STYLE",
    "metric_label",
    "plot_curves",
    "plot_facets",
    "plot_heatmap",
    "plot_heatmaps",
    "plot_performance_profile",
    "plot_sensitivity",
    "plot_sensitivity_grid",
    "plot_strip",
    "save_figure",
    "style",
    "write_plots",
]

STYLE: dict[str, Any] = {
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 8.5,
    "legend.title_fontsize": 8.5,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "figure.titlesize": 12,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.6,
    "savefig.dpi": 200,
    "savefig.bbox": "tight",
    "svg.fonttype": "none",  # text stays text in the SVG
}
"""rcParams of every figure :func:`write_plots` makes (use :func:`style` for your own)."""

# Okabe-Ito: distinguishable with the common colour-vision deficiencies
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000", "#F0E442")
STAT_NAMES = {"iqm": "IQM", "median": "median", "mean": "mean"}

METRIC_LABELS = {
    "return_mean": "mean episode return",
    "return_median": "median episode return",
    "return_min": "min episode return",
    "return_max": "max episode return",
    "length_mean": "mean episode length (steps)",
    "episodes": "episodes per epoch",
    "value_loss": "value loss (MSE)",
    "policy_loss": "policy loss",
    "entropy": "policy entropy (nats)",
    "explained_variance": "explained variance",
    "wall_s": "wall time per epoch (s)",
}


def metric_label(metric: str) -> str:
    return METRIC_LABELS.get(metric, metric)


@contextlib.contextmanager
def style() -> Iterator[None]:
    """The plot style (readable fonts at paper size, light grid) as an rc context."""
    with plt.rc_context(STYLE):
        yield


def _steps_text(value: float, _pos: Any = None) -> str:
    value = float(value)
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.3g}"


STEPS_FORMATTER = FuncFormatter(_steps_text)


def _axes(ax: Axes | None, figsize: tuple[float, float] = (6.4, 4.0)) -> Axes:
    if ax is None:
        _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def _is_log_param(name: str, values: Sequence[Any]) -> bool:
    """Learning rates (and other positive floats spanning a decade) go on a log axis."""
    numeric = [
        v for v in values if isinstance(v, int | float | np.number) and not isinstance(v, bool)
    ]
    if len(numeric) != len(values) or not numeric or min(numeric) <= 0:
        return False
    return name.endswith("lr") or max(numeric) / min(numeric) >= 10


def _params_of(frame: pd.DataFrame, configs: Sequence[str]) -> list[dict[str, Any]]:
    params = param_columns(frame)
    first = frame.drop_duplicates("config").set_index("config")
    return [{p: first.loc[c, p] for p in params} if c in first.index else {} for c in configs]


def _short_labels(frame: pd.DataFrame, configs: Sequence[str]) -> tuple[list[str], str]:
    """Labels naming only the parameters that differ among ``configs``, and the common rest
    as one string (for a legend title)."""
    values = _params_of(frame, configs)
    if not values or not values[0]:
        return list(configs), ""
    names = list(values[0])
    varying = [p for p in names if len({repr(v.get(p)) for v in values}) > 1]
    common = [p for p in names if p not in varying]
    if len(configs) > 1 and varying:
        labels = [", ".join(f"{p}={format_value(v[p])}" for p in varying) for v in values]
    else:
        labels, common = list(configs), []
    shared = ", ".join(f"{p}={format_value(values[0][p])}" for p in common)
    return labels, shared


def _wrap_label(label: str, per_line: int = 2) -> str:
    parts = label.split(", ")
    return "\n".join(", ".join(parts[i : i + per_line]) for i in range(0, len(parts), per_line))


def _per_seed_lines(
    ax: Axes, frame: pd.DataFrame, config: str, metric: str, color: str, alpha: float = 0.5
) -> int:
    """Thin raw lines, one per run of ``config``; diverged / failed runs dotted. Returns count."""
    runs = frame[(frame["config"] == config) & frame["epoch"].notna()]
    count = 0
    for _, run in runs.groupby("run_id", sort=False):
        run = run[np.isfinite(run[metric].to_numpy(dtype=float))]
        if run.empty:
            continue
        bad = run["state"].iloc[0] in ("diverged", "failed")
        ax.plot(
            run["env_steps"].to_numpy(dtype=float),
            run[metric].to_numpy(dtype=float),
            color=color,
            linewidth=0.7,
            alpha=alpha,
            linestyle=":" if bad else "-",
            zorder=1,
        )
        count += 1
    return count


def _state_note(runs: pd.DataFrame) -> str:
    """``"3 done"``, ``"2 done, 1 diverged"``, ``"3 stopped at epoch 20"``: seeds of one
    configuration by state."""
    runs = runs.drop_duplicates("run_id")
    counts = runs["state"].value_counts()
    order = ("done", "running", "pending", "diverged", "failed", "stopped")
    notes = {s: f"{counts[s]} {s}" for s in order if counts.get(s, 0)}
    if "stopped" in notes and "stopped_at" in runs.columns:
        rungs = runs.loc[runs["state"] == "stopped", "stopped_at"].dropna()
        if len(rungs):
            notes["stopped"] += f" at epoch {int(rungs.max())}"
    return ", ".join(notes.values()) or "no runs"


def _epochs_text(rungs: Sequence[int | None]) -> str:
    """``"4"``, ``"4, 8"`` (the distinct epochs racing stopped at; unknown ones left out)."""
    return ", ".join(str(r) for r in sorted({int(r) for r in rungs if r is not None}))


def _stopped_of(scores: pd.DataFrame, configs: Sequence[str]) -> str | None:
    """``"stopped @4"`` when racing stopped every configuration of ``configs`` (none of them
    has a done run, so a done-runs-only statistic has nothing there), else None."""
    stopped = aggregate.stopped_configs(scores)
    if not len(configs) or not all(c in stopped for c in configs):
        return None
    epochs = _epochs_text([stopped[c] for c in configs])
    return f"stopped @{epochs}" if epochs else "stopped"


def _not_included_note(scores: pd.DataFrame) -> str:
    """``"2 configurations stopped early by racing are not included (epoch 4)"``, or ``""``
    when racing stopped none: plots of done runs' final scores say what they leave out."""
    stopped = aggregate.stopped_configs(scores)
    if not stopped:
        return ""
    n = len(stopped)
    epochs = _epochs_text(list(stopped.values()))
    where = f" (epoch{'s' * (',' in epochs)} {epochs})" if epochs else ""
    verb = "are" if n > 1 else "is"
    return f"{n} configuration{'s' * (n > 1)} stopped early by racing {verb} not included{where}"


# --------------------------------------------------------------------------- curves


def plot_curves(
    curves: pd.DataFrame,
    frame: pd.DataFrame | None = None,
    *,
    configs: Sequence[str] | None = None,
    statistic: str = "iqm",
    metric: str = "return_mean",
    confidence: float = 0.95,
    title: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Aggregate learning curves: ``statistic`` line and its bootstrap CI band per
    configuration, over thin per-seed lines from the long ``frame`` (when given).

    ``curves`` is :func:`analysis.aggregate.aggregate_curves`' frame; ``configs`` picks and
    orders the configurations (e.g. the top-k of the ranking; default all). With ``frame``,
    the legend names configurations stopped early by racing and their epoch.
    """
    ax = _axes(ax)
    configs = list(configs) if configs is not None else list(dict.fromkeys(curves["config"]))
    labels, shared = _short_labels(curves, configs)
    stopped = aggregate.stopped_configs(frame) if frame is not None else {}
    for i, (config, label) in enumerate(zip(configs, labels, strict=True)):
        color = PALETTE[i % len(PALETTE)]
        style = ("-", "--", ":")[(i // len(PALETTE)) % 3]  # colours repeat after 8 lines
        if frame is not None:
            _per_seed_lines(ax, frame, config, metric, color, alpha=0.35)
        c = curves[curves["config"] == config]
        if c.empty:
            continue
        x = _ci_band(ax, c, statistic, color, zorder=2)
        seeds = int(c["n_runs"].max())
        ax.plot(
            x,
            c[statistic],
            color=color,
            linestyle=style,
            linewidth=2.0,
            zorder=3,
            label=f"{label} ({seeds} seeds{_stopped_text(stopped, config)})",
        )
    ax.set_xlabel("environment steps")
    ax.set_ylabel(metric_label(metric))
    ax.xaxis.set_major_formatter(STEPS_FORMATTER)
    ax.set_xlim(left=0)
    name = STAT_NAMES.get(statistic, statistic)
    ax.set_title(
        title
        or f"{name} {metric_label(metric)} over seeds\n"
        f"(band: {confidence:.0%} bootstrap CI; thin lines: individual seeds)"
    )
    if configs:
        _legend_below(ax, title=f"configuration (all: {shared})" if shared else "configuration")
    return ax


def _stopped_text(stopped: dict[str, int | None], config: str) -> str:
    """``", stopped at epoch 20"`` for a configuration stopped by racing, else ``""``."""
    if config not in stopped:
        return ""
    return ", stopped" + (f" at epoch {stopped[config]}" if stopped[config] is not None else "")


def _ci_band(ax: Axes, c: pd.DataFrame, statistic: str, color: str, **kwargs: Any) -> np.ndarray:
    """Shade the CI band of one configuration's aggregate curve; returns its x (env steps)."""
    x = c["env_steps"].to_numpy(dtype=float)
    low, high = c[f"{statistic}_low"], c[f"{statistic}_high"]
    ax.fill_between(x, low, high, color=color, alpha=0.2, linewidth=0, **kwargs)
    return x


def _legend_below(ax: Axes, title: str) -> None:
    """Legend under the x axis label: long parameter labels never hide a curve."""
    from matplotlib.transforms import ScaledTranslation

    # a fixed distance in points below the axes (tick labels + x label take about 36 pt),
    # whatever the axes height: a fraction of the height would collide on short axes
    below = ax.transAxes + ScaledTranslation(0, -40 / 72, ax.figure.dpi_scale_trans)
    ax.legend(
        title=title,
        loc="upper center",
        bbox_to_anchor=(0.5, 0.0),
        bbox_transform=below,
        frameon=False,
        ncols=1,
        alignment="left",
    )


def _facet_columns(frame: pd.DataFrame, count: int, limit: int = 6) -> int:
    """Columns of a facet grid: the product of the trailing parameters' value counts, so
    rows and columns follow the grid's structure, within ``limit``."""
    params = param_columns(frame)
    columns = 1
    for p in reversed(params):
        n = frame[p].nunique()
        if columns * n > limit:
            break
        columns *= n
    if columns == 1:
        columns = min(count, limit, max(1, math.ceil(math.sqrt(count))))
    return max(1, min(columns, count))


def plot_facets(
    curves: pd.DataFrame,
    frame: pd.DataFrame | None = None,
    *,
    ranking: pd.DataFrame | None = None,
    statistic: str = "iqm",
    metric: str = "return_mean",
    fig: Figure | None = None,
) -> np.ndarray:
    """One panel per configuration of the whole grid (grid order): ``statistic`` line, CI band
    and per-seed lines, on shared axes. With ``ranking``, panels are titled with the rank and
    the best configuration is drawn in colour (never one stopped by racing: those rank after
    the others). Returns the Axes array (row-major)."""
    configs = list(dict.fromkeys(curves["config"]))
    if frame is not None:  # configurations without data still get a (empty) panel
        configs = list(dict.fromkeys([*frame["config"], *configs]))
    count = max(1, len(configs))
    reference = frame if frame is not None else curves
    columns = _facet_columns(reference, count)
    rows = math.ceil(count / columns)
    if fig is None:
        fig = plt.figure(figsize=(3.1 * columns, 2.5 * rows + 0.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, columns, sharex=True, sharey=True, squeeze=False))
    axes = axes.ravel()
    ranks, best = {}, None
    if ranking is not None:
        ranks = dict(zip(ranking["config"], ranking["rank"], strict=True))
        candidates = aggregate.survivors(ranking)
        best = candidates["config"].iloc[0] if len(candidates) else None
    for i, ax in enumerate(axes):
        if i >= len(configs):
            ax.set_visible(False)
            continue
        config = configs[i]
        color = PALETTE[0] if config == best or not ranks else "#444444"
        if frame is not None:
            _per_seed_lines(ax, frame, config, metric, color)
        c = curves[curves["config"] == config]
        if not c.empty:
            x = _ci_band(ax, c, statistic, color)
            ax.plot(x, c[statistic], color=color, linewidth=1.8)
        rank = f"#{ranks[config]}  " if config in ranks else ""
        ax.set_title(rank + _wrap_label(config), fontsize=8.5)
        if frame is not None:
            ax.text(
                0.98,
                0.04,
                _state_note(frame[frame["config"] == config]),
                transform=ax.transAxes,
                ha="right",
                va="bottom",
                fontsize=7.5,
                color="#444444",
            )
        ax.xaxis.set_major_formatter(STEPS_FORMATTER)
        if i % columns == 0:
            ax.set_ylabel(metric_label(metric))
        if i >= len(configs) - columns:
            ax.set_xlabel("environment steps")
            ax.tick_params(labelbottom=True)
    name = STAT_NAMES.get(statistic, statistic)
    fig.suptitle(
        f"Every configuration: {name} {metric_label(metric)} with 95% CI band and per-seed lines"
        + ("  (#: rank by final-score IQM)" if ranks else "")
    )
    return axes


# --------------------------------------------------------------------------- sensitivity


def plot_sensitivity(
    scores: pd.DataFrame,
    param: str,
    *,
    seed: int = 0,
    metric: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Final score against one swept parameter, the others marginalised: every done run as a
    dot, the IQM over all of them with its 95% CI, and the best configuration at each value
    (dashed). Learning rates get a log x axis; other parameters evenly spaced values."""
    ax = _axes(ax, (4.2, 3.4))
    table = aggregate.sensitivity(scores, param, seed=seed)
    values = list(table[param])
    log = _is_log_param(param, values)
    positions = np.asarray(values, dtype=float) if log else np.arange(len(values), dtype=float)
    where = dict(zip(map(repr, values), positions, strict=True))
    done = scores[(scores["state"] == "done") & np.isfinite(scores["final_score"].astype(float))]
    rng = np.random.default_rng(seed)
    x = np.array([where[repr(v)] for v in done[param]], dtype=float)
    jitter = rng.uniform(-0.08, 0.08, x.size)
    x = x * 10**jitter if log else x + jitter * 1.5
    ax.scatter(
        x,
        done["final_score"],
        s=12,
        color="#888888",
        alpha=0.5,
        linewidths=0,
        label="one run (final score)",
        zorder=1,
    )
    err = np.vstack([table["iqm"] - table["ci_low"], table["ci_high"] - table["iqm"]])
    ax.errorbar(
        positions,
        table["iqm"],
        yerr=np.nan_to_num(err),
        color=PALETTE[0],
        marker="o",
        linewidth=2,
        capsize=4,
        label="IQM of all runs (95% CI)",
        zorder=3,
    )
    ax.plot(
        positions,
        table["best_config_iqm"],
        color=PALETTE[5],
        linestyle="--",
        marker="^",
        linewidth=1.2,
        label="best configuration (IQM)",
        zorder=2,
    )
    marked = _mark_stopped_values(ax, scores, param, table, positions)
    if log:
        ax.set_xscale("log")
        ax.set_xticks(positions, [format_value(v) for v in values])
        ax.minorticks_off()
        if marked:  # room for the "stopped @R" text of a marked value at either end
            ax.set_xlim(positions.min() / 2, positions.max() * 2)
        ax.set_xlabel(f"{param} (log scale)")
    else:
        ax.set_xticks(positions, [format_value(v) for v in values])
        ax.set_xlim(positions.min() - 0.5, positions.max() + 0.5)
        ax.set_xlabel(param)
    metric = metric or scores.attrs.get("metric", "return_mean")
    ax.set_ylabel(f"final score ({metric_label(metric)})")
    note = _not_included_note(scores)
    ax.set_title(
        f"Sensitivity to {param}\n(other parameters marginalised)" + f"\n{note}" * bool(note)
    )
    return ax


def _mark_stopped_values(
    ax: Axes, scores: pd.DataFrame, param: str, table: pd.DataFrame, positions: np.ndarray
) -> bool:
    """A value of ``param`` without a done run because racing stopped all its configurations:
    an "x" on the x axis and "stopped @R" above it, instead of nothing. (A line, not a
    scatter: its blended transform widens the x data limits only, as a data point would.)
    Returns whether any value was marked."""
    marked = False
    for value, position, runs in zip(table[param], positions, table["n_runs"], strict=True):
        if runs:
            continue
        text = _stopped_of(
            scores, list(dict.fromkeys(scores.loc[scores[param] == value, "config"]))
        )
        if text is None:
            continue
        on_axis = ax.get_xaxis_transform()  # x in data, y in axes fraction
        ax.plot(
            [position],
            [0.0],
            linestyle="none",
            marker="x",
            markersize=7,
            markeredgewidth=1.5,
            color="#444444",
            transform=on_axis,
            clip_on=False,
            zorder=4,
            label="stopped by racing (no done run)",
        )
        ax.text(
            position,
            0.04,
            text,
            transform=on_axis,
            ha="center",
            va="bottom",
            fontsize=7.5,
            color="#444444",
        )
        marked = True
    return marked


def plot_sensitivity_grid(
    scores: pd.DataFrame, *, seed: int = 0, metric: str | None = None, fig: Figure | None = None
) -> np.ndarray:
    """:func:`plot_sensitivity` for every swept parameter, side by side (shared y)."""
    params = param_columns(scores) or []
    count = max(1, len(params))
    columns = min(count, 4)
    rows = math.ceil(count / columns)
    if fig is None:
        fig = plt.figure(figsize=(3.6 * columns, 3.4 * rows + 0.5), layout="constrained")
    axes = fig.subplots(rows, columns, sharey=True, squeeze=False).ravel()
    for i, ax in enumerate(axes):
        if i >= len(params):
            ax.set_visible(False)
            continue
        plot_sensitivity(scores, params[i], seed=seed, metric=metric, ax=ax)
        ax.set_title(f"{params[i]}")
        if i % columns:
            ax.set_ylabel("")
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    legend: dict[str, Any] = {}  # every panel's entries (a stopped value's marker may be in one)
    for ax in axes[: len(params)]:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            legend.setdefault(label, handle)
    if legend:
        fig.legend(
            list(legend.values()),
            list(legend),
            loc="outside lower center",
            ncols=len(legend),
            frameon=False,
        )
    note = _not_included_note(scores)
    fig.suptitle(
        "Sensitivity of the final score to each swept parameter (others marginalised)"
        + f"\n{note}" * bool(note)
    )
    return axes


# --------------------------------------------------------------------------- heatmaps


def _color_range(vmin: float, vmax: float) -> tuple[float, float]:
    """A non-empty colour range (equal cells would otherwise all map to one arbitrary end)."""
    if vmax > vmin:
        return vmin, vmax
    half = max(abs(vmin) * 0.05, 0.5)
    return vmin - half, vmax + half


def _luminance(rgba: Sequence[float]) -> float:
    r, g, b = rgba[:3]
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def plot_heatmap(
    scores: pd.DataFrame,
    x: str,
    y: str,
    *,
    where: dict[str, Any] | None = None,
    statistic: str = "iqm",
    vmin: float | None = None,
    vmax: float | None = None,
    colorbar: bool = True,
    ax: Axes | None = None,
) -> Axes:
    """IQM (or ``statistic``) of done runs' final scores over a pair of parameters, each cell
    annotated; parameters not in ``where`` are marginalised. Empty cells are blank, or grey
    and labelled "stopped @R" when racing stopped every configuration of the cell."""
    ax = _axes(ax, (4.4, 3.6))
    table = aggregate.cell_table(scores, x, y, statistic=statistic, where=where)
    data = table.to_numpy(dtype=float)
    finite = data[np.isfinite(data)]
    vmin = vmin if vmin is not None else (finite.min() if finite.size else 0.0)
    vmax = vmax if vmax is not None else (finite.max() if finite.size else 1.0)
    vmin, vmax = _color_range(vmin, vmax)
    image = ax.imshow(data, cmap="viridis", vmin=vmin, vmax=vmax, origin="lower", aspect="auto")
    ax.set_xticks(range(len(table.columns)), [format_value(v) for v in table.columns])
    ax.set_yticks(range(len(table.index)), [format_value(v) for v in table.index])
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    subset = scores
    for key, value in (where or {}).items():
        subset = subset[subset[key] == value]
    for (row, col), value in np.ndenumerate(data):
        if not np.isfinite(value):
            _stopped_cell(ax, subset, x, table.columns[col], y, table.index[row], col, row)
            continue
        rgba = image.cmap(image.norm(value))
        ax.text(
            col,
            row,
            f"{value:.3g}",
            ha="center",
            va="center",
            fontsize=9,
            color="black" if _luminance(rgba) > 0.5 else "white",
        )
    name = STAT_NAMES.get(statistic, statistic)
    if where:
        ax.set_title(", ".join(f"{k}={format_value(v)}" for k, v in where.items()), fontsize=9.5)
    else:
        ax.set_title(f"{name} final score: {y} x {x}")
    if colorbar:
        metric = scores.attrs.get("metric", "return_mean")
        ax.figure.colorbar(image, ax=ax, label=f"{name} final score\n({metric_label(metric)})")
    return ax


def _stopped_cell(
    ax: Axes, subset: pd.DataFrame, x: str, xv: Any, y: str, yv: Any, col: int, row: int
) -> None:
    """Grey a cell without a done run whose configurations racing all stopped, labelled
    "stopped @R" (other empty cells stay blank)."""
    from matplotlib.patches import Rectangle

    cell = subset[(subset[x] == xv) & (subset[y] == yv)]
    text = _stopped_of(cell, list(dict.fromkeys(cell["config"])))
    if text is None:
        return
    ax.add_patch(
        Rectangle(
            (col - 0.5, row - 0.5), 1, 1, facecolor="#e6e6e6", edgecolor="white", linewidth=1.5
        )
    )
    ax.text(col, row, text, ha="center", va="center", fontsize=8, color="#666666")


def heatmap_pair(params: Sequence[str]) -> tuple[str, str] | None:
    """(x, y) for heatmaps: policy_lr x value_lr when both are swept, else the first two."""
    if "policy_lr" in params and "value_lr" in params:
        return "policy_lr", "value_lr"
    if len(params) >= 2:
        return params[0], params[1]
    return None


def plot_heatmaps(
    scores: pd.DataFrame,
    x: str | None = None,
    y: str | None = None,
    *,
    statistic: str = "iqm",
    fig: Figure | None = None,
) -> np.ndarray:
    """Heatmaps of ``y`` x ``x`` (default policy_lr x value_lr), one panel per combination of
    the other swept parameters (e.g. gamma x lam), on one shared colour scale."""
    params = param_columns(scores)
    if x is None or y is None:
        pair = heatmap_pair(params)
        if pair is None:
            raise ValueError("heatmaps need at least two swept parameters")
        x, y = pair
    others = [p for p in params if p not in (x, y)]
    if others:
        combos = scores[others].drop_duplicates().sort_values(others)
        facets = [dict(zip(others, row, strict=True)) for row in combos.itertuples(index=False)]
    else:
        facets = [{}]
    values = scores[(scores["state"] == "done")]["final_score"].to_numpy(dtype=float)
    values = values[np.isfinite(values)]
    # shared scale from the cells themselves (a cell statistic lies within the run range)
    cells = [
        aggregate.cell_table(scores, x, y, statistic=statistic, where=f).to_numpy() for f in facets
    ]
    cell_values = np.concatenate([c.ravel() for c in cells]) if cells else values
    cell_values = cell_values[np.isfinite(cell_values)]
    vmin = float(cell_values.min()) if cell_values.size else 0.0
    vmax = float(cell_values.max()) if cell_values.size else 1.0
    vmin, vmax = _color_range(vmin, vmax)
    columns = _facet_columns(scores[others] if others else scores.iloc[:0], len(facets), 3)
    if not others:
        columns = 1
    rows = math.ceil(len(facets) / columns)
    nx, ny = scores[x].nunique(), scores[y].nunique()
    width = max(2.6, 0.9 * nx + 1.2)
    height = max(2.2, 0.55 * ny + 1.0)
    if fig is None:
        fig = plt.figure(figsize=(width * columns + 1.2, height * rows + 0.6), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    image = None
    for i, ax in enumerate(axes):
        if i >= len(facets):
            ax.set_visible(False)
            continue
        plot_heatmap(
            scores,
            x,
            y,
            where=facets[i] or None,
            statistic=statistic,
            vmin=vmin,
            vmax=vmax,
            colorbar=False,
            ax=ax,
        )
        image = ax.images[0]
        if not facets[i]:  # the figure title names the pair already
            ax.set_title("")
        if i % columns:
            ax.set_ylabel("")
        if i < len(facets) - columns:
            ax.set_xlabel("")
    name = STAT_NAMES.get(statistic, statistic)
    metric = scores.attrs.get("metric", "return_mean")
    if image is not None:
        fig.colorbar(
            image,
            ax=list(axes[: len(facets)]),
            label=f"{name} final score\n({metric_label(metric)})",
        )
    by = f", one panel per {' x '.join(others)}" if others else ""
    fig.suptitle(f"{name} final score over {y} x {x}{by}")
    return axes


# --------------------------------------------------------------------------- per seed


def plot_strip(
    scores: pd.DataFrame,
    *,
    order: Sequence[str] | None = None,
    seed: int = 0,
    ax: Axes | None = None,
) -> Axes:
    """Final score of every done run (one dot per seed), one row per configuration, in
    ``order`` (e.g. the ranking, then rows are numbered #1...; default grid order), with each
    row's IQM
    as a bar. Row labels count the seeds by state (done, running, diverged, failed...)."""
    configs = list(order) if order is not None else list(dict.fromkeys(scores["config"]))
    ax = _axes(ax, (8.0, 0.32 * len(configs) + 1.4))
    rng = np.random.default_rng(seed)
    labels = []
    for row, config in enumerate(configs):
        runs = scores[scores["config"] == config]
        done = runs.loc[runs["state"] == "done", "final_score"].to_numpy(dtype=float)
        done = done[np.isfinite(done)]
        y = row + rng.uniform(-0.18, 0.18, done.size)
        ax.scatter(done, y, s=22, color=PALETTE[0], alpha=0.75, linewidths=0, zorder=2)
        if done.size:
            ax.scatter(
                [aggregate.iqm(done)],
                [row],
                marker="|",
                s=260,
                color="black",
                linewidths=2,
                zorder=3,
            )
        rank = f"#{row + 1}  " if order is not None else ""
        labels.append(f"{rank}{config}  [{_state_note(runs)}]")
    ax.set_yticks(range(len(configs)), labels, fontsize=8)
    ax.set_ylim(len(configs) - 0.5, -0.5)  # best (first) at the top
    ax.grid(axis="y", visible=False)
    metric = scores.attrs.get("metric", "return_mean")
    ax.set_xlabel(f"final score ({metric_label(metric)}, last 10% of epochs)")
    ax.set_title("Final score per seed and configuration\n(dots: done seeds; bar: IQM)")
    return ax


def plot_performance_profile(
    profile: pd.DataFrame,
    *,
    metric: str = "return_mean",
    band_min_runs: int = 10,
    scores: pd.DataFrame | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Fraction of runs whose final score exceeds tau, per configuration (``profile`` from
    :func:`analysis.aggregate.performance_profile`); a 95% bootstrap band where a
    configuration has at least ``band_min_runs`` runs (with fewer the band is uninformative).
    The pooled "all configurations" curve, when present, is dashed black. With ``scores``
    (the final scores the profile was made from), the legend says which configurations
    racing stopped early: the profile has their done runs only, i.e. none."""
    ax = _axes(ax)
    configs = [c for c in dict.fromkeys(profile["config"]) if c != "all configurations"]
    labels, shared = _short_labels_from_config_strings(configs)
    stopped = aggregate.stopped_configs(scores) if scores is not None else {}
    banded = False
    for i, (config, label) in enumerate(zip(configs, labels, strict=True)):
        p = profile[profile["config"] == config]
        color = PALETTE[i % len(PALETTE)]
        runs = int(p["n_runs"].iloc[0]) if "n_runs" in p else 0
        if runs >= band_min_runs:
            ax.fill_between(
                p["tau"], p["low"], p["high"], color=color, alpha=0.15, linewidth=0, step="post"
            )
            banded = True
        ax.step(
            p["tau"],
            p["fraction"],
            where="post",
            color=color,
            linewidth=1.8,
            label=f"{label} ({runs} runs{_stopped_text(stopped, config)})",
        )
    pooled = profile[profile["config"] == "all configurations"]
    if not pooled.empty:
        runs = int(pooled["n_runs"].iloc[0]) if "n_runs" in pooled else 0
        label = f"all configurations ({runs} runs)"
        if stopped and scores is not None:
            total, n = scores["config"].nunique(), len(stopped)
            label = (
                f"done runs of {total - n} configurations ({runs} runs; "
                f"{n} stopped by racing not shown)"
            )
        ax.step(
            pooled["tau"],
            pooled["fraction"],
            where="post",
            color="black",
            linestyle="--",
            linewidth=1.4,
            label=label,
        )
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(f"threshold τ on the final score ({metric_label(metric)})")
    ax.set_ylabel("fraction of runs with final score > τ")
    ax.set_title(
        "Performance profile: fraction of done runs scoring above τ"
        + ("\n(band: 95% bootstrap CI over runs)" if banded else "")
    )
    if configs or not pooled.empty:
        _legend_below(ax, title=f"configuration (all: {shared})" if shared else "configuration")
    return ax


def _short_labels_from_config_strings(configs: Sequence[str]) -> tuple[list[str], str]:
    """Like :func:`_short_labels`, from ``"a=1, b=2"`` labels alone."""
    parsed = [dict(part.split("=", 1) for part in c.split(", ") if "=" in part) for c in configs]
    if len(configs) < 2 or not all(parsed) or len({tuple(p) for p in parsed}) != 1:
        return list(configs), ""
    names = list(parsed[0])
    varying = [n for n in names if len({p[n] for p in parsed}) > 1]
    if not varying:
        return list(configs), ""
    common = ", ".join(f"{n}={parsed[0][n]}" for n in names if n not in varying)
    return [", ".join(f"{n}={p[n]}" for n in varying) for p in parsed], common


# --------------------------------------------------------------------------- files


def save_figure(fig: Figure, stem: str | Path) -> list[Path]:
    """Write ``stem``.png and ``stem``.svg (each via a temp file and rename); close ``fig``."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for suffix in (".png", ".svg"):
        path = stem.with_suffix(suffix)
        tmp = path.with_name(f".tmp-{path.name}")
        with plt.rc_context({"savefig.bbox": "tight"}):
            fig.savefig(tmp, format=suffix[1:])
        tmp.replace(path)
        paths.append(path)
    plt.close(fig)
    return paths


def write_plots(
    frame: pd.DataFrame,
    scores: pd.DataFrame,
    table: pd.DataFrame,
    curves: pd.DataFrame,
    out_dir: str | Path,
    *,
    top: int = 5,
    statistic: str = "iqm",
    metric: str = "return_mean",
    seed: int = 0,
) -> list[Path]:
    """Every plot of a sweep, as PNG + SVG in ``out_dir``. Returns the paths written:
    curves_top (top-``top`` aggregate curves), facets (whole grid), sensitivity,
    heatmaps (when two or more parameters are swept), strip (per-seed final scores),
    profile (performance profile of the top-``top``). The top ``top`` are taken from the
    configurations racing did not stop, unless it stopped them all."""
    out_dir = Path(out_dir)
    paths: list[Path] = []
    candidates = aggregate.survivors(table)
    scored = candidates[candidates["iqm"].notna()]
    top_configs = (
        list(scored["config"][:top])
        or list(candidates["config"][:top])
        or list(table["config"][:top])
    )
    all_stopped = candidates.empty
    params = param_columns(scores)
    with style():
        ax = plot_curves(
            curves,
            frame,
            configs=top_configs,
            statistic=statistic,
            metric=metric,
            title=None,
            ax=_axes(None, (7.0, 4.4)),
        )
        name = STAT_NAMES.get(statistic, statistic)
        what = (
            f"Top {len(top_configs)} configurations"
            if len(top_configs) > 1
            else "Best configuration"
        )
        by = "by final score"
        if all_stopped:  # racing stopped every configuration: the best of the stopped ones
            what, by = (
                f"Every configuration was stopped early; top {len(top_configs)}",
                "by score at their rung",
            )
        ax.set_title(
            f"{what} {by}: {name} {metric_label(metric)}"
            "\n(band: 95% bootstrap CI; thin lines: individual seeds)"
        )
        paths += save_figure(ax.figure, out_dir / "curves_top")

        axes = plot_facets(curves, frame, ranking=table, statistic=statistic, metric=metric)
        paths += save_figure(axes[0].figure, out_dir / "facets")

        if params:
            axes = plot_sensitivity_grid(scores, seed=seed, metric=metric)
            paths += save_figure(axes[0].figure, out_dir / "sensitivity")
        if heatmap_pair(params) is not None:
            axes = plot_heatmaps(scores, statistic=statistic)
            paths += save_figure(axes[0].figure, out_dir / "heatmaps")

        ax = plot_strip(scores, order=list(table["config"]), seed=seed)
        paths += save_figure(ax.figure, out_dir / "strip")

        profile = aggregate.performance_profile(scores, configs=top_configs, seed=seed)
        ax = plot_performance_profile(profile, metric=metric, scores=scores)
        paths += save_figure(ax.figure, out_dir / "profile")
    return paths

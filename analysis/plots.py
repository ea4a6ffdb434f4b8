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
    "text.parse_math": False,  # a "$" in a sweep name, a value or --title is just a "$"
}
"""rcParams of every figure :func:`write_plots` makes (use :func:`style` for your own)."""

# seaborn's "colorblind" palette (Okabe-Ito based), with its two colours that vanish on white
# (yellow #ECE133, light pink #FBAFE4) replaced by darker ones (purple, olive); no black (black draws
# references such as the pooled profile). Ten distinct colours: curve plots show at most
# MAX_LINES configurations (facets.png shows every one).
PALETTE = (
    "#0173B2",
    "#DE8F05",
    "#029E73",
    "#D55E00",
    "#CC78BC",
    "#8C6D31",
    "#56B4E9",
    "#6A3D9A",
    "#949494",
    "#7F8C00",
)
MAX_LINES = len(PALETTE)
MAX_PANELS = 64  # facets: more panels take minutes to lay out and cannot be read
STAT_NAMES = {"iqm": "IQM", "median": "median", "mean": "mean"}
X_LABELS = {
    "env_steps": "environment steps",
    "epoch": "epoch",
    "wall_time_s": "training wall time (s)",
}

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
    """The plot style as an rc context: seaborn's "ticks" theme and "paper" context with
    readable fonts at paper size and a light grid."""
    import seaborn as sns

    with sns.axes_style("ticks"), sns.plotting_context("paper"), plt.rc_context(STYLE):
        yield


def x_label(x_col: str) -> str:
    return X_LABELS.get(x_col, x_col)


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
    ax: Axes,
    frame: pd.DataFrame,
    config: str,
    metric: str,
    color: str,
    alpha: float = 0.5,
    x_col: str = "env_steps",
) -> int:
    """Thin raw lines, one per run of ``config``; diverged / failed runs dotted. Returns count."""
    runs = frame[(frame["config"] == config) & frame["epoch"].notna()]
    if x_col == "wall_time_s":
        runs = aggregate.with_wall_time(runs)
    count = 0
    for _, run in runs.groupby("run_id", sort=False):
        run = run[np.isfinite(run[metric].to_numpy(dtype=float))]
        if run.empty:
            continue
        bad = run["state"].iloc[0] in ("diverged", "failed")
        ax.plot(
            run[x_col].to_numpy(dtype=float),
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
    seeds: bool | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Aggregate learning curves: ``statistic`` line and its bootstrap CI band per
    configuration, over thin per-seed lines from the long ``frame`` (when given).

    ``curves`` is :func:`analysis.aggregate.aggregate_curves`' frame (its x column is the x
    axis); ``configs`` picks and orders the configurations (e.g. the top-k of the ranking;
    default all, at most :data:`MAX_LINES`: one distinct colour each). Per-seed lines are
    drawn when ``seeds`` is True, by default only for up to 3 configurations (more turn the
    plot into one mass). With ``frame``, the legend names configurations stopped early by
    racing and their epoch. The legend goes below the axes (:func:`legend_below`).
    """
    ax = _axes(ax)
    configs = list(configs) if configs is not None else list(dict.fromkeys(curves["config"]))
    if len(configs) > MAX_LINES:
        raise ValueError(
            f"plot_curves: at most {MAX_LINES} configurations (one distinct colour each), "
            f"got {len(configs)}; plot_facets shows any number"
        )
    x_col = curves.attrs.get("x", "env_steps")
    labels, shared = _short_labels(curves, configs)
    stopped = aggregate.stopped_configs(frame) if frame is not None else {}
    seeds = len(configs) <= 3 if seeds is None else seeds
    band_alpha = 0.22 if len(configs) <= 3 else 0.14
    banded = len(configs) if len(configs) <= 5 else 3  # more bands merge into one mass
    for i, (config, label) in enumerate(zip(configs, labels, strict=True)):
        color = PALETTE[i]
        if frame is not None and seeds:
            _per_seed_lines(ax, frame, config, metric, color, alpha=0.35, x_col=x_col)
        c = curves[curves["config"] == config]
        if c.empty:
            continue
        x = c[x_col].to_numpy(dtype=float)
        if i < banded:
            _ci_band(ax, c, statistic, color, zorder=2, alpha=band_alpha, x_col=x_col)
        n = int(c["n_runs"].max())
        ax.plot(
            x,
            c[statistic],
            color=color,
            linewidth=2.0,
            zorder=3 + (len(configs) - i) / 100,  # the best on top
            label=f"{label} ({n} seeds{_stopped_text(stopped, config)})",
        )
    ax.set_xlabel(x_label(x_col))
    ax.set_ylabel(metric_label(metric))
    if x_col == "env_steps":
        ax.xaxis.set_major_formatter(STEPS_FORMATTER)
    ax.set_xlim(left=0)
    name = STAT_NAMES.get(statistic, statistic)
    thin = "; thin lines: individual seeds" if seeds and frame is not None else ""
    which = "" if banded == len(configs) else f" of the top {banded}"
    what = f"{name} {metric_label(metric)} over seeds (band{which}: {confidence:.0%} bootstrap CI{thin})"
    ax.set_title(f"{title}\n{what}" if title else what)  # a title never hides the statistic
    if configs:
        legend_below(ax, title=f"configuration (all: {shared})" if shared else "configuration")
    return ax


def _stopped_text(stopped: dict[str, int | None], config: str) -> str:
    """``", stopped at epoch 20"`` for a configuration stopped by racing, else ``""``."""
    if config not in stopped:
        return ""
    return ", stopped" + (f" at epoch {stopped[config]}" if stopped[config] is not None else "")


def _ci_band(
    ax: Axes,
    c: pd.DataFrame,
    statistic: str,
    color: str,
    alpha: float = 0.2,
    x_col: str = "env_steps",
    **kwargs: Any,
) -> np.ndarray:
    """Shade the CI band of one configuration's aggregate curve; returns its x."""
    x = c[x_col].to_numpy(dtype=float)
    low, high = c[f"{statistic}_low"], c[f"{statistic}_high"]
    ax.fill_between(x, low, high, color=color, alpha=alpha, linewidth=0, **kwargs)
    return x


def legend_below(ax: Axes, title: str, handles: Sequence[Any] | None = None) -> None:
    """The legend in its own band under the axes, never over a curve, and never at the
    expense of the axes: the figure grows by the legend's height (figures made by
    :func:`_axes` use constrained layout, which places an "outside" legend in the margin).
    More than 5 entries go in two columns."""
    fig = ax.figure
    if handles is None:
        handles, labels = ax.get_legend_handles_labels()
    else:
        labels = [h.get_label() for h in handles]
    if not handles:
        return
    ncols = 1 if len(handles) <= 5 else 2
    rows = math.ceil(len(handles) / ncols)
    width, height = fig.get_size_inches()
    extra = 0.4 + 0.19 * rows  # title line + one line per row at legend.fontsize
    fig.set_size_inches(width, height + extra)
    fig.legend(
        handles,
        labels,
        title=title,
        loc="outside lower center",
        frameon=False,
        ncols=ncols,
        alignment="left",
    )


def _facet_columns(frame: pd.DataFrame, count: int, limit: int = 6) -> int:
    """Columns of a facet grid: the product of the trailing parameters' value counts when
    that gives a grid about as wide as tall (rows and columns then follow the sweep's
    structure), else ceil(sqrt(count)); within ``limit``."""
    square = max(1, min(limit, math.ceil(math.sqrt(count))))
    params = param_columns(frame)
    columns = 1
    for p in reversed(params):
        n = frame[p].nunique()
        if columns * n > limit:
            break
        columns *= n
    if columns < square - 1 or columns == 1:
        columns = square
    return max(1, min(columns, count))


def plot_facets(
    curves: pd.DataFrame,
    frame: pd.DataFrame | None = None,
    *,
    ranking: pd.DataFrame | None = None,
    statistic: str = "iqm",
    metric: str = "return_mean",
    title: str | None = None,
    heading: str = "",
    fig: Figure | None = None,
) -> np.ndarray:
    """One small panel per configuration of the whole grid (grid order): ``statistic`` line,
    CI band and per-seed lines, on shared axes. Each panel's title gives the rank (with
    ``ranking``), the seeds by state and the configuration, above the curves; the best
    configuration is drawn in colour (never one stopped by racing: those rank after the
    others). At most 6 panels across, 2.3 x 1.75 in each. Returns the Axes array
    (row-major)."""
    configs = list(dict.fromkeys(curves["config"]))
    if frame is not None:  # configurations without data still get a (empty) panel
        configs = list(dict.fromkeys([*frame["config"], *configs]))
    total = len(configs)
    if total > MAX_PANELS and ranking is not None:  # the best MAX_PANELS, in grid order
        keep = set(ranking["config"][:MAX_PANELS])
        configs = [c for c in configs if c in keep]
    elif total > MAX_PANELS:
        configs = configs[:MAX_PANELS]
    x_col = curves.attrs.get("x", "env_steps")
    count = max(1, len(configs))
    reference = frame if frame is not None else curves
    columns = _facet_columns(reference, count)
    rows = math.ceil(count / columns)
    if fig is None:
        fig = plt.figure(figsize=(2.3 * columns + 0.4, 1.75 * rows + 0.7), layout="constrained")
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
            _per_seed_lines(ax, frame, config, metric, color, alpha=0.45, x_col=x_col)
        c = curves[curves["config"] == config]
        if not c.empty:
            x = _ci_band(ax, c, statistic, color, x_col=x_col)
            ax.plot(x, c[statistic], color=color, linewidth=1.6)
        head = [f"#{ranks[config]}"] if config in ranks else []
        if frame is not None:
            head.append(_state_note(frame[frame["config"] == config]))
        first_line = "  ".join(head)
        ax.set_title(
            (first_line + "\n" if first_line else "") + _wrap_label(config),
            fontsize=7,
            color=color if config == best else "black",
        )
        ax.tick_params(labelsize=7)
        if x_col == "env_steps":
            ax.xaxis.set_major_formatter(STEPS_FORMATTER)
        if i % columns == 0:
            ax.set_ylabel(metric_label(metric), fontsize=7.5)
        if i >= len(configs) - columns:
            ax.set_xlabel(x_label(x_col), fontsize=7.5)
            ax.tick_params(labelbottom=True)
    name = STAT_NAMES.get(statistic, statistic)
    fig.suptitle(
        title
        or (heading or "")
        + ("every" if heading else "Every")
        + (
            " configuration"
            if len(configs) == total
            else f" one of the best {len(configs)} of {total} configurations"
        )
        + f": {name} {metric_label(metric)} with 95% CI band and per-seed lines"
        + ("\n(#: rank by final score; best in colour)" if ranks else "")
    )
    return axes


# --------------------------------------------------------------------------- sensitivity


def plot_sensitivity(
    scores: pd.DataFrame,
    param: str,
    *,
    statistic: str = "iqm",
    minimize: bool = False,
    seed: int = 0,
    metric: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Final score against one swept parameter, the others marginalised: every done run as a
    dot, the IQM (``statistic``) over all of them with its 95% CI, and the best configuration
    at each value (dashed). Learning rates get a log x axis; other parameters evenly spaced
    values."""
    ax = _axes(ax, (4.2, 3.4))
    name = STAT_NAMES.get(statistic, statistic)
    table = aggregate.sensitivity(scores, param, statistic=statistic, minimize=minimize, seed=seed)
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
    err = np.vstack([table["estimate"] - table["ci_low"], table["ci_high"] - table["estimate"]])
    ax.errorbar(
        positions,
        table["estimate"],
        yerr=np.nan_to_num(err),
        color=PALETTE[0],
        marker="o",
        linewidth=2,
        capsize=4,
        label=f"{name} of all runs (95% CI)",
        zorder=3,
    )
    ax.plot(
        positions,
        table["best_config"],
        color=PALETTE[3],
        linestyle="--",
        marker="^",
        linewidth=1.2,
        label=f"best configuration ({name})",
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
    scores: pd.DataFrame,
    *,
    statistic: str = "iqm",
    minimize: bool = False,
    seed: int = 0,
    metric: str | None = None,
    fig: Figure | None = None,
) -> np.ndarray:
    """:func:`plot_sensitivity` for every swept parameter, side by side (shared y); never
    ``env`` (tasks are not a parameter: a swept env gets one figure per task)."""
    params = [p for p in param_columns(scores) or [] if p != "env"]
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
        plot_sensitivity(
            scores,
            params[i],
            statistic=statistic,
            minimize=minimize,
            seed=seed,
            metric=metric,
            ax=ax,
        )
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


def _short(value: float) -> str:
    """3 significant digits, never in exponent form below 10^6 (4190, not 4.19e+03)."""
    if abs(value) >= 1000 and abs(value) < 1e6:
        return f"{value:.0f}"
    return f"{value:.3g}"


def _cell_text(estimate: float, low: float, high: float, n: int) -> str:
    """``"91\n[-28, 330]\nn=5"``: the estimate, its CI and the number of done runs."""
    if n <= 1:
        return f"{_short(estimate)}\nn={n}"
    return f"{_short(estimate)}\n[{_short(low)}, {_short(high)}]\nn={n}"


def plot_heatmap(
    scores: pd.DataFrame,
    x: str,
    y: str,
    *,
    where: dict[str, Any] | None = None,
    statistic: str = "iqm",
    minimize: bool = False,
    vmin: float | None = None,
    vmax: float | None = None,
    colorbar: bool = True,
    seed: int = 0,
    ax: Axes | None = None,
) -> Axes:
    """IQM (or ``statistic``) of done runs' final scores over a pair of parameters (seaborn
    heatmap); parameters not in ``where`` are marginalised. Each cell shows the estimate, its
    95% bootstrap CI over the cell's runs and n, so a colour difference inside overlapping
    intervals is not read as an effect. With ``minimize`` the colour scale is reversed
    (bright = better). Empty cells are blank, or grey and labelled "stopped @R" when racing
    stopped every configuration of the cell."""
    import seaborn as sns

    ax = _axes(ax, (4.8, 3.8))
    cells = aggregate.cell_estimates(scores, x, y, statistic=statistic, where=where, seed=seed)
    table = cells["estimate"]
    data = table.to_numpy(dtype=float)
    finite = data[np.isfinite(data)]
    vmin = vmin if vmin is not None else (finite.min() if finite.size else 0.0)
    vmax = vmax if vmax is not None else (finite.max() if finite.size else 1.0)
    vmin, vmax = _color_range(vmin, vmax)
    annot = np.empty(data.shape, dtype=object)
    for (row, col), value in np.ndenumerate(data):
        annot[row, col] = (
            _cell_text(
                value,
                cells["low"].iat[row, col],
                cells["high"].iat[row, col],
                int(cells["n"].iat[row, col]),
            )
            if np.isfinite(value)
            else ""
        )
    cmap = "viridis_r" if minimize else "viridis"
    sns.heatmap(
        table.iloc[::-1],  # the largest y value on top
        ax=ax,
        cmap=cmap,
        vmin=vmin,
        vmax=vmax,
        annot=annot[::-1],
        fmt="",
        annot_kws={"fontsize": 7.5, "linespacing": 1.15},
        cbar=False,
        linewidths=1.0,
        linecolor="white",
        xticklabels=[format_value(v) for v in table.columns],
        yticklabels=[format_value(v) for v in table.index[::-1]],
    )
    ax.tick_params(axis="y", rotation=0)
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.grid(False)
    subset = scores
    for key, value in (where or {}).items():
        subset = subset[subset[key] == value]
    rows = len(table.index)
    for (row, col), value in np.ndenumerate(data):
        if not np.isfinite(value):
            # seaborn draws row r of the flipped table at y = r + 0.5 (top to bottom)
            _stopped_cell(
                ax,
                subset,
                x,
                table.columns[col],
                y,
                table.index[row],
                col + 0.5,
                rows - 1 - row + 0.5,
            )
    name = STAT_NAMES.get(statistic, statistic)
    if where:
        ax.set_title(", ".join(f"{k}={format_value(v)}" for k, v in where.items()), fontsize=9.5)
    else:
        ax.set_title(f"{name} final score: {y} x {x}")
    if colorbar:
        metric = scores.attrs.get("metric", "return_mean")
        ax.figure.colorbar(
            ax.collections[0], ax=ax, label=f"{name} final score\n({metric_label(metric)})"
        )
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
    )  # col, row: the cell's centre in data coordinates
    ax.text(col, row, text, ha="center", va="center", fontsize=8, color="#666666")


def heatmap_pair(params: Sequence[str]) -> tuple[str, str] | None:
    """(x, y) for heatmaps: policy_lr x value_lr when both are swept, else the first two
    other than ``env`` (a swept env gets one panel per task instead)."""
    params = [p for p in params if p != "env"]
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
    minimize: bool = False,
    seed: int = 0,
    title: str | None = None,
    fig: Figure | None = None,
) -> np.ndarray:
    """Heatmaps of ``y`` x ``x`` (default policy_lr x value_lr), one panel per combination of
    the other swept parameters (e.g. gamma x lam), on one shared colour scale; each cell
    annotated with its estimate, 95% CI and n (:func:`plot_heatmap`)."""
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
    # shared scale from the cells themselves (a cell statistic lies within the run range)
    cells = [
        aggregate.cell_table(scores, x, y, statistic=statistic, where=f).to_numpy() for f in facets
    ]
    cell_values = np.concatenate([c.ravel() for c in cells])
    cell_values = cell_values[np.isfinite(cell_values)]
    vmin = float(cell_values.min()) if cell_values.size else 0.0
    vmax = float(cell_values.max()) if cell_values.size else 1.0
    vmin, vmax = _color_range(vmin, vmax)
    columns = _facet_columns(scores[others] if others else scores.iloc[:0], len(facets), 3)
    if not others:
        columns = 1
    rows = math.ceil(len(facets) / columns)
    nx, ny = scores[x].nunique(), scores[y].nunique()
    width = max(2.8, 1.05 * nx + 1.1)  # room for "-28.3 / [-28.3, 330] / n=5" per cell
    height = max(2.2, 0.72 * ny + 0.9)
    if fig is None:
        fig = plt.figure(figsize=(width * columns + 1.2, height * rows + 0.9), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    mappable = None
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
            minimize=minimize,
            vmin=vmin,
            vmax=vmax,
            colorbar=False,
            seed=seed,
            ax=ax,
        )
        mappable = ax.collections[0]
        if not facets[i]:  # the figure title names the pair already
            ax.set_title("")
        if i % columns:
            ax.set_ylabel("")
        if i < len(facets) - columns:
            ax.set_xlabel("")
    name = STAT_NAMES.get(statistic, statistic)
    metric = scores.attrs.get("metric", "return_mean")
    if mappable is not None:
        better = " (lower is better)" if minimize else ""
        fig.colorbar(
            mappable,
            ax=list(axes[: len(facets)]),
            label=f"{name} final score{better}\n({metric_label(metric)})",
        )
    by = f", one panel per {' x '.join(others)}" if others else ""
    fig.suptitle(
        title
        or f"{name} final score over {y} x {x}{by}\n"
        f"(cell: {name} [95% bootstrap CI] and n done seeds)"
    )
    return axes


# --------------------------------------------------------------------------- per seed


def plot_strip(
    scores: pd.DataFrame,
    *,
    order: Sequence[str] | None = None,
    statistic: str = "iqm",
    seed: int = 0,
    ax: Axes | None = None,
) -> Axes:
    """Final score of every done run (one dot per seed), one row per configuration, in
    ``order`` (e.g. the ranking, then rows are numbered #1...; default grid order), with each
    row's IQM
    as a bar. Row labels count the seeds by state (done, running, diverged, failed...)."""
    configs = list(order) if order is not None else list(dict.fromkeys(scores["config"]))
    total = len(configs)
    configs = configs[:MAX_PANELS]  # a row per configuration: beyond that, unreadable
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
                [aggregate.STATISTICS[statistic](done)],
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
    window = scores.attrs.get("window", 0.1)
    ax.set_xlabel(f"final score ({metric_label(metric)}, last {window:.0%} of epochs)")
    name = STAT_NAMES.get(statistic, statistic)
    shown = "" if len(configs) == total else f" (the first {len(configs)} of {total})"
    ax.set_title(f"Final score per seed and configuration{shown}\n(dots: done seeds; bar: {name})")
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
        color = PALETTE[i % len(PALETTE)]  # callers pass at most MAX_LINES configurations
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
            zorder=3 + (len(configs) - i) / 100,  # the best on top
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
        # the reference: grey, thinner and dotted, behind the configurations (no
        # configuration colour is grey-black, so it cannot be mistaken for one)
        ax.step(
            pooled["tau"],
            pooled["fraction"],
            where="post",
            color="#555555",
            linestyle=(0, (1, 1.5)),
            linewidth=2.2,
            zorder=1,
            label=label,
        )
    below = bool(profile.attrs.get("below"))
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(f"threshold τ on the final score ({metric_label(metric)})")
    ax.set_ylabel(f"fraction of runs {'<' if below else '>'} τ")
    ax.set_title(
        f"Performance profile: fraction of done runs scoring {'below' if below else 'above'} τ"
        + ("\n(band: 95% bootstrap CI over runs)" if banded else "")
    )
    if configs or not pooled.empty:
        legend_below(ax, title=f"configuration (all: {shared})" if shared else "configuration")
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


def save_figure(fig: Figure, stem: str | Path, dpi: float | None = None) -> list[Path]:
    """Write ``stem``.png (at ``dpi``, default the style's 200) and ``stem``.svg (each via a
    temp file and rename); close ``fig``."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for suffix in (".png", ".svg"):
        path = stem.with_suffix(suffix)
        tmp = path.with_name(f".tmp-{path.name}")
        try:
            with plt.rc_context({"savefig.bbox": "tight"}):
                fig.savefig(tmp, format=suffix[1:], **({"dpi": dpi} if dpi else {}))
            tmp.replace(path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            plt.close(fig)
            raise
        paths.append(path)
    plt.close(fig)
    return paths


def _top_configs(table: pd.DataFrame, top: int) -> tuple[list[str], bool]:
    """The top ``top`` configurations of a ranking that racing did not stop (all stopped:
    the best of the stopped ones), and whether racing stopped them all."""
    candidates = aggregate.survivors(table)
    scored = candidates[candidates["iqm"].notna()]
    configs = (
        list(scored["config"][:top])
        or list(candidates["config"][:top])
        or list(table["config"][:top])
    )
    return configs, candidates.empty


def _prefix_title(fig: Figure, prefix: str) -> None:
    """Put ``prefix`` (env and sweep) in front of a figure's suptitle."""
    if prefix and fig.get_suptitle():
        fig.suptitle(prefix + fig.get_suptitle())


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)


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
    minimize: bool = False,
    seed: int = 0,
    title: str | None = None,
    size: tuple[float, float] | None = None,
    name: str | None = None,
    env: str | None = None,
) -> list[Path]:
    """Every plot of a sweep, as PNG + SVG in ``out_dir``. Returns the paths written:
    curves_top (top-``top`` aggregate curves, at most :data:`MAX_LINES`), facets (whole
    grid), sensitivity, heatmaps (when two or more parameters are swept), strip (per-seed
    final scores), profile (performance profile of the top-``top``). The top ``top`` are
    taken from the configurations racing did not stop, unless it stopped them all. When
    ``env`` is swept, returns of different tasks are never drawn on one axis: curves_top,
    profile, sensitivity and strip are drawn per env (``curves_top_<env>``, ...) from that
    env's ranking (``table`` from :func:`analysis.aggregate.ranking_by_env`); heatmaps get
    one panel per env; facets one panel per configuration.

    ``title`` replaces curves_top's title; ``size`` (width, height in inches) is the size of
    curves_top's and profile's axes area before their legend (default 7 x 4); ``name`` and
    ``env`` (the sweep's) go in the default titles."""
    out_dir = Path(out_dir)
    paths: list[Path] = []
    top = min(top, MAX_LINES)
    params = param_columns(scores)
    width, height = size or (7.0, 4.0)
    envs = aggregate.swept_envs(scores)
    groups = [(env, "", table, scores)]
    if envs:
        groups = [
            (e, f"_{_safe(e)}", table[table["env"] == e], scores[scores["env"] == e]) for e in envs
        ]
    stat = STAT_NAMES.get(statistic, statistic)
    with style():
        for group_env, suffix, group_table, group_scores in groups:
            top_configs, all_stopped = _top_configs(group_table, top)
            where = " · ".join(str(t) for t in (group_env, name) if t)
            where = f"{where}: " if where else ""
            ax = plot_curves(
                curves,
                frame,
                configs=top_configs,
                statistic=statistic,
                metric=metric,
                ax=_axes(None, (width, height)),
            )
            what = (
                f"top {len(top_configs)} configurations"
                if len(top_configs) > 1
                else "best configuration"
            )
            by = "by final score"
            if all_stopped:  # racing stopped every configuration: the best of the stopped
                what, by = (
                    f"every configuration stopped early; top {len(top_configs)}",
                    "by score at their rung",
                )
            seeds = "; thin lines: individual seeds" if len(top_configs) <= 3 else ""
            seeds = seeds if len(top_configs) <= 5 else " (top 3 only)"
            line = f"{stat} {metric_label(metric)} (band: 95% bootstrap CI over seeds{seeds})"
            ax.set_title(f"{title or f'{where}{what} {by}'}\n{line}")  # --title keeps the line
            paths += save_figure(ax.figure, out_dir / f"curves_top{suffix}")

            profile = aggregate.performance_profile(
                group_scores, configs=top_configs, below=minimize, seed=seed
            )
            ax = plot_performance_profile(
                profile, metric=metric, scores=group_scores, ax=_axes(None, (width, height))
            )
            ax.set_title(f"{where}{ax.get_title()}")
            paths += save_figure(ax.figure, out_dir / f"profile{suffix}")

            if [p for p in params if p != "env"]:
                axes = plot_sensitivity_grid(
                    group_scores, statistic=statistic, minimize=minimize, seed=seed, metric=metric
                )
                _prefix_title(axes[0].figure, where)
                paths += save_figure(axes[0].figure, out_dir / f"sensitivity{suffix}")

            ax = plot_strip(
                group_scores, order=list(group_table["config"]), statistic=statistic, seed=seed
            )
            ax.set_title(f"{where}{ax.get_title()}")
            paths += save_figure(ax.figure, out_dir / f"strip{suffix}")

        where = " · ".join(str(t) for t in (env, name) if t)
        where = f"{where}: " if where else ""
        axes = plot_facets(
            curves, frame, ranking=table, statistic=statistic, metric=metric, heading=where
        )
        paths += save_figure(axes[0].figure, out_dir / "facets", dpi=150)

        if heatmap_pair(params) is not None:
            axes = plot_heatmaps(scores, statistic=statistic, minimize=minimize, seed=seed)
            _prefix_title(axes[0].figure, where)
            paths += save_figure(axes[0].figure, out_dir / "heatmaps")
    return paths

"""What the analysis commands share (analyze, report, compare, refine): one-line errors,
number formatting, safe writes, the ranking as Markdown and on the terminal, and what a
results directory's sweep.yaml says. Module-level imports are stdlib only (like analysis.cli).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_BAD_INPUT = 0, 2
OUTPUT_DIR = "analysis"


def fail(message: str) -> int:
    print(f"a2c-sweep: error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def warn(message: str) -> None:
    print(f"a2c-sweep: warning: {message}", file=sys.stderr)


def _int_at_least(text: str, minimum: int, expected: str) -> int:
    """An argparse integer of at least ``minimum`` ("expected <expected>, got ..." if not)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {value}")
    return value


def _seed(text: str) -> int:
    return _int_at_least(text, 0, "an integer >= 0")


def _positive_int(text: str) -> int:
    return _int_at_least(text, 1, "a positive integer")


def _fmt(value: Any) -> str:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(value):
        return "-"
    return f"{value:.1f}" if abs(value) >= 1000 else f"{value:.4g}"


def _write_text(path: Path, text: str) -> None:
    """Write through a temp file beside ``path`` and a rename (removed on any failure)."""
    tmp = path.with_name(f".tmp-{path.name}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------- tables

STAT_TEXT = {"iqm": "IQM", "median": "median", "mean": "mean"}
STAT_LONG = {"iqm": "interquartile mean (IQM)", "median": "median", "mean": "mean"}


def _stat_order(statistic: str) -> list[str]:
    """The ranking statistic first (its CI follows it), then the other two."""
    return [statistic, *(s for s in ("iqm", "median", "mean") if s != statistic)]


def _stat_cells(r: dict[str, Any], statistic: str) -> list[str]:
    first, *rest = _stat_order(statistic)
    ci = f"[{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]"
    return [_fmt(r[first]), ci, *(_fmt(r[s]) for s in rest)]


def _stat_headers(statistic: str) -> list[str]:
    first, *rest = _stat_order(statistic)
    return [STAT_TEXT[first], f"95% CI ({STAT_TEXT[first]})", *(STAT_TEXT[s] for s in rest)]


def _stopped_at(row: dict[str, Any]) -> str | None:
    """The epoch a ranking row's configuration was stopped at by racing, else None."""
    import pandas as pd

    value = row.get("stopped_at")
    return None if value is None or pd.isna(value) else str(int(value))


def _any_stopped(table: Any) -> bool:
    return "stopped_at" in table.columns and bool(table["stopped_at"].notna().any())


def ranking_markdown(
    table: Any, *, name: str, metric: str, top: int | None = None, window: float = 0.1
) -> str:
    """The ranking as a Markdown document (title, definitions, one table). Configurations
    stopped early by racing get a "stopped" count and a "stopped at epoch" column."""
    from analysis.load import format_value, param_columns

    params = param_columns(table)
    statistic = table.attrs.get("statistic", "iqm")
    minimize = table.attrs.get("minimize", False)
    rows = table if top is None else table.head(top)
    stopped = _any_stopped(table)
    states = ("done", "running", "pending", "diverged", "failed", *(("stopped",) * stopped))
    header = [
        "rank",
        *params,
        *_stat_headers(statistic),
        "done",
        "running",
        "pending",
        "diverged",
        "failed",
        *(["stopped", "stopped at epoch"] if stopped else []),
        "P(< next)" if minimize else "P(> next)",
    ]
    solved = "solved_epoch" in table.columns
    if solved:
        header.append(f"median >= {table.attrs.get('threshold', '?'):g} at epoch")
    lines = [
        f"# Ranking of {name}",
        "",
        f"Final score of a run: mean `{metric}` over its last {window:.0%} of epochs (at least "
        f"one). Configurations are ranked by the {STAT_LONG[statistic]} of the final scores "
        f"of their done runs, {'lowest' if minimize else 'highest'} first, with a 95% "
        f"percentile-bootstrap CI over seeds. P({'<' if minimize else '>'} next): probability "
        "that a done run of this "
        f"configuration scores {'less' if minimize else 'more'} than one of the next "
        "(rliable's probability of improvement).",
        *(
            [
                "",
                "Configurations stopped early by racing come after all the others, ranked among "
                "themselves by the same statistics over their stopped runs' scores at the epoch "
                "they were stopped (the final-score rule over the rows they have); they are "
                "never the best configuration.",
            ]
            if stopped
            else []
        ),
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---:" if h not in params else "---" for h in header) + "|",
    ]
    for row in rows.itertuples(index=False):
        r = row._asdict()
        cells = [
            str(r["rank"]),
            *[format_value(r[p]) for p in params],
            *_stat_cells(r, statistic),
            *[str(r[f"n_{s}"]) for s in states],
            *([_stopped_at(r) or "-"] if stopped else []),
            _fmt(r["p_beats_next"]),
        ]
        if solved:
            epoch = r["solved_epoch"]
            if stopped and _stopped_at(r) is not None:
                cells.append("-")  # solved_epoch looks at done runs: a stopped one has none
            else:
                cells.append("never" if epoch != epoch else f"{epoch:.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _print_table(table: Any, *, name: str, metric: str, top: int, window: float = 0.1) -> None:
    from rich.console import Console
    from rich.table import Table

    from analysis.load import format_value, param_columns

    params = param_columns(table)
    shown = table.head(top)
    stopped = _any_stopped(table)
    stopped_shown = _any_stopped(shown)
    statistic = table.attrs.get("statistic", "iqm")
    order = ", lowest first" if table.attrs.get("minimize") else ""
    rich_table = Table(
        title=f"{name}: top {len(shown)} of {len(table)} configurations by "
        f"{STAT_TEXT[statistic]}{order} (final score = mean {metric} over the last "
        f"{window:.0%} of epochs)"
    )
    rich_table.add_column("#", justify="right")
    for p in params:
        rich_table.add_column(p, justify="right")
    for column in _stat_headers(statistic):
        rich_table.add_column(column, justify="right")
    rich_table.add_column(f"seeds done/div/fail/{'stop/' * stopped}run", justify="right")
    if stopped_shown:
        rich_table.add_column("stopped at epoch", justify="right")
    better = "<" if table.attrs.get("minimize") else ">"
    rich_table.add_column(f"P({better} next)", justify="right")
    for row in shown.itertuples(index=False):
        r = row._asdict()
        unfinished = r["n_running"] + r["n_pending"]
        counts = [r["n_done"], r["n_diverged"], r["n_failed"], *([r["n_stopped"]] * stopped)]
        rich_table.add_row(
            str(r["rank"]),
            *[format_value(r[p]) for p in params],
            *_stat_cells(r, statistic),
            "/".join(str(n) for n in [*counts, unfinished]),
            *([_stopped_at(r) or "-"] if stopped_shown else []),
            _fmt(r["p_beats_next"]),
        )
    # a pipe or a log file would get rich's 80 columns, too narrow for the parameters
    Console(width=None if sys.stdout.isatty() else 160).print(rich_table)


def cross_task_text(tasks: Any, top: int | None = None) -> str:
    """The cross-task aggregate (:func:`analysis.stats.cross_task`) as Markdown."""
    from analysis.load import format_value

    params = tasks.attrs.get("params", [])
    statistic = STAT_TEXT[tasks.attrs.get("statistic", "iqm")]
    envs = ", ".join(tasks.attrs.get("envs", []))
    rows = tasks if top is None else tasks.head(top)
    lines = [
        f"## Across tasks ({envs})",
        "",
        "Each run's final score is min-max normalised within its env over this sweep's done "
        "runs (0 = the worst run on that task, 1 = the best); a configuration's "
        f"{statistic} pools its normalised scores over the envs, with a 95% CI from a "
        "bootstrap stratified by env (runs resampled within each env).",
        *(
            [
                "",
                f"Left out: {', '.join(tasks.attrs['excluded'])} (fewer than two distinct "
                "final scores among its done runs: nothing to normalise by).",
            ]
            if tasks.attrs.get("excluded")
            else []
        ),
        "",
        "| rank | " + " | ".join(params) + f" | envs | runs | normalised {statistic} | 95% CI |",
        "|---:|" + "---|" * len(params) + "---:|---:|---:|---:|",
    ]
    for row in rows.itertuples(index=False):
        r = row._asdict()
        cells = [str(r["rank"]), *[format_value(r[p]) for p in params], str(r["n_tasks"])]
        cells += [str(r["n_runs"]), f"{r['estimate']:.3f}"]
        cells.append(f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}]")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _print_stopped(table: Any, limit: int = 10) -> None:
    """The configurations racing stopped, with their epoch (the table's top rows rarely
    reach them: they rank after all the others)."""
    rows = table[table["stopped_at"].notna()] if "stopped_at" in table.columns else table[:0]
    if rows.empty:
        return
    after = "after the others " if len(rows) < len(table) else ""
    print(
        f"stopped early by racing: {len(rows)} of {len(table)} configurations, ranked {after}"
        "by their IQM at the epoch they were stopped (never the best):"
    )
    for row in rows.head(limit).itertuples(index=False):
        r = row._asdict()
        seeds = r["n_stopped"]
        print(
            f"  #{r['rank']} {r['config']}: stopped at epoch {_stopped_at(r)} "
            f"(IQM {_fmt(r['iqm'])} over {seeds} seed{'s' * (seeds != 1)})"
        )
    if len(rows) > limit:
        print(f"  ... and {len(rows) - limit} more (ranking.md lists every configuration)")


def _sweep_envs(results: Path) -> list[str]:
    """The env ids a results directory's sweep.yaml names ([] when it cannot tell)."""
    try:
        import yaml

        spec = yaml.safe_load((results / "sweep.yaml").read_text(encoding="utf-8")) or {}
        grid = spec.get("grid") or {}
        if grid.get("env"):  # a swept env replaces the fixed one (or the default)
            return [str(e) for e in grid["env"]]
        return [str(spec.get("env", "CartPole-v0"))]
    except Exception:  # noqa: BLE001 - a damaged sweep.yaml only loses the env in titles
        return []


def _is_return(metric: str, minimize: bool) -> bool:
    """Whether the env's return-based defaults (reward threshold, swing-up bins) apply."""
    return metric.startswith("return") and not minimize


def _threshold(
    value: float | None, results: Path, metric: str = "return_mean", minimize: bool = False
) -> float | None:
    """--threshold, or the env's gymnasium reward_threshold (195 for CartPole-v0) when the
    sweep has a single env that defines one and the metric is a return (not minimized)."""
    if value is not None:
        return value
    if not _is_return(metric, minimize):
        return None
    envs = set(_sweep_envs(results))
    if len(envs) != 1:
        return None
    import gymnasium

    try:
        return gymnasium.spec(envs.pop()).reward_threshold
    except Exception:
        return None


def _bin_edges_or_none(
    results: Path, metric: str = "return_mean", minimize: bool = False
) -> list[float]:
    """The default outcome bins of a sweep: the swing-up bins for CartPoleSwingUp sweeps
    when the metric is a return (they are returns: not for a loss)."""
    if not _is_return(metric, minimize):
        return []
    from analysis.aggregate import SWINGUP_BINS

    envs = _sweep_envs(results)
    return list(SWINGUP_BINS) if any(e.startswith("CartPoleSwingUp") for e in envs) else []

"""`a2c-sweep report RESULTS/NAME`: one self-contained HTML file per sweep.

Everything is inside the file: the figures as PNG ``data:`` URIs, the styles in one
``<style>`` element, no script, no font or stylesheet from elsewhere, no link that the
browser fetches. It opens offline, from a USB stick or an e-mail attachment, in any browser.

Sections: summary (spec, runs by state, wall time, versions the runs recorded, machine the
report was written on, code commit), ranking, learning curves, heatmaps, sensitivity,
per-seed final scores, performance profile, outcome bins, every configuration, the best
agent (a GIF, when its run kept a policy), every run, and the commands that reproduce it.
While runs are unfinished the page says so and reloads itself every ``refresh_s`` seconds
(``a2c-sweep run --report`` rewrites it as the sweep progresses).
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
import platform
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from analysis.load import AnalysisError

__all__ = ["ReportOptions", "build_report", "default_output", "write_report"]

REPORT_NAME = "report.html"
REFRESH_S = 60

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif;
       margin: 0 auto; max-width: 1180px; padding: 0 24px 48px; color: #1d1d1f;
       line-height: 1.45; }
h1 { font-size: 1.7em; margin: 28px 0 4px; }
h2 { font-size: 1.25em; margin: 34px 0 8px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
.sub { color: #555; margin: 0 0 18px; }
.badge { display: inline-block; padding: 2px 10px; border-radius: 10px; font-size: 0.85em;
         font-weight: 600; }
.live { background: #fff4d6; color: #8a5a00; }
.final { background: #e3f4e8; color: #14632e; }
table { border-collapse: collapse; font-size: 0.86em; margin: 6px 0 14px; }
th, td { border-bottom: 1px solid #e4e4e4; padding: 3px 9px; text-align: right;
         white-space: nowrap; }
th { background: #f6f6f6; position: sticky; top: 0; }
td.l, th.l { text-align: left; }
.scroll { max-height: 460px; overflow: auto; border: 1px solid #eee; }
figure { margin: 10px 0 22px; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.88em; }
pre { background: #f6f8fa; padding: 10px 12px; overflow-x: auto; font-size: 0.86em; }
dl.facts { display: grid; grid-template-columns: max-content auto; gap: 2px 16px; }
dl.facts dt { color: #555; } dl.facts dd { margin: 0; }
nav a { margin-right: 12px; }
.note { color: #8a5a00; }
"""


@dataclass(frozen=True)
class ReportOptions:
    """What the report ranks and draws (the options `a2c-sweep analyze` takes)."""

    metric: str = "return_mean"
    statistic: str = "iqm"
    window: float = 0.1
    minimize: bool = False
    x: str = "env_steps"
    top: int = 5
    seed: int = 0
    title: str | None = None
    size: tuple[float, float] | None = None
    bins: Sequence[float] | None = None
    threshold: float | None = None
    gif: bool = True
    n_resamples: int = 2000


def default_output(results_dir: str | Path) -> Path:
    return Path(results_dir) / REPORT_NAME


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _png(fig: Any, dpi: int = 110) -> str:
    """A figure as an <img> with a PNG data: URI; closes the figure."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="" src="data:image/png;base64,{data}">'


def _figure(img: str, caption: str, anchor: str | None = None) -> str:
    ident = f' id="{_e(anchor)}"' if anchor else ""
    return f"<figure{ident}>{img}<figcaption>{_e(caption)}</figcaption></figure>"


def _table(frame: Any, *, left: Sequence[str] = (), scroll: bool = False) -> str:
    """A DataFrame as an HTML table (numbers formatted like the terminal's)."""
    from analysis.common import _fmt

    head = "".join(f'<th class="{"l" if c in left else ""}">{_e(c)}</th>' for c in frame.columns)
    rows = []
    for row in frame.itertuples(index=False):
        cells = []
        for column, value in zip(frame.columns, row, strict=True):
            text = value if isinstance(value, str) else _fmt(value)
            if isinstance(value, int | bool) or (
                hasattr(value, "dtype") and getattr(value.dtype, "kind", "") in "iub"
            ):
                text = str(value)
            klass = ' class="l"' if column in left else ""
            cells.append(f"<td{klass}>{_e(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    body = f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    return f'<div class="scroll">{body}</div>' if scroll else body


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.system()} {platform.release()}, {cpu}, {os.cpu_count()} CPUs"


def _recorded_versions(results: Path, run_ids: Sequence[str]) -> dict[str, str]:
    """Package versions the runs recorded in their config.json (distinct values joined)."""
    seen: dict[str, list[str]] = {}
    for run_id in run_ids:
        try:
            data = json.loads((results / "runs" / run_id / "config.json").read_text())
        except (OSError, ValueError):
            continue
        versions = data.get("versions") if isinstance(data, dict) else None
        if not isinstance(versions, dict):
            continue
        for name, version in versions.items():
            values = seen.setdefault(name, [])
            if version is not None and str(version) not in values:
                values.append(str(version))
    return {name: ", ".join(values) or "-" for name, values in seen.items()}


def _wall(frame: Any, results: Path) -> tuple[float, str]:
    """(the longest run's training seconds, the last status.json update time). Runs of one
    pack train together and each records the pack's time, so a sum over runs would count
    the same seconds many times; the sweep took at least its longest run."""
    import pandas as pd

    wall = pd.to_numeric(frame["wall_s"], errors="coerce").fillna(0)
    per_run = wall.groupby(frame["run_id"]).sum()
    total = float(per_run.max()) if len(per_run) else 0.0
    stamps = []
    for run_id in frame["run_id"].unique():
        try:
            status = json.loads((results / "runs" / run_id / "status.json").read_text())
            stamp = datetime.fromisoformat(status["updated"])
            stamps.append(stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    span = f"last run update {max(stamps).isoformat(timespec='seconds')}" if stamps else ""
    return total, span


def _latest(frame: Any, metric: str, params: Sequence[str]) -> Any:
    """Per configuration: runs, epochs recorded (most advanced run) and the median over its
    runs of ``metric`` at their last recorded epoch; highest first."""
    import pandas as pd

    from analysis.load import format_value

    rows = frame[frame["epoch"].notna()].sort_values("epoch").groupby("run_id").tail(1)
    rows = rows[pd.to_numeric(rows[metric], errors="coerce").notna()]
    table = rows.groupby("config", sort=False).agg(
        runs=("run_id", "nunique"), epochs=("epoch", "max"), latest=(metric, "median")
    )
    first = frame.drop_duplicates("config").set_index("config")
    out = table.reset_index()
    for p in params:
        out[p] = [format_value(first.loc[c, p]) for c in out["config"]]
    out["epochs"] = out["epochs"].astype(int)
    out = out[[*params, "config", "runs", "epochs", "latest"]]
    return out.sort_values("latest", ascending=False, kind="stable").reset_index(drop=True)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"


def _commands(results: Path, options: ReportOptions, out: Path, gif: bool = False) -> str:
    # "." or "x/.." would make `run --results` point elsewhere: a clean path from here
    results = (
        results.resolve() if results.is_absolute() else Path(os.path.relpath(results.resolve()))
    )
    out = out.resolve() if out.is_absolute() else Path(os.path.relpath(out.resolve()))
    root, name = results.parent, results.name
    spec = results / "sweep.yaml"
    flags = []
    if options.metric != "return_mean":
        flags += ["--metric", options.metric]
    if options.statistic != "iqm":
        flags += ["--stat", options.statistic]
    if options.window != 0.1:
        flags += ["--window", f"{options.window:g}"]
    if options.minimize:
        flags += ["--minimize"]
    if options.x != "env_steps":
        flags += ["--x", options.x]
    if options.top != 5:
        flags += ["--top", str(options.top)]
    if options.seed:
        flags += ["--seed", str(options.seed)]
    q = shlex.quote
    extra = " ".join(q(f) for f in flags)
    extra = f" {extra}" if extra else ""
    lines = [
        "# the sweep (its file is kept in the results directory; a relaunch computes only "
        "what is missing)",
        f"a2c-sweep run {q(str(spec))} --results {q(str(root))}",
        "# its analysis (tables and plots into RESULTS/NAME/analysis/)",
        f"a2c-sweep analyze {q(str(results))}{extra}",
        "# this report",
        f"a2c-sweep report {q(str(results))}{extra} -o {q(str(out))}",
    ]
    if gif:  # only when the best run kept its policy (gif --best needs it)
        lines += [
            "# the best agent as a GIF",
            f"a2c-sweep gif --best {q(str(results))} -o {q(name + '_best.gif')}",
        ]
    return "<pre>" + _e("\n".join(lines)) + "</pre>"


def _gif(results: Path, scores: Any, table: Any) -> str | None:
    """The best run's agent as an inline GIF, or None when the run kept no policy."""
    import tempfile

    from analysis import aggregate
    from analysis.gif import record_gif

    try:
        run_id = aggregate.best_run(scores, table)
    except ValueError:
        return None
    run_dir = results / "runs" / run_id
    if not (run_dir / "policy.pt").exists():
        return None
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "best.gif"
        try:
            recording = record_gif(run_dir, out, fps=25)  # the env's own time limit
        except (AnalysisError, OSError, RuntimeError, ValueError):
            return None
        data = base64.b64encode(out.read_bytes()).decode("ascii")
    returns = ", ".join(f"{r:.1f}" for r in recording.returns)
    img = f'<img alt="best agent" src="data:image/gif;base64,{data}">'
    return _figure(
        img,
        f"Best run {run_id} ({recording.env}), one sampled episode: return {returns} "
        f"({recording.frames} frames, half speed)",
        "agent",
    )


def build_report(
    results_dir: str | Path, options: ReportOptions | None = None, out: Path | None = None
) -> str:
    """The report of ``results_dir`` as one HTML string (raises AnalysisError on bad input)."""
    import matplotlib

    matplotlib.use("Agg")
    import numpy as np
    import pandas as pd

    from analysis import aggregate, plots
    from analysis.common import _bin_edges_or_none, _sweep_envs, _threshold, ranking_markdown
    from analysis.load import format_value, load, param_columns, row_problems

    options = options or ReportOptions()
    results = Path(results_dir)
    out = out or default_output(results)
    frame = load(results)
    problems = row_problems(results)
    metric = options.metric
    numeric = [c for c in frame.columns[frame.columns.get_loc("epoch") :] if c != "epoch"]
    if metric not in numeric:
        raise AnalysisError(f"--metric: {metric!r} is not a returns.csv column")
    name = frame.attrs.get("name", results.name)
    envs = sorted(set(_sweep_envs(results)))
    runs = frame.drop_duplicates("run_id")
    counts = runs["state"].value_counts()
    unfinished = int(counts.get("running", 0) + counts.get("pending", 0))
    recorded = frame["epoch"].notna().sum() > 0
    now = datetime.now(UTC).isoformat(timespec="seconds")
    title = f"{name}: sweep report"

    parts: list[str] = []
    nav: list[tuple[str, str]] = []

    def section(anchor: str, heading: str, body: str) -> None:
        nav.append((anchor, heading))
        parts.append(f'<h2 id="{_e(anchor)}">{_e(heading)}</h2>{body}')

    # ---------------------------------------------------------------- summary
    states = ", ".join(
        f"{int(counts[s])} {s}"
        for s in ("done", "running", "pending", "stopped", "diverged", "failed")
        if counts.get(s, 0)
    )
    train_s, span = _wall(frame, results)
    versions = _recorded_versions(results, list(runs["run_id"]))
    params = param_columns(frame)
    facts = [
        ("environment", ", ".join(envs) or "-"),
        ("runs", f"{len(runs)} ({states or 'none yet'})"),
        ("configurations", str(frame["config"].nunique())),
        ("swept", ", ".join(params) or "nothing (one configuration)"),
        (
            "training time",
            f"{_duration(train_s)} for the longest run (runs train in packs, in parallel: the "
            "sweep took at least this)" + (f"; {span}" if span else ""),
        ),
        ("recorded with", ", ".join(f"{k} {v}" for k, v in versions.items()) or "-"),
        ("report written", f"{now} on {_machine()}, Python {platform.python_version()}"),
    ]
    try:
        from a2c_core.results import code_version

        facts.append(("code now", code_version()))
    except Exception:  # noqa: BLE001 - a version string is never worth failing the report
        pass
    if problems:
        facts.append(("damaged rows", f"{len(problems)} runs (listed under Runs)"))
    fact_html = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in facts)
    spec_text = ""
    try:
        spec_text = (results / "sweep.yaml").read_text(encoding="utf-8", errors="replace")
    except OSError:
        spec_text = "(sweep.yaml not found)"
    section(
        "summary",
        "Summary",
        f'<dl class="facts">{fact_html}</dl><h3>Sweep file</h3><pre>{_e(spec_text)}</pre>',
    )
    if not recorded:
        parts.append('<p class="note">No run has recorded an epoch yet.</p>')
        return _page(title, name, envs, unfinished, now, nav, parts, results, options, out)

    # ---------------------------------------------------------------- ranking
    scores = aggregate.final_scores(frame, metric, fraction=options.window)
    table = aggregate.ranking_by_env(
        scores,
        statistic=options.statistic,
        minimize=options.minimize,
        seed=options.seed,
        n_resamples=options.n_resamples,
    )
    threshold = _threshold(options.threshold, results, metric, options.minimize)
    if threshold is not None:
        solved = aggregate.solved_epochs(frame, threshold, metric)
        attrs = dict(table.attrs)
        table = table.merge(solved, on="config", how="left")
        table.attrs.update(attrs, threshold=threshold)
    md = ranking_markdown(table, name=name, metric=metric, window=options.window)
    definition = md.split("\n\n")[1]
    better = "<" if options.minimize else ">"
    shown = table.drop(columns=["config", "std"]).rename(
        columns={
            "p_beats_next": f"P({better} next)",
            "ci_low": "CI low",
            "ci_high": "CI high",
            "solved_epoch": f"median >= {threshold:g} at epoch" if threshold is not None else "",
        }
    )
    if "stopped_at" in shown and shown["stopped_at"].isna().all():
        shown = shown.drop(columns=["stopped_at", "n_stopped"])
    for p in params:
        shown[p] = [format_value(v) for v in shown[p]]
    done = scores[(scores["state"] == "done") & np.isfinite(scores["final_score"].astype(float))]
    finished = not done.empty
    if finished:
        section(
            "ranking",
            "Ranking",
            f"<p>{_e(definition)}</p>" + _table(shown, left=params, scroll=len(shown) > 15),
        )
    else:  # an overnight sweep's first hours: progress, not an empty ranking
        latest = _latest(frame, metric, params)
        n_done = int((scores["state"] == "done").sum())
        why = (
            f"{n_done} runs are done, but none has a final score: no episode ended in their "
            "final window (long episodes, short epochs; `a2c-sweep analyze --window 0.5` "
            "widens it), so nothing is ranked"
            if n_done
            else "No run has finished yet, so nothing is ranked: the ranking and the "
            "final-score plots (heatmaps, sensitivity, per-seed scores, profile) appear with "
            "the first finished runs"
        )
        section(
            "ranking",
            "Ranking",
            f'<p class="note">{_e(why)}. Meanwhile, each configuration&#39;s latest '
            f"{_e(metric)} (median over its runs' last recorded epoch), highest first:</p>"
            + _table(
                latest.drop(columns="config") if params else latest,
                left=[*params, "config"],
                scroll=len(latest) > 15,
            ),
        )

    from analysis import stats

    tasks = stats.cross_task(
        scores, statistic=options.statistic, minimize=options.minimize, seed=options.seed
    )
    if not tasks.empty:
        from analysis.common import cross_task_text

        text = cross_task_text(tasks).split("\n\n")[1]
        shown_tasks = tasks.drop(columns=["config"]).copy()
        for p in tasks.attrs["params"]:
            shown_tasks[p] = [format_value(v) for v in shown_tasks[p]]
        section(
            "tasks",
            "Across tasks",
            f"<p>{_e(text)}</p>" + _table(shown_tasks, left=tasks.attrs["params"]),
        )

    # ---------------------------------------------------------------- figures
    curves = aggregate.aggregate_curves(
        frame, metric, x=options.x, seed=options.seed, n_resamples=500
    )
    top = min(options.top, plots.MAX_LINES)
    width, height = options.size or (7.0, 4.0)
    stat = plots.STAT_NAMES.get(options.statistic, options.statistic)
    swept = aggregate.swept_envs(scores)
    groups = [(e, table[table["env"] == e]) for e in swept] or [(", ".join(envs), table)]
    where_all = " · ".join(t for t in (", ".join(envs), name) if t)  # every figure says so
    with plots.style():
        figures = []
        for group_env, group_table in groups:
            top_configs, _ = plots._top_configs(group_table, top)
            what = f"top {len(top_configs)} by final score"
            if not finished:
                at = latest if not swept else latest[latest["env"] == format_value(group_env)]
                top_configs, what = list(at["config"][:top]), "learning so far (no run finished)"
            where = " · ".join(t for t in (group_env, name) if t)
            ax = plots.plot_curves(
                curves,
                frame,
                configs=top_configs,
                statistic=options.statistic,
                metric=metric,
                title=options.title or f"{where}: {what}",
                ax=plots._axes(None, (width, height)),
            )
            figures.append(
                _figure(
                    _png(ax.figure),
                    f"{group_env}: {stat} of {plots.metric_label(metric)} over seeds with its "
                    f"95% bootstrap band, top {len(top_configs)} configurations.",
                )
            )
        nav.append(("curves", "Learning curves"))
        parts.append('<h2 id="curves">Learning curves</h2>' + "".join(figures))

        if finished and plots.heatmap_pair(params) is not None:
            axes = plots.plot_heatmaps(
                scores, statistic=options.statistic, minimize=options.minimize, seed=options.seed
            )
            plots._prefix_title(axes[0].figure, f"{where_all}: ")
            section(
                "heatmaps",
                "Heatmaps",
                _figure(
                    _png(axes[0].figure),
                    f"{stat} final score per cell with its 95% CI and number of done seeds; "
                    "parameters not on the axes are marginalised.",
                ),
            )
        if finished:  # per task: returns of different envs never share an axis
            sens, strips, profiles = [], [], []
            for group_env, group_table in groups:
                group_scores = scores[scores["env"] == group_env] if swept else scores
                where = " · ".join(t for t in (group_env, name) if t)
                if [p for p in params if p != "env"]:
                    axes = plots.plot_sensitivity_grid(
                        group_scores,
                        statistic=options.statistic,
                        minimize=options.minimize,
                        seed=options.seed,
                        metric=metric,
                    )
                    plots._prefix_title(axes[0].figure, f"{where}: ")
                    sens.append(_figure(_png(axes[0].figure), "Final score against each "
                                        "swept parameter, the others marginalised."))  # fmt: skip
                ax = plots.plot_strip(group_scores, order=list(group_table["config"]),
                                      statistic=options.statistic, seed=options.seed)  # fmt: skip
                ax.set_title(f"{where}: {ax.get_title()}")
                strips.append(_figure(_png(ax.figure), "One dot per done seed; the bar is the "
                                      "statistic."))  # fmt: skip
                group_top, _ = plots._top_configs(group_table, top)
                profile = aggregate.performance_profile(
                    group_scores, configs=group_top, below=options.minimize, seed=options.seed
                )
                ax = plots.plot_performance_profile(profile, metric=metric, scores=group_scores,
                                                    ax=plots._axes(None, (width, height)))  # fmt: skip
                ax.set_title(f"{where}: {ax.get_title()}")
                on = f" on {group_env}" if swept else ""
                profiles.append(_figure(_png(ax.figure), f"Fraction of done runs{on} whose final "
                                        f"score {'is below' if options.minimize else 'exceeds'} τ."))  # fmt: skip
            if sens:
                section("sensitivity", "Sensitivity", "".join(sens))
            section("seeds", "Final score per seed", "".join(strips))
            section("profile", "Performance profile", "".join(profiles))
            edges = options.bins
            if edges is None:
                edges = _bin_edges_or_none(results, metric, options.minimize)
            if edges:
                outcomes = aggregate.outcome_bins(scores, edges)
                section(
                    "outcomes",
                    "Outcome bins",
                    "<p>Done runs counted by final score.</p>"
                    + _table(outcomes, left=["config"], scroll=len(outcomes) > 15),
                )
        axes = plots.plot_facets(
            curves,
            frame,
            ranking=table if finished else None,  # nothing ranked yet: grid order, no "best"
            statistic=options.statistic,
            metric=metric,
            heading=f"{where_all}: ",
        )
        section(
            "facets",
            "Every configuration",
            _figure(_png(axes[0].figure, dpi=90), "One panel per configuration, grid order."),
        )

    if options.gif:
        gif = _gif(results, scores, table)
        if gif is not None:
            section("agent", "Best agent", gif)

    # ---------------------------------------------------------------- runs
    per_run = scores[["run_id", *params, "seed", "state", "epochs", "env_steps", "final_score"]]
    per_run = per_run.copy()
    for p in params:
        per_run[p] = [format_value(v) for v in per_run[p]]
    per_run["env_steps"] = ["-" if pd.isna(v) else str(int(v)) for v in per_run["env_steps"]]
    per_run["final_score"] = [
        f"{v:.4g}" if np.isfinite(v) and state in ("done", "stopped") else "-"
        for v, state in zip(per_run["final_score"].astype(float), per_run["state"], strict=True)
    ]  # an unfinished run has no final score yet
    per_run["problem"] = [problems.get(r, "") for r in per_run["run_id"]]
    if not any(per_run["problem"]):
        per_run = per_run.drop(columns="problem")
    section(
        "runs",
        "Runs",
        f"<p>{len(per_run)} runs; final score = mean {_e(metric)} over the last "
        f"{options.window:.0%} of recorded epochs.</p>"
        + _table(per_run, left=["run_id", *params, "state", "problem"], scroll=True),
    )
    return _page(title, name, envs, unfinished, now, nav, parts, results, options, out)


def _page(
    title: str,
    name: str,
    envs: Sequence[str],
    unfinished: int,
    now: str,
    nav: list[tuple[str, str]],
    parts: list[str],
    results: Path,
    options: ReportOptions,
    out: Path,
) -> str:
    nav.append(("reproduce", "Reproduce"))
    has_gif = any(a == "agent" for a, _ in nav)
    parts.append('<h2 id="reproduce">Reproduce</h2>' + _commands(results, options, out, has_gif))
    refresh = f'<meta http-equiv="refresh" content="{REFRESH_S}">' if unfinished else ""
    badge = (
        f'<span class="badge live">in progress: {unfinished} runs unfinished; this page '
        f"reloads every {REFRESH_S} s</span>"
        if unfinished
        else '<span class="badge final">finished</span>'
    )
    links = "".join(f'<a href="#{_e(a)}">{_e(h)}</a>' for a, h in nav)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"{refresh}<title>{_e(title)}</title><style>{CSS}</style></head><body>"
        f"<h1>{_e(name)}</h1>"
        f'<p class="sub">{_e(", ".join(envs))} · written {_e(now)} · {badge}</p>'
        f"<nav>{links}</nav>" + "".join(parts) + "</body></html>\n"
    )


def write_report(
    results_dir: str | Path, out: str | Path | None = None, options: ReportOptions | None = None
) -> Path:
    """Build the report and write it to ``out`` (default RESULTS/NAME/report.html) through a
    temp file beside it: a browser reloading the page never sees half a file."""
    from analysis.output import write_new

    results = Path(results_dir)
    if not results.exists():
        raise AnalysisError(f"{results}: no such results directory")
    if not results.is_dir():
        raise AnalysisError(f"{results}: not a directory (give RESULTS/NAME)")
    target = Path(out) if out is not None else default_output(results)
    if target.is_dir():
        raise AnalysisError(f"{target}: is a directory; give the report's file name")
    if target.suffix.lower() not in (".html", ".htm"):
        raise AnalysisError(f"{target}: the report's name must end in .html")
    if not target.parent.is_dir():
        raise AnalysisError(f"{target.parent}: no such directory")
    try:
        text = build_report(results, options, target)
    except UnicodeError as exc:
        raise AnalysisError(f"{results}: cannot render the report ({exc})") from None
    write_new(target, text.encode("utf-8", "replace"))
    return target


def _size_text(path: Path) -> str:
    size = path.stat().st_size
    return f"{size / 1e6:.1f} MB" if size >= 1e6 else f"{math.ceil(size / 1e3)} kB"

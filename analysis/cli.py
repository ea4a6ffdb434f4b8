"""`a2c-sweep analyze | report | compare | refine | gif`: :func:`register` adds them to the
main parser.

Module-level imports are stdlib only, so building the parser (and `a2c-sweep status`) stays
fast; pandas, matplotlib and torch load inside the command that needs them. Each command
returns an exit code: 0 done, 2 bad input (one line on stderr naming the problem).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

__all__ = ["cmd_analyze", "cmd_gif", "cmd_refine", "cmd_report", "main", "register"]

from analysis.common import (  # noqa: F401 - re-exported: analysis.cli was their home
    EXIT_BAD_INPUT,
    EXIT_OK,
    OUTPUT_DIR,
    STAT_LONG,
    STAT_TEXT,
    _any_stopped,
    _bin_edges_or_none,
    _fmt,
    _positive_int,
    _print_stopped,
    _print_table,
    _seed,
    _stat_cells,
    _stat_headers,
    _stat_order,
    _stopped_at,
    _sweep_envs,
    _threshold,
    _write_text,
    cross_task_text,
    fail,
    ranking_markdown,
    warn,
)

# --------------------------------------------------------------------------- analyze


def cmd_analyze(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")  # files only, no window

    from analysis import aggregate
    from analysis.load import AnalysisError, load, row_problems

    results = Path(args.results_dir)
    try:
        frame = load(results)
        problems = row_problems(results)
    except AnalysisError as exc:
        return fail(str(exc))
    for run_id, problem in problems.items():  # analyzed anyway, but the user must know
        warn(f"run {run_id}: {problem}")
    metric = args.metric
    numeric = [c for c in frame.columns[frame.columns.get_loc("epoch") :] if c != "epoch"]
    if metric not in numeric:
        return fail(f"--metric: {metric!r} is not a returns.csv column ({', '.join(numeric)})")
    if frame["epoch"].notna().sum() == 0:
        return fail(f"{results}: nothing to analyze yet: no run has recorded an epoch")
    edges = _bin_edges(args.bins, results, metric, args.minimize)  # before any file is written
    if isinstance(edges, int):
        return edges
    seeds = frame.drop_duplicates("run_id").groupby("config")["run_id"].count()
    most = int(seeds.max()) if len(seeds) else 0
    if 0 < most < 3:
        warn(
            f"at most {most} seed{'s' * (most != 1)} per configuration: the "
            "bootstrap intervals and P(> next) say little (5 or more seeds are advised)"
        )
    if metric in ("value_loss", "policy_loss") and not args.minimize:
        warn(f"--metric {metric}: ranking highest first; add --minimize to rank a loss")
    name = frame.attrs.get("name", results.name)
    scores = aggregate.final_scores(frame, metric, fraction=args.window)
    unscored = scores[(scores["state"] == "done") & scores["final_score"].isna()]
    if len(unscored):
        warn(
            f"{len(unscored)} of {int((scores['state'] == 'done').sum())} done runs have no "
            f"{metric} in their last {args.window:g} of epochs (no episode ended there: long "
            "episodes, short epochs), so no final score and no rank: widen the window "
            "(--window 0.5) or use longer epochs"
        )
    table = aggregate.ranking_by_env(
        scores, statistic=args.stat, minimize=args.minimize, seed=args.seed
    )
    from analysis import stats

    tasks = stats.cross_task(scores, statistic=args.stat, minimize=args.minimize, seed=args.seed)
    curves = aggregate.aggregate_curves(frame, metric, x=args.x, seed=args.seed)

    out_dir = results / OUTPUT_DIR
    try:
        out_dir.mkdir(exist_ok=True)
        if not out_dir.is_dir():
            raise NotADirectoryError(20, "not a directory", str(out_dir))
    except OSError as exc:
        return fail(f"{out_dir}: cannot write the analysis there ({exc.strerror or exc})")
    try:
        return _write_analysis(
            args, results, out_dir, frame, scores, table, tasks, curves, name, metric, edges
        )
    except (OSError, UnicodeError) as exc:
        message = getattr(exc, "strerror", None) or exc
        return fail(f"{out_dir}: cannot write the analysis there ({message})")


def _write_analysis(
    args, results, out_dir, frame, scores, table, tasks, curves, name, metric, edges
) -> int:
    from analysis import aggregate, plots

    written = []
    tables = [("ranking.csv", table), ("scores.csv", scores), ("curves.csv", curves)]
    if not tasks.empty:
        tables.append(("cross_task.csv", tasks))
    for file_name, data in tables:
        path = out_dir / file_name
        _write_text(path, data.to_csv(index=False))
        written.append(path)
    path = out_dir / "ranking.md"
    _write_text(
        path,
        ranking_markdown(table, name=name, metric=metric, window=args.window)
        + (f"\n{cross_task_text(tasks)}" if not tasks.empty else ""),
    )
    written.append(path)
    envs = sorted(set(_sweep_envs(results)))
    if args.top > plots.MAX_LINES and len(table) > plots.MAX_LINES:
        warn(
            f"--top {args.top}: curves_top and profile show the top {plots.MAX_LINES} (one "
            "distinct colour each); facets shows every configuration"
        )
    written += plots.write_plots(
        frame,
        scores,
        table,
        curves,
        out_dir,
        top=args.top,
        statistic=args.stat,
        metric=metric,
        minimize=args.minimize,
        seed=args.seed,
        title=args.title,
        size=args.size,
        name=name,
        env=", ".join(envs) if envs else None,
    )
    threshold = _threshold(args.threshold, results, metric, args.minimize)
    if threshold is not None:
        solved = aggregate.solved_epochs(frame, threshold, metric)
        attrs = dict(table.attrs)  # merge drops attrs (the params list)
        table = table.merge(solved, on="config", how="left")
        table.attrs.update(attrs, threshold=threshold)
        _write_text(out_dir / "ranking.csv", table.to_csv(index=False))
        _write_text(
            out_dir / "ranking.md",
            ranking_markdown(table, name=name, metric=metric, window=args.window),
        )
    outcomes = aggregate.outcome_bins(scores, edges) if edges else None
    if outcomes is not None:
        path = out_dir / "outcomes.csv"
        _write_text(path, outcomes.to_csv(index=False))
        written.append(path)

    counts = scores["state"].value_counts()
    summary = ", ".join(
        f"{counts[s]} {s}"
        for s in ("done", "running", "pending", "diverged", "failed", "stopped")
        if counts.get(s, 0)
    )
    print(f"{name}: {len(scores)} runs ({summary}), {len(table)} configurations")
    if tasks.empty:
        _print_table(table, name=name, metric=metric, top=args.top, window=args.window)
    else:
        for env in tasks.attrs["envs"]:
            _print_table(
                table[table["env"] == env].copy().__finalize__(table),
                name=f"{name} on {env}",
                metric=metric,
                top=args.top,
                window=args.window,
            )
        print(cross_task_text(tasks, top=args.top))
    _print_stopped(table)
    if outcomes is not None:
        print("final-score outcomes (done runs):")
        print(outcomes.to_string(index=False))
    print(f"wrote {len(written)} files to {out_dir}/:")
    for path in written:
        print(f"  {path}")
    return EXIT_OK


def _bin_edges(
    text: str | None, results: Path, metric: str = "return_mean", minimize: bool = False
) -> list[float] | int:
    """--bins as floats; by default :func:`analysis.common._bin_edges_or_none`."""

    if text is not None:
        try:
            edges = [float(x) for x in text.split(",") if x.strip()]
        except ValueError:
            return fail(f"--bins: expected comma-separated numbers, got {text!r}")
        if not edges or not all(math.isfinite(e) for e in edges) or sorted(set(edges)) != edges:
            return fail(f"--bins: edges must be strictly increasing numbers, got {text!r}")
        return edges
    return _bin_edges_or_none(results, metric, minimize)


# --------------------------------------------------------------------------- refine


def cmd_refine(args: argparse.Namespace) -> int:
    from analysis.load import AnalysisError
    from analysis.refine import write_refined

    try:
        path, refinement = write_refined(
            args.results_dir,
            args.output,
            top=args.top,
            points=args.points,
            seeds=args.seeds,
            same_seeds=args.same_seeds,
            metric=args.metric,
            seed=args.seed,
            force=args.force,
            env=args.env,
        )
    except AnalysisError as exc:
        return fail(str(exc))
    for note in refinement.notes:
        print(f"  {note}")
    for key, values in refinement.grid.items():
        print(f"  grid.{key}: {', '.join(str(v) for v in values)}")
    configs = math.prod(len(v) for v in refinement.grid.values())
    try:
        import yaml

        old = yaml.safe_load((Path(args.results_dir) / "sweep.yaml").read_text()) or {}
        before = math.prod(len(v) for v in (old.get("grid") or {}).values())
    except Exception:  # noqa: BLE001 - the comparison is a courtesy, never a failure
        before = 0
    if before and configs >= 5 * before:
        warn(
            f"the refined grid has {configs} configurations, {configs / before:.0f}x the "
            f"{before} of the sweep it refines (which parameters were kept and why: the header); "
            "fewer --points or --top, or --seeds, make it smaller"
        )
    print(
        f"wrote {path}: {configs} configurations, {refinement.num_runs} runs "
        f"(name {refinement.spec['name']!r}); start it with: a2c-sweep run {path}"
    )
    return EXIT_OK


# --------------------------------------------------------------------------- report


def cmd_report(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    from analysis.load import AnalysisError
    from analysis.report import ReportOptions, _size_text, write_report

    edges = None
    if args.bins is not None:
        edges = _bin_edges(args.bins, Path(args.results_dir))
        if isinstance(edges, int):
            return edges
    options = ReportOptions(
        metric=args.metric,
        statistic=args.stat,
        window=args.window,
        minimize=args.minimize,
        x=args.x,
        top=args.top,
        seed=args.seed,
        title=args.title,
        size=args.size,
        bins=edges,
        threshold=args.threshold,
        gif=not args.no_gif,
    )
    try:
        path = write_report(args.results_dir, args.output, options)
    except AnalysisError as exc:
        return fail(str(exc))
    print(f"wrote {path} ({_size_text(path)}): one self-contained HTML file, opens offline")
    return EXIT_OK


# --------------------------------------------------------------------------- gif


def cmd_gif(args: argparse.Namespace) -> int:
    from analysis.load import AnalysisError

    if (args.run_dir is None) == (args.best is None):
        return fail("gif: give either a run directory or --best RESULTS/NAME")
    try:
        from analysis.gif import check_output

        check_output(args.output)  # before any work
        if args.best is not None:
            from analysis import aggregate
            from analysis.load import load

            frame = load(args.best)
            envs = sorted(frame["env"].astype(str).unique()) if "env" in frame else []
            if len(envs) > 1 and args.env is None:
                return fail(f"{args.best}: the sweep spans {len(envs)} envs ({', '.join(envs)}); "
                            "the best run is per task: pass --env ENV")  # fmt: skip
            if args.env is not None:
                if args.env not in envs:
                    return fail(f"--env: {args.env!r} is not one of the swept envs "
                                f"({', '.join(envs) or 'the sweep does not sweep env'})")  # fmt: skip
                frame = frame[frame["env"].astype(str) == args.env]
            scores = aggregate.final_scores(frame)
            table = aggregate.ranking(scores, n_resamples=200)
            try:
                run_id = aggregate.best_run(scores, table)
            except ValueError:
                return fail(f"{args.best}: no done run with a final score; no best run yet")
            run_dir = Path(args.best) / "runs" / run_id
            print(f"best run: {run_id} ({table.iloc[0]['config']})")
        else:
            run_dir = Path(args.run_dir)
            if not run_dir.exists():
                return fail(f"{run_dir}: no such run directory")
        from analysis.gif import record_gif

        recording = record_gif(
            run_dir,
            args.output,
            episodes=args.episodes,
            deterministic=args.deterministic,
            seed=args.seed,
            max_steps=args.max_steps,
        )
    except AnalysisError as exc:
        return fail(str(exc))
    for i, (ret, length) in enumerate(zip(recording.returns, recording.lengths, strict=True), 1):
        print(f"episode {i}: return {ret:.1f} in {length} steps")
    size = recording.path.stat().st_size
    print(
        f"wrote {recording.path}: {recording.env}, {recording.frames} frames, {size / 1e6:.2f} MB"
    )
    return EXIT_OK


# --------------------------------------------------------------------------- parser


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {text!r}") from None
    if not 0.0 < value <= 1.0:  # also false for NaN
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {text}")
    return value


def _size(text: str) -> tuple[float, float]:
    parts = text.lower().replace("×", "x").split("x")
    try:
        width, height = (float(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected WIDTHxHEIGHT in inches, e.g. 7x4, got {text!r}"
        ) from None
    if not (1.0 <= width <= 40.0 and 1.0 <= height <= 40.0):
        raise argparse.ArgumentTypeError(
            f"expected WIDTHxHEIGHT between 1 and 40 inches each, got {text!r}"
        )
    return width, height


def add_view_options(p: argparse.ArgumentParser) -> None:
    """The options every command that draws or ranks shares (analyze, report)."""
    p.add_argument(
        "--stat",
        choices=("iqm", "median", "mean"),
        default="iqm",
        help="statistic over seeds that ranks configurations and draws curves (iqm)",
    )
    p.add_argument(
        "--x",
        choices=("env_steps", "epoch", "wall"),
        default="env_steps",
        help="x axis of learning curves: env_steps, epoch or wall (training seconds) (env_steps)",
    )
    p.add_argument("--title", default=None, help="title of the top-configurations plot")
    p.add_argument(
        "--size",
        type=_size,
        default=None,
        metavar="WxH",
        help="size in inches of the curve and profile plots' axes area (7x4)",
    )
    p.add_argument(
        "--minimize",
        action="store_true",
        help="lower is better (a loss metric such as value_loss): rank lowest first",
    )
    p.add_argument(
        "--window",
        type=_fraction,
        default=0.1,
        help="final score of a run: mean over its last WINDOW fraction of epochs (0.1)",
    )


def register(subparsers: Any) -> None:
    """Add analyze, refine and gif to the `a2c-sweep` subparsers (``set_defaults(func=...)``)."""
    p = subparsers.add_parser(
        "analyze", help="rankings, aggregate curves and plots into RESULTS/NAME/analysis/"
    )
    p.add_argument("results_dir", help="RESULTS/NAME")
    p.add_argument(
        "--metric", default="return_mean", help="returns.csv column (default: return_mean)"
    )
    p.add_argument(
        "--top", type=_positive_int, default=5, help="configurations shown and plotted (5)"
    )
    p.add_argument("--seed", type=_seed, default=0, help="bootstrap RNG seed (0)")
    p.add_argument(
        "--bins",
        default=None,
        help="final-score bin edges, e.g. 0,100,200,350 -> outcomes.csv "
        "(default: those edges for CartPoleSwingUp sweeps, none otherwise)",
    )
    p.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="return threshold for the 'solved_epoch' column: first epoch at which the median "
        "over seeds reaches it (default: the env's reward_threshold, 195 for CartPole-v0)",
    )
    add_view_options(p)
    p.set_defaults(func=cmd_analyze)

    p = subparsers.add_parser(
        "report", help="one self-contained HTML report of a sweep (opens offline)"
    )
    p.add_argument("results_dir", help="RESULTS/NAME")
    p.add_argument(
        "-o", "--output", default=None, help="HTML file (default: RESULTS/NAME/report.html)"
    )
    p.add_argument(
        "--metric", default="return_mean", help="returns.csv column (default: return_mean)"
    )
    p.add_argument(
        "--top", type=_positive_int, default=5, help="configurations in the curve plots (5)"
    )
    p.add_argument("--seed", type=_seed, default=0, help="bootstrap RNG seed (0)")
    p.add_argument("--bins", default=None, help="final-score bin edges, as for analyze")
    p.add_argument("--threshold", type=float, default=None, help="as for analyze")
    p.add_argument(
        "--no-gif", action="store_true", help="leave out the GIF of the best agent (faster)"
    )
    add_view_options(p)
    p.set_defaults(func=cmd_report)

    from analysis.compare import register_compare

    register_compare(subparsers)

    p = subparsers.add_parser("refine", help="write a finer follow-up sweep around the best")
    p.add_argument("results_dir", help="RESULTS/NAME")
    p.add_argument("-o", "--output", required=True, help="the new sweep YAML file")
    p.add_argument("--force", action="store_true", help="overwrite the output file if it exists")
    p.add_argument("--top", type=_positive_int, default=3, help="refine around the top K (3)")
    p.add_argument("--points", type=_positive_int, default=5, help="values per best value (5)")
    p.add_argument(
        "--seeds",
        type=_positive_int,
        default=None,
        help="number of new seeds (default: as many as before)",
    )
    p.add_argument("--same-seeds", action="store_true", help="reuse the old seeds")
    p.add_argument("--metric", default="return_mean", help="returns.csv column (return_mean)")
    p.add_argument("--seed", type=_seed, default=0, help="bootstrap RNG seed (0)")
    p.add_argument("--env", default=None,
                   help="the task to refine, when the sweep spans several envs")  # fmt: skip
    p.set_defaults(func=cmd_refine)

    p = subparsers.add_parser("gif", help="record a trained policy as an animated GIF")
    p.add_argument("run_dir", nargs="?", help="RESULTS/NAME/runs/RUN_ID")
    p.add_argument(
        "--best", metavar="RESULTS/NAME", help="use the best done run of the best configuration"
    )
    p.add_argument("--env", default=None,
                   help="with --best on a sweep over several envs: the task")  # fmt: skip
    p.add_argument(
        "-o", "--output", default="agent.gif", help="GIF file, name ending in .gif (agent.gif)"
    )
    p.add_argument("--episodes", type=_positive_int, default=1, help="episodes recorded (1)")
    p.add_argument(
        "--deterministic",
        action="store_true",
        help="take the most likely / mean action instead of sampling",
    )
    p.add_argument("--seed", type=int, default=0, help="env reset and action sampling seed (0)")
    p.add_argument(
        "--max-steps",
        type=_positive_int,
        default=None,
        help="cap episode length (default: the env's time limit)",
    )
    p.set_defaults(func=cmd_gif)


def main(argv: list[str] | None = None) -> int:
    """Run one of the three commands without the rest of `a2c-sweep` (tests, debugging)."""
    parser = argparse.ArgumentParser(prog="a2c-sweep")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

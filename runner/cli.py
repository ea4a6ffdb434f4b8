"""The `a2c-sweep` command line. Each subcommand imports its code only when it runs, so
`status`, `analyze` and `run --dry-run` load neither torch nor ray."""

from __future__ import annotations

import argparse
import atexit
import contextlib
import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130  # 143 SIGTERM, 129 SIGHUP


def fail(message: str) -> int:
    print(f"a2c-sweep: error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def _fmt_eta(seconds: float) -> str:
    if not seconds or seconds != seconds or seconds == float("inf"):
        return "--:--"
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    return f"{h}:{rem // 60:02d}:{rem % 60:02d}" if h else f"{rem // 60:02d}:{rem % 60:02d}"


class OneLineParser(argparse.ArgumentParser):
    """argparse with its usage errors on one line (the usage block is what --help is for)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# ----------------------------------------------------------------------------------- train
def _widths(text: str) -> tuple[int, ...] | None:
    """'64,64' / '[64, 64]' -> widths; '' / '[]' -> () (no hidden layer); 'none' / 'null' ->
    None (the default, as null in a sweep file) (argparse type)."""
    body = text.strip()
    if body.lower() in ("none", "null"):
        return None
    if body.startswith("[") != body.endswith("]"):
        raise argparse.ArgumentTypeError(f"unbalanced brackets in {text!r}")
    body = body.removeprefix("[").removesuffix("]").strip()
    if not body:
        return ()
    try:
        return tuple(int(part) for part in body.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated layer widths like 64,64, got {text!r}"
        ) from None


def _optional_float(text: str) -> float | None:
    """'0.5' -> 0.5; 'none' / 'null' -> None (argparse type)."""
    if text.strip().lower() in ("none", "null"):
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or none, got {text!r}") from None


def cmd_train(args: argparse.Namespace) -> int:
    from a2c_core import A2CConfig

    fields = dict(env=args.env, num_envs=args.num_envs, steps_per_epoch=args.steps_per_epoch,
                  epochs=args.epochs, value_iters=args.value_iters, policy_lr=args.policy_lr,
                  value_lr=args.value_lr, gamma=args.gamma, lam=args.lam,
                  policy_iters=args.policy_iters, hidden=args.hidden,
                  value_target=args.value_target, dtype=args.dtype,
                  normalize_advantages=args.normalize_advantages,
                  policy_hidden=args.policy_hidden, value_hidden=args.value_hidden,
                  activation=args.activation, value_activation=args.value_activation,
                  init_log_std=args.init_log_std, entropy_coef=args.entropy_coef,
                  max_grad_norm=args.max_grad_norm, obs_norm=args.obs_norm)  # fmt: skip
    try:
        cfg = A2CConfig(**{k: v for k, v in fields.items() if v is not None})
    except ValueError as exc:
        return fail(str(exc))
    from a2c_core.spec import env_id_problem

    problem = env_id_problem(cfg.env)
    if problem:
        return fail(f"env: {problem}")
    if args.seed < 0:
        return fail(f"seed: must be a non-negative integer, got {args.seed}")
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from a2c_core import train

    out = None
    if args.csv:
        import csv

        from a2c_core.engine import RETURN_COLUMNS

        path = Path(args.csv)
        if not path.parent.is_dir():
            return fail(f"--csv: directory {path.parent} does not exist")
        out = path.open("w", newline="")
        writer = csv.writer(out)
        writer.writerow(RETURN_COLUMNS)
    start = time.perf_counter()
    steps = 0
    try:
        with Progress(TextColumn("[bold]epoch"), MofNCompleteColumn(), BarColumn(),
                      TextColumn("{task.fields[info]}"), TextColumn("ETA"),
                      TimeRemainingColumn()) as bar:  # fmt: skip
            task = bar.add_task("train", total=cfg.epochs, info="")
            for rec in train(cfg, args.seed):
                steps = rec.env_steps
                rate = steps / (time.perf_counter() - start)
                bar.update(task, completed=rec.epoch,
                           info=f"return {rec.return_mean:8.2f}  {rate:9,.0f} env steps/s")  # fmt: skip
                if out is not None:
                    writer.writerow(
                        [repr(v) if isinstance(v, float) else v for v in rec.row().values()]
                    )
                    out.flush()
                if rec.diverged:
                    print(f"run diverged at epoch {rec.epoch}", file=sys.stderr)
                    return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    finally:
        if out is not None:
            out.close()
    ret = (f"final mean return {rec.return_mean:.2f}" if rec.episodes
           else "no episode ended in the last epoch")  # fmt: skip
    print(f"{ret}; {rec.epoch} epochs, {steps:,} env steps, {time.perf_counter() - start:.1f} s")
    return EXIT_OK


# ----------------------------------------------------------------------------------- run
def _load(path: str):
    from a2c_core.spec import SpecError, load_spec

    try:
        return load_spec(path), None
    except SpecError as exc:
        return None, fail(str(exc))


def cmd_run(args: argparse.Namespace) -> int:
    sweep, err = _load(args.sweep)
    if sweep is None:
        return err
    from runner.api import SweepError, check_size, check_trainable, run_sweep

    try:
        check_size(sweep, args.max_runs)  # counted, never built: 10^7 runs refused at once
        if args.dry_run:
            check_trainable(sweep)
            from runner.store import Store, StoreError

            try:
                return _dry_run(sweep, Store(args.results, sweep.name), args)
            except StoreError as exc:
                raise SweepError(str(exc)) from None
    except SweepError as exc:
        return fail(str(exc))
    display = _Display(sweep.name)
    report = _LiveReport(Path(args.results) / sweep.name, display.log) if args.report else None
    on_event = display.event
    if report is not None:

        def on_event(p, _show=display.event):
            _show(p)
            report.maybe_write()

    signals = _Signals()
    signals.install()
    try:
        result = run_sweep(sweep, args.results, address=args.address, on_event=on_event,
                           log=display.log, warn=_warn, max_runs=args.max_runs,
                           hold_signals=signals.held)  # fmt: skip
    except SweepError as exc:
        display.close()
        signals.restore()
        return fail(str(exc))
    except Interrupted as exc:
        display.close()
        signals.restore()
        name = signal.Signals(exc.signum).name
        print(f"interrupted ({name}): every checkpoint written so far is kept; relaunch the "
              "same command to resume", file=sys.stderr)  # fmt: skip
        return 128 + exc.signum
    finally:
        display.close()
    signals.fired = True  # the sweep has ended: a late signal must not turn it into "interrupted"
    if result.trained:
        import resource

        driver_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        workers = ", ".join(f"worker {m:.0f} MB" for m in result.worker_rss_mb.values())
        print(f"trained in {result.train_s:.1f} s (from the first pack submitted to the last "
              "result)")  # fmt: skip
        nice = sorted(set(result.worker_nice.values()))
        niceness = f"; workers at nice {'/'.join(map(str, nice))}" if any(nice) else ""
        print(f"peak RSS: driver {driver_mb:.0f} MB; {workers or 'no worker report'}{niceness}")
    c = result.counts
    raced = ""
    if c["stopped"]:
        raced = f"{c['stopped']} stopped by racing ({result.spared_epochs:,} run-epochs spared), "
    print(f"done: {c['done']} done, {raced}{c['failed']} failed, {c['diverged']} diverged; "
          f"results in {result.results_dir}")  # fmt: skip
    if report is not None:
        report.final()
    signals.restore()
    return EXIT_FAILED if c["failed"] or c["diverged"] else EXIT_OK


def _warn(line: str) -> None:
    print(f"a2c-sweep: warning: {line}", file=sys.stderr)


REPORT_EVERY_S = 60


class _LiveReport:
    """`run --report`: RESULTS/NAME/report.html rewritten by a child process (`a2c-sweep
    report --no-gif`) at most every REPORT_EVERY_S seconds while the sweep runs, so the driver
    never waits for plotting and a failing report never stops a sweep; written once more,
    with the GIF, when the sweep ends (the file is replaced atomically: an open browser tab
    never reads half of it)."""

    def __init__(self, results_dir: Path, log) -> None:
        self.results_dir = results_dir
        self.log = log
        self.child: subprocess.Popen | None = None
        self.last = -math.inf
        self.announced = False

    def _command(self, *extra: str) -> list[str]:
        return [sys.executable, "-m", "runner.cli", "report", str(self.results_dir), *extra]

    def maybe_write(self) -> None:
        if self.child is not None and self.child.poll() is None:
            return  # the previous one is still drawing
        now = time.monotonic()
        if now - self.last < REPORT_EVERY_S or not (self.results_dir / "runs").is_dir():
            return
        self.last = now
        self.child = subprocess.Popen(
            self._command("--no-gif"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C meant for the sweep does not cut a report
        )
        if not self.announced:
            self.announced = True
            self.log(f"live report: {self.results_dir / 'report.html'} (reloads every 60 s)")

    def final(self) -> None:
        if self.child is not None and self.child.poll() is None:
            try:
                self.child.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.child.kill()
        if not (self.results_dir / "runs").is_dir():
            return
        done = subprocess.run(self._command(), capture_output=True, text=True, check=False)
        if done.returncode == 0:
            lines = done.stdout.strip().splitlines()
            print(lines[-1] if lines else "report written", flush=True)
        else:  # the sweep itself is fine: its exit code stays; the report's failure is said
            lines = done.stderr.strip().splitlines()
            _warn(f"the final report failed: {lines[-1] if lines else done.returncode}")


def _mute_stdout() -> None:
    """The reader of stdout left (``a2c-sweep run ... | head``, a closed ``tee``): the sweep
    trains on and says nothing more there (its state is on disk: ``a2c-sweep status``)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


class _Display:
    """The live progress table on a terminal; off a terminal (``ray job logs``, ``nohup``)
    also one plain line every 30 s. Started by the first progress event."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.live = None
        self.plain: _PlainProgress | None = None

    def event(self, p) -> None:
        try:
            self._event(p)
        except BrokenPipeError:
            _mute_stdout()

    def _event(self, p) -> None:
        if self.live is None:
            from rich.console import Console
            from rich.live import Live

            console = Console()
            if not console.is_terminal:  # a log file: no wrapping at 80 columns
                console = Console(width=160)
            self.live = Live(console=console, refresh_per_second=2, transient=False)
            self.live.start()
            self.plain = None if self.live.console.is_terminal else _PlainProgress(self.name)
        self.live.update(_progress_table(p, self.name))
        if self.plain is not None:
            self.plain.maybe_print(p, self.live.console)

    def log(self, line: str) -> None:
        try:
            if self.live is None:
                print(line, flush=True)
            else:
                self.live.console.print(line, soft_wrap=True, markup=False, highlight=False)
        except BrokenPipeError:
            _mute_stdout()

    def close(self) -> None:
        if self.live is not None:
            live, self.live = self.live, None
            live.stop()
            if not live.console.is_terminal:
                live.console.line()  # rich leaves the last render unterminated off a terminal


class Interrupted(BaseException):
    """SIGINT, SIGTERM or SIGHUP arrived: unwind (checkpoints stay), exit 128 + signum."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class _Signals:
    """SIGINT, SIGTERM and SIGHUP raise :class:`Interrupted` in the main thread, so that
    `kill`, systemd, Slurm and `ray job stop` stop a sweep as cleanly as Ctrl-C does; later
    signals are ignored while it unwinds (the clean-up is never cut short). While Ray starts
    they are held and raised once it has started (a half-started Ray cannot be shut down
    cleanly); Ray's start may install its own handlers, so ours are installed again after."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self) -> None:
        self.pending: int | None = None
        self.holding = False
        self.fired = False
        self.saved = {s: signal.getsignal(s) for s in self.SIGNALS}

    def _handle(self, signum: int, frame) -> None:
        if self.fired:
            return
        if self.holding:
            if self.pending is None:
                print(f"a2c-sweep: {signal.Signals(signum).name}: stopping as soon as Ray has "
                      "started (a half-started Ray cannot be stopped cleanly)", file=sys.stderr,
                      flush=True)  # fmt: skip
            self.pending = self.pending or signum
            return
        self.fired = True
        raise Interrupted(signum)

    def install(self) -> None:
        for s in self.SIGNALS:
            if self.saved[s] is not signal.SIG_IGN:  # `nohup` (SIGHUP) and background jobs
                signal.signal(s, self._handle)  # of scripts (SIGINT) ignore: keep it so

    def restore(self) -> None:
        for s, handler in self.saved.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)

    @contextlib.contextmanager
    def held(self):
        self.holding = True
        try:
            yield
        finally:
            self.holding = False
            self.install()
            if self.pending is not None and not self.fired:
                self.fired = True
                raise Interrupted(self.pending)


def _eta(p) -> tuple[float, float, float]:
    """(elapsed s, env steps/s, ETA s) of this launch."""
    elapsed = time.monotonic() - p.started
    rate = p.env_steps / elapsed if elapsed > 0 else 0.0
    done_now = p.epochs_done - p.epochs_at_start
    remaining = p.total_epochs - p.epochs_done
    eta = remaining * elapsed / done_now if done_now > 0 else float("nan")
    return elapsed, rate, eta


class _PlainProgress:
    """One plain progress line every ``every_s`` seconds when output is not a terminal."""

    def __init__(self, name: str, every_s: float | None = None):
        if every_s is None:
            try:
                every_s = float(os.environ.get("A2C_SWEEP_PROGRESS_EVERY_S", "30"))
            except ValueError:
                every_s = 30.0
        self.name, self.every_s = name, every_s
        self.last = time.monotonic()

    def maybe_print(self, p, console) -> None:
        if time.monotonic() - self.last < self.every_s:
            return
        self.last = time.monotonic()
        elapsed, rate, eta = _eta(p)
        console.print(
            f"[{_fmt_eta(elapsed)}] {self.name}: epochs {p.epochs_done}/{p.total_epochs}, "
            f"runs {p.done} done / {p.running} running / {p.failed} failed / {p.diverged} diverged"
            f"{_racing_note(p, ' / ')}{f' / {p.waiting} waiting at a rung' if p.waiting else ''}, "
            f"{rate:,.0f} env steps/s, ETA {_fmt_eta(eta)}",
            soft_wrap=True, markup=False, highlight=False,  # one greppable line in any log
        )  # fmt: skip


def _racing_note(p, sep: str) -> str:
    """The note "N stopped by racing (M run-epochs spared)" once racing stopped a run."""
    if not p.stopped:
        return ""
    return f"{sep}{p.stopped} stopped by racing ({p.saved_epochs:,} run-epochs spared)"


def _progress_table(p, name: str):
    from rich.table import Table

    elapsed, rate, eta = _eta(p)
    t = Table.grid(padding=(0, 2))
    from rich.text import Text

    finished = p.done + p.failed + p.diverged + p.stopped
    # cells as Text, not markup: a log line printed under the live display renders the table
    # with that print's markup=False, and "[bold]" would show
    t.add_row(Text(name, style="bold"), f"runs {finished}/{p.total_runs} finished",
              f"running {p.running}", f"failed {p.failed}", f"diverged {p.diverged}")  # fmt: skip
    if p.stopped or p.waiting:
        wait = f"{p.waiting} waiting at a rung for racing's decision" if p.waiting else ""
        t.add_row("", _racing_note(p, "") or "racing", wait, "", "")
    pct = 100.0 * p.epochs_done / max(1, p.total_epochs)
    t.add_row(f"epochs {p.epochs_done}/{p.total_epochs} ({pct:.0f}%)", f"{rate:,.0f} env steps/s",
              f"elapsed {_fmt_eta(elapsed)}", f"ETA {_fmt_eta(eta)}", "")  # fmt: skip
    for value, label in p.best:  # one per env: returns of different tasks are not compared
        t.add_row(f"best latest return {value:.1f}", label, "", "", "")
    return t


DRY_RUN_COUNT_LIMIT = 100_000  # --dry-run matches finished runs to the grid up to this size


MAX_STOPPED_SHOWN = 10


def _status_stopped(sweep, store) -> None:
    """The configurations racing stopped, with their rung and racing's reason."""
    from runner.racing import config_label

    stopped: dict[str, tuple[int, str]] = {}
    for r in sweep.runs():
        st = store.read_status(r.run_id)
        if st and st["state"] == "stopped":
            label = config_label(r.swept)
            reason = str(st.get("reason") or "").partition(" at epoch")[0]
            stopped.setdefault(label, (int(st.get("epochs_done") or 0), reason))
    if not stopped:
        return
    print(f"stopped by racing: {len(stopped)} configurations")
    for label, (rung, reason) in list(stopped.items())[:MAX_STOPPED_SHOWN]:
        print(f"  {label}: at epoch {rung}" + (f" ({reason})" if reason else ""))
    if len(stopped) > MAX_STOPPED_SHOWN:
        print(f"  ... and {len(stopped) - MAX_STOPPED_SHOWN} more (`a2c-sweep analyze` ranks them)")


def _dry_run_racing(sweep, store) -> None:
    """What a launch would do with the runs racing stopped: keep them, or (racing removed or
    loosened) continue them from their rung checkpoints."""
    from runner.launch import SweepRunner

    runs = sweep.runs()
    stopped = [r for r in runs if (store.read_status(r.run_id) or {}).get("state") == "stopped"]
    if not stopped:
        return
    runner = SweepRunner(sweep, store, cpus=1)
    runner.run_by_id = {r.run_id: r for r in runs}
    reopen = runner.stopped_to_reopen()
    if reopen:
        print(f"  of them stopped by racing: {len(stopped):,}; {len(reopen):,} would go on from "
              "their rung checkpoints (this sweep's racing options no longer stop them)")  # fmt: skip
    else:
        print(f"  of them stopped by racing: {len(stopped):,} (they stay stopped)")


def _dry_run(sweep, store, args) -> int:
    """The expansion, counted without building every run (a 10^6-run grid prints at once)."""
    import itertools

    from a2c_core.config import value_text
    from a2c_core.spec import inexact_resume_warnings
    from runner.launch import pack_sizes

    cpus = sweep.execution.num_cpus or os.cpu_count() or 1
    sizes = pack_sizes(sweep, cpus)
    n_cfg = sweep.num_runs // max(1, len(sweep.seeds))
    print(f"sweep {sweep.name} ({args.sweep})")
    print(f"  {n_cfg:,} configs x {len(sweep.seeds):,} seeds = {sweep.num_runs:,} runs")
    shown = ", ".join(str(s) for s in sorted(sizes, reverse=True)[:10])
    more = ", ..." if len(sizes) > 10 else ""
    print(f"  {len(sizes):,} packs on {cpus} local CPUs (runs per pack: {shown}{more})")
    if sweep.racing is not None:
        import runner.racing as racing

        print(f"  {racing.describe(sweep.racing)}")
        problem = racing.warning(sweep.racing, len(sweep.seeds))
        if problem:
            print(f"  warning: {problem}")
    for line in inexact_resume_warnings(sweep):
        print(f"  warning: {line}")
    if store.runs_dir.is_dir() and sweep.num_runs <= DRY_RUN_COUNT_LIMIT:
        done = sum(1 for r in sweep.iter_runs() if store.is_finished(r.run_id))
        print(f"  already finished under {store.dir}: {done:,}")
        _dry_run_racing(sweep, store)
    elif store.runs_dir.is_dir():  # hashing every run id would take minutes: count the dirs
        done = sum(1 for rid in store.run_ids() if store.is_finished(rid))
        print(f"  finished run directories under {store.dir}: {done:,} (not matched against "
              f"the grid: over {DRY_RUN_COUNT_LIMIT:,} runs)")  # fmt: skip
    else:
        print(f"  nothing under {store.dir} yet")
    keys = list(sweep.grid)
    shown = [[r.run_id, *(value_text(r.swept[k]) for k in keys), str(r.seed)]
             for r in itertools.islice(sweep.iter_runs(), max(0, args.show))]  # fmt: skip
    header = ["run_id", *keys, "seed"]
    widths = [max(len(c) for c in column) for column in zip(header, *shown, strict=True)]
    for row in (header, *shown):
        print("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    if sweep.num_runs > args.show:
        print(f"  ... {sweep.num_runs - args.show:,} more")
    return EXIT_OK


# ----------------------------------------------------------------------------------- status
def cmd_status(args: argparse.Namespace) -> int:
    from a2c_core.spec import SpecError
    from runner.store import Store, StoreError

    path = Path(args.results_dir).resolve()  # `status .` inside the sweep's directory
    if not (path / "sweep.yaml").is_file():
        return fail(f"{path}: not a sweep results directory (no sweep.yaml)")
    store = Store(path.parent, path.name)
    try:
        sweep = store.read_sweep()
    except SpecError as exc:
        return fail(str(exc))
    from runner.launch import best_so_far

    table = store.runs_table(sweep)
    counts = {
        s: sum(r["state"] == s for r in table)
        for s in ("done", "stopped", "running", "failed", "diverged", "pending")
    }
    epochs_total = sum(r.config.epochs for r in sweep.runs())
    epochs_done = 0
    problems = []
    for r in sweep.runs():
        st = store.read_status(r.run_id)
        try:
            rows = len(store.read_returns(r.run_id))
            problem = store.row_problem(r.run_id, r.config.epochs, st)
        except (StoreError, OSError) as exc:  # a damaged run is reported, never a traceback
            rows, problem = (
                0,
                f"returns.csv cannot be read ({getattr(exc, 'strerror', None) or exc})",
            )
        epochs_done += min(rows, r.config.epochs)  # a done run may hold more (epochs lowered)
        if st and st["state"] in ("failed", "diverged"):
            epochs_done += r.config.epochs - rows  # never trained
        if problem:
            problems.append(f"run {r.run_id}: {problem} (a relaunch recomputes it)")
    print(
        f"sweep {sweep.name}: {len(table)} runs: "
        + ", ".join(f"{v} {k}" for k, v in counts.items() if v or k != "stopped")
    )
    if counts["running"] and store.driver_alive() is False:
        print(f"no driver is running: the {counts['running']} running runs were interrupted "
              "(relaunch the sweep to resume them from their checkpoints)")  # fmt: skip
    spared = store.spared_epochs(sweep.runs())
    epochs_total -= spared
    print(
        f"epochs {epochs_done}/{epochs_total} ({100.0 * epochs_done / max(1, epochs_total):.0f}%)"
        + (f"; racing spared {spared} run-epochs" if spared else "")
    )
    for line in problems:
        print(f"warning: {line}")
    _status_stopped(sweep, store)
    best = best_so_far(sweep, store)
    for label, score, seeds, final in best:  # one per env
        tag = "" if final else " (best so far, not every seed done)"
        print(f"best configuration: {label}: IQM final return {score:.2f} over {seeds} "
              f"seeds{tag}")  # fmt: skip
    if not best and counts["failed"] + counts["diverged"] == len(table):
        print("best configuration: none (every run failed or diverged)")
    return EXIT_OK


# ----------------------------------------------------------------------------------- main
class _Version(argparse.Action):
    """--version: the package version and the git commit of this checkout (read only when
    asked for)."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, help="print the version and exit")

    def __call__(self, parser, namespace, values, option_string=None):
        from a2c_core.results import code_version

        print(f"a2c-sweep {code_version()}")
        parser.exit()


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 0 <= value <= 10**9:
        raise argparse.ArgumentTypeError(f"must be between 0 and 10^9, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="a2c-sweep", description=__doc__)
    parser.add_argument("--version", action=_Version)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train one run with a live progress display")
    from a2c_core.config import A2CConfig  # (cheap: no torch, no ray)

    d = A2CConfig()
    p.add_argument("--env", default=None, help=f"gymnasium id ({d.env})")
    p.add_argument("--seed", type=int, default=0, help="run seed (0)")
    for flag, field, kind, what in (
        ("--epochs", "epochs", int, "epochs"),
        ("--policy-lr", "policy_lr", float, "policy Adam learning rate"),
        ("--value-lr", "value_lr", float, "value-net Adam learning rate"),
        ("--gamma", "gamma", float, "discount"),
        ("--lam", "lam", float, "GAE lambda"),
        ("--num-envs", "num_envs", int, "parallel envs"),
        ("--steps-per-epoch", "steps_per_epoch", int, "vector steps per env per epoch"),
        ("--value-iters", "value_iters", int, "value-fit iterations per epoch"),
        ("--policy-iters", "policy_iters", int, "policy Adam steps per epoch"),
        (
            "--hidden",
            "hidden",
            int,
            "width of the default one-layer value net and Gaussian "
            "mean (short for --value-hidden N and, for a Box action space, --policy-hidden N)",
        ),
        ("--init-log-std", "init_log_std", float, "initial log std of a Gaussian policy"),
        ("--entropy-coef", "entropy_coef", float, "entropy bonus weight in the policy loss"),
        (
            "--max-grad-norm",
            "max_grad_norm",
            _optional_float,
            "clip each update's global gradient norm to this ('none': off)",
        ),
    ):
        default = getattr(d, field)
        p.add_argument(flag, type=kind, help=f"{what} ({'off' if default is None else default})")
    p.add_argument("--policy-hidden", type=_widths, default=None, metavar="W,W",
                   help="policy hidden-layer widths, e.g. 64,64 ('' or []: linear; default or "
                   "none: linear logits for discrete actions, --hidden for a Gaussian mean)")  # fmt: skip
    p.add_argument("--value-hidden", type=_widths, default=None, metavar="W,W",
                   help="value-net hidden-layer widths, e.g. 64,64 (default: --hidden)")  # fmt: skip
    p.add_argument("--activation", choices=("tanh", "relu"), default=None,
                   help=f"policy hidden-layer activation ({d.activation})")  # fmt: skip
    p.add_argument("--value-activation", choices=("tanh", "relu"), default=None,
                   help=f"value-net hidden-layer activation ({d.value_activation})")  # fmt: skip
    p.add_argument("--obs-norm", action=argparse.BooleanOptionalAction, default=None,
                   help="normalise observations with running statistics (off)")  # fmt: skip
    p.add_argument("--value-target", choices=("returns", "lambda_returns"), default=None,
                   help=f"value-net target ({d.value_target})")  # fmt: skip
    p.add_argument("--dtype", choices=("float32", "float64"), default=None,
                   help=f"arrays' dtype ({d.dtype})")  # fmt: skip
    p.add_argument("--normalize-advantages", action=argparse.BooleanOptionalAction,
                   default=None, help="normalise advantages per run and epoch (on)")  # fmt: skip
    p.add_argument("--csv", help="write the per-epoch records (returns.csv columns) here")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("run", help="run (or resume) a sweep")
    p.add_argument("sweep", help="sweep YAML file")
    p.add_argument("--results", default="results", help="results root (default: results)")
    p.add_argument(
        "--address", default=None, help="Ray cluster address (default: embedded local Ray)"
    )
    p.add_argument("--dry-run", action="store_true", help="print the expansion and exit")
    p.add_argument("--show", type=_count, default=5, help="rows shown by --dry-run (5)")
    from runner.api import MAX_RUNS  # (imports neither torch nor ray)

    p.add_argument("--max-runs", type=int, default=MAX_RUNS,
                   help=f"refuse a grid of more runs than this (default {MAX_RUNS:,})")  # fmt: skip
    p.add_argument(
        "--report",
        action="store_true",
        help="keep RESULTS/NAME/report.html up to date while the sweep runs (rewritten at "
        f"most every {REPORT_EVERY_S} s, and once at the end; the page reloads itself)",
    )
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("status", help="progress of a sweep, from disk")
    p.add_argument("results_dir", help="RESULTS/NAME")
    p.set_defaults(func=cmd_status)

    from analysis.cli import register  # a broken analysis install fails loudly, not silently

    register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:  # Ctrl-C before a subcommand installed its own handling
        print("a2c-sweep: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `a2c-sweep ... | head`: the reader left, nothing is wrong
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


def console_main() -> None:
    """The ``a2c-sweep`` command: :func:`main`, then the process ends without the
    interpreter's module teardown (after a sweep, ~0.7 s of Ray's and torch's C++
    finalizers on the 2-core box: bench/demo_overhead.py). Everything a command writes is
    closed and fsynced by then; what a normal exit would still do runs first: non-daemon
    threads are joined, atexit handlers run, the standard streams are flushed."""
    code = main()
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:  # None: the process was started with it closed
                stream.flush()
        except (OSError, ValueError):  # a closed or vanished reader: nothing left to say
            pass
    os._exit(int(code or 0))


if __name__ == "__main__":
    console_main()

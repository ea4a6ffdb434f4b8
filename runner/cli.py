"""The `a2c-sweep` command line. Each subcommand imports its code only when it runs, so
`status`, `analyze` and `run --dry-run` load neither torch nor ray."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
import time
from pathlib import Path

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130  # 143 SIGTERM, 129 SIGHUP


MAX_RUNS = 10**6  # a grid larger than this is refused unless --max-runs raises it


def fail(message: str) -> int:
    print(f"a2c-sweep: error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def _fmt_eta(seconds: float) -> str:
    if not seconds or seconds != seconds or seconds == float("inf"):
        return "--:--"
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    return f"{h}:{rem // 60:02d}:{rem % 60:02d}" if h else f"{rem // 60:02d}:{rem % 60:02d}"


# ----------------------------------------------------------------------------------- train
def cmd_train(args: argparse.Namespace) -> int:
    from a2c_core import A2CConfig

    fields = dict(env=args.env, num_envs=args.num_envs, steps_per_epoch=args.steps_per_epoch,
                  epochs=args.epochs, value_iters=args.value_iters, policy_lr=args.policy_lr,
                  value_lr=args.value_lr, gamma=args.gamma, lam=args.lam)  # fmt: skip
    try:
        cfg = A2CConfig(**{k: v for k, v in fields.items() if v is not None})
    except ValueError as exc:
        return fail(str(exc))
    import gymnasium as gym

    if cfg.env not in gym.envs.registry:
        return fail(f"env: unknown gymnasium id {cfg.env!r}")
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
    print(f"final mean return {rec.return_mean:.2f} after {rec.epoch} epochs, "
          f"{steps:,} env steps, {time.perf_counter() - start:.1f} s")  # fmt: skip
    return EXIT_OK


# ----------------------------------------------------------------------------------- run
def _load(path: str):
    from runner.spec import SpecError, load_spec

    try:
        return load_spec(path), None
    except SpecError as exc:
        return None, fail(str(exc))


def cmd_run(args: argparse.Namespace) -> int:
    sweep, err = _load(args.sweep)
    if sweep is None:
        return err
    limit = args.max_runs
    if sweep.num_runs > limit:  # counted, never built: a 10^7-run grid is refused at once
        n_cfg = sweep.num_runs // len(sweep.seeds)
        return fail(f"{sweep.path}: grid: {sweep.num_runs:,} runs ({n_cfg:,} configs x "
                    f"{len(sweep.seeds)} seeds) exceed the limit of {limit:,} runs; pass "
                    f"--max-runs {sweep.num_runs} to launch it anyway")  # fmt: skip
    from runner.store import Store, StoreError

    try:
        store = Store(args.results, sweep.name)
    except StoreError as exc:
        return fail(str(exc))
    if args.dry_run:
        return _dry_run(sweep, store, args)
    signals = _Signals()
    signals.install()
    try:
        return _run(sweep, store, args, signals)
    except Interrupted as exc:
        name = signal.Signals(exc.signum).name
        print(f"interrupted ({name}): every checkpoint written so far is kept; relaunch the "
              "same command to resume", file=sys.stderr)  # fmt: skip
        return 128 + exc.signum
    finally:
        signals.restore()


def _run(sweep, store, args, signals: _Signals) -> int:
    """cmd_run after validation: lock, Ray, train; a signal raises Interrupted out of it."""
    from runner.spec import SpecError
    from runner.store import StoreError

    try:
        runs = sweep.runs()
    except ValueError as exc:  # a constraint across fields, checked when runs are built
        return fail(f"{sweep.path}: config: {exc}")
    from runner.launch import RayConnectError, SweepRunner, check_address

    address = args.address or os.environ.get("RAY_ADDRESS") or None
    if address:  # a malformed or unreachable cluster is bad input: find out before any write
        try:
            check_address(address)
        except RayConnectError as exc:
            return fail(f"--address: {exc}")
    existed = store.dir.exists()
    try:
        lock = store.lock()  # a second launch of this sweep stops here, at once
    except StoreError as exc:
        return fail(str(exc))
    ray_started = cpus = None
    try:
        if address:
            try:
                ray_started, cpus = _timed_init(address, sweep.execution.num_cpus, signals)
            except RayConnectError as exc:
                _forget_new_dir(store, existed, lock)
                return fail(f"--address: {exc}")
        try:
            store.init_sweep(sweep)
        except SpecError as exc:
            _forget_new_dir(store, existed, lock)
            return fail(str(exc))
        # what is left to train is known from disk: a finished sweep needs no Ray
        runner = SweepRunner(sweep, store, cpus=1, log=_warn)
        try:
            todo = runner.prepare()
        except StoreError as exc:
            return fail(str(exc))
        store.write_runs_csv_for(sweep)
        resumed = sum(1 for r in todo if r.run_id in runner.ckpts)
        print(f"sweep {sweep.name}: {len(runs)} runs, {len(runs) - len(todo)} already finished, "
              f"{len(todo)} to train" + (f" (resuming {resumed} from checkpoints)" if resumed else "")
              + f" -> {store.dir}")  # fmt: skip
        if todo:
            started, ray_started = ray_started, True  # shut down in any case from here
            _train(sweep, store, runner, todo, started, cpus, signals)
    except OSError as exc:  # a read-only or full disk, a vanished directory
        where = f"{exc.filename}: " if exc.filename else ""
        return fail(f"{where}{exc.strerror or exc}")
    finally:
        with signals.ignored():  # a second Ctrl-C must not cut the clean-up short
            try:
                store.write_runs_csv_for(sweep)
            except (OSError, StoreError):
                pass
            if ray_started is not None:
                import ray

                ray.shutdown()
            lock.release()
    table = store.runs_table(sweep)
    bad = [r for r in table if r["state"] in ("failed", "diverged")]
    print(f"done: {sum(r['state'] == 'done' for r in table)} done, "
          f"{sum(r['state'] == 'failed' for r in table)} failed, "
          f"{sum(r['state'] == 'diverged' for r in table)} diverged; results in {store.dir}")  # fmt: skip
    return EXIT_FAILED if bad else EXIT_OK


def _train(sweep, store, runner, todo, ray_started, cpus, signals) -> None:
    # import now what writing checkpoints needs later (torch, ~2 s of CPU), in the
    # background while Ray starts rather than on two busy cores later; and a checkout
    # edited while an overnight sweep runs must not break the driver's lazy imports mid-run
    imports = threading.Thread(target=_import_checkpoint_writer, daemon=True)
    imports.start()
    if ray_started is None:
        ray_started, cpus = _timed_init(None, sweep.execution.num_cpus, signals)
    imports.join()
    import a2c_core.engine  # noqa: F401  (raises here if the background import failed)

    runner.cpus = cpus
    print(f"ray started in {ray_started:.1f} s ({cpus} CPUs)")
    print(f"training {len(todo)} runs on {runner.cpus} CPUs")
    from rich.live import Live

    live = Live(refresh_per_second=2, transient=False)
    try:
        with live:
            plain = _PlainProgress(sweep, runner) if not live.console.is_terminal else None

            def on_event(p) -> None:
                live.update(_progress_table(p, sweep, store, runner))
                if plain is not None:  # logs (ray job logs, nohup) get a line now and then
                    plain.maybe_print(p, live.console)

            runner.on_event = on_event
            runner.log = live.console.print
            t_train = time.perf_counter()
            runner.execute(todo)
            t_train = time.perf_counter() - t_train
    finally:
        if not live.console.is_terminal:
            live.console.line()  # rich leaves the last render unterminated off a terminal
    import resource

    driver_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    workers = ", ".join(f"worker {m:.0f} MB" for m in runner.worker_rss_mb.values())
    print(f"trained in {t_train:.1f} s (from the first pack submitted to the last result)")
    print(f"peak RSS: driver {driver_mb:.0f} MB; {workers or 'no worker report'}")


def _warn(line: str) -> None:
    print(f"a2c-sweep: warning: {line}", file=sys.stderr)


def _forget_new_dir(store, existed: bool, lock) -> None:
    """Bad input found after the lock was taken: leave no trace of a directory it created."""
    lock.release()
    if not existed:
        (store.dir / ".lock").unlink(missing_ok=True)
        try:
            store.dir.rmdir()
        except OSError:
            pass


class Interrupted(BaseException):
    """SIGINT, SIGTERM or SIGHUP arrived: unwind (checkpoints stay), exit 128 + signum."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class _Signals:
    """SIGINT, SIGTERM and SIGHUP raise :class:`Interrupted` in the main thread, so that
    `kill`, systemd, Slurm and `ray job stop` stop a sweep as cleanly as Ctrl-C does. While
    Ray starts they are held and raised once it has started (a half-started Ray cannot be
    shut down cleanly); Ray's start installs its own handlers (glog's SIGTERM stack dump),
    so ours are installed again after it."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self) -> None:
        self.pending: int | None = None
        self.holding = False
        self.saved = {s: signal.getsignal(s) for s in self.SIGNALS}

    def _handle(self, signum: int, frame) -> None:
        if self.holding:
            self.pending = self.pending or signum
            return
        raise Interrupted(signum)

    def install(self) -> None:
        for s in self.SIGNALS:
            signal.signal(s, self._handle)

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
            if self.pending is not None:
                raise Interrupted(self.pending)

    @contextlib.contextmanager
    def ignored(self):
        for s in self.SIGNALS:
            signal.signal(s, signal.SIG_IGN)
        try:
            yield
        finally:
            self.install()


def _import_checkpoint_writer() -> None:
    try:
        import torch  # noqa: F401

        import a2c_core.engine  # noqa: F401
    except Exception:  # the main thread imports again and reports it
        pass


def _timed_init(address, num_cpus, signals: _Signals):
    from runner.launch import init_ray

    t0 = time.perf_counter()
    with signals.held():
        cpus = init_ray(address, num_cpus)
    return time.perf_counter() - t0, cpus


def _eta(p, runner) -> tuple[float, float, float]:
    """(elapsed s, env steps/s, ETA s) of this launch."""
    elapsed = time.monotonic() - p.started
    rate = p.env_steps / elapsed if elapsed > 0 else 0.0
    if not hasattr(runner, "_epochs_at_start"):
        runner._epochs_at_start = p.epochs_done
    done_now = p.epochs_done - runner._epochs_at_start
    remaining = p.total_epochs - p.epochs_done
    eta = remaining * elapsed / done_now if done_now > 0 else float("nan")
    return elapsed, rate, eta


class _PlainProgress:
    """One plain progress line every ``every_s`` seconds when output is not a terminal."""

    def __init__(self, sweep, runner, every_s: float = 30.0):
        self.sweep, self.runner, self.every_s = sweep, runner, every_s
        self.last = time.monotonic()

    def maybe_print(self, p, console) -> None:
        if time.monotonic() - self.last < self.every_s:
            return
        self.last = time.monotonic()
        elapsed, rate, eta = _eta(p, self.runner)
        console.print(
            f"[{_fmt_eta(elapsed)}] {self.sweep.name}: epochs {p.epochs_done}/{p.total_epochs}, "
            f"runs {p.done} done / {p.running} running / {p.failed} failed / {p.diverged} diverged, "
            f"{rate:,.0f} env steps/s, ETA {_fmt_eta(eta)}",
            soft_wrap=True, markup=False, highlight=False,  # one greppable line in any log
        )  # fmt: skip


def _progress_table(p, sweep, store, runner):
    from rich.table import Table

    elapsed, rate, eta = _eta(p, runner)
    best = max(((v, k) for k, v in runner.last_return.items()), default=None)
    t = Table.grid(padding=(0, 2))
    t.add_row(f"[bold]{sweep.name}", f"runs {p.done + p.failed + p.diverged}/{p.total_runs} finished",
              f"running {p.running}", f"failed {p.failed}", f"diverged {p.diverged}")  # fmt: skip
    pct = 100.0 * p.epochs_done / max(1, p.total_epochs)
    t.add_row(f"epochs {p.epochs_done}/{p.total_epochs} ({pct:.0f}%)", f"{rate:,.0f} env steps/s",
              f"elapsed {_fmt_eta(elapsed)}", f"ETA {_fmt_eta(eta)}", "")  # fmt: skip
    if best:
        r = runner.run_by_id[best[1]]
        label = ", ".join(f"{a}={b}" for a, b in r.swept.items())
        t.add_row(f"best latest return {best[0]:.1f}", f"{label} seed={r.seed}", "", "", "")
    return t


def _dry_run(sweep, store, args) -> int:
    """The expansion, counted without building every run (a 10^6-run grid prints at once)."""
    import itertools

    from runner.launch import pack_sizes

    cpus = sweep.execution.num_cpus or os.cpu_count() or 1
    sizes = pack_sizes(sweep, cpus)
    n_cfg = sweep.num_runs // max(1, len(sweep.seeds))
    print(f"sweep {sweep.name} ({args.sweep})")
    print(f"  {n_cfg:,} configs x {len(sweep.seeds):,} seeds = {sweep.num_runs:,} runs")
    print(f"  {len(sizes):,} packs on {cpus} local CPUs (sizes {sorted(set(sizes))[:10]})")
    if store.runs_dir.is_dir():
        done = sum(1 for r in sweep.iter_runs() if store.is_finished(r.run_id))
        print(f"  already finished under {store.dir}: {done:,}")
    else:
        print(f"  nothing under {store.dir} yet")
    keys = list(sweep.grid)
    print("  " + "  ".join(["run_id      "] + keys + ["seed"]))
    for r in itertools.islice(sweep.iter_runs(), max(0, args.show)):
        print("  " + "  ".join([r.run_id] + [str(r.swept[k]) for k in keys] + [str(r.seed)]))
    if sweep.num_runs > args.show:
        print(f"  ... {sweep.num_runs - args.show:,} more")
    return EXIT_OK


# ----------------------------------------------------------------------------------- status
def cmd_status(args: argparse.Namespace) -> int:
    from runner.spec import SpecError
    from runner.store import Store

    path = Path(args.results_dir)
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
        for s in ("done", "running", "failed", "diverged", "pending")
    }
    epochs_total = sum(r.config.epochs for r in sweep.runs())
    epochs_done = 0
    problems = []
    for r in sweep.runs():
        st = store.read_status(r.run_id)
        epochs_done += len(store.read_returns(r.run_id))
        if st and st["state"] in ("failed", "diverged"):
            epochs_done += r.config.epochs - len(store.read_returns(r.run_id))  # never trained
        problem = store.row_problem(r.run_id, r.config.epochs, st)
        if problem:
            problems.append(f"run {r.run_id}: {problem} (a relaunch recomputes it)")
    print(
        f"sweep {sweep.name}: {len(table)} runs: "
        + ", ".join(f"{v} {k}" for k, v in counts.items())
    )
    print(
        f"epochs {epochs_done}/{epochs_total} ({100.0 * epochs_done / max(1, epochs_total):.0f}%)"
    )
    for line in problems:
        print(f"warning: {line}")
    best = best_so_far(sweep, store)
    if best:
        label, score, seeds, final = best
        tag = "" if final else " (best so far, not every seed done)"
        print(f"best configuration: {label}: IQM final return {score:.2f} over {seeds} "
              f"seeds{tag}")  # fmt: skip
    elif counts["failed"] + counts["diverged"] == len(table):
        print("best configuration: none (every run failed or diverged)")
    return EXIT_OK


# ----------------------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="a2c-sweep", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train one run with a live progress display")
    p.add_argument("--env", default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int)
    p.add_argument("--policy-lr", type=float)
    p.add_argument("--value-lr", type=float)
    p.add_argument("--gamma", type=float)
    p.add_argument("--lam", type=float)
    p.add_argument("--num-envs", type=int)
    p.add_argument("--steps-per-epoch", type=int)
    p.add_argument("--value-iters", type=int)
    p.add_argument("--csv", help="write the per-epoch records (returns.csv columns) here")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("run", help="run (or resume) a sweep")
    p.add_argument("sweep", help="sweep YAML file")
    p.add_argument("--results", default="results", help="results root (default: results)")
    p.add_argument(
        "--address", default=None, help="Ray cluster address (default: embedded local Ray)"
    )
    p.add_argument("--dry-run", action="store_true", help="print the expansion and exit")
    p.add_argument("--show", type=int, default=5, help="rows shown by --dry-run")
    p.add_argument("--max-runs", type=int, default=MAX_RUNS,
                   help=f"refuse a grid of more runs than this (default {MAX_RUNS:,})")  # fmt: skip
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("status", help="progress of a sweep, from disk")
    p.add_argument("results_dir", help="RESULTS/NAME")
    p.set_defaults(func=cmd_status)

    try:
        from analysis.cli import register
    except ImportError:
        register = None
    if register is not None:
        register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

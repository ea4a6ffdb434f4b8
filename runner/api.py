"""Run a sweep from Python: ``run_sweep(spec) -> SweepResult``.

    from runner import run_sweep

    result = run_sweep({"name": "try", "env": "CartPole-v0", "epochs": 20,
                        "grid": {"policy_lr": [0.1, 0.01]}, "seeds": {"count": 3}})
    print(result.counts, result.results_dir)      # a second call resumes: done runs skipped

:func:`run_sweep` owns the whole lifecycle of a launch: validation, the sweep's lock, the
results store, Ray (an embedded local Ray unless ``address`` names a cluster, or the Ray
this process already runs), packing, resume and runs.csv. `a2c-sweep run` is this function
plus argument parsing and a progress display.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from a2c_core.spec import Sweep

__all__ = ["MAX_RUNS", "SweepError", "SweepResult", "run_sweep"]

MAX_RUNS = 10**6
"""A grid of more runs than this is refused unless ``max_runs`` raises the limit."""


class SweepError(Exception):
    """Bad input (spec, results directory, cluster address, a second launch): one line."""


@dataclass(frozen=True)
class SweepResult:
    """What a launch did and where its results are."""

    name: str
    results_dir: Path
    runs: int
    counts: dict[str, int]
    """runs by state after the launch: done, stopped, failed, diverged, running, pending."""
    trained: int
    """runs this launch trained (or resumed)."""
    already_finished: int
    """runs finished before it started (here or, copied, in another sweep of the root)."""
    wall_s: float
    train_s: float = 0.0
    ray_start_s: float = 0.0
    worker_rss_mb: dict[int, float] = field(default_factory=dict)
    worker_nice: dict[int, int] = field(default_factory=dict)
    """worker pid -> its niceness (as each worker reported it)."""
    spared_epochs: int = 0
    """run-epochs racing spared: the epochs stopped runs did not train."""

    @property
    def ok(self) -> bool:
        """Every run done or stopped by racing (none failed, diverged or left unfinished)."""
        return self.counts.get("done", 0) + self.counts.get("stopped", 0) == self.runs


def run_sweep(
    spec: str | Path | Mapping[str, Any] | Sweep,
    results: str | Path = "results",
    *,
    address: str | None = None,
    on_event: Callable[[Any], None] | None = None,
    log: Callable[[str], None] | None = print,
    warn: Callable[[str], None] | None = None,
    max_runs: int = MAX_RUNS,
    hold_signals: Callable[[], contextlib.AbstractContextManager] | None = None,
) -> SweepResult:
    """Run (or resume) a sweep and return what happened.

    Args:
        spec: a sweep YAML path, the same content as a dict, or a loaded :class:`Sweep`.
        results: the results root; the sweep writes ``<results>/<name>/``.
        address: a Ray cluster (``HOST:PORT``, ``ray://HOST:PORT``, ``auto``); default
            ``RAY_ADDRESS``, else the Ray already initialised in this process, else an
            embedded local Ray started and stopped by this call.
        on_event: called with a :class:`runner.launch.Progress` as training advances.
        log: one call per informational line (``None``: quiet).
        warn: one call per warning line (default: stderr).
        max_runs: refuse larger grids (counted without building them).
        hold_signals: a context manager factory entered while Ray starts (the CLI holds
            SIGINT/SIGTERM/SIGHUP there); none by default.

    Raises:
        SweepError: bad input of any kind, before anything is written where possible.
        KeyboardInterrupt: as raised (checkpoints kept; Ray stopped if this call started it).
    """
    from a2c_core.spec import SpecError, inexact_resume_warnings, load_spec
    from runner.launch import RayConnectError, SweepRunner, check_address
    from runner.store import Store, StoreError

    t0 = time.monotonic()
    say = log or (lambda line: None)
    warn = warn or (lambda line: print(f"a2c-sweep: warning: {line}", file=sys.stderr))
    hold = hold_signals or contextlib.nullcontext
    try:
        sweep = load_spec(spec)
    except SpecError as exc:
        raise SweepError(str(exc)) from None
    check_size(sweep, max_runs)
    check_trainable(sweep)
    if sweep.racing is not None:
        from runner.racing import warning

        problem = warning(sweep.racing, len(sweep.seeds))
        if problem:
            warn(problem)
    for line in inexact_resume_warnings(sweep):
        warn(line)
    try:
        runs = sweep.runs()
    except ValueError as exc:  # a constraint across fields, checked when runs are built
        raise SweepError(f"{sweep.path}: config: {exc}") from None
    try:
        store = Store(results, sweep.name)
    except StoreError as exc:
        raise SweepError(str(exc)) from None
    where = "--address" if address else "RAY_ADDRESS"
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address:  # a malformed or unreachable cluster is bad input: find out before any write
        try:
            check_address(address)
        except RayConnectError as exc:
            raise SweepError(f"{where}: {exc}") from None
    existed = store.dir.exists()
    root_existed = store.root.exists()
    try:
        lock = store.lock()  # a second launch of this sweep stops here, at once
    except StoreError as exc:
        raise SweepError(str(exc)) from None
    ray = _RaySession(address, sweep.execution.num_cpus, hold, sweep.execution.worker_niceness)
    runner = None
    todo: list = []
    initialized = False
    try:
        if address:
            try:
                ray.start()
            except RayConnectError as exc:
                _forget_new_dir(store, existed, root_existed, lock)
                raise SweepError(f"{where}: {exc}") from None
        try:
            store.init_sweep(sweep)
        except SpecError as exc:
            _forget_new_dir(store, existed, root_existed, lock)
            raise SweepError(str(exc)) from None
        initialized = True
        # what is left to train is known from disk: a finished sweep needs no Ray
        runner = SweepRunner(sweep, store, cpus=1, log=warn, info=say)
        try:
            todo = runner.prepare()
        except StoreError as exc:
            raise SweepError(str(exc)) from None
        store.write_runs_csv_for(sweep)
        resumed = sum(1 for r in todo if r.run_id in runner.ckpts)
        say(f"sweep {sweep.name}: {len(runs)} runs, {len(runs) - len(todo)} already finished, "
            f"{len(todo)} to train" + (f" (resuming {resumed} from checkpoints)" if resumed else "")
            + f" -> {store.dir}")  # fmt: skip
        if todo and sweep.racing is not None:
            from runner.racing import describe

            say(describe(sweep.racing))
        if todo:
            _train(runner, todo, ray, on_event, say, warn)
    except OSError as exc:  # a read-only or full disk, a vanished directory
        where = f"{exc.filename}: " if exc.filename else ""
        raise SweepError(f"{where}{exc.strerror or exc}") from None
    except BaseException:
        if runner is not None and ray.started:
            runner.stop()  # no thread may read a stream once Ray is shut down
        raise
    finally:
        if initialized:  # never for a refused spec: runs.csv lists the sweep.yaml's runs
            try:
                store.write_runs_csv_for(sweep)
            except (OSError, StoreError):
                pass
        ray.stop()
        lock.release()
    table = store.runs_table(sweep)
    counts = {s: sum(r["state"] == s for r in table)
              for s in ("done", "stopped", "failed", "diverged", "running", "pending")}  # fmt: skip
    return SweepResult(
        name=sweep.name, results_dir=store.dir, runs=len(runs), counts=counts,
        trained=len(todo), already_finished=len(runs) - len(todo),
        wall_s=time.monotonic() - t0, train_s=runner.train_s if runner else 0.0,
        ray_start_s=ray.start_s, worker_rss_mb=dict(runner.worker_rss_mb) if runner else {},
        worker_nice=dict(runner.worker_nice) if runner else {},
        spared_epochs=store.spared_epochs(runs) if counts["stopped"] else 0,
    )  # fmt: skip


def check_trainable(sweep: Sweep) -> None:
    """Refuse, before Ray starts, a sweep with an env the engine cannot train on (unknown
    module, unsupported spaces, a missing optional dependency such as MuJoCo)."""
    from a2c_core.spec import trainable_problems

    problems = trainable_problems(sweep)
    if problems:
        raise SweepError(f"{sweep.path}: {problems[0]}")


def check_size(sweep: Sweep, max_runs: int) -> None:
    """Refuse a grid larger than ``max_runs`` (counted, never built)."""
    if sweep.num_runs > max_runs:
        n_cfg = sweep.num_runs // len(sweep.seeds)
        raise SweepError(f"{sweep.path}: grid: {sweep.num_runs:,} runs ({n_cfg:,} configs x "
                         f"{len(sweep.seeds)} seeds) exceed the limit of {max_runs:,} runs; "
                         f"pass --max-runs {sweep.num_runs} to launch it anyway")  # fmt: skip


def _train(runner, todo, ray: _RaySession, on_event, say, warn) -> None:
    if importlib.util.find_spec("torch") is None:  # fail now, not at the first checkpoint
        raise SweepError("torch is not installed: it writes the checkpoints")
    ray.start()
    # import now what writing checkpoints needs later (torch, ~2 s of CPU): a checkout
    # edited while an overnight sweep runs must not break the driver's lazy imports mid-run.
    # In the background, once Ray is up: the workers' first epochs need less of the CPUs
    # than Ray's start (whose Python agents it slowed by ~1.5 s on 2 cores); the first
    # checkpoint write waits for it (the import lock).
    threading.Thread(target=_import_checkpoint_writer, daemon=True).start()

    runner.cpus = ray.cpus
    runner.log = say  # failures, resubmissions, rebalancing: information, not warnings
    say(f"ray started in {ray.start_s:.1f} s ({ray.cpus} CPUs)")
    say(f"training {len(todo)} runs on {runner.cpus} CPUs")
    if on_event is not None:
        runner.on_event = on_event
    t = time.perf_counter()
    runner.execute(todo)
    runner.train_s = time.perf_counter() - t


def _import_checkpoint_writer() -> None:
    try:
        import torch  # noqa: F401

        import a2c_core.engine  # noqa: F401
    except Exception:  # the main thread imports again and reports it
        pass


class _RaySession:
    """The Ray a launch uses: a cluster at ``address``, the Ray this process already runs
    (left running), or an embedded local Ray (started here, stopped by :meth:`stop`)."""

    def __init__(self, address: str | None, num_cpus: int | None, hold, nice: int = 0) -> None:
        self.address, self.num_cpus, self.hold, self.nice = address, num_cpus, hold, nice
        self.cpus = 1
        self.start_s = 0.0
        self.started = False  # by this session: stop() shuts it down
        self.joined = False

    def start(self) -> None:
        if self.started or self.joined:
            return
        from runner.launch import init_ray

        t = time.perf_counter()
        if self.address is None and "ray" in sys.modules and sys.modules["ray"].is_initialized():
            import ray  # a notebook's own Ray: use it, leave it running

            self.cpus, self.joined = int(ray.cluster_resources().get("CPU", 1)), True
            return
        self.started = True  # from here on, stop() shuts down whatever part of Ray is up
        with self.hold():
            self.cpus = init_ray(self.address, self.num_cpus, self.nice)
        self.start_s = time.perf_counter() - t

    def stop(self) -> None:
        if self.started:
            import ray

            ray.shutdown()
            self.started = False


def _forget_new_dir(store, existed: bool, root_existed: bool, lock) -> None:
    """Bad input found after the lock was taken: leave no trace of the directories it
    created. The lock file goes while still locked (a launch that opened it meanwhile sees
    it gone and opens the new one: see SweepLock.acquire)."""
    if not existed:
        (store.dir / ".lock").unlink(missing_ok=True)
    lock.release()
    for made, path in ((existed, store.dir), (root_existed, store.root)):
        if not made:
            try:
                path.rmdir()
            except OSError:
                pass

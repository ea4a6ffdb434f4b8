"""Execute a sweep on Ray: packs of runs, streamed records, checkpoints, resubmission.

The driver (this module) is the only process that touches the results directory. Workers
run :func:`pack_task`, a Ray streaming generator that trains a pack with
``a2c_core.train_pack`` and yields small messages back: epoch rows, checkpoints every
``checkpoint_every_s`` seconds, final policies, and errors. So a multi-node cluster needs no
shared filesystem, and a lost worker or node costs at most ``checkpoint_every_s`` of work.

Failure handling:
- worker/node died (Ray system error): the pack is resubmitted from its runs' last
  checkpoints (rows written past a checkpoint are dropped first, so no epoch is logged
  twice); ``max_retries=0`` because Ray's own retry would restart from epoch 0.
- the run's code raised: a pack of several runs is split into packs of one (a run's numbers
  never depend on its pack-mates), and a run that raises alone is recorded as failed with its
  traceback and not retried.
"""

from __future__ import annotations

import contextlib
import ipaddress
import itertools
import math
import os
import queue
import re
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from a2c_core.config import SHAPE_FIELDS, A2CConfig
from a2c_core.results import policy_state, to_numpy
from a2c_core.spec import RunSpec, Sweep, run_id
from runner.messages import (
    Checkpoint,
    Failed,
    Message,
    Paused,
    Released,
    Rows,
    RunEnded,
    StreamClosed,
    StreamLost,
    WorkerStats,
)
from runner.store import FINISHED_STATES, Store, StoreError, contiguous_epochs

MAX_STOPPED_NAMED = 5  # racing names this many stopped configurations per rung, best first
MAX_LOSSES = 3  # resubmissions of one pack after worker/node deaths before its runs fail
KV_NAMESPACE = "a2c-sweep"  # Ray internal KV: the driver's release requests to packs
MIN_EPOCHS_TO_SPLIT = 2  # split a pack only if a run has this many epochs left (the one
# in progress ends first: the split pays off from the next one)
MIN_SECONDS_TO_SPLIT = 5.0  # ... and this much time left by its last epoch's pace
WORKER_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1",
              "OPENBLAS_NUM_THREADS": "1"}  # fmt: skip


def pack_task_body(configs: list[dict], seeds: list[int], run_ids: list[str],
                   resume: list[dict | None], checkpoint_every_s: float,
                   release_requested: Callable[[], bool] | None = None,
                   pause_at: list[int | None] | None = None) -> Iterator[Message]:  # fmt: skip
    """Generator run inside a Ray worker: trains the pack and yields :mod:`runner.messages`,
    one lock-step epoch at a time (the epoch's :class:`Rows`, then its checkpoints and ended
    runs). One message per epoch, not per run-epoch: each streamed item costs the worker and
    the driver CPU time that two busy cores lack.

    Checkpoints are taken when ``checkpoint_every_s`` has passed, for every run of the epoch
    alike. ``release_requested`` is polled once per epoch, as the epoch ends: when it returns
    True (the driver has an idle CPU), every unfinished run is checkpointed at that epoch, the
    pack yields :class:`Released` and stops, and the driver splits those runs over the free
    CPUs. A run's numbers depend neither on its pack-mates nor on resuming: no number
    changes.

    ``pause_at`` (racing): per run, None or a rung epoch before its last; the run trains up to
    that epoch only and yields :class:`Paused` with its checkpoint instead of ending (its
    epoch count is no part of what it computes, so it goes on from there bitwise)."""
    import dataclasses
    import traceback

    try:
        # no torch here: checkpoints travel as numpy arrays and the driver writes the tensors
        # (saves ~1 s of import and ~300 MB per worker)
        from a2c_core import train_pack

        cfgs = [A2CConfig.from_dict(c) for c in configs]
        stops = [p if p is not None and p < c.epochs else None
                 for p, c in zip(pause_at or [None] * len(cfgs), cfgs, strict=True)]  # fmt: skip
        trained = [
            dataclasses.replace(c, epochs=p) if p else c for c, p in zip(cfgs, stops, strict=True)
        ]
        pack = _EpochBatcher(len(cfgs), checkpoint_every_s, release_requested)
        records = train_pack(trained, seeds, resume=resume, checkpoint_when=pack.checkpoint_when)
        for rec in records:
            if pack.starts_new_epoch(rec.run):  # never merge two epochs into one message
                yield from pack.flush()
            rid = run_ids[rec.run]
            pack.rows.append((rid, rec.row()))
            if rec.finished and not rec.diverged and stops[rec.run] is not None:
                pack.end(rec.run, Paused(rid, rec.epoch, rec.checkpoint))
            elif rec.finished:
                state = "diverged" if rec.diverged else "done"
                policy = policy_state(cfgs[rec.run], seeds[rec.run], rec.policy, rec.obs_rms)
                # nothing continues from a diverged run: its end never carries a checkpoint,
                # even when the epoch it diverged in was a checkpoint epoch of the pack
                final = rec.checkpoint if state == "done" else None
                pack.end(rec.run, RunEnded(rid, state, policy, rec.diverged_reason or None,
                                           final))  # fmt: skip
            elif rec.checkpoint is not None:
                pack.after.append(Checkpoint(rid, rec.checkpoint))
            if pack.epoch_complete():
                yield from pack.flush()
                if pack.releasing and pack.alive > 0:
                    records.close()
                    yield Released([run_ids[i] for i in range(len(cfgs)) if i not in pack.ended])
                    break
        yield from pack.flush()
        yield WorkerStats(os.getpid(), peak_rss_mb(), os.getpriority(os.PRIO_PROCESS, 0))
    except Exception:
        yield Failed(traceback.format_exc())


class _EpochBatcher:
    """The worker's bookkeeping of one lock-step epoch: its rows, the checkpoints and ends
    sent after them, and the epoch's one decision to checkpoint (or release)."""

    def __init__(self, runs: int, checkpoint_every_s: float,
                 release_requested: Callable[[], bool] | None) -> None:  # fmt: skip
        self.runs = runs
        self.every_s = checkpoint_every_s
        self.release_requested = release_requested
        self.rows: list[tuple[str, dict]] = []
        self.after: list[Message] = []  # checkpoints and ends, sent after the rows they refer to
        self.seen: set[int] = set()
        self.ended: set[int] = set()
        self.alive = runs  # runs that yield a record this epoch
        self.last_ckpt = time.monotonic()
        self.decided: bool | None = None  # this epoch's answer, the same for all its runs
        self.releasing = False

    def checkpoint_when(self, run: int, epoch: int) -> bool:
        """train_pack asks for every run of an epoch as the epoch ends, before it yields any
        record of it: the first call decides for the whole epoch."""
        if self.decided is None:
            if self.release_requested is not None and self.alive > 1 and not self.releasing:
                self.releasing = bool(self.release_requested())
            self.decided = self.releasing or time.monotonic() - self.last_ckpt >= self.every_s
            if self.decided:
                self.last_ckpt = time.monotonic()
        return self.decided

    def starts_new_epoch(self, run: int) -> bool:
        new = run in self.seen
        self.seen.add(run)
        return new

    def end(self, run: int, message: RunEnded) -> None:
        self.ended.add(run)
        self.after.append(message)

    def epoch_complete(self) -> bool:
        return len(self.seen) >= self.alive

    def flush(self) -> Iterator[Message]:
        if self.rows:
            yield Rows(list(self.rows))
        for msg in self.after:  # noqa: UP028 (`yield from` a list fails: Ray sends values)
            yield msg
        self.alive = self.runs - len(self.ended)
        self.rows.clear()
        self.after.clear()
        self.seen.clear()
        self.decided = None


def pack_task(configs: list[dict], seeds: list[int], run_ids: list[str],
              resume: list[dict | None], checkpoint_every_s: float, release_key: str,
              pause_at: list[int | None] | None = None):  # fmt: skip
    """The Ray task: :func:`pack_task_body`, released when the driver puts ``release_key``
    in Ray's internal key-value store (one small GCS request per epoch, under a millisecond
    next to epochs of seconds)."""
    from ray.experimental import internal_kv

    def release_requested() -> bool:
        try:
            return bool(internal_kv._internal_kv_exists(release_key, namespace=KV_NAMESPACE))
        except Exception:  # the GCS briefly unreachable: go on training, ask again next epoch
            return False

    yield from pack_task_body(configs, seeds, run_ids, resume, checkpoint_every_s,
                              release_requested, pause_at)  # fmt: skip


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MB (Linux reports ru_maxrss in kB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _checkpoint_belongs(ckpt: dict, run: RunSpec) -> bool:
    """Does a checkpoint hold the state of this run: the same run id (config without its
    epoch count, and seed; a2c_core.spec.run_id)?"""
    try:
        seed = ckpt["seed"]
        seed = int(seed.item() if hasattr(seed, "item") else seed)
        return run_id(A2CConfig.from_dict(ckpt["config"]), seed) == run.run_id
    except (KeyError, TypeError, ValueError, AttributeError):
        return False


def _checkpoint_stats_problem(ckpt: dict | None, run: RunSpec) -> str | None:
    """An obs_norm run's checkpoint must hold sound observation statistics (a2c_core.obsnorm):
    without them the run would resume on other inputs than it left off with."""
    if ckpt is None or not run.config.obs_norm:
        return None
    from a2c_core.obsnorm import stats_problem

    try:
        dim = int(ckpt["obs"].shape[-1])
    except (KeyError, AttributeError, IndexError, TypeError):
        return "no observations"
    return stats_problem(ckpt.get("obs_rms"), dim)


@dataclass
class Pack:
    runs: list[RunSpec]
    losses: int = 0
    ref: Any = None
    unfinished: set[str] = field(default_factory=set)
    release_key: str = ""
    epoch_s: float = 0.0  # wall time of its last epoch (0 before the first one ends)
    releasing: bool = False  # the driver asked it to stop at its next epoch's end


def _pack_sizes(n: int, cpus: int, fixed: int | None) -> list[int]:
    if fixed:
        return [min(fixed, n - i) for i in range(0, n, fixed)]
    packs = max(1, min(n, cpus))
    base, extra = divmod(n, packs)
    return [base + (1 if i < extra else 0) for i in range(packs)]


def _packs_per_group(n_group: int, n_all: int, cpus: int, pack_size: int | None) -> int:
    """How many packs make_packs cuts a group of n_group runs (of n_all) into."""
    share = max(1, round(cpus * n_group / n_all))
    return len(_pack_sizes(n_group, share, pack_size))


def pack_sizes(sweep: Sweep, cpus: int) -> list[int]:
    """The sizes of the packs make_packs would cut the whole sweep into, counted without
    building its runs (only the grid keys that change a run's shape are expanded)."""
    shape_keys = [k for k in sweep.grid if k in SHAPE_FIELDS]
    per_point = sweep.num_runs // math.prod(len(sweep.grid[k]) for k in shape_keys)
    sizes = []
    for _ in itertools.product(*(sweep.grid[k] for k in shape_keys)):
        count = _packs_per_group(per_point, sweep.num_runs, cpus, sweep.execution.pack_size)
        base, extra = divmod(per_point, count)
        sizes += [base + 1] * extra + [base] * (count - extra)
    return sizes


def make_packs(runs: list[RunSpec], cpus: int, pack_size: int | None = None) -> list[list[RunSpec]]:
    """Group runs by shape (a2c_core.config.SHAPE_FIELDS) and split each group so
    that every CPU gets work: 180 runs on 2 CPUs -> 2 packs of 90; on 64 CPUs -> 64 of ~3.

    Runs are dealt round-robin (run i of a group goes to pack i mod n), so every pack gets a
    mix of the grid: a run's cost depends on its config (short CartPole episodes reset more
    often), and contiguous slices of the grid made one pack ~5 % slower than the other."""
    groups: dict[tuple, list[RunSpec]] = {}
    for r in runs:
        groups.setdefault(r.config.shape_key, []).append(r)
    packs = []
    for members in groups.values():
        count = _packs_per_group(len(members), len(runs), cpus, pack_size)
        packs.extend(members[i::count] for i in range(count))
    return packs


def init_ray(address: str | None, num_cpus: int | None, worker_niceness: int = 0) -> int:
    """Embedded local Ray by default; an existing cluster with --address / RAY_ADDRESS.
    Returns the cluster's CPU count.

    The caller's signal handlers stay in place: Ray's start would otherwise install a SIGTERM
    handler that exits with code 15 and (in C++) one that prints a stack dump."""
    os.environ.setdefault("RAY_DISABLE_FAILURE_SIGNAL_HANDLER", "1")  # read as ray imports
    # a pump thread still reading a pack's stream after ray.shutdown() (Ctrl-C, SIGTERM)
    # must get an error, not silently start a second, orphaned Ray (seen: it then crashed)
    os.environ.setdefault("RAY_ENABLE_AUTO_CONNECT", "0")
    import ray
    from ray._private import utils as ray_utils

    keep = ray_utils.set_sigterm_handler
    ray_utils.set_sigterm_handler = lambda handler: None
    try:
        return _init_ray(ray, address, num_cpus, worker_niceness)
    finally:
        ray_utils.set_sigterm_handler = keep


def _init_ray(ray, address: str | None, num_cpus: int | None, worker_niceness: int = 0) -> int:

    address = address or os.environ.get("RAY_ADDRESS") or None
    kwargs: dict[str, Any] = dict(log_to_driver=False, logging_level="ERROR")
    if address is None:
        # The embedded Ray's raylet, and the workers it prestarts while Ray starts, inherit
        # this environment: a runtime_env would make Ray spawn new workers for it when the
        # first pack is submitted (~1 s before any training, measured), so set it here.
        os.environ.update(WORKER_ENV)
        # the raylet adds this to its own (the driver's) niceness for every worker it starts;
        # Ray's default of 15 starved a sweep next to two busy processes (4 % of a core)
        os.environ["RAY_worker_niceness"] = str(worker_niceness)
        # "local" starts a private Ray even when a `ray start` cluster runs on this machine
        with _lean_head():
            ray.init(address="local", num_cpus=num_cpus or os.cpu_count() or 1,
                     include_dashboard=False, **kwargs)  # fmt: skip
    else:
        try:
            _connect_with_deadline(
                lambda: ray.init(address=address, runtime_env={"env_vars": WORKER_ENV}, **kwargs),
                address,
            )
        except ConnectionError as exc:
            why = f"{exc} {exc.__cause__ or ''}"
            hint = ""
            if "AuthToken" in why or "AuthenticationError" in why:
                # Ray >= 2.5x: `ray start` enables token auth when ~/.ray/auth_token exists,
                # and a driver given an explicit address only sends a token in token mode
                hint = (
                    "; the cluster requires token authentication: set RAY_AUTH_MODE=token "
                    "(with its token in ~/.ray/auth_token, RAY_AUTH_TOKEN_PATH or RAY_AUTH_TOKEN)"
                )
            raise RayConnectError(f"cannot connect to Ray at {address}: {exc}{hint}") from exc
    return int(ray.cluster_resources().get("CPU", 1))


# Head processes an embedded Ray starts that a sweep never uses: the API server (job
# submission, state API; ray.init waits ~1.2 s for it), the autoscaler monitor (nothing to
# scale on one machine; it ignores SIGTERM, so ray.shutdown() waits 1 s before killing it)
# and the log monitor (it forwards worker output to the driver: log_to_driver is off).
# Measured on the 2-core box (bench/demo_overhead.py): the demo's Ray start 5.4 -> 4.3 s,
# its command 21.3 -> 18.7 s. A cluster given by --address keeps all of its processes.
_LEAN_HEAD_SKIPS = ("start_api_server", "start_monitor", "start_log_monitor")
# The raylet registers only once its dashboard agent is up; a full agent imports and starts
# metrics and event modules (opentelemetry, aiohttp; ~1 s of Python on a busy 2-core box),
# which the embedded Ray never serves: it is started as Ray's own "minimal" agent, the one a
# `pip install ray` without [default] runs (bench/demo_overhead.py, together with the
# driver's torch import moved after Ray's start: the demo's Ray start 4.95 -> 2.75 s).


@contextlib.contextmanager
def _lean_head():
    """While an embedded Ray starts, skip the head processes listed in _LEAN_HEAD_SKIPS
    (private Ray API, pinned version: a method that is missing is simply not skipped)."""
    try:
        from ray._private import utils as ray_utils
        from ray._private.node import Node
    except ImportError:  # pragma: no cover - another Ray layout: start it as it is
        yield
        return
    saved = {name: Node.__dict__[name] for name in _LEAN_HEAD_SKIPS if name in Node.__dict__}
    for name in saved:
        setattr(Node, name, lambda self, *args, **kwargs: None)
    deps = getattr(ray_utils, "get_dashboard_dependency_error", None)
    if deps is not None:  # read by services.start_raylet to add the agent's --minimal
        ray_utils.get_dashboard_dependency_error = lambda: ImportError("a2c-sweep: lean head")
    try:
        yield
    finally:
        for name, method in saved.items():
            setattr(Node, name, method)
        if deps is not None:
            ray_utils.get_dashboard_dependency_error = deps


class RayConnectError(Exception):
    """init_ray could not join the cluster at the given address (one-line message)."""


CONNECT_TIMEOUT_S = 15.0  # an address that answers nothing is reported within this time
_ADDRESS_RE = re.compile(r"(?:ray://)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9.-]*):(\d{1,5})\Z")


def check_address(address: str) -> None:
    """Fail fast on a cluster address that is malformed or that nothing listens on.

    ``auto`` (the cluster started on this machine by ``ray start``), ``HOST:PORT`` (the
    head's GCS port, 6379 by default) and ``ray://HOST:PORT`` (Ray Client) are accepted."""
    if address == "auto":
        return
    match = _ADDRESS_RE.match(address)
    if match is None or not 0 < int(match[2]) < 65536:
        hint = ""
        if address.startswith(("http://", "https://")):
            hint = " (that is a dashboard address, for `ray job submit`)"
        raise RayConnectError(f"malformed Ray address {address!r}{hint}: expected HOST:PORT "
                              "(the head's GCS port, 6379 by default), ray://HOST:PORT or auto")  # fmt: skip
    host = match[1].strip("[]")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        try:
            socket.getaddrinfo(host, None)
        except (OSError, UnicodeError):  # UnicodeError: a label idna cannot encode
            raise RayConnectError(
                f"cannot connect to Ray at {address}: unknown host {host!r}"
            ) from None
    try:
        with socket.create_connection((host, int(match[2])), timeout=CONNECT_TIMEOUT_S / 3):
            pass
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise RayConnectError(f"cannot connect to Ray at {address}: {why.lower()}") from None
    if not address.startswith("ray://"):
        _probe_gcs(address)


@contextlib.contextmanager
def _quiet_stderr():
    """File descriptor 2 to /dev/null (C++ code writes there directly) for a moment."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _probe_gcs(address: str) -> None:
    """Ask the GCS at ``address`` whether it is alive, with short connect timeouts (a port
    that accepts TCP but is no Ray head would keep ray.init retrying for minutes)."""
    os.environ.setdefault("RAY_gcs_rpc_server_connect_timeout_s", "3")
    os.environ.setdefault("RAY_py_gcs_connect_timeout_s", "6")
    from ray._raylet import GcsClient

    try:
        with _quiet_stderr():  # Ray's C++ client logs each failed attempt there
            GcsClient(address=address).check_alive([], timeout=3)
    except Exception as exc:  # noqa: BLE001 (RpcError, a timeout: one line either way)
        why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "auth" in why.lower():
            return  # a head with token authentication: ray.init explains what to set
        raise RayConnectError(f"cannot connect to Ray at {address}: no Ray head answered "
                              f"({why})") from None  # fmt: skip


class _ConnectTimeout(Exception):
    pass


def _connect_with_deadline(connect: Callable[[], None], address: str) -> None:
    """Run ``ray.init`` to a cluster under a SIGALRM deadline: something that accepts TCP
    but never answers as a Ray head would otherwise keep Ray retrying for minutes."""

    def expire(signum, frame):
        raise _ConnectTimeout

    if threading.current_thread() is not threading.main_thread():
        connect()
        return
    old = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, CONNECT_TIMEOUT_S)
    try:
        connect()
    except _ConnectTimeout:
        raise RayConnectError(f"cannot connect to Ray at {address}: no Ray head answered "
                              f"within {CONNECT_TIMEOUT_S:.0f} s") from None  # fmt: skip
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@dataclass
class Progress:
    """What the live display and `status` show."""

    total_runs: int
    total_epochs: int
    done: int = 0
    failed: int = 0
    diverged: int = 0
    stopped: int = 0
    running: int = 0
    epochs_done: int = 0
    saved_epochs: int = 0
    """run-epochs racing spared (stopped runs' epochs after their rung); not in total_epochs."""
    waiting: int = 0
    """runs paused at a rung until every run in the race has reached it."""
    env_steps: int = 0
    started: float = field(default_factory=time.monotonic)
    epochs_at_start: int = 0  # epochs already done when this launch began (for the ETA)
    best: list[tuple[float, str]] = field(default_factory=list)
    """per env: (latest mean return, "param=value, ... seed=S") of the run with the highest."""


class SweepRunner:
    def __init__(self, sweep: Sweep, store: Store, *, cpus: int,
                 on_event: Callable[[Progress], None] | None = None,
                 log: Callable[[str], None] | None = None,
                 info: Callable[[str], None] | None = None):  # fmt: skip
        self.sweep, self.store, self.cpus = sweep, store, cpus
        self.on_event = on_event or (lambda p: None)
        self.log = log or (lambda line: None)  # failures and resubmissions, as they happen
        self.info = info or self.log  # what a launch does as asked: extend, copy, rename
        self.queue: queue.Queue = queue.Queue()
        self.ckpts: dict[str, dict] = {}
        self.epochs: dict[str, int] = {}
        self.started_wall: dict[str, float] = {}
        self.run_by_id: dict[str, RunSpec] = {}
        self.last_return: dict[str, float] = {}
        self.steps_seen: dict[str, int] = {}
        self.worker_rss_mb: dict[int, float] = {}  # worker pid -> peak RSS
        self.worker_nice: dict[int, int] = {}  # worker pid -> its niceness
        self.train_s = 0.0  # wall time of execute(), set by the caller
        self.prog: Progress | None = None
        self.live: list[Pack] = []  # packs still streaming
        self.pumps: list[threading.Thread] = []
        self.waiting: dict[str, int] = {}  # racing: run id -> the rung it waits at

    # -------------------------------------------------------------- preparation
    def prepare(self) -> list[RunSpec]:
        """Skip finished runs, copy runs finished in other sweeps, truncate the logs of
        unfinished runs to their checkpoint. Returns the runs still to train."""
        moved = self.store.migrate_run_ids(r.run_id for r in self.sweep.runs())
        if moved:
            self.info(f"{len(moved)} run directories renamed to this version's run ids "
                     "(the epoch count is no longer part of a run's id)")  # fmt: skip
        todo = []
        for r in self.sweep.runs():
            self.run_by_id[r.run_id] = r
            if self._verified_finished(r):
                continue
            source = self.store.copy_finished_from_other_sweep(r.run_id, min_epochs=r.config.epochs)
            if source is not None:
                self.info(f"run {r.run_id}: copied from sweep {source.parent.parent.name}, "
                          "where it is finished")  # fmt: skip
                if self._verified_finished(r):
                    continue
            todo.append(r)
        todo += self._rejudge_stopped()
        for r in todo:
            self._resume_point(r)
        return [r for r in todo if not self.store.is_finished(r.run_id)]

    def _rejudge_stopped(self) -> list[RunSpec]:
        """Reopen, at their rung's checkpoint, the stopped runs :meth:`stopped_to_reopen`
        finds the sweep's racing would not stop now; the others stay stopped."""
        reopen = self.stopped_to_reopen()
        for r, rung in reopen:
            self.store.reopen(r.run_id, f"no longer stopped at epoch {rung} by racing",
                              epochs_done=rung)  # fmt: skip
        if reopen:
            self.info(f"racing: {len(reopen)} stopped runs go on from their rung checkpoints "
                      "(the racing options no longer stop them)")  # fmt: skip
        return [r for r, _ in reopen]

    def stopped_to_reopen(self) -> list[tuple[RunSpec, int]]:
        """(run, rung) of every stopped run that the sweep's racing would not stop now
        (``racing:`` removed, a larger ``keep_top``, a lower ``threshold``...). Each stopped
        configuration is judged again at its rung against the rows recorded up to it, rungs
        in order (one reopened at a rung is back in the race at later ones); with unchanged
        options this is the decision that stopped it. A configuration with a seed short of
        the rung stays stopped unless racing is removed. Reads only; ``run_by_id`` must be set."""
        import dataclasses

        import runner.racing as racing

        rows = self._race_rows()
        stopped: dict[int, list[str]] = {}
        for rid, run in rows.items():
            if run.state == "stopped":
                stopped.setdefault(run.stopped_at, []).append(rid)
        out = []
        for rung in sorted(stopped):
            still_stopped = set()
            if self.sweep.racing is not None:
                scores = racing.scores_at(rows, self.sweep.racing, rung)
                verdicts = racing.judge(scores, self.sweep.racing, rung)
                still_stopped = {k for k, v in verdicts.items() if v.stop}
                # a configuration with a seed still short of the rung (added to the sweep, or
                # recomputed after damage) cannot be judged there yet: it stays stopped, and
                # that seed will share its fate at the rung (runner.racing.fates)
                still_stopped |= {r.config for r in rows.values() if len(r.returns) < rung
                         and r.state not in ("failed", "diverged", "stopped")}  # fmt: skip
            for rid in sorted(stopped[rung]):
                if rows[rid].config in still_stopped:
                    continue
                out.append((self.run_by_id[rid], rung))
                rows[rid] = dataclasses.replace(rows[rid], state="running", stopped_at=None)
        return out

    def _race_rows(self) -> dict[str, Any]:
        """Every run's rows as racing reads them (runner.racing.RunRows); a run whose
        returns.csv cannot be read is left out. A stopped run's rung is where its verified
        rows end (status.json's ``rung`` is what it reports)."""
        from runner.racing import RunRows, config_key

        out = {}
        for rid, r in self.run_by_id.items():
            st = self.store.read_status(rid)
            try:
                rows = self.store.read_returns(rid)
            except (StoreError, OSError):
                continue
            state = st["state"] if st else "running"
            rung = len(rows) if state == "stopped" else None
            out[rid] = RunRows(config_key(r.swept), [float(x["return_mean"]) for x in rows],
                               state, rung)  # fmt: skip
        return out

    def _resume_point(self, r: RunSpec) -> None:
        """Where an unfinished run continues: its checkpoint's epoch when that checkpoint is
        its own and every row up to it is on disk (later rows are dropped), else epoch 0. A
        run whose checkpoint already reaches its (lowered) epoch count is done there."""
        rid = r.run_id
        if self.store.read_config(rid) is None:
            self.store.write_config(rid, r.config, r.seed, extra={"swept": r.swept})
        ckpt = self.store.read_checkpoint(rid)
        if ckpt is not None and not _checkpoint_belongs(ckpt, r):
            self.log(f"run {rid}: checkpoint.pt belongs to another run (its config or "
                     "seed differ): ignored, recomputing from epoch 0")  # fmt: skip
            ckpt = None
        problem = _checkpoint_stats_problem(ckpt, r)
        if problem:
            self.log(f"run {rid}: checkpoint.pt is damaged ({problem}): ignored, recomputing "
                     "from epoch 0")  # fmt: skip
            ckpt = None
        epoch = int(ckpt["epoch"]) if ckpt else 0
        st = self.store.read_status(rid)
        said = int(st.get("epochs_done") or 0) if st else 0
        if ckpt is None and said > 0 and not self.store.checkpoint_path(rid).exists():
            self.log(f"run {rid}: status.json says epoch {said} but checkpoint.pt is missing: "
                     "recomputing it from epoch 0")  # fmt: skip
        proven = contiguous_epochs(self.store.read_returns(rid))
        if epoch > proven:  # rows missing below the checkpoint: never leave a hole
            held = f"epochs 1-{proven} only" if proven else "no epoch"
            self.log(f"run {rid}: returns.csv holds {held}, its checkpoint is at "
                     f"epoch {epoch}: recomputing it from epoch 0")  # fmt: skip
            ckpt, epoch = None, 0
        self.store.truncate_returns(rid, epoch)
        if ckpt and epoch >= r.config.epochs and not ckpt.get("diverged"):
            # `epochs` lowered below where the run got to: it is done, with the rows it has
            self.store.write_policy(rid, policy_state(r.config, r.seed, to_numpy(ckpt["policy"]),
                                                      to_numpy(ckpt.get("obs_rms"))))  # fmt: skip
            self.store.write_status(rid, "done", epochs_done=epoch)
            return
        if ckpt:
            self.ckpts[rid] = to_numpy(ckpt)  # the worker then never imports torch
        self.epochs[rid] = epoch
        self.steps_seen[rid] = int(ckpt["env_steps"]) if ckpt else 0

    def _verified_finished(self, r: RunSpec) -> bool:
        """Is ``r`` finished with every row it claims? A done or diverged run whose
        returns.csv has a gap or too few epochs is reopened (and recomputed, from its last
        checkpoint when the rows up to it are intact); a run whose status.json was lost or
        garbled but whose rows and policy are complete is marked done again."""
        rid = r.run_id
        self.store.check_real(rid)
        try:
            self.store.read_returns(rid)
        except StoreError as exc:  # not a torn last line: garbage, a bad header, CRLF...
            kept = self.store.quarantine(rid, "returns.csv")
            self.log(f"run {rid}: returns.csv cannot be read ({exc}); moved to {kept.name}, "
                     "recomputing the run")  # fmt: skip
            if self.store.is_finished(rid):
                self.store.reopen(rid, "returns.csv could not be read")
            return False
        if self.store.config_path(rid).exists() and self.store.read_config(rid) is None:
            self.store.rewrite_config(rid, r.config, r.seed, r.swept)
            self.log(f"run {rid}: config.json was unreadable: written again from the sweep")
        status = self.store.read_status(rid)
        if status is None:
            if self.store.restore_done(rid, r.config.epochs):
                self.log(f"run {rid}: status.json was missing or unreadable; its rows and "
                         "policy are complete: marked done")  # fmt: skip
                return True
            return False
        if status["state"] not in FINISHED_STATES:
            return False
        problem = None if status["state"] == "failed" else self.store.row_problem(
            rid, None, status)  # fmt: skip
        if problem is not None:
            self.log(f"run {rid}: {problem}: recomputing it (from its checkpoint when the rows "
                 "up to it are intact)")  # fmt: skip
            self.store.reopen(rid, problem)
            return False
        done = int(status.get("epochs_done") or 0)
        if status["state"] == "done" and done < r.config.epochs:
            self._extend(r, done)
            return False
        return True

    def _extend(self, r: RunSpec, done: int) -> None:
        """A done run asked for more epochs (``epochs`` raised): reopen it at its final
        checkpoint, or at epoch 0 when it has none (finished before checkpoints were kept at
        a run's end); its first ``done`` epochs come out the same either way."""
        rid = r.run_id
        ckpt = self.store.read_checkpoint(rid)
        at = int(ckpt["epoch"]) if ckpt and _checkpoint_belongs(ckpt, r) else 0
        at = at if at == done else 0
        self.store.reopen(rid, f"extended from {done} to {r.config.epochs} epochs",
                          epochs_done=at)  # fmt: skip
        self.store.rewrite_config(rid, r.config, r.seed, r.swept)
        how = "continuing from its final checkpoint" if at else (
            "it has no usable final checkpoint (missing, unreadable, another run's or at "
            "another epoch): recomputing it from epoch 0")  # fmt: skip
        self.info(f"run {rid}: extended from {done} to {r.config.epochs} epochs, {how}")

    # -------------------------------------------------------------- execution
    def _start_pack(self, runs: list[RunSpec], live: list[Pack]) -> None:
        pack = Pack(runs=runs, unfinished={r.run_id for r in runs})
        self._submit(pack)
        live.append(pack)

    def _submit(self, pack: Pack) -> None:
        import ray

        self._forget_release(pack)  # a lost pack resubmitted: its old request is void
        remote = ray.remote(pack_task).options(
            num_returns="streaming", max_retries=0, num_cpus=1, name="a2c_pack"
        )
        pack.release_key, pack.releasing = f"release/{uuid.uuid4().hex}", False
        runs = [r for r in pack.runs if r.run_id in pack.unfinished]
        for r in runs:
            self.store.write_status(r.run_id, "running", epochs_done=self.epochs[r.run_id])
            self.started_wall.setdefault(r.run_id, time.monotonic())
        pack.ref = remote.remote(
            [r.config.to_dict() for r in runs], [r.seed for r in runs], [r.run_id for r in runs],
            [self.ckpts.get(r.run_id) for r in runs], self.sweep.execution.checkpoint_every_s,
            pack.release_key, [self._pause_at(r.run_id) for r in runs],
        )  # fmt: skip
        gen = pack.ref

        def pump() -> None:
            import ray

            try:
                for ref in gen:
                    self.queue.put((pack, ray.get(ref)))
                self.queue.put((pack, StreamClosed()))
            except Exception as exc:  # worker or node died, object lost, cancelled
                self.queue.put((pack, StreamLost(repr(exc))))

        thread = threading.Thread(target=pump, daemon=True)
        thread.start()
        self.pumps = [t for t in self.pumps if t.is_alive()] + [thread]

    def stop(self, timeout: float = 10.0) -> None:
        """Cancel every pack still streaming and wait for the threads reading them, so that
        nothing touches Ray after ray.shutdown() (a reader left behind made Ray's core end the
        process with exit code 1). Checkpoints on disk are kept; call before shutting down."""
        import ray

        for pack in self.live:
            if pack.ref is not None:
                try:
                    ray.cancel(pack.ref, force=True)
                except Exception:  # already finished, or Ray is going away
                    pass
        deadline = time.monotonic() + timeout
        for thread in self.pumps:
            thread.join(max(0.0, deadline - time.monotonic()))

    def execute(self, todo: list[RunSpec]) -> Progress:
        prog = Progress(total_runs=len(self.sweep.runs()),
                        total_epochs=sum(r.config.epochs for r in self.sweep.runs()))  # fmt: skip
        self.prog = prog
        for r in self.sweep.runs():
            st = self.store.read_status(r.run_id) if self.store.is_finished(r.run_id) else None
            if st:
                setattr(prog, st["state"], getattr(prog, st["state"]) + 1)
            if st and st["state"] == "stopped":
                at = min(int(st.get("epochs_done") or 0), r.config.epochs)
                prog.epochs_done += at
                prog.saved_epochs += r.config.epochs - at
                prog.total_epochs -= r.config.epochs - at
            else:
                prog.epochs_done += r.config.epochs if st else self.epochs.get(r.run_id, 0)
        prog.epochs_at_start = prog.epochs_done
        live: list[Pack] = self.live
        rungs = set(self.sweep.racing.rungs) if self.sweep.racing else set()
        for r in todo:  # checkpointed at a rung: they wait there for its decision
            if self.epochs[r.run_id] in rungs:
                self.waiting[r.run_id] = self.epochs[r.run_id]
        prog.waiting = len(self.waiting)
        start = [r for r in todo if r.run_id not in self.waiting]
        for members in make_packs(start, self.cpus, self.sweep.execution.pack_size):
            self._start_pack(members, live)
        prog.running = len(todo)
        self._race(prog, live)
        self.on_event(prog)
        pending_rows: dict[str, list[dict]] = {}

        def flush_rows() -> None:  # one append (one fsync) per run per batch of messages
            for rid, rows in pending_rows.items():
                self.store.append_returns(rid, rows)
            pending_rows.clear()

        while live:
            try:
                batch = [self.queue.get(timeout=0.5)]
            except queue.Empty:
                self.on_event(prog)
                continue
            while len(batch) < 4096:
                try:
                    batch.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            for pack, msg in batch:
                self._handle(pack, msg, prog, live, pending_rows, flush_rows)
            flush_rows()
            self._race(prog, live)
            self._rebalance(live)
            prog.best = self._best_latest()
            self.on_event(prog)
        prog.running = 0
        self.on_event(prog)
        return prog

    def _handle(self, pack: Pack, msg: Message, prog: Progress, live: list[Pack],
                pending_rows: dict[str, list[dict]], flush_rows: Callable[[], None]) -> None:  # fmt: skip
        """Apply one message of a pack's stream to the store and the progress."""
        if isinstance(msg, Rows):
            pack.epoch_s = msg.epoch_s
            for rid, row in msg.rows:
                pending_rows.setdefault(rid, []).append(row)
                self.epochs[rid] = int(row["epoch"])
                prog.epochs_done += 1
                prog.env_steps += int(row["env_steps"]) - self.steps_seen.get(rid, 0)
                self.steps_seen[rid] = int(row["env_steps"])
                if not math.isnan(row["return_mean"]):
                    self.last_return[rid] = row["return_mean"]
            return
        flush_rows()  # rows must be on disk before a checkpoint, status or truncation
        match msg:
            case WorkerStats():  # a worker may run several packs: its peak is its last report
                self.worker_rss_mb[msg.pid] = msg.maxrss_mb
                self.worker_nice[msg.pid] = msg.nice
            case Checkpoint():
                self.store.write_checkpoint(msg.run_id, msg.state)
                self.ckpts[msg.run_id] = msg.state
                self.store.write_status(msg.run_id, "running", epochs_done=int(msg.state["epoch"]))
            case RunEnded():
                if msg.checkpoint is not None:  # what raising `epochs` later continues from
                    self.store.write_checkpoint(msg.run_id, msg.checkpoint)
                self.store.write_policy(msg.run_id, msg.policy)
                self._finish(msg.run_id, msg.state, msg.reason, prog)
                pack.unfinished.discard(msg.run_id)
                if msg.state == "diverged":
                    self.log(f"run {msg.run_id} diverged at epoch "
                             f"{self.epochs.get(msg.run_id, 0)} ({msg.reason})")  # fmt: skip
            case Paused():  # at a rung (racing): it waits for the rung's decision
                self.store.write_checkpoint(msg.run_id, msg.checkpoint)
                self.ckpts[msg.run_id] = msg.checkpoint
                self.store.write_status(msg.run_id, "running", epochs_done=msg.epoch)
                self.waiting[msg.run_id] = msg.epoch
                prog.waiting = len(self.waiting)
                pack.unfinished.discard(msg.run_id)
            case Released():  # stopped on request, every unfinished run checkpointed
                self._split_released(pack, live)
            case Failed():
                self._failed(pack, msg.traceback, prog, live)
            case StreamClosed() | StreamLost() if pack.unfinished:
                why = (
                    msg.why
                    if isinstance(msg, StreamLost)
                    else "pack ended before its runs finished"
                )
                self._lost(pack, why, prog)
        if (
            isinstance(msg, StreamClosed | StreamLost | Failed)
            and not pack.unfinished
            and pack in live
        ):
            live.remove(pack)
            self._forget_release(pack)

    def _pause_at(self, rid: str) -> int | None:
        """The rung a run stops at next (racing): the first one after its current epoch."""
        if self.sweep.racing is None:
            return None
        epoch = self.epochs.get(rid, 0)
        return next((rung for rung in self.sweep.racing.rungs if rung > epoch), None)

    def _race(self, prog: Progress, live: list[Pack]) -> None:
        """Judge the lowest rung runs wait at, once no unfinished run is still below it (all
        seeds of every configuration in the race have their rows up to it on disk): stop the
        runs of the configurations racing stops there, start the others from their
        checkpoints over the free CPUs. Repeats while a rung is ready."""
        import runner.racing as racing

        spec = self.sweep.racing
        while self.waiting and spec is not None:
            rung = min(self.waiting.values())
            # a run streaming at the rung epoch itself has yet to report that it paused there
            if any(self.epochs.get(rid, 0) <= rung for p in live for rid in p.unfinished):
                return
            labels = {racing.config_key(r.swept): racing.config_label(r.swept)
                      for r in self.run_by_id.values()}  # fmt: skip
            rows = self._race_rows()
            verdicts = racing.judge(racing.scores_at(rows, spec, rung), spec, rung, labels)
            fates = racing.fates(rows, rung)
            here = sorted(rid for rid, at in self.waiting.items() if at == rung)
            go, stopped_configs, saved = [], {}, 0
            for rid in here:
                del self.waiting[rid]
                r = self.run_by_id[rid]
                key = racing.config_key(r.swept)
                # a configuration has one fate: seeds added later (or a run recomputed) follow
                # the decision its other seeds met at this rung or an earlier one
                verdict = fates.get(key) or verdicts.get(key)
                if verdict is None or not verdict.stop:
                    go.append(r)
                    continue
                self._finish(rid, "stopped", None, prog, rung=rung, reason=verdict.reason)
                stopped_configs[key] = verdict
                saved += r.config.epochs - rung
            prog.saved_epochs += saved
            prog.total_epochs -= saved
            prog.waiting = len(self.waiting)
            going = len({racing.config_key(r.swept) for r in go})
            judged = going + len(stopped_configs)
            self.info(f"racing at epoch {rung}: {len(stopped_configs)} of {judged} configurations "
                      f"stopped ({len(here) - len(go)} runs, {saved} run-epochs spared), "
                      f"{going} go on")  # fmt: skip
            ranked = sorted(stopped_configs.items(), key=lambda kv: -kv[1].estimate)
            for key, verdict in ranked[:MAX_STOPPED_NAMED]:
                stat, _, _ = verdict.reason.partition(" at epoch")
                self.info(f"  stopped {labels.get(key, key)}: {stat}")
            if len(ranked) > MAX_STOPPED_NAMED:
                self.info(f"  ... and {len(ranked) - MAX_STOPPED_NAMED} more (their status.json "
                          "says why; `a2c-sweep analyze` lists them all)")  # fmt: skip
            free = max(1, self.cpus - sum(1 for p in live if p.unfinished))
            for members in make_packs(go, free, self.sweep.execution.pack_size):
                self._start_pack(members, live)

    def _split_released(self, pack: Pack, live: list[Pack]) -> None:
        """A pack released on request: split its unfinished runs over the idle CPUs."""
        self._forget_release(pack)
        runs = [r for r in pack.runs if r.run_id in pack.unfinished]
        pack.unfinished.clear()  # its StreamClosed is then a no-op
        free = self.cpus - sum(1 for p in live if p.unfinished)  # this pack's CPU included
        parts = make_packs(runs, max(1, free))  # round-robin over min(runs, free CPUs)
        for members in parts:
            self._start_pack(members, live)
        epochs = sorted({self.epochs[r.run_id] for r in runs})
        self.log(f"rebalanced: a pack of {len(runs)} runs split into {len(parts)} at epoch "
                 f"{'/'.join(map(str, epochs))} to use an idle CPU")  # fmt: skip

    def _failed(self, pack: Pack, tb: str, prog: Progress, live: list[Pack]) -> None:
        """The pack's code raised: a run alone is failed (not retried); a pack of several is
        split into packs of one from their checkpoints, to isolate the culprit."""
        if len(pack.unfinished) == 1:
            (rid,) = pack.unfinished
            self._finish(rid, "failed", tb, prog)
            pack.unfinished.clear()
            last = tb.strip().splitlines()[-1] if tb.strip() else "error"
            self.log(f"run {rid} failed: {last}")
            return
        for rid in sorted(pack.unfinished):
            self._rewind(rid)
            self._start_pack([self.run_by_id[rid]], live)
        pack.unfinished.clear()

    def _lost(self, pack: Pack, why: str, prog: Progress) -> None:
        """The worker or node died (or the stream ended early): resubmit the pack from its
        runs' last checkpoints, up to MAX_LOSSES times, then fail its runs."""
        pack.losses += 1
        if pack.losses > MAX_LOSSES:
            for rid in sorted(pack.unfinished):
                self._finish(rid, "failed", f"worker lost {pack.losses} times: {why}", prog)
            pack.unfinished.clear()
            return
        for rid in pack.unfinished:
            self._rewind(rid)
        epochs = ", ".join(str(self.epochs[r]) for r in sorted(pack.unfinished))
        self.log(f"pack of {len(pack.unfinished)} runs lost ({why}); "
                 f"resubmitting from epochs {epochs}")  # fmt: skip
        self._submit(pack)

    def _best_latest(self) -> list[tuple[float, str]]:
        """The run with the best latest return per env (returns of different tasks are not
        compared), at most 5 envs: [(return, "key=value, ... seed=S")]."""
        best: dict[str, tuple[float, str]] = {}
        for rid, value in self.last_return.items():
            env = self.run_by_id[rid].config.env
            if env not in best or value > best[env][0]:
                best[env] = (value, rid)
        out = []
        for value, rid in list(best.values())[:5]:
            r = self.run_by_id[rid]
            out.append((value, ", ".join(f"{a}={b}" for a, b in r.swept.items())
                        + f" seed={r.seed}"))  # fmt: skip
        return out

    def _rebalance(self, live: list[Pack]) -> None:
        """Ask :meth:`release_candidate` to stop at its epoch's end (Ray internal KV)."""
        pack = self.release_candidate(live)
        if pack is None:
            return
        from ray.experimental import internal_kv

        internal_kv._internal_kv_put(pack.release_key, b"1", namespace=KV_NAMESPACE)
        pack.releasing = True

    def release_candidate(self, live: list[Pack]) -> Pack | None:
        """When a CPU is idle (fewer unfinished packs than CPUs), the pack with the most time
        left, if splitting it pays: at least 2 unfinished runs, MIN_EPOCHS_TO_SPLIT epochs and
        MIN_SECONDS_TO_SPLIT seconds left (its last epoch's time x its longest run's epochs
        left; a split costs a checkpoint and a pack start, well under a second when warm).
        A static split leaves one CPU idle while the slower one finishes: CPUs differ (on
        this project's shared 2-vCPU machine the same kernel pinned to one vCPU or the other
        differs by 10-25 %, the faster one changing over minutes), and so do cluster nodes."""
        busy = [p for p in live if p.unfinished]
        if len(busy) >= self.cpus or any(p.releasing for p in busy):
            return None

        def epochs_left(p: Pack) -> int:  # to the run's end, or to its next rung
            return max((self._pause_at(r) or self.run_by_id[r].config.epochs)
                       - self.epochs.get(r, 0) for r in p.unfinished)  # fmt: skip

        splittable = [p for p in busy if len(p.unfinished) >= 2 and p.epoch_s > 0
                      and epochs_left(p) >= MIN_EPOCHS_TO_SPLIT
                      and epochs_left(p) * p.epoch_s >= MIN_SECONDS_TO_SPLIT]  # fmt: skip
        return max(splittable, key=lambda p: epochs_left(p) * p.epoch_s, default=None)

    def _forget_release(self, pack: Pack) -> None:
        if pack.releasing:
            from ray.experimental import internal_kv

            internal_kv._internal_kv_del(pack.release_key, namespace=KV_NAMESPACE)
            pack.releasing = False

    def _rewind(self, rid: str) -> None:
        """Drop rows past the last checkpoint: they will be recomputed (bitwise equal)."""
        epoch = int(self.ckpts[rid]["epoch"]) if rid in self.ckpts else 0
        self.store.truncate_returns(rid, epoch)
        if self.prog is not None:  # those epochs are to be done again
            self.prog.epochs_done -= max(0, self.epochs.get(rid, 0) - epoch)
        self.epochs[rid] = epoch
        self.steps_seen[rid] = int(self.ckpts[rid]["env_steps"]) if rid in self.ckpts else 0

    def _finish(self, rid: str, state: str, error: str | None, prog: Progress,
                rung: int | None = None, reason: str | None = None) -> None:  # fmt: skip
        wall = time.monotonic() - self.started_wall.get(rid, time.monotonic())
        self.store.write_status(rid, state, error=error, wall_s=wall,
                                epochs_done=self.epochs.get(rid, 0), rung=rung, reason=reason)  # fmt: skip
        self.ckpts.pop(rid, None)
        setattr(prog, state, getattr(prog, state) + 1)
        prog.running -= 1


def best_so_far(sweep: Sweep, store: Store) -> list[tuple[str, float, int, bool]]:
    """Per env (returns of different tasks are not compared), in grid order: (label, IQM over
    seeds of the runs' final scores, seeds scored, every run of it done?) of the best
    configuration on disk, ranked like `a2c-sweep analyze` (IQM; a run's final score is the
    mean return_mean over its last ceil(10 %) epochs). Failed and diverged runs score
    nothing; an env none of whose runs has a score is left out (e.g. every run diverged)."""
    from scipy import stats

    from runner.racing import config_label

    scores: dict[str, list[float]] = {}
    finished: dict[str, bool] = {}
    env_of: dict[str, str] = {}
    for r in sweep.runs():
        label = config_label(r.swept)
        env_of[label] = r.config.env
        st = store.read_status(r.run_id)
        finished[label] = finished.get(label, True) and bool(st and st["state"] == "done")
        if st and st["state"] in ("failed", "diverged", "stopped"):
            continue
        try:
            vals = [float(x["return_mean"]) for x in store.read_returns(r.run_id)]
        except (StoreError, OSError):  # status reports the damage; it scores nothing
            continue
        k = max(1, math.ceil(0.1 * len(vals)))
        tail = [v for v in vals[-k:] if not math.isnan(v)]
        if tail:
            scores.setdefault(label, []).append(sum(tail) / len(tail))
    iqm = {label: float(stats.trim_mean(v, 0.25)) for label, v in scores.items()}
    out = []
    for env in dict.fromkeys(env_of.values()):
        labels = [label for label in iqm if env_of[label] == env]
        if labels:
            label = max(labels, key=iqm.get)
            out.append((label, iqm[label], len(scores[label]), finished[label]))
    return out

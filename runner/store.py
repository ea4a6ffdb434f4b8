"""The results store: the only code that writes under ``results/``.

Layout (docs/design.md "The results contract")::

    <root>/<name>/sweep.yaml                 the spec as launched (latest launch)
    <root>/<name>/runs.csv                   run_id, swept params..., seed, state
    <root>/<name>/runs/<run_id>/config.json  resolved config + seed + package versions
    <root>/<name>/runs/<run_id>/returns.csv  one row per epoch (RETURN_COLUMNS), append-only
    <root>/<name>/runs/<run_id>/status.json  state, error, wall_s, epochs_done, updated
    <root>/<name>/runs/<run_id>/checkpoint.pt
    <root>/<name>/runs/<run_id>/policy.pt

Every file except returns.csv is written atomically (temp file in the same directory, fsync,
``os.replace``). returns.csv is appended to and fsynced per batch; a torn last line (crash in
the middle of an append) is tolerated by readers and dropped by :meth:`Store.repair_returns`.
A run is finished only when its status.json says done, failed, diverged or stopped; a finished run's
files are never rewritten (writing methods raise :class:`FinishedRunError`).

Temporary files and directories start with ``.`` so that listings of ``runs/`` skip them.
To finish a run, write returns, policy.pt, then status ``done`` last.
"""

from __future__ import annotations

import csv
import dataclasses
import errno
import fcntl
import functools
import io
import json
import numbers
import os
import platform
import re
import shutil
import socket
import stat
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import IO, Any

from a2c_core.config import A2CConfig
from a2c_core.results import (
    FINISHED_STATES,
    INT_RETURN_COLUMNS,
    PENDING,
    RETURN_COLUMNS,
    RETURNS_HEADER,
    STATES,
    ResultsFileError,
    ReturnsFile,
    code_version,
    contiguous_epochs,
    parse_returns,
    parse_row,
    read_policy,
    to_torch,
)
from a2c_core.spec import RunSpec, SpecError, Sweep, check_compatible, check_name, load_spec, run_id

__all__ = [
    "FINISHED_STATES",
    "INT_RETURN_COLUMNS",
    "RETURN_COLUMNS",
    "STATES",
    "FinishedRunError",
    "Store",
    "StoreError",
    "SweepLock",
    "SweepLockedError",
]


_RUN_ID_RE = re.compile(r"[0-9a-f]{8,64}\Z")
_TMP_PREFIX = ".tmp-"
# what this store's temp entries look like: mkstemp / mkdtemp names (8 random characters)
# after ``.tmp-<file or run id>.``; nothing else is ever deleted by clean_temp
_TMP_RE = re.compile(r"\.tmp-[A-Za-z0-9._-]+\.[a-z0-9_]{8}\Z")
LOCK_NAME = ".lock"


def _read_umask() -> int:
    """This process's umask, read without changing it (Linux: /proc/self/status)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore at once
    os.umask(mask)
    return mask


_UMASK = _read_umask()
_HEADER = RETURNS_HEADER
_VERSION_PACKAGES = ("a2c-sweep", "torch", "numpy", "gymnasium", "ray")


class StoreError(Exception):
    """A results directory that cannot be read or written as asked."""


class FinishedRunError(StoreError):
    """An attempt to write into a run whose status is done, failed or diverged."""


HOLDER_WAIT_S = 2.0  # a second launch waits this long for the lock holder's name


class SweepLockedError(StoreError):
    """Another live process holds the results directory's lock (one-line message)."""


class SweepLock:
    """An exclusive ``flock`` on ``<root>/<name>/.lock`` held for a whole launch.

    The kernel drops the lock when its holder dies (crash, SIGKILL, lost node), so a stale
    lock is simply taken over; the file's text (host, pid, start time) only names the holder
    in the error message of a second launch. Readers (`status`, `analyze`) never take it.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> SweepLock:
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(self.path, flags, 0o644)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise StoreError(f"{self.path}: is a symbolic link; remove it") from None
            raise StoreError(f"{self.path}: cannot open the lock file: {exc.strerror}") from None
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:  # a FIFO, a hard link to elsewhere
            os.close(fd)
            raise StoreError(f"{self.path}: not a plain file of its own (remove it and relaunch)")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _read_holder(fd)
            deadline = time.monotonic() + HOLDER_WAIT_S
            while holder == "holder unknown" and time.monotonic() < deadline:
                time.sleep(0.05)  # it has the lock and is writing its name just now
                holder = _read_holder(fd)
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EACCES, errno.EAGAIN):
                raise SweepLockedError(
                    f"{self.path.parent}: in use by another a2c-sweep run ({holder}); "
                    "wait for it to end or stop it, then relaunch"
                ) from None
            raise StoreError(f"{self.path}: cannot lock: {exc.strerror}") from None
        try:
            same = os.stat(self.path, follow_symlinks=False).st_ino == st.st_ino
        except OSError:
            same = False
        if not same:  # the file was removed (a refused launch cleaning up) after we opened it:
            os.close(fd)  # a lock on it would lock nothing
            return self.acquire()
        info = {"host": socket.gethostname(), "pid": os.getpid(), "started": _now()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    def __enter__(self) -> SweepLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
        return f"pid {info['pid']} on {info['host']}, started {info['started']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "holder unknown"


# --------------------------------------------------------------------------- low level


def _is_real_dir(path: Path) -> bool:
    """A directory that is not a symbolic link."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write ``path`` via a temp file in its directory, fsync and ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"{_TMP_PREFIX}{path.name}.")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; results are for everyone's eyes
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:  # name the file meant, not the temp file
        _unlink_quietly(tmp)
        raise OSError(exc.errno, exc.strerror, str(path)) from None
    except BaseException:
        _unlink_quietly(tmp)
        raise
    _fsync_dir(path.parent)


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    _atomic_write(path, lambda f: f.write(data))


def _atomic_write_json(path: Path, obj: Any) -> None:
    text = json.dumps(obj, indent=2, sort_keys=False, allow_nan=True) + "\n"
    _atomic_write_bytes(path, text.encode("utf-8"))


def _format_number(column: str, value: Any) -> str:
    """Round-trip exact text for a returns.csv cell (repr for floats, 'nan' for NaN)."""
    if hasattr(value, "item") and not isinstance(value, numbers.Number):
        value = value.item()  # 0-d tensors / arrays
    if column in INT_RETURN_COLUMNS:
        if isinstance(value, numbers.Integral):
            return str(int(value))
        if isinstance(value, numbers.Real) and float(value).is_integer():
            return str(int(value))
        raise StoreError(f"returns.csv: {column}: expected an integer, got {value!r}")
    if isinstance(value, numbers.Integral):
        return repr(float(int(value)))
    if isinstance(value, numbers.Real):
        return repr(float(value))  # numpy scalars: float() first (numpy 2 repr is verbose)
    raise StoreError(f"returns.csv: {column}: expected a number, got {value!r}")


def _record_to_mapping(record: Any) -> Mapping[str, Any]:
    if isinstance(record, Mapping):
        return record
    if dataclasses.is_dataclass(record) and not isinstance(record, type):
        return {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}
    if hasattr(record, "_asdict"):
        return record._asdict()
    raise StoreError(f"returns.csv: cannot read a row from {type(record).__name__}")


def _read_returns(path: Path) -> ReturnsFile:
    """a2c_core.results.parse_returns of a returns.csv (none: no rows), its error as a
    StoreError. Other OS errors (permissions, a directory) propagate as they are."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return ReturnsFile()
    try:
        return parse_returns(data, str(path))
    except ResultsFileError as exc:
        raise StoreError(str(exc)) from None


def _tail_is_clean(path: Path) -> bool:
    """True if returns.csv is missing/empty or ends with a newline-terminated good line."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            if size == 0:
                return True
            f.seek(max(0, size - 4096))
            tail = f.read()
    except FileNotFoundError:
        return True
    if not tail.endswith(b"\n"):
        return False
    last = tail[:-1].rsplit(b"\n", 1)[-1]
    return last + b"\n" == _HEADER or not isinstance(parse_row(last), str)


@functools.cache
def _installed_versions() -> tuple[tuple[str, str | None], ...]:
    """Package versions recorded in each config.json, read once per process (importlib.metadata
    scans site-packages: ~7 ms per call, 1.3 s for a 180-run sweep)."""
    out: dict[str, str | None] = {"python": platform.python_version(), "code": code_version()}
    for name in _VERSION_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return tuple(out.items())


def _versions() -> dict[str, str | None]:
    return dict(_installed_versions())


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _csv_cell(value: Any) -> str:
    from a2c_core.config import value_text

    return value_text(value)


# --------------------------------------------------------------------------- the store


class Store:
    """Read and write ``<root>/<name>/``. Nothing else writes under the results root."""

    def __init__(self, root: str | Path, name: str) -> None:
        problem = check_name(name)
        if problem:
            raise StoreError(f"sweep name: {problem}")
        self.root = Path(root)
        self.name = name
        self.dir = self.root / name
        self.runs_dir = self.dir / "runs"
        self._finished: set[str] = set()

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r}, {self.name!r})"

    # ---------------------------------------------------------------- paths

    @property
    def sweep_yaml(self) -> Path:
        return self.dir / "sweep.yaml"

    @property
    def runs_csv(self) -> Path:
        return self.dir / "runs.csv"

    def run_dir(self, run_id: str) -> Path:
        if not isinstance(run_id, str) or not _RUN_ID_RE.match(run_id):
            raise StoreError(f"not a run id: {run_id!r}")
        return self.runs_dir / run_id

    def config_path(self, run_id: str) -> Path:
        return self.run_dir(run_id) / "config.json"

    def returns_path(self, run_id: str) -> Path:
        return self.run_dir(run_id) / "returns.csv"

    def status_path(self, run_id: str) -> Path:
        return self.run_dir(run_id) / "status.json"

    def checkpoint_path(self, run_id: str) -> Path:
        return self.run_dir(run_id) / "checkpoint.pt"

    def policy_path(self, run_id: str) -> Path:
        return self.run_dir(run_id) / "policy.pt"

    def run_ids(self) -> list[str]:
        """Run directories present under runs/ (sorted; temp entries and symlinks skipped)."""
        if not _is_real_dir(self.runs_dir):
            return []
        return sorted(
            p.name for p in self.runs_dir.iterdir() if _is_real_dir(p) and _RUN_ID_RE.match(p.name)
        )

    def migrate_run_ids(self, wanted: Iterable[str]) -> list[tuple[str, str]]:
        """Rename run directories named by an older run-id rule (up to 0.1, the epoch count
        was part of a run's id) to the id their config.json and seed have now, when that id
        is in ``wanted`` (this sweep's runs) and not taken: relaunching a sweep made by an
        older version continues its runs instead of recomputing them. Returns (old, new)."""
        wanted = set(wanted)
        moved = []
        for old in self.run_ids():
            if old in wanted:
                continue
            data = self.read_config(old)
            try:
                new = run_id(A2CConfig.from_dict(data["config"]), int(data["seed"]))
            except (KeyError, TypeError, ValueError):
                continue  # not a run of this sweep's making: left alone
            if new == old or new not in wanted or self.run_dir(new).exists():
                continue
            self.check_real(old)
            os.replace(self.run_dir(old), self.run_dir(new))
            _atomic_write_json(self.config_path(new), {**data, "run_id": new})
            moved.append((old, new))
        if moved:
            _fsync_dir(self.runs_dir)
        return moved

    def lock(self) -> SweepLock:
        """Take this sweep's exclusive lock (creating ``<root>/<name>/``); see :class:`SweepLock`.
        Raises :class:`SweepLockedError` when another live process holds it."""
        if self.dir.is_symlink():
            raise StoreError(f"{self.dir}: is a symbolic link; a sweep's directory must be a real "
                             "directory inside the results root (symlink the root instead)")  # fmt: skip
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"{self.dir}: cannot create the results directory: "
                             f"{exc.strerror}") from None  # fmt: skip
        return SweepLock(self.dir / LOCK_NAME).acquire()

    def driver_alive(self) -> bool | None:
        """Is a driver holding this sweep's lock alive? True / False when the lock file names
        a process of this host, None when it cannot tell (no lock file, another host)."""
        try:
            info = json.loads((self.dir / LOCK_NAME).read_text(encoding="utf-8"))
            pid, host = int(info["pid"]), str(info["host"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if host != socket.gethostname():
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def check_real(self, run_id: str) -> None:
        """Raise StoreError if runs/, the run's directory or any file in it is a symbolic link
        (or not what it should be): nothing outside the results root is followed or written."""
        run_dir = self.run_dir(run_id)
        for path in (self.runs_dir, run_dir):
            try:
                mode = os.lstat(path).st_mode
            except FileNotFoundError:
                return
            if stat.S_ISLNK(mode):
                raise StoreError(f"{path}: is a symbolic link; run directories must be real "
                                 "directories inside the results root (remove it and relaunch "
                                 "to recompute)")  # fmt: skip
            if not stat.S_ISDIR(mode):
                raise StoreError(f"{path}: is not a directory (remove it and relaunch)")
        for entry in os.scandir(run_dir):
            if entry.is_symlink():
                raise StoreError(f"{entry.path}: is a symbolic link; run files must be real "
                                 "files inside the results root (remove it and relaunch)")  # fmt: skip

    # ---------------------------------------------------------------- sweep level

    def read_sweep(self) -> Sweep | None:
        """The sweep as last launched, or None if there is no sweep.yaml."""
        if not self.sweep_yaml.exists():
            return None
        return load_spec(self.sweep_yaml)

    def init_sweep(self, sweep: Sweep) -> None:
        """Write sweep.yaml (the launched file's text) after checking it is compatible.

        Raises SpecError, writing nothing, if an existing sweep.yaml under this name holds a
        different experiment (see :func:`runner.spec.check_compatible`) or cannot be read.
        """
        if sweep.name != self.name:
            raise StoreError(f"sweep {sweep.name!r} given to the store of {self.name!r}")
        if self.sweep_yaml.exists():
            try:
                old = load_spec(self.sweep_yaml)
            except SpecError as exc:
                raise SpecError(
                    f"{sweep.path}: name: results already hold a sweep {self.name!r} whose "
                    f"sweep.yaml cannot be read ({exc}); use a new name"
                ) from None
            check_compatible(old, sweep)
        text = sweep.text or Path(sweep.path).read_text(encoding="utf-8")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.clean_temp()
        _atomic_write_bytes(self.sweep_yaml, text.encode("utf-8"))

    def clean_temp(self) -> None:
        """Remove temp files / dirs left by a crash (only names this store creates)."""
        dirs = [self.dir, self.runs_dir, *(self.runs_dir / r for r in self.run_ids())]
        for d in dirs:
            if not _is_real_dir(d):  # never look into a directory a symlink points to
                continue
            for p in d.iterdir():
                if not _TMP_RE.match(p.name):
                    continue
                if _is_real_dir(p):
                    shutil.rmtree(p, ignore_errors=True)
                else:  # a file, or a symlink itself (never its target)
                    p.unlink(missing_ok=True)

    def write_runs_csv(
        self, rows: Sequence[Mapping[str, Any]], swept_keys: Sequence[str] | None = None
    ) -> None:
        """Write runs.csv: run_id, each swept param, seed, state (one row per run).

        ``swept_keys`` gives the param columns (default: the keys of the first row other than
        run_id, seed and state, in order). Floats are written with repr.
        """
        if swept_keys is None:
            swept_keys = (
                [k for k in rows[0] if k not in ("run_id", "seed", "state")] if rows else []
            )
        columns = ["run_id", *swept_keys, "seed", "state"]
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            missing = [c for c in columns if c not in row]
            if missing:
                raise StoreError(f"runs.csv: row {dict(row)!r} lacks {missing[0]!r}")
            writer.writerow([_csv_cell(row[c]) for c in columns])
        _atomic_write_bytes(self.runs_csv, buf.getvalue().encode("utf-8"))

    def runs_table(self, sweep: Sweep) -> list[dict[str, Any]]:
        """Rows for :meth:`write_runs_csv` from a sweep's runs and their status files."""
        rows = []
        for run in sweep.runs():
            status = self.read_status(run.run_id)
            state = status["state"] if status else PENDING
            rows.append({"run_id": run.run_id, **run.swept, "seed": run.seed, "state": state})
        return rows

    def write_runs_csv_for(self, sweep: Sweep) -> list[dict[str, Any]]:
        """Write runs.csv for ``sweep`` from the current status files; return its rows."""
        rows = self.runs_table(sweep)
        self.write_runs_csv(rows, swept_keys=list(sweep.grid))
        return rows

    def read_runs_csv(self) -> list[dict[str, str]]:
        if not self.runs_csv.exists():
            return []
        with open(self.runs_csv, newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))

    # ---------------------------------------------------------------- finished guard

    def is_finished(self, run_id: str) -> bool:
        if run_id in self._finished:
            return True
        status = self.read_status(run_id)
        if status is not None and status["state"] in FINISHED_STATES:
            self._finished.add(run_id)
            return True
        return False

    def _check_writable(self, run_id: str) -> Path:
        run_dir = self.run_dir(run_id)
        self.check_real(run_id)
        if self.is_finished(run_id):
            raise FinishedRunError(f"{run_dir}: run is finished; its files are never rewritten")
        return run_dir

    def restore_done(self, run_id: str, epochs: int) -> bool:
        """A run without a readable status.json whose returns.csv holds epochs 1..k, k at
        least ``epochs``, and whose policy.pt loads is done (its status was lost after its
        last write, or garbled): write status ``done`` again. Returns True if it did."""
        if self.read_status(run_id) is not None or not self.policy_path(run_id).is_file():
            return False
        rows = self.read_returns(run_id)
        if len(rows) < epochs or contiguous_epochs(rows) != len(rows):
            return False
        try:
            self.read_policy(run_id)
        except Exception:  # unreadable weights: the run is recomputed instead
            return False
        self.write_status(run_id, "done", epochs_done=len(rows))
        return True

    def quarantine(self, run_id: str, name: str) -> Path | None:
        """Move a run file that cannot be read aside (``<name>.corrupt-<UTC time>``, kept for
        the user to inspect, never deleted) so that the run can be recomputed."""
        self.check_real(run_id)
        path = self.run_dir(run_id) / name
        if not path.exists():
            return None
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        target = path.with_name(f"{name}.corrupt-{stamp}")
        os.replace(path, target)
        _fsync_dir(path.parent)
        return target

    def rewrite_config(self, run_id: str, config: A2CConfig, seed: int, swept: Mapping) -> None:
        """config.json again, for a run (finished or not) whose config.json is unreadable: it
        is derived from the sweep, so nothing is lost by writing it anew."""
        self.check_real(run_id)
        self._write_config(run_id, config, seed, {"swept": dict(swept)})

    def reopen(self, run_id: str, reason: str, epochs_done: int = 0) -> None:
        """Make a finished run unfinished again, because its files fail verification
        (:meth:`row_problem`) or because ``epochs`` was raised: the one exception to
        "finished runs are never rewritten". Its status becomes ``running`` (at
        ``epochs_done``) with ``reopened: <reason>`` as its error until it ends again."""
        self.check_real(run_id)
        self._finished.discard(run_id)
        status = {"state": "running", "error": f"reopened: {reason}", "wall_s": 0.0,
                  "epochs_done": int(epochs_done), "updated": _now()}  # fmt: skip
        _atomic_write_json(self.status_path(run_id), status)

    def row_problem(
        self, run_id: str, epochs: int | None, status: Mapping | None = None
    ) -> str | None:
        """What is wrong with a run's returns.csv, or None: its epochs must be 1..k without
        a gap or a repeat, and a finished run must have every epoch its status reports
        (``epochs_done``; for a done run without it, at least ``epochs``). A done run may
        hold more rows than ``epochs``: `epochs` was lowered after it ran (rows are kept)."""
        rows = self.read_returns(run_id)
        k = contiguous_epochs(rows)
        if k < len(rows):
            return f"epochs are not contiguous after epoch {k} (next row: epoch {rows[k]['epoch']})"
        if status is None:
            return None
        reported = int(status.get("epochs_done") or 0)
        if status["state"] == "running" and k < reported:
            return f"checkpointed at epoch {reported} but returns.csv holds epochs 1-{k} only"
        if status["state"] in ("done", "diverged", "stopped"):
            want = reported or (epochs if status["state"] == "done" and epochs else k)
            if k != want:
                return (f"status.json says {status['state']} at epoch {want} but returns.csv "
                        f"holds epochs 1-{k}")  # fmt: skip
        return None

    # ---------------------------------------------------------------- config.json

    def write_config(
        self, run_id: str, config: A2CConfig, seed: int, extra: Mapping[str, Any] | None = None
    ) -> None:
        """config.json: {"run_id", "seed", "config": resolved fields, "versions", **extra}."""
        self._check_writable(run_id)
        self._write_config(run_id, config, seed, extra)

    def _write_config(
        self, run_id: str, config: A2CConfig, seed: int, extra: Mapping[str, Any] | None
    ) -> None:
        data: dict[str, Any] = {
            "run_id": run_id,
            "seed": seed,
            "config": config.to_dict(),
            "versions": _versions(),
        }
        if extra:
            data.update(extra)
        _atomic_write_json(self.config_path(run_id), data)

    def read_config(self, run_id: str) -> dict[str, Any] | None:
        try:
            data = json.loads(self.config_path(run_id).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    # ---------------------------------------------------------------- status.json

    def write_status(
        self,
        run_id: str,
        state: str,
        *,
        error: str | None = None,
        wall_s: float = 0.0,
        epochs_done: int = 0,
        rung: int | None = None,
        reason: str | None = None,
    ) -> None:
        """status.json; a ``stopped`` run also records the ``rung`` it was stopped at and
        racing's ``reason``."""
        if state not in STATES:
            raise StoreError(f"status: state must be one of {STATES}, got {state!r}")
        self._check_writable(run_id)
        data = {
            "state": state,
            "error": error,
            "wall_s": float(wall_s),
            "epochs_done": int(epochs_done),
            "updated": _now(),
        }
        if rung is not None:
            data["rung"], data["reason"] = int(rung), reason
        _atomic_write_json(self.status_path(run_id), data)
        if state in FINISHED_STATES:
            self._finished.add(run_id)

    def spared_epochs(self, runs: Iterable[RunSpec]) -> int:
        """Run-epochs racing spared: each stopped run's epochs after the one it stopped at."""
        spared = 0
        for r in runs:
            st = self.read_status(r.run_id)
            if st and st["state"] == "stopped":
                spared += max(0, r.config.epochs - int(st.get("epochs_done") or 0))
        return spared

    def read_status(self, run_id: str) -> dict[str, Any] | None:
        """The status dict, or None when missing or unreadable (the run is then resumed)."""
        try:
            data = json.loads(self.status_path(run_id).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("state") not in STATES:
            return None
        done = data.get("epochs_done")  # hand-edited garbage is no count (None: not written)
        if done is not None and (not isinstance(done, int) or isinstance(done, bool) or done < 0):
            return None
        return data

    # ---------------------------------------------------------------- returns.csv

    def append_returns(self, run_id: str, rows: Iterable[Any]) -> int:
        """Append epoch rows (mappings, dataclasses or namedtuples with RETURN_COLUMNS).

        Writes the header to a new file, drops a torn last line first, then flushes and
        fsyncs once per call. Returns the number of rows appended.
        """
        run_dir = self._check_writable(run_id)
        lines = []
        for record in rows:
            row = _record_to_mapping(record)
            cells = []
            for column in RETURN_COLUMNS:
                if column not in row:
                    raise StoreError(f"returns.csv: row lacks column {column!r}")
                cells.append(_format_number(column, row[column]))
            lines.append(",".join(cells) + "\n")
        if not lines:
            return 0
        path = run_dir / "returns.csv"
        run_dir.mkdir(parents=True, exist_ok=True)
        if not _tail_is_clean(path):
            self.repair_returns(run_id)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "ab") as f:
            if f.tell() == 0:
                f.write(_HEADER)
            f.write("".join(lines).encode("ascii"))
            f.flush()
            os.fsync(f.fileno())
        return len(lines)

    def read_returns(self, run_id: str) -> list[dict[str, Any]]:
        """Rows of returns.csv (ints for epoch/env_steps/episodes, floats else).

        A torn last line is ignored (not removed); a missing file gives [].
        """
        return _read_returns(self.returns_path(run_id)).rows

    def repair_returns(self, run_id: str, last_epoch: int | None = None) -> int:
        """Drop a torn last line and, if ``last_epoch`` is given, keep only the rows of epochs
        1..last_epoch that come first and in order (a gap or a repeated epoch ends them).

        Rewrites the file atomically only when something changes. Returns the last epoch kept
        (0 when no row is left or there is no file).
        """
        self._check_writable(run_id)
        path = self.returns_path(run_id)
        parsed = _read_returns(path)
        rows, torn = parsed.rows, parsed.torn
        keep = list(zip(rows, parsed.lines, strict=True))
        if last_epoch is not None:  # only the contiguous rows 1..last_epoch survive
            keep = keep[: min(contiguous_epochs(rows), max(0, last_epoch))]
        if torn or len(keep) != len(rows):
            body = b"".join(line + b"\n" for _, line in keep)
            _atomic_write_bytes(path, _HEADER + body)
        return keep[-1][0]["epoch"] if keep else 0

    def truncate_returns(self, run_id: str, last_epoch: int) -> int:
        """Keep rows up to the checkpoint's epoch (0: none) before resuming; see repair."""
        return self.repair_returns(run_id, last_epoch=last_epoch)

    # ---------------------------------------------------------------- torch files

    def _write_torch(self, path: Path, obj: Any) -> None:
        import torch

        obj = to_torch(obj)  # workers send numpy; files hold tensors
        _atomic_write(path, lambda f: torch.save(obj, f))

    def write_checkpoint(self, run_id: str, state: Mapping[str, Any]) -> None:
        """checkpoint.pt: tensors and plain values only (torch.load(weights_only=True) safe)."""
        self._check_writable(run_id)
        self._write_torch(self.checkpoint_path(run_id), state)

    def read_checkpoint(self, run_id: str) -> dict[str, Any] | None:
        """The latest checkpoint, or None if missing or unreadable (start from epoch 0)."""
        path = self.checkpoint_path(run_id)
        if not path.exists():
            return None
        import torch

        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception:  # a corrupt checkpoint means "start over"
            return None

    def write_policy(self, run_id: str, state: Mapping[str, Any]) -> None:
        """policy.pt: the final policy weights (a state dict)."""
        self._check_writable(run_id)
        self._write_torch(self.policy_path(run_id), state)

    def read_policy(self, run_id: str) -> dict[str, Any]:
        """policy.pt through a2c_core.results.read_policy (params as numpy arrays)."""
        try:
            return read_policy(self.policy_path(run_id))
        except ResultsFileError as exc:
            raise StoreError(str(exc)) from None

    # ---------------------------------------------------------------- reuse across sweeps

    def find_finished_elsewhere(
        self, run_id: str, states: Iterable[str] = FINISHED_STATES, min_epochs: int = 0
    ) -> Path | None:
        """A finished copy of ``run_id`` in another sweep of the same root (done preferred);
        a done copy must hold at least ``min_epochs`` epochs (a shorter one is no use to a
        sweep that asks for more: extending its own run costs less)."""
        self.run_dir(run_id)  # validates the id
        states = set(states)
        if not self.root.is_dir():
            return None
        found: dict[str, Path] = {}
        for sweep_dir in sorted(self.root.iterdir()):
            if sweep_dir.name == self.name or sweep_dir.name.startswith("."):
                continue
            if not sweep_dir.is_dir():
                continue
            if check_name(sweep_dir.name):
                continue
            other = Store(self.root, sweep_dir.name)
            status = other.read_status(run_id)
            if status is None or status["state"] not in states:
                continue
            if status["state"] == "done" and int(status.get("epochs_done") or 0) < min_epochs:
                continue
            config = other.read_config(run_id)
            if config is None or config.get("run_id") != run_id:
                continue
            if not other.returns_path(run_id).is_file():
                continue
            try:
                other.check_real(run_id)
                epochs = int(config["config"]["epochs"])
                if other.row_problem(run_id, epochs, status):
                    continue  # an incomplete copy is not worth copying
            except (StoreError, KeyError, TypeError, ValueError):
                continue
            found.setdefault(status["state"], other.run_dir(run_id))
        for state in ("done", "diverged", "failed"):
            if state in found:
                return found[state]
        return None

    def copy_finished_from_other_sweep(
        self, run_id: str, states: Iterable[str] = FINISHED_STATES, min_epochs: int = 0
    ) -> Path | None:
        """Copy a finished run with this id from another sweep of the root into runs/.

        Copies config.json, returns.csv, status.json, policy.pt and a done run's final
        checkpoint.pt (which extending it continues from) into a
        temp dir, then renames it into place (an unfinished run dir here is replaced). Returns
        the run directory copied from; None if none exists (see :meth:`find_finished_elsewhere`)
        or this run is already finished here.
        """
        if self.is_finished(run_id):
            return None
        source = self.find_finished_elsewhere(run_id, states, min_epochs)
        if source is None:
            return None
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=self.runs_dir, prefix=f"{_TMP_PREFIX}{run_id}."))
        try:
            for name in ("config.json", "returns.csv", "policy.pt", "checkpoint.pt", "status.json"):
                src = source / name
                if not src.exists():
                    continue
                shutil.copyfile(src, tmp / name)
                with open(tmp / name, "rb") as f:
                    os.fsync(f.fileno())
            _fsync_dir(tmp)
            target = self.run_dir(run_id)
            if target.exists():
                old = Path(tempfile.mkdtemp(dir=self.runs_dir, prefix=f"{_TMP_PREFIX}old."))
                os.replace(target, old / run_id)
                os.replace(tmp, target)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, target)
            _fsync_dir(self.runs_dir)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self._finished.discard(run_id)
        return source

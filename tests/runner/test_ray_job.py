"""The README's "Overnight on a Ray cluster" recipe, run as a user runs it, on this machine.

``ray start --head`` (with its dashboard, which serves the job API) and a second node joined
with ``ray start --address``, one CPU each; ``ray job submit --no-wait`` of ``a2c-sweep
run``; ``ray job stop`` mid-sweep; the same ``ray job submit`` again, followed to its end
with ``ray job logs --follow``. The rows must be bitwise those of the same sweep run
uninterrupted with the plain CLI (its embedded Ray).

Token authentication: Ray 2.60's ``ray start --head`` turns it on when ``~/.ray/auth_token``
exists (a first local ``a2c-sweep run`` creates that file: the embedded Ray generates it).
Every other client then needs ``RAY_AUTH_MODE=token`` (with the same token): ``ray start
--address`` and the ``ray job`` commands. The job's driver inherits the head's environment,
token mode included, so it needs nothing. Both cases run here, each with a HOME of its own
(with and without ``.ray/auth_token``), so the user's ``~/.ray`` is neither read nor written.

The value-fit kernels are shared with the user's (``A2C_SWEEP_KERNEL_DIR`` or
``~/.cache/a2c-sweep/kernels``) and compiled before the reference: a kernel JIT-compiled in
a process gives other float32 results than the same kernel loaded from numba's cache.

Every Ray process this test starts is in a session of its own (``start_new_session``) or in
a session started by one of them (the job drivers): at the end those sessions are killed by
pid, never with ``ray stop``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from test_launch import (
    LONG,
    LONG_EPOCHS,
    child_env,
    free_ports,
    read_rows,
    row_count,
    wait_for,
    without_wall,
)

from runner.spec import load_spec

# each test starts a Ray cluster of its own: under pytest-xdist they share one worker
pytestmark = pytest.mark.xdist_group("ray_cluster")

BIN = Path(sys.executable).parent
A2C_SWEEP = BIN / "a2c-sweep"
RAY = BIN / "ray"

EPOCHS = LONG_EPOCHS  # test_launch.py's LONG sweep: 4 runs of 300 epochs in 2 packs
PLAIN_PROGRESS_EVERY_S = 2  # A2C_SWEEP_PROGRESS_EVERY_S of the jobs (the CLI's default is 30)


# --------------------------------------------------------------------------- helpers


def run_state(run_dir: Path) -> str | None:
    try:
        return json.loads((run_dir / "status.json").read_text())["state"]
    except (FileNotFoundError, ValueError, KeyError):
        return None


def proc_stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, session id) of a live process, None if gone or a zombie."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = data[data.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[1]), int(fields[3])


def all_procs() -> dict[int, tuple[int, int]]:
    out = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (st := proc_stat(int(entry.name))) is not None:
            out[int(entry.name)] = st
    return out


def sessions_of(roots: list[int]) -> set[int]:
    """The sessions ``roots`` (session leaders this test started) and every session one of
    their descendants started (a job's driver runs in one of its own)."""
    procs = all_procs()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in procs.items():
        children.setdefault(ppid, []).append(pid)
    sids, todo = set(roots), [p for p, (_, sid) in procs.items() if sid in roots]
    while todo:
        pid = todo.pop()
        for child in children.get(pid, []):
            sids.add(procs[child][1])
            todo.append(child)
    sids.discard(0)
    sids.discard(os.getsid(0))  # never this test's own session
    return sids


def kill_sessions(sids: set[int], timeout: float = 20) -> int:
    """SIGKILL every process in the sessions ``sids`` (from :func:`sessions_of`, taken while
    the process tree is whole). Returns how many processes there were."""

    def alive() -> list[int]:
        return [pid for pid, (_, sid) in all_procs().items() if sid in sids]

    killed: set[int] = set()

    def kill_alive() -> bool:  # again until none is left: a dying raylet may still fork
        pids = alive()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        killed.update(pids)
        return not pids

    wait_for(kill_alive, timeout, f"sessions {sorted(sids)} to end", interval=0.2)
    return len(killed)


# --------------------------------------------------------------------------- the cluster


@dataclass
class Cluster:
    env: dict[str, str]  # of every `ray` command: HOME, and RAY_AUTH_MODE=token if needed
    gcs: str  # HOST:PORT, for `ray start --address`
    dashboard: str  # http://HOST:PORT, for `ray job`
    token: str | None
    logs: list[Path]

    def ray(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(RAY), *args], capture_output=True, text=True, timeout=timeout,
            env=self.env, stdin=subprocess.DEVNULL,
        )  # fmt: skip

    def job(self, verb: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        out = self.ray("job", verb, "--address", self.dashboard, *args, timeout=timeout)
        assert out.returncode == 0, f"ray job {verb} {args}:\n{out.stdout}{out.stderr}"
        return out

    def job_status(self, job_id: str) -> str:
        """The status `ray job status` prints (a sentence for terminal states)."""
        out = self.job("status", job_id)
        text = out.stdout + out.stderr
        for pattern, status in ((rf"Job '{job_id}' succeeded", "SUCCEEDED"),
                                (rf"Job '{job_id}' was stopped", "STOPPED"),
                                (rf"Job '{job_id}' failed", "FAILED"),
                                (rf"Status for job '{job_id}': (\w+)", None)):  # fmt: skip
            if found := re.search(pattern, text):
                return status or found[1]
        raise AssertionError(f"no status in `ray job status`:\n{text}")

    def job_logs(self, job_id: str) -> str:
        out = self.job("logs", job_id)
        return out.stdout + out.stderr

    def api(self, path: str) -> object:
        """GET a dashboard endpoint (the token as a bearer token when auth is on)."""
        req = urllib.request.Request(self.dashboard + path)
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        with urllib.request.urlopen(req, timeout=5) as resp:
            return json.loads(resp.read())

    def api_job_status(self, job_id: str) -> str:
        return self.api(f"/api/jobs/{job_id}")["status"]

    def alive_nodes(self) -> int:
        try:
            data = self.api("/api/v0/nodes?limit=100")
        except (OSError, ValueError):
            return 0
        nodes = data.get("data", {}).get("result", {}).get("result", [])
        return sum(1 for n in nodes if n.get("state") == "ALIVE")

    def tail(self) -> str:
        return "".join(f"\n--- {p.name}\n{p.read_text()[-3000:]}" for p in self.logs
                       if p.exists())  # fmt: skip


def start_node(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """`ray start ARGS --block` in a new session: it and every daemon it starts share the
    session id, which is its pid."""
    with open(log, "wb") as out:
        return subprocess.Popen(
            [str(RAY), "start", *args, "--disable-usage-stats", "--block"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            start_new_session=True,
        )  # fmt: skip


def listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def two_node_cluster(tmp_path: Path, env: dict[str, str], token: str | None) -> Iterator[Cluster]:
    """A head and a second node, 1 CPU each, on this machine; killed at exit. ``env`` is
    that of the second node and of the ``ray job`` commands; the head gets it without
    RAY_AUTH_MODE, as README's plain ``ray start --head``."""
    head_env = {k: v for k, v in env.items() if k != "RAY_AUTH_MODE"}
    # jobs run in the head's environment: a plain progress line every 2 s, not 30 s
    head_env["A2C_SWEEP_PROGRESS_EVERY_S"] = str(PLAIN_PROGRESS_EVERY_S)
    gcs_port, dash_port, client_port, head_agent_port, node_agent_port = free_ports(5)
    # short temp dirs: Ray's unix sockets live under them (108-byte path limit), and one per
    # node, as two nodes of one machine would otherwise share the head's session directory
    temps = [tempfile.mkdtemp(prefix=p, dir="/tmp") for p in ("rjh", "rjw")]
    cluster = Cluster(env=env, gcs=f"127.0.0.1:{gcs_port}",
                      dashboard=f"http://127.0.0.1:{dash_port}", token=token,
                      logs=[tmp_path / "head.log", tmp_path / "node2.log"])  # fmt: skip
    procs: list[subprocess.Popen] = []
    try:
        head = start_node(
            ["--head", "--num-cpus", "1", "--port", str(gcs_port),
             "--include-dashboard", "true", "--dashboard-port", str(dash_port),
             "--temp-dir", temps[0], "--ray-client-server-port", str(client_port),
             "--dashboard-agent-listen-port", str(head_agent_port)],
            head_env, cluster.logs[0],
        )  # fmt: skip
        procs.append(head)

        def head_up() -> bool:
            assert head.poll() is None, cluster.tail()
            if not listening(gcs_port):
                return False
            try:
                return "ray_version" in cluster.api("/api/version")
            except (OSError, ValueError):
                return False

        wait_for(head_up, 90, "the Ray head and its dashboard", interval=0.25)
        # token mode on the head iff the token file exists: this is how Ray 2.60 decides
        head_text = cluster.logs[0].read_text()
        if token:
            assert "Token authentication is enabled" in head_text, cluster.tail()
        else:
            assert "Token authentication is disabled" in head_text, cluster.tail()

        node = start_node(
            ["--address", cluster.gcs, "--num-cpus", "1", "--temp-dir", temps[1],
             "--dashboard-agent-listen-port", str(node_agent_port)],
            env, cluster.logs[1],
        )  # fmt: skip
        procs.append(node)

        def two_nodes() -> bool:
            assert head.poll() is None and node.poll() is None, cluster.tail()
            return cluster.alive_nodes() == 2

        wait_for(two_nodes, 90, "the second node to join", interval=0.5)
        yield cluster
    finally:
        # SIGKILL (on SIGTERM a head drains for up to 30 s) every process of the nodes'
        # sessions and of those their descendants started (a job's driver and its watcher),
        # listed before anything dies and is reparented away from the tree
        sids = sessions_of([p.pid for p in procs])
        kill_sessions(sids)
        for p in procs:
            p.wait(timeout=30)
        for t in temps:
            shutil.rmtree(t, ignore_errors=True)


# --------------------------------------------------------------------------- fixtures


def kernel_dir() -> str:
    """a2c_core.valuefit.kernel_dir() of the user (not of the private HOMEs below)."""
    default = Path.home() / ".cache" / "a2c-sweep" / "kernels"
    return os.environ.get("A2C_SWEEP_KERNEL_DIR", str(default))


def user_env(home: Path, **extra: str) -> dict[str, str]:
    """A user's environment with HOME ``home`` (for ~/.ray) and the user's kernel cache."""
    home.mkdir(parents=True, exist_ok=True)
    return child_env(HOME=str(home), A2C_SWEEP_KERNEL_DIR=kernel_dir(), **extra)


@pytest.fixture(scope="module")
def sweep_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sweep") / "long.yaml"
    path.write_text(yaml.safe_dump(LONG, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def reference(tmp_path_factory, sweep_file: Path) -> dict:
    """The sweep run once without interruption by the plain CLI (embedded Ray), after the
    kernels are compiled: rows (no wall_s) per run id."""
    tmp = tmp_path_factory.mktemp("reference")
    env = user_env(tmp / "home")
    warm = subprocess.run(
        [str(A2C_SWEEP), "train", "--env", "CartPole-v0", "--epochs", "1", "--num-envs", "2",
         "--steps-per-epoch", "64", "--value-iters", "1"],
        capture_output=True, text=True, timeout=120, env=env, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert warm.returncode == 0, warm.stdout + warm.stderr
    start = time.monotonic()
    out = subprocess.run(
        [str(A2C_SWEEP), "run", str(sweep_file), "--results", str(tmp / "results")],
        capture_output=True, text=True, timeout=240, env=env, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    wall = time.monotonic() - start
    assert out.returncode == 0, out.stdout + out.stderr
    rows = {}
    for r in load_spec(sweep_file).runs():
        got = read_rows(tmp / "results" / "long" / "runs" / r.run_id / "returns.csv")
        assert [int(g["epoch"]) for g in got] == list(range(1, EPOCHS + 1)), r.run_id
        rows[r.run_id] = without_wall(got)
    return {"rows": rows, "wall_s": wall}


# --------------------------------------------------------------------------- the test


@pytest.mark.timeout(400)
@pytest.mark.parametrize("token_file", [True, False], ids=["token-file", "no-token-file"])
def test_overnight_recipe_ray_job_stop_and_resubmit(
    tmp_path: Path, sweep_file: Path, reference: dict, token_file: bool
) -> None:
    """README's recipe: 2 one-CPU nodes, `ray job submit --no-wait`, `ray job stop` mid-sweep
    (after a checkpoint and 3% of the rows: early, as `ray job stop` itself can take
    seconds on a loaded machine), the same submit again to its end: every run's
    rows are bitwise the uninterrupted sweep's, and `ray job logs` has the plain lines."""
    t0 = time.monotonic()
    home = tmp_path / "home"
    env = user_env(home)
    token = None
    if token_file:  # what a user does once (or what a first local `a2c-sweep run` does)
        gen = subprocess.run([str(RAY), "get-auth-token", "--generate"], capture_output=True,
                             text=True, timeout=60, env=env, stdin=subprocess.DEVNULL)  # fmt: skip
        assert gen.returncode == 0, gen.stdout + gen.stderr
        token = (home / ".ray" / "auth_token").read_text().strip()
        assert token and token in gen.stdout
        env["RAY_AUTH_MODE"] = "token"  # for the second node and the `ray job` commands
    else:
        assert not (home / ".ray" / "auth_token").exists()

    results = tmp_path / "results"
    run_ids = list(reference["rows"])
    dirs = [results / "long" / "runs" / rid for rid in run_ids]
    total = EPOCHS * len(run_ids)
    entrypoint = [str(A2C_SWEEP), "run", str(sweep_file), "--results", str(results)]

    with two_node_cluster(tmp_path, env, token) as cluster:
        t_up = time.monotonic()
        # ---- first job: stopped mid-sweep
        cluster.job("submit", "--no-wait", "--submission-id", "a2c-first", "--", *entrypoint)
        checked = [0.0]

        def stoppable() -> bool:
            if time.monotonic() - checked[0] > 2:  # a job that ended already: say so now
                checked[0] = time.monotonic()
                try:
                    status = cluster.api_job_status("a2c-first")
                except (OSError, ValueError):  # the dashboard busy: the files still tell
                    return False
                assert status in ("PENDING", "RUNNING"), (
                    f"first job {status}:\n{cluster.job_logs('a2c-first')}{cluster.tail()}"
                )
            return any((d / "checkpoint.pt").exists() for d in dirs) and (
                sum(row_count(d / "returns.csv") for d in dirs) >= 0.03 * total
            )

        try:
            wait_for(stoppable, 150, "rows and a checkpoint from the first job", interval=0.1)
        except AssertionError as exc:
            if "timed out" not in str(exc):
                raise
            raise AssertionError(
                f"{exc}\n{cluster.job_logs('a2c-first')}{cluster.tail()}"
            ) from None
        t_stop = time.monotonic()
        cluster.job("stop", "a2c-first")  # waits for the job to end (SIGTERM, SIGKILL after 3 s)
        stop_s = time.monotonic() - t_stop
        assert cluster.job_status("a2c-first") == "STOPPED"
        first_logs = cluster.job_logs("a2c-first")
        rows_at_stop = sum(row_count(d / "returns.csv") for d in dirs)
        states = [run_state(d) for d in dirs]
        assert states.count("done") < len(dirs), (
            f"the sweep ended before the stop ({stop_s:.1f} s, at {rows_at_stop} of {total} rows): "
            f"{states}"
        )
        resumable = sum(1 for d, s in zip(dirs, states, strict=True)
                        if (d / "checkpoint.pt").exists() and s != "done")  # fmt: skip
        assert "sweep long: 4 runs, 0 already finished, 4 to train" in first_logs, first_logs
        assert "done: 4 done" not in first_logs, first_logs

        # ---- the same command again, followed to its end
        t_second = time.monotonic()
        cluster.job("submit", "--no-wait", "--submission-id", "a2c-second", "--", *entrypoint)
        follow = cluster.job("logs", "--follow", "a2c-second", timeout=240)
        second_s = time.monotonic() - t_second
        assert cluster.job_status("a2c-second") == "SUCCEEDED", follow.stdout + cluster.tail()
        logs = cluster.job_logs("a2c-second")

    # what `ray job logs` shows: the plain lines of a run whose output is not a terminal
    started = re.findall(r"sweep long: 4 runs, (\d+) already finished, (\d+) to train(.*)", logs)
    assert len(started) == 1, logs
    finished, todo, rest = int(started[0][0]), int(started[0][1]), started[0][2]
    assert finished + todo == 4 and todo >= 1, logs
    if resumable:
        assert "from checkpoints" in rest, (resumable, logs)
    assert re.search(r"\b2 CPUs\b", logs), logs  # both nodes' CPUs
    assert "done: 4 done, 0 failed, 0 diverged" in logs, logs
    assert "done: 4 done" in follow.stdout, follow.stdout  # `--follow` showed it too
    # one plain progress line per PLAIN_PROGRESS_EVERY_S of training
    trained = re.search(r"trained in ([\d.]+) s", logs)
    train_s = float(trained[1]) if trained else float("nan")
    progress = re.findall(r"^\[\d\d:\d\d\] long: epochs \d+/1200, runs .*$", logs, re.M)
    assert len(progress) >= min(3, int(train_s / PLAIN_PROGRESS_EVERY_S) - 1), logs

    # every run: epochs 1..N once, bitwise the uninterrupted sweep's rows
    for rid, d in zip(run_ids, dirs, strict=True):
        assert run_state(d) == "done", rid
        rows = read_rows(d / "returns.csv")
        assert [int(r["epoch"]) for r in rows] == list(range(1, EPOCHS + 1)), rid
        assert without_wall(rows) == reference["rows"][rid], f"{rid}: rows differ"
        assert (d / "policy.pt").is_file()

    print(
        f"\n[ray job, {'token' if token_file else 'no token'}] cluster up in "
        f"{t_up - t0:.1f} s; stopped at {rows_at_stop}/{total} run-epochs "
        f"(`ray job stop` {stop_s:.1f} s, {resumable} runs resumable); second job "
        f"{second_s:.1f} s ({train_s:.1f} s of training, {len(progress)} progress "
        f"lines); reference {reference['wall_s']:.1f} s; test {time.monotonic() - t0:.1f} s"
    )

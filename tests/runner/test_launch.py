"""The sweep runner end to end: the CLI, Ray execution, and surviving kills.

Every sweep here is tiny (CartPole-v0, 2 envs, short epochs). The CLI tests run
``a2c-sweep`` in a subprocess with its own embedded Ray; the two-node test runs Ray in this
process through ``ray.cluster_utils.Cluster``; the existing-head test starts ``ray start
--head`` as a child and ends it by its process group (never ``ray stop``).

Bitwise comparisons read returns.csv with the csv module and compare the cell strings of
every column except ``wall_s``.
"""

from __future__ import annotations

import contextlib
import csv
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from runner.messages import Checkpoint, Failed, Rows, RunEnded
from runner.spec import load_spec

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SWEEPS = ROOT / "sweeps"

TINY = {"env": "CartPole-v0", "num_envs": 2, "steps_per_epoch": 64, "value_iters": 2}
# The sweep of the kill / resume tests: 4 runs in 2 packs of ~20 ms per epoch, about 6 s of
# training on 2 CPUs after Ray's start-up (epochs must be long enough that the packs are
# still training, not just the driver catching up, when a test kills something).
LONG_EPOCHS = 300
LONG = {
    "name": "long",
    "env": "CartPole-v0",
    "num_envs": 4,
    "steps_per_epoch": 1000,
    "value_iters": 80,
    "epochs": LONG_EPOCHS,
    "grid": {"policy_lr": [0.1, 0.01]},
    "seeds": [1, 2],
    # 2 CPUs whatever the machine has: the kill tests expect 2 packs
    "execution": {"checkpoint_every_s": 0.2, "num_cpus": 2},
}


# --------------------------------------------------------------------------- helpers


def cli() -> list[str]:
    exe = BIN / "a2c-sweep"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "runner.cli"]


RAY_CLUSTER_VARS = ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a child: no inherited cluster address or auth settings."""
    env = {k: v for k, v in os.environ.items() if k not in RAY_CLUSTER_VARS}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def run_cli(
    *args: str | Path, timeout: float = 180, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*cli(), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env or child_env(),
        stdin=subprocess.DEVNULL,
    )


def write_sweep(path: Path, spec: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def tiny_sweep(name: str, *, epochs: int, grid: dict, seeds: list[int], **more) -> dict:
    fixed = {k: v for k, v in {**TINY, "epochs": epochs, **more}.items() if k not in grid}
    return {"name": name, **fixed, "grid": grid, "seeds": seeds}


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def without_wall(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{k: v for k, v in r.items() if k != "wall_s"} for r in rows]


def assert_epochs_once(rows: list[dict[str, str]], epochs: int, where: object) -> None:
    got = [int(r["epoch"]) for r in rows]
    assert got == list(range(1, epochs + 1)), f"{where}: epochs {got}"


def run_dir(results: Path, name: str, run_id: str) -> Path:
    return results / name / "runs" / run_id


def state_of(results: Path, name: str, run_id: str) -> dict:
    import json

    return json.loads((run_dir(results, name, run_id) / "status.json").read_text())


def tree_snapshot(root: Path) -> dict[str, tuple[int, bytes]]:
    """Every file under root: (mtime_ns, content)."""
    return {
        str(p.relative_to(root)): (p.stat().st_mtime_ns, p.read_bytes())
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def without_lock(snapshot: dict[str, tuple[int, bytes]]) -> dict[str, tuple[int, bytes]]:
    return {k: v for k, v in snapshot.items() if not k.endswith("/.lock")}


def row_count(path: Path) -> int:
    """Complete data rows of a returns.csv being written (0 when missing)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return 0
    return max(0, data.count(b"\n") - 1)


def wait_for(pred: Callable[[], bool], timeout: float, what: str, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def proc_stat(pid: int) -> tuple[str, int, int] | None:
    """(comm, pgid, session id) of a live process, None if gone or a zombie."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    comm = data[data.index("(") + 1 : data.rindex(")")]
    fields = data[data.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return comm, int(fields[2]), int(fields[3])


def session_pids(sid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            st = proc_stat(int(entry.name))
            if st is not None and st[2] == sid:
                out.append(int(entry.name))
    return out


def kill_session(sid: int, timeout: float = 20) -> int:
    """SIGKILL every process left in session ``sid`` (one this test created with
    start_new_session, so all of them are its descendants). Returns how many there were."""
    pids = session_pids(sid)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not session_pids(sid), timeout, f"session {sid} to end")
    return len(pids)


def _terminal_signals() -> None:
    """In the child: SIGINT/SIGTERM/SIGHUP as a shell in a terminal leaves them, whatever the
    test run inherited (under `nohup`, SIGHUP arrives ignored and the driver keeps it so)."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


@contextlib.contextmanager
def driver(args: list[str | Path], log: Path) -> Iterator[subprocess.Popen]:
    """`a2c-sweep ARGS` in a new session (so its embedded Ray shares its session id), with
    default signal dispositions; whatever of it is left at exit is killed."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [*cli(), *map(str, args)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=child_env(),
            start_new_session=True,
            preexec_fn=_terminal_signals,
        )
        try:
            yield proc
        finally:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
            kill_session(proc.pid)


def free_ports(n: int) -> list[int]:
    """``n`` distinct free ports: every socket stays bound until all are chosen, as ports
    taken one at a time can repeat (seen in CI: Ray refused a dashboard port that was also
    its agent's)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]


# --------------------------------------------------------------------------- reference


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict:
    """The LONG sweep run once without interruption: rows (no wall_s) per run id."""
    tmp = tmp_path_factory.mktemp("reference")
    path = write_sweep(tmp / "long.yaml", LONG)
    start = time.monotonic()
    out = run_cli("run", path, "--results", tmp / "results", timeout=240)
    wall = time.monotonic() - start
    assert out.returncode == 0, out.stdout + out.stderr
    rows = {}
    for r in load_spec(path).runs():
        got = read_rows(run_dir(tmp / "results", "long", r.run_id) / "returns.csv")
        assert_epochs_once(got, LONG_EPOCHS, r.run_id)
        rows[r.run_id] = without_wall(got)
    return {"rows": rows, "wall_s": wall}


def assert_matches_reference(results: Path, reference: dict) -> None:
    for run_id, want in reference["rows"].items():
        d = run_dir(results, "long", run_id)
        assert state_of(results, "long", run_id)["state"] == "done", run_id
        rows = read_rows(d / "returns.csv")
        assert_epochs_once(rows, LONG_EPOCHS, run_id)
        assert without_wall(rows) == want, f"{run_id}: rows differ from the uninterrupted sweep"
        assert (d / "policy.pt").is_file()


# --------------------------------------------------------------------------- 1. CLI input


BAD_SWEEPS = {
    "unknown-key": (
        """\
        name: bad
        env: CartPole-v0
        polcy_lr: 0.1
        seeds: [1]
        """,
        "polcy_lr",
    ),
    "unknown-grid-key": (
        """\
        name: bad
        grid:
          gama: [0.9, 0.99]
        seeds: [1]
        """,
        "grid.gama",
    ),
    "wrong-type": (
        """\
        name: bad
        num_envs: eight
        seeds: [1]
        """,
        "num_envs",
    ),
    "syntax-error": (
        """\
        name: bad
        grid: {policy_lr: [0.1, 0.01
        seeds: [1]
        """,
        "line ",
    ),
    "unknown-env": (
        """\
        name: bad
        env: CartPole-v9
        seeds: [1]
        """,
        "env",
    ),
    # refused before Ray starts: the policies need a Box observation (it used to fail every
    # run after Ray's start)
    "unsupported-env": (
        """\
        name: bad
        grid:
          env: [Acrobot-v1, FrozenLake-v1]
        seeds: [1]
        """,
        "grid.env[1]: FrozenLake-v1: observation space Discrete(16) is not supported",
    ),
    "env-module-missing": (
        """\
        name: bad
        env: "no_such_module_xyz:MyEnv-v0"
        seeds: [1]
        """,
        "env: no_such_module_xyz:MyEnv-v0: cannot import module 'no_such_module_xyz'",
    ),
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", sorted(BAD_SWEEPS))
def test_run_rejects_bad_sweep(tmp_path: Path, case: str) -> None:
    text, key = BAD_SWEEPS[case]
    path = tmp_path / f"{case}.yaml"
    path.write_text(textwrap.dedent(text))
    results = tmp_path / "results"
    out = run_cli("run", path, "--results", results, timeout=50)
    assert out.returncode == 2, out.stdout + out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("a2c-sweep: error: ") and str(path) in lines[0], lines[0]
    assert key in lines[0], lines[0]
    assert not results.exists()
    assert out.stdout == ""


@pytest.mark.timeout(60)
def test_dry_run_counts_and_loads_neither_torch_nor_ray(tmp_path: Path) -> None:
    results = tmp_path / "results"
    code = (
        "import sys\n"
        "from runner.cli import main\n"
        f"rc = main(['run', {str(SWEEPS / 'cartpole_v0_grid.yaml')!r}, '--dry-run',"
        f" '--results', {str(results)!r}])\n"
        "print('LOADED', sorted(m for m in ('torch', 'ray') if m in sys.modules))\n"
        "sys.exit(rc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=50, env=child_env()
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "36 configs x 5 seeds = 180 runs" in out.stdout, out.stdout
    assert "LOADED []" in out.stdout, out.stdout
    assert not results.exists()


@pytest.mark.timeout(30)
def test_shipped_sweeps_load() -> None:
    grid = load_spec(SWEEPS / "cartpole_v0_grid.yaml")
    assert grid.name == "cartpole-v0-grid" and grid.num_runs == 180
    assert grid.seeds == [9827391, 8534101, 4305430, 12654329, 3483055]
    assert grid.grid == {
        "policy_lr": [0.1, 0.01, 0.001],
        "value_lr": [0.1, 0.01, 0.001],
        "gamma": [0.99, 0.999],
        "lam": [0.9, 0.99],
    }
    cfg = grid.runs()[0].config
    assert (cfg.env, cfg.num_envs, cfg.steps_per_epoch, cfg.epochs, cfg.value_iters) == (
        "CartPole-v0", 8, 4052, 100, 80,
    )  # fmt: skip
    assert grid.execution.checkpoint_every_s == 60

    swing = load_spec(SWEEPS / "swingup.yaml")
    assert swing.name == "swingup" and swing.grid == {} and list(swing.seeds) == list(range(16))
    assert swing.num_runs == 16
    cfg = swing.runs()[0].config
    assert (cfg.env, cfg.gamma, cfg.lam, cfg.policy_lr, cfg.value_lr, cfg.epochs) == (
        "CartPoleSwingUp-v0", 0.999, 0.99, 0.01, 0.1, 256,
    )  # fmt: skip
    assert (cfg.num_envs, cfg.steps_per_epoch, cfg.value_iters) == (8, 4052, 80)

    for path in sorted(SWEEPS.glob("*.yaml")):
        load_spec(path)  # every shipped sweep is valid


# --------------------------------------------------------------------------- 2. end to end


@pytest.mark.timeout(240)
def test_run_status_relaunch_edit_and_incompatible(tmp_path: Path) -> None:
    results = tmp_path / "results"
    spec = tiny_sweep(
        "e2e", epochs=4, grid={"policy_lr": [0.1, 0.01], "value_lr": [0.01]}, seeds=[1, 2]
    )
    path = write_sweep(tmp_path / "e2e.yaml", spec)
    out = run_cli("run", path, "--results", results)
    assert out.returncode == 0, out.stdout + out.stderr
    sweep = load_spec(path)
    for r in sweep.runs():
        d = run_dir(results, "e2e", r.run_id)
        assert state_of(results, "e2e", r.run_id)["state"] == "done"
        assert_epochs_once(read_rows(d / "returns.csv"), 4, r.run_id)
        assert (d / "policy.pt").is_file() and (d / "config.json").is_file()
    table = read_rows(results / "e2e" / "runs.csv")
    assert list(table[0]) == ["run_id", "policy_lr", "value_lr", "seed", "state"]
    assert sorted(t["run_id"] for t in table) == sorted(r.run_id for r in sweep.runs())
    assert {t["state"] for t in table} == {"done"}

    st = run_cli("status", results / "e2e", timeout=60)
    assert st.returncode == 0, st.stdout + st.stderr
    assert "4 runs: 4 done, 0 running, 0 failed, 0 diverged, 0 pending" in st.stdout, st.stdout
    assert "epochs 16/16" in st.stdout and "best configuration" in st.stdout, st.stdout

    # relaunch: nothing to train, no run file touched; --report writes the sweep's report
    runs_before = tree_snapshot(results / "e2e" / "runs")
    again = run_cli("run", path, "--results", results, "--report")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "4 already finished, 0 to train" in again.stdout, again.stdout
    assert tree_snapshot(results / "e2e" / "runs") == runs_before
    report = results / "e2e" / "report.html"
    assert f"wrote {report}" in again.stdout, again.stdout
    page = report.read_text(encoding="utf-8")
    assert ">finished<" in page and "<dt>runs</dt><dd>4 (4 done)</dd>" in page
    assert 'src="data:image/gif;base64,' in page  # the best run kept its policy

    # an edit: one more policy_lr trains only the 2 new runs
    spec["grid"]["policy_lr"].append(0.001)
    write_sweep(path, spec)
    edited = run_cli("run", path, "--results", results)
    assert edited.returncode == 0, edited.stdout + edited.stderr
    assert "6 runs, 4 already finished, 2 to train" in edited.stdout, edited.stdout
    after = tree_snapshot(results / "e2e" / "runs")
    assert {k: v for k, v in after.items() if k in runs_before} == runs_before
    new_ids = {r.run_id for r in load_spec(path).runs()} - {r.run_id for r in sweep.runs()}
    assert len(new_ids) == 2
    for rid in new_ids:
        assert state_of(results, "e2e", rid)["state"] == "done"
        assert_epochs_once(read_rows(run_dir(results, "e2e", rid) / "returns.csv"), 4, rid)
    table = read_rows(results / "e2e" / "runs.csv")
    assert len(table) == 6 and {t["state"] for t in table} == {"done"}

    # another experiment under the same name: refused, nothing changed
    everything = tree_snapshot(results)
    other = write_sweep(tmp_path / "other.yaml", {**spec, "num_envs": 3})
    bad = run_cli("run", other, "--results", results, timeout=60)
    assert bad.returncode == 2, bad.stdout + bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1 and "num_envs" in bad.stderr, bad.stderr
    # (.lock names the last launch that held it, refused or not: it is not a result)
    assert without_lock(tree_snapshot(results)) == without_lock(everything)


# --------------------------------------------------------------------------- 3. driver killed


def _checkpoint_epoch(path: Path) -> int:
    import torch

    try:
        return int(torch.load(path, weights_only=True)["epoch"])
    except FileNotFoundError:
        return 0


@pytest.mark.timeout(300)
def test_resume_after_sigkill_is_bitwise_identical(tmp_path: Path, reference: dict) -> None:
    path = write_sweep(tmp_path / "long.yaml", LONG)
    results = tmp_path / "results"
    run_ids = list(reference["rows"])
    dirs = [run_dir(results, "long", rid) for rid in run_ids]
    total = LONG_EPOCHS * len(run_ids)

    with driver(["run", path, "--results", results], tmp_path / "first.log") as proc:
        wait_for(
            lambda: (
                any((d / "checkpoint.pt").exists() for d in dirs)
                and sum(row_count(d / "returns.csv") for d in dirs) >= 0.3 * total
            ),
            timeout=150,
            what="rows and a checkpoint",
            interval=0.05,
        )
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and its embedded Ray (same group)
        proc.wait(timeout=30)
        # the Ray workers are in their own process groups: they end with their raylet
        t_kill = time.monotonic()
        try:
            wait_for(lambda: not session_pids(proc.pid), 20, "the embedded Ray to end")
            orphans = 0
        except AssertionError:
            orphans = len(session_pids(proc.pid))
        ray_gone_s = time.monotonic() - t_kill
    assert proc.returncode == -signal.SIGKILL

    rows_at_kill = [row_count(d / "returns.csv") for d in dirs]
    ckpt_at_kill = [_checkpoint_epoch(d / "checkpoint.pt") for d in dirs]
    finished = [(d / "status.json").exists() and '"done"' in (d / "status.json").read_text()
                for d in dirs]  # fmt: skip
    assert any(c > 0 for c in ckpt_at_kill) and not all(finished)
    resumable = sum(1 for c, f in zip(ckpt_at_kill, finished, strict=True) if c > 0 and not f)

    start = time.monotonic()
    out = run_cli("run", path, "--results", results, timeout=240)
    resume_wall = time.monotonic() - start
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"{resumable} from checkpoints" in out.stdout, out.stdout
    assert_matches_reference(results, reference)

    redone = sum(
        r - c for r, c, f in zip(rows_at_kill, ckpt_at_kill, finished, strict=True) if not f
    )
    print(
        f"\n[kill-and-resume] killed at {sum(rows_at_kill)}/{total} run-epochs; "
        f"checkpoint epochs {ckpt_at_kill}, rows {rows_at_kill}; {redone} run-epochs redone; "
        f"resume wall {resume_wall:.1f} s vs uninterrupted {reference['wall_s']:.1f} s; "
        f"embedded Ray gone {ray_gone_s:.1f} s after the kill ({orphans} orphans)"
    )


# --------------------------------------------------------------------------- 4. worker killed


@pytest.mark.timeout(300)
def test_worker_killed_mid_pack(tmp_path: Path, reference: dict) -> None:
    path = write_sweep(tmp_path / "long.yaml", LONG)
    results = tmp_path / "results"
    dirs = [run_dir(results, "long", rid) for rid in reference["rows"]]
    log = tmp_path / "driver.log"

    def pack_workers(sid: int) -> list[int]:
        return [
            pid
            for pid in session_pids(sid)
            if (st := proc_stat(pid)) is not None and st[0] == "ray::a2c_pack"
        ]

    with driver(["run", path, "--results", results], log) as proc:
        wait_for(
            lambda: (
                all((d / "checkpoint.pt").exists() for d in dirs)
                and min(row_count(d / "returns.csv") for d in dirs) >= LONG_EPOCHS // 5
            ),
            timeout=150,
            what="every run to checkpoint",
            interval=0.05,
        )
        workers = pack_workers(proc.pid)  # 2 packs on 2 CPUs, both mid-way by now
        assert workers, "no ray::a2c_pack worker in the driver's session"
        os.kill(workers[0], signal.SIGKILL)
        proc.wait(timeout=240)
    text = log.read_text()
    assert proc.returncode == 0, text
    lost = [line for line in text.splitlines() if "resubmitting from epochs" in line]
    assert len(lost) == 1, text
    epochs = [int(e) for e in lost[0].rsplit("epochs", 1)[1].split(",")]
    assert len(epochs) == 2 and min(epochs) > 0, lost  # from checkpoints, not from epoch 0
    assert_matches_reference(results, reference)


def worker_env_task(num_cpus: float = 1):
    """A Ray task (defined here so cloudpickle ships it by value) reporting WORKER_ENV's keys."""
    import ray

    def env() -> dict[str, str | None]:
        import os

        return {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                               "NUMBA_NUM_THREADS", "OPENBLAS_NUM_THREADS")}  # fmt: skip

    return ray.remote(env).options(num_cpus=num_cpus)


@pytest.mark.timeout(120)
def test_embedded_ray_workers_are_single_threaded(monkeypatch: pytest.MonkeyPatch) -> None:
    """The embedded Ray passes WORKER_ENV through the environment its prestarted workers
    inherit (no runtime_env, which would spawn new workers at the first task)."""
    import ray

    from runner.launch import WORKER_ENV, init_ray

    for key in WORKER_ENV:
        monkeypatch.setenv(key, "7")  # a user's shell setting must not reach the workers
    assert not ray.is_initialized()
    try:
        assert init_ray(None, 1) == 1
        env = ray.get(worker_env_task().remote())
    finally:
        ray.shutdown()
    assert env == WORKER_ENV


# --------------------------------------------------------------------------- 5. node removed


@pytest.mark.timeout(300)
@pytest.mark.xdist_group("ray_cluster")
def test_two_node_cluster_node_removed(tmp_path: Path, reference: dict) -> None:
    """run_sweep on a 2-node cluster (by address); the second node is removed once every run
    has a checkpoint at epoch >= 10: its pack is resubmitted and the numbers are bitwise
    those of the uninterrupted sweep."""
    import json

    import ray
    from ray.cluster_utils import Cluster

    from runner import run_sweep
    from runner.launch import WORKER_ENV

    assert not ray.is_initialized()
    path = write_sweep(tmp_path / "long.yaml", LONG)
    results = tmp_path / "results"
    ids = [r.run_id for r in load_spec(path).runs()]
    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False}
    )
    logs: list[str] = []
    removed: list[int] = []
    worker_env: list[dict] = []

    def checkpointed_at(rid: str) -> int:
        try:
            return json.loads((run_dir(results, "long", rid) / "status.json").read_text())[
                "epochs_done"
            ]
        except (OSError, ValueError, KeyError):
            return 0

    def on_event(progress) -> None:
        import ray

        if not worker_env:  # a task of this driver's job, beside the packs (needs no CPU)
            task = worker_env_task(num_cpus=0)
            worker_env.append(ray.get(task.remote(), timeout=60))
        if not removed and all(checkpointed_at(rid) >= 10 for rid in ids):
            removed.append(progress.epochs_done)
            cluster.remove_node(worker)  # the second node, running one of the 2 packs

    try:
        worker = cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        result = run_sweep(path, results, address=cluster.address, on_event=on_event,
                           log=logs.append, warn=logs.append)  # fmt: skip
        assert ray.is_initialized() is False  # run_sweep disconnected from the cluster
    finally:
        ray.shutdown()
        cluster.shutdown()
    assert worker_env == [WORKER_ENV]  # runtime_env reaches the cluster's workers
    assert removed, "the node was never removed"
    assert removed[0] < LONG_EPOCHS * 4
    assert result.counts["done"] == 4 and result.ok, result
    assert any("resubmitting from epochs" in line for line in logs), logs
    assert_matches_reference(results, reference)


@pytest.mark.timeout(300)
def test_idle_cpu_takes_over_half_of_a_slower_pack(
    tmp_path: Path, reference: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Packs of 3 runs and 1 run on 2 CPUs: when the small one finishes, the big one is
    released at an epoch's end (every run checkpointed) and its runs are split over both
    CPUs; the numbers are bitwise those of the uninterrupted sweep."""
    import ray

    import runner.launch as launch
    from runner import run_sweep

    real_make_packs, packed = launch.make_packs, []

    def uneven(runs, cpus, pack_size=None):  # the first packing only; the split is the real one
        packed.append(len(runs))
        return [runs[:3], runs[3:]] if len(packed) == 1 else real_make_packs(runs, cpus, pack_size)

    monkeypatch.setattr(launch, "make_packs", uneven)
    monkeypatch.setattr(launch, "MIN_SECONDS_TO_SPLIT", 0.5)  # this sweep's epochs take ~30 ms
    assert not ray.is_initialized()
    path = write_sweep(tmp_path / "long.yaml", LONG)  # execution.num_cpus: 2
    results = tmp_path / "results"
    logs: list[str] = []
    result = run_sweep(path, results, log=logs.append, warn=logs.append)
    assert not ray.is_initialized()  # the embedded Ray is stopped
    assert result.counts["done"] == 4 and result.ok, result
    splits = [line for line in logs if line.startswith("rebalanced: a pack of")]
    assert splits and splits[0].startswith("rebalanced: a pack of 3 runs split into 2"), logs
    assert packed[:2] == [4, 3], packed
    epoch = int(splits[0].split("at epoch ")[1].split()[0])
    assert 0 < epoch <= LONG_EPOCHS - launch.MIN_EPOCHS_TO_SPLIT, splits
    assert not any("resubmitting" in line for line in logs), logs
    assert_matches_reference(results, reference)


def test_release_candidate_only_when_a_cpu_is_idle_and_a_split_pays() -> None:
    """The driver's choice of the pack to split, without Ray: none while every CPU has a pack
    or one is already releasing; never a pack of one run, nor one with too little time or too
    few epochs left; otherwise the pack with the most time left."""
    from types import SimpleNamespace

    from runner.launch import MIN_SECONDS_TO_SPLIT, Pack, SweepRunner

    runner = SweepRunner(SimpleNamespace(racing=None), None, cpus=2)
    epochs = {"a": 100, "b": 100, "c": 100, "d": 100, "e": 100}
    runner.run_by_id = {r: SimpleNamespace(config=SimpleNamespace(epochs=n))
                        for r, n in epochs.items()}  # fmt: skip

    def pack(ids: str, done: int, epoch_s: float) -> Pack:
        runner.epochs.update(dict.fromkeys(ids, done))
        return Pack(runs=[], unfinished=set(ids), epoch_s=epoch_s)

    slow, fast = pack("ab", 50, 2.0), pack("cd", 60, 1.0)
    assert runner.release_candidate([slow, fast]) is None  # both CPUs busy
    assert runner.release_candidate([slow]) is slow  # 100 s left
    runner.sweep = SimpleNamespace(racing=SimpleNamespace(rungs=(52,)))
    assert runner.release_candidate([slow]) is None  # racing: 2 epochs (4 s) to its rung
    runner.sweep = SimpleNamespace(racing=None)
    assert runner.release_candidate([slow, fast, Pack(runs=[])]) is None  # finished packs count not
    runner.cpus = 3
    assert runner.release_candidate([slow, fast]) is slow  # 100 s left against 40 s
    slow.releasing = True
    assert runner.release_candidate([slow, fast]) is None  # one request at a time
    runner.cpus = 2
    assert runner.release_candidate([pack("e", 0, 9.0)]) is None  # one run cannot be split
    assert runner.release_candidate([pack("ab", 99, 9.0)]) is None  # 1 epoch left
    short = (MIN_SECONDS_TO_SPLIT - 0.1) / 10
    assert runner.release_candidate([pack("ab", 90, short)]) is None  # too little time left
    assert runner.release_candidate([pack("ab", 90, 0.0)]) is None  # no epoch timed yet


def test_released_pack_checkpoints_every_unfinished_run() -> None:
    """pack_task_body without Ray: a release request is honoured at the end of the epoch in
    which it is seen, with a checkpoint of every run still training at that epoch."""
    from a2c_core import A2CConfig
    from runner.launch import pack_task_body

    base = {k: v for k, v in TINY.items()}
    configs = [A2CConfig(**base, epochs=6).to_dict(),
               A2CConfig(**base, epochs=6, value_lr=1e30).to_dict(),  # diverges at epoch 1
               A2CConfig(**base, epochs=6, policy_lr=0.01).to_dict()]  # fmt: skip
    polls: list[int] = []

    def release_requested() -> bool:
        polls.append(1)
        return len(polls) == 3  # seen as epoch 3 ends

    msgs = list(pack_task_body(configs, [1, 2, 3], ["a", "b", "c"], [None] * 3, 1e9,
                               release_requested))  # fmt: skip
    kinds = [type(m).__name__ for m in msgs]
    assert kinds == ["Rows", "RunEnded", "Rows", "Rows", "Checkpoint", "Checkpoint", "Released",
                     "WorkerStats"], msgs  # fmt: skip
    assert (msgs[1].run_id, msgs[1].state, msgs[1].checkpoint) == ("b", "diverged", None)
    assert [rid for rid, _ in msgs[3].rows] == ["a", "c"]
    assert all(row["epoch"] == 3 for _, row in msgs[3].rows)
    assert [(m.run_id, m.state["epoch"]) for m in msgs[4:6]] == [("a", 3), ("c", 3)]
    assert msgs[6].run_ids == ["a", "c"]
    assert len(polls) == 3  # once per epoch, and never after the release


# --------------------------------------------------------------------------- 6. failures


BROKEN_ENV_MODULE = """\
import gymnasium as gym
from gymnasium.envs.classic_control.pendulum import PendulumEnv


class BrokenStep(PendulumEnv):
    def step(self, action):
        raise RuntimeError("this env is broken on purpose")


gym.register("BrokenStep-v0", entry_point=BrokenStep, max_episode_steps=50)
"""


@pytest.mark.timeout(180)
def test_failed_and_diverged_runs(tmp_path: Path) -> None:
    """A run whose env raises at its first step fails (a user's env in their own module,
    gymnasium's ``module:EnvId`` form, importable through PYTHONPATH in the driver and its Ray
    workers); value_lr 1e30 diverges; the others finish."""
    results = tmp_path / "results"
    (tmp_path / "brokenenvs.py").write_text(BROKEN_ENV_MODULE)
    env = child_env(PYTHONPATH=str(tmp_path))
    spec = tiny_sweep(
        "bad-runs",
        epochs=3,
        grid={"env": ["CartPole-v0", "brokenenvs:BrokenStep-v0"], "value_lr": [0.01, 1.0e30]},
        seeds=[1, 2],
    )
    path = write_sweep(tmp_path / "bad.yaml", spec)
    out = run_cli("run", path, "--results", results, env=env)
    assert out.returncode == 1, out.stdout + out.stderr
    states = {}
    for r in load_spec(path).runs():
        st = state_of(results, "bad-runs", r.run_id)
        states[r.run_id] = st["state"]
        returns = run_dir(results, "bad-runs", r.run_id) / "returns.csv"
        rows = read_rows(returns) if returns.exists() else []
        if r.config.env == "brokenenvs:BrokenStep-v0":  # raises at its first step
            assert st["state"] == "failed"
            assert st["error"].startswith("Traceback") and "Error" in st["error"], st["error"]
            assert rows == []
        elif r.config.value_lr > 1:  # blows up at the first value fit
            assert st["state"] == "diverged" and " at epoch " in st["error"], st["error"]
            assert 1 <= len(rows) <= 3
        else:
            assert st["state"] == "done"
            assert_epochs_once(rows, 3, r.run_id)
    assert sorted(states.values()) == ["diverged"] * 2 + ["done"] * 2 + ["failed"] * 4
    assert "2 done, 4 failed, 2 diverged" in out.stdout, out.stdout
    assert out.stdout.count("failed: ") == 4 and out.stdout.count("diverged at epoch") == 2
    table = {t["run_id"]: t["state"] for t in read_rows(results / "bad-runs" / "runs.csv")}
    assert table == states
    st = run_cli("status", results / "bad-runs", timeout=60)
    assert "2 done, 0 running, 4 failed, 2 diverged, 0 pending" in st.stdout, st.stdout
    # a relaunch retries nothing: failed and diverged runs are finished
    again = run_cli("run", path, "--results", results, env=env)
    assert again.returncode == 1 and "8 already finished, 0 to train" in again.stdout


@pytest.mark.timeout(120)
def test_pack_keeps_checkpointing_after_its_last_run_finishes() -> None:
    """pack_task_body's checkpoint cadence must not depend on which runs are still alive:
    here the pack's last run diverges at epoch 1 and the first one still gets a checkpoint
    about every ``checkpoint_every_s`` (never more often), without Ray."""
    from a2c_core import A2CConfig, train
    from runner.launch import pack_task_body

    every = 0.05
    base = {**LONG, "epochs": 80}  # ~10 ms per epoch: several epochs per interval
    base = {k: v for k, v in base.items() if k not in ("name", "grid", "seeds", "execution")}
    for _ in train(A2CConfig(**{**base, "epochs": 1}), 0):  # load the kernels first
        pass
    configs = [A2CConfig(**base).to_dict(), A2CConfig(**base, value_lr=1e30).to_dict()]
    stamped = []
    for msg in pack_task_body(configs, [1, 2], ["a", "b"], [None, None], every):
        stamped.append((time.monotonic(), msg))
    msgs = [m for _, m in stamped]
    assert not [m for m in msgs if isinstance(m, Failed)], msgs
    ends = {m.run_id: m for m in msgs if isinstance(m, RunEnded)}
    assert {rid: m.state for rid, m in ends.items()} == {"a": "done", "b": "diverged"}
    # a done run's end carries its final checkpoint (what extending it continues from)
    assert ends["a"].checkpoint["epoch"] == 80 and ends["b"].checkpoint is None
    # one Rows message per epoch, holding each run's row of that epoch
    rows = [t for t, m in stamped if isinstance(m, Rows) and "a" in dict(m.rows)]
    span = rows[-1] - rows[0]
    ckpts = [m.state["epoch"] for m in msgs if isinstance(m, Checkpoint) and m.run_id == "a"]
    assert ckpts == sorted(set(ckpts)) and len(rows) == 80
    # each message holds one epoch: both runs at epoch 1 (b diverges there), then a alone;
    # a checkpoint or an end comes after the rows of its epoch
    batches = [m.rows for m in msgs if isinstance(m, Rows)]
    assert [[(rid, row["epoch"]) for rid, row in b] for b in batches[:2]] == [
        [("a", 1), ("b", 1)], [("a", 2)]]  # fmt: skip
    assert all(len(b) == 1 and b[0][1]["epoch"] == i + 2 for i, b in enumerate(batches[1:]))
    last_epoch = {}
    for m in msgs:
        if isinstance(m, Rows):
            last_epoch.update((rid, row["epoch"]) for rid, row in m.rows)
        elif isinstance(m, Checkpoint):
            assert last_epoch.get(m.run_id) == m.state["epoch"], m.run_id
        elif isinstance(m, RunEnded):
            assert last_epoch.get(m.run_id) == {"a": 80, "b": 1}[m.run_id], m.run_id
    assert span > 4 * every, f"epochs too fast to test the cadence ({span:.3f} s)"
    assert 3 <= len(ckpts) <= span / every + 1, (span, ckpts)


def test_diverged_run_ends_without_a_checkpoint_even_on_a_checkpoint_epoch() -> None:
    """Seen in CI on a loaded machine: the epoch a run diverged in was also the pack's
    checkpoint epoch, and its RunEnded carried a checkpoint (written to disk for a run that
    nothing continues). Here every epoch is a checkpoint epoch."""
    from a2c_core import A2CConfig
    from runner.launch import pack_task_body

    base = {k: v for k, v in LONG.items() if k not in ("name", "grid", "seeds", "execution")}
    base.update(epochs=3, steps_per_epoch=64, value_iters=2)
    configs = [A2CConfig(**base).to_dict(), A2CConfig(**base, value_lr=1e30).to_dict()]
    msgs = list(pack_task_body(configs, [1, 2], ["a", "b"], [None, None], 0.0))
    ends = {m.run_id: m for m in msgs if isinstance(m, RunEnded)}
    assert {rid: m.state for rid, m in ends.items()} == {"a": "done", "b": "diverged"}
    assert ends["b"].checkpoint is None
    assert ends["a"].checkpoint["epoch"] == 3
    assert not [m for m in msgs if isinstance(m, Checkpoint) and m.run_id == "b"]


# --------------------------------------------------------------------------- 7. torn files


@pytest.mark.timeout(240)
def test_torn_returns_and_half_written_status_are_handled(tmp_path: Path, reference: dict) -> None:
    from a2c_core import train
    from runner.store import Store

    path = write_sweep(tmp_path / "long.yaml", LONG)
    results = tmp_path / "results"
    sweep = load_spec(path)
    store = Store(results, "long")
    store.init_sweep(sweep)
    runs = sweep.runs()

    # run 0: rows 1..5, checkpoint at 3, a torn 6th row, a half-written status.json
    r = runs[0]
    recs = []
    for rec in train(r.config, r.seed, checkpoint_when=lambda p, e: e == 3):
        recs.append(rec)
        if rec.epoch == 5:
            break
    store.write_config(r.run_id, r.config, r.seed)
    store.append_returns(r.run_id, [rec.row() for rec in recs])
    store.write_checkpoint(r.run_id, recs[2].checkpoint)
    with open(store.returns_path(r.run_id), "ab") as f:
        f.write(b"6,1200,7,21.5,2")
    store.status_path(r.run_id).write_bytes(b'{\n  "state": "runn')
    # run 1: rows 1..2 and no checkpoint, a torn row, a temp status left by a crash
    r = runs[1]
    store.write_config(r.run_id, r.config, r.seed)
    store.append_returns(r.run_id, [rec.row() for rec in recs[:2]])  # any rows: redone
    with open(store.returns_path(r.run_id), "ab") as f:
        f.write(b"3,600,")
    (store.run_dir(r.run_id) / ".tmp-status.json.x1y2z3q4").write_bytes(b'{"sta')
    # run 2: a torn header only; run 3: nothing
    store.run_dir(runs[2].run_id).mkdir(parents=True)
    store.returns_path(runs[2].run_id).write_bytes(b"epoch,env_st")

    out = run_cli("run", path, "--results", results, timeout=200)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 already finished, 4 to train (resuming 1 from checkpoints)" in out.stdout
    assert_matches_reference(results, reference)
    assert not list((results / "long").rglob(".tmp-*"))


# --------------------------------------------------------------------------- 8. ray start


@pytest.mark.timeout(240)
@pytest.mark.xdist_group("ray_cluster")
def test_run_on_existing_ray_head(tmp_path: Path) -> None:
    """`ray start --head` (token authentication, Ray's default for it once a token exists)
    and `a2c-sweep run --address` on it; without the auth settings a clear one-line error."""
    import secrets

    ray_exe = BIN / "ray"
    assert ray_exe.exists()
    port, client_port, agent_port = free_ports(3)
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    temp_dir = tempfile.mkdtemp(prefix="rh", dir="/tmp")  # short: unix socket path limit
    head_log = tmp_path / "head.log"
    cmd = [
        str(ray_exe), "start", "--head", "--num-cpus", "3", "--port", str(port),
        "--temp-dir", temp_dir, "--include-dashboard", "false", "--disable-usage-stats",
        "--ray-client-server-port", str(client_port),
        "--dashboard-agent-listen-port", str(agent_port), "--block",
    ]  # fmt: skip
    with open(head_log, "wb") as log:
        head = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=child_env(**auth), start_new_session=True,
        )  # fmt: skip
    try:

        def accepting() -> bool:
            assert head.poll() is None, head_log.read_text()
            with socket.socket() as s:
                s.settimeout(0.5)
                return s.connect_ex(("127.0.0.1", port)) == 0

        wait_for(accepting, 90, "the Ray head to listen", interval=0.25)
        results = tmp_path / "results"
        spec = tiny_sweep("on-head", epochs=3, grid={"policy_lr": [0.1, 0.01]}, seeds=[1])
        path = write_sweep(tmp_path / "head.yaml", spec)
        address = f"127.0.0.1:{port}"

        # no token mode: refused quickly (2 connection attempts) with a one-line hint
        no_auth = child_env(RAY_gcs_server_port_wait_time_s="2")
        out = run_cli("run", path, "--results", results, "--address", address, env=no_auth)
        assert out.returncode == 2, out.stdout + out.stderr
        last = out.stderr.strip().splitlines()[-1]
        assert last.startswith("a2c-sweep: error: --address: cannot connect to Ray at")
        assert "RAY_AUTH_MODE=token" in last, out.stderr

        out = run_cli("run", path, "--results", results, "--address", address,
                      env=child_env(**auth))  # fmt: skip
        assert out.returncode == 0, out.stdout + out.stderr + head_log.read_text()
        assert "on 3 CPUs" in out.stdout, out.stdout  # the head's CPUs, not an embedded Ray
        for r in load_spec(path).runs():
            assert state_of(results, "on-head", r.run_id)["state"] == "done"
            rows = read_rows(run_dir(results, "on-head", r.run_id) / "returns.csv")
            assert_epochs_once(rows, 3, r.run_id)
        assert head.poll() is None  # the driver left the cluster running
    finally:
        # SIGKILL: on SIGTERM the head drains for up to 30 s. Its workers are in process
        # groups of their own, in its session: kill_session ends what is left by pid.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGKILL)
        head.wait(timeout=30)
        kill_session(head.pid)
        shutil.rmtree(temp_dir, ignore_errors=True)

"""Accidents that must lose nothing: two launches of one sweep, cut or garbled files,
symlinks, signals, bad cluster addresses, huge grids, unwritable results.

Every CLI run here is a subprocess with its own embedded Ray (see test_launch.py, whose
helpers and LONG sweep these tests share)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
from test_launch import (
    LONG,
    LONG_EPOCHS,
    assert_epochs_once,
    assert_matches_reference,
    child_env,
    cli,
    driver,
    read_rows,
    reference,  # noqa: F401  (the module-scoped fixture: the LONG sweep uninterrupted)
    row_count,
    run_cli,
    run_dir,
    session_pids,
    state_of,
    tiny_sweep,
    wait_for,
    without_wall,
    write_sweep,
)

from runner.spec import load_spec


def one_error_line(out: subprocess.CompletedProcess) -> str:
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("a2c-sweep: error: "), out.stderr
    assert "Traceback" not in out.stdout + out.stderr
    return lines[0]


# --------------------------------------------------------------------------- 1. two drivers


@pytest.mark.timeout(300)
def test_two_drivers_of_one_sweep(tmp_path: Path, reference: dict) -> None:  # noqa: F811
    """Launched together, one driver trains and the other exits 2 at once naming the holder;
    the results equal an uninterrupted sweep's (every epoch once)."""
    path = write_sweep(tmp_path / "long.yaml", LONG)
    results = tmp_path / "results"
    procs = [
        subprocess.Popen([*cli(), "run", str(path), "--results", str(results)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=child_env(), stdin=subprocess.DEVNULL, start_new_session=True)
        for _ in range(2)
    ]  # fmt: skip
    try:
        outs = [p.communicate(timeout=240) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 2], outs
    winner, loser = (0, 1) if procs[0].returncode == 0 else (1, 0)
    err = outs[loser][1].strip().splitlines()
    assert len(err) == 1 and "in use by another a2c-sweep run" in err[0], outs[loser]
    assert f"pid {procs[winner].pid} " in err[0], err
    assert_matches_reference(results, reference)
    # a later launch takes the (released) lock and finds nothing to do
    again = run_cli("run", path, "--results", results)
    assert again.returncode == 0 and "4 already finished, 0 to train" in again.stdout


@pytest.mark.timeout(60)
def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path: Path) -> None:
    from runner.store import Store, SweepLockedError

    store = Store(tmp_path / "results", "exp")
    holder = subprocess.Popen(
        [str(Path(cli()[0]).parent / "python"), "-c",
         "import sys, time; from runner.store import Store; "
         f"l = Store({str(store.root)!r}, 'exp').lock(); print('locked', flush=True); "
         "time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(SweepLockedError, match=f"pid {holder.pid} on "):
            store.lock()
    finally:
        holder.kill()
        holder.wait()
    lock = store.lock()  # the kernel dropped the dead holder's flock
    assert json.loads((store.dir / ".lock").read_text())["pid"] == os.getpid()
    lock.release()


# --------------------------------------------------------------------------- 2. cut files


CUT = tiny_sweep("cut", epochs=60, grid={"policy_lr": [0.1, 0.01]}, seeds=[1, 2],
                 execution={"checkpoint_every_s": 0.001})  # fmt: skip


@pytest.fixture(scope="module")
def cut_reference(tmp_path_factory) -> tuple[Path, dict]:
    tmp = tmp_path_factory.mktemp("cut")
    path = write_sweep(tmp / "cut.yaml", CUT)
    out = run_cli("run", path, "--results", tmp / "results")
    assert out.returncode == 0, out.stdout + out.stderr
    rows = {r.run_id: read_rows(run_dir(tmp / "results", "cut", r.run_id) / "returns.csv")
            for r in load_spec(path).runs()}  # fmt: skip
    return tmp / "results", rows


def _keep_lines(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(lines))


@pytest.mark.timeout(180)
def test_cut_and_garbled_returns_are_recomputed(tmp_path: Path, cut_reference) -> None:
    """A done run cut to 20 of 60 rows, an unfinished run cut below its checkpoint, a done
    run whose rows hold epochs twice (two drivers interleaved): `status` flags each, a
    relaunch recomputes each and ends with the uninterrupted rows."""
    ref_results, ref_rows = cut_reference
    results = tmp_path / "results"
    shutil.copytree(ref_results, results)
    ids = sorted(ref_rows)
    files = {rid: run_dir(results, "cut", rid) / "returns.csv" for rid in ids}
    lines = {rid: files[rid].read_bytes().splitlines(keepends=True) for rid in ids}
    # a: done, cut short
    _keep_lines(files[ids[0]], lines[ids[0]][:21])
    # b: unfinished, rows end at epoch 10 but its checkpoint is at a later epoch
    _keep_lines(files[ids[1]], lines[ids[1]][:11])
    status = run_dir(results, "cut", ids[1]) / "status.json"
    status.write_text(json.dumps({**json.loads(status.read_text()), "state": "running"}))
    # c: done, epochs 1-30 twice then 31-60 (what two drivers writing at once produced)
    _keep_lines(files[ids[2]], lines[ids[2]][:31] + lines[ids[2]][1:])

    st = run_cli("status", results / "cut", timeout=60)
    assert st.returncode == 0, st.stderr
    flagged = [line for line in st.stdout.splitlines() if line.startswith("warning: run ")]
    assert len(flagged) == 3, st.stdout
    assert any(ids[0] in w and "says done at epoch 60 but returns.csv holds epochs 1-20" in w
               for w in flagged), flagged  # fmt: skip
    assert any(ids[2] in w and "not contiguous" in w for w in flagged), flagged

    out = run_cli("run", write_sweep(tmp_path / "cut.yaml", CUT), "--results", results)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 already finished, 3 to train" in out.stdout, out.stdout
    assert f"run {ids[1]}: returns.csv holds epochs 1-10 only" in out.stderr, out.stderr
    for rid in ids:
        got = read_rows(files[rid])
        assert_epochs_once(got, 60, rid)
        assert without_wall(got) == without_wall(ref_rows[rid]), rid
        assert state_of(results, "cut", rid)["state"] == "done"
    st = run_cli("status", results / "cut", timeout=60)
    assert "warning" not in st.stdout and "4 done" in st.stdout, st.stdout


@pytest.mark.timeout(180)
def test_garbled_status_of_a_done_run_is_restored_not_retrained(
    tmp_path: Path, cut_reference
) -> None:
    ref_results, ref_rows = cut_reference
    results = tmp_path / "results"
    shutil.copytree(ref_results, results)
    rid = sorted(ref_rows)[0]
    (run_dir(results, "cut", rid) / "status.json").write_text('{"state": "do')
    st = run_cli("status", results / "cut", timeout=60)
    assert "3 done, 0 running, 0 failed, 0 diverged, 1 pending" in st.stdout, st.stdout
    assert "epochs 240/240" in st.stdout, st.stdout
    before = (run_dir(results, "cut", rid) / "returns.csv").read_bytes()
    out = run_cli("run", write_sweep(tmp_path / "cut.yaml", CUT), "--results", results)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "4 already finished, 0 to train" in out.stdout, out.stdout
    assert "marked done" in out.stderr
    assert (run_dir(results, "cut", rid) / "returns.csv").read_bytes() == before
    assert state_of(results, "cut", rid)["state"] == "done"


# --------------------------------------------------------------------------- 3. symlinks


@pytest.mark.timeout(120)
@pytest.mark.parametrize("what", ["run-dir", "returns.csv"])
def test_symlinks_under_runs_are_refused(tmp_path: Path, what: str) -> None:
    spec = tiny_sweep("links", epochs=3, grid={"policy_lr": [0.1]}, seeds=[1])
    path = write_sweep(tmp_path / "links.yaml", spec)
    results = tmp_path / "results"
    (rid,) = [r.run_id for r in load_spec(path).runs()]
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "returns.csv").write_bytes(b"precious\n")
    target = run_dir(results, "links", rid)
    if what == "run-dir":
        target.parent.mkdir(parents=True)
        target.symlink_to(outside, target_is_directory=True)
    else:
        target.mkdir(parents=True)
        (target / "returns.csv").symlink_to(outside / "returns.csv")
    out = run_cli("run", path, "--results", results)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "is a symbolic link" in one_error_line(out)
    assert sorted(p.name for p in outside.iterdir()) == ["returns.csv"]
    assert (outside / "returns.csv").read_bytes() == b"precious\n"


def test_clean_temp_never_looks_through_a_symlink(tmp_path: Path) -> None:
    from runner.store import Store

    store = Store(tmp_path / "results", "exp")
    store.runs_dir.mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / ".tmp-status.json.abcd1234"
    victim.write_text("not yours")
    (store.runs_dir / "0123456789ab").symlink_to(outside, target_is_directory=True)
    store.clean_temp()
    assert victim.read_text() == "not yours"
    assert store.run_ids() == []


# --------------------------------------------------------------------------- 4. addresses


@pytest.fixture
def silent_server():
    """A TCP port that accepts connections and never answers (not a Ray head)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    conns: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conns.append(srv.accept()[0])
            except OSError:
                pass

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield f"127.0.0.1:{srv.getsockname()[1]}"
    stop.set()
    t.join()
    for c in conns:
        c.close()
    srv.close()


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "how", ["garbage", "env-garbage", "dashboard-url", "refused", "unknown-host", "silent"]
)
def test_bad_address_exits_2_fast(tmp_path: Path, how: str, silent_server: str) -> None:
    spec = tiny_sweep("addr", epochs=2, grid={"policy_lr": [0.1]}, seeds=[1])
    path = write_sweep(tmp_path / "addr.yaml", spec)
    results = tmp_path / "results"
    address = {"garbage": "garbage", "env-garbage": "garbage", "refused": "127.0.0.1:1",
               "dashboard-url": "http://127.0.0.1:8265", "unknown-host": "no-such-host.invalid:6379",
               "silent": silent_server}[how]  # fmt: skip
    args = ["run", path, "--results", results]
    env = child_env()
    if how == "env-garbage":
        env["RAY_ADDRESS"] = address
    else:
        args += ["--address", address]
    start = time.monotonic()
    out = run_cli(*args, env=env, timeout=90)
    took = time.monotonic() - start
    assert out.returncode == 2, out.stdout + out.stderr
    line = one_error_line(out)
    assert ("RAY_ADDRESS" if how == "env-garbage" else "--address") in line, line
    assert address in line, line
    assert took < 30, f"took {took:.1f} s"
    assert not results.exists() or not any(results.rglob("*.csv")), list(results.rglob("*"))


# --------------------------------------------------------------------------- 5. signals


@pytest.mark.timeout(300)
@pytest.mark.parametrize("sig", ["SIGTERM", "SIGHUP", "SIGINT"])
def test_signal_mid_sweep_is_clean_and_resumable(
    tmp_path: Path,
    reference: dict,  # noqa: F811
    sig: str,
) -> None:
    signum = getattr(signal, sig)
    path = write_sweep(tmp_path / "long.yaml", LONG)
    results = tmp_path / "results"
    dirs = [run_dir(results, "long", rid) for rid in reference["rows"]]
    log = tmp_path / "driver.log"
    with driver(["run", path, "--results", results], log) as proc:
        wait_for(lambda: sum(row_count(d / "returns.csv") for d in dirs) >= LONG_EPOCHS // 2,
                 timeout=150, what="rows", interval=0.05)  # fmt: skip
        os.kill(proc.pid, signum)  # the driver only, as `kill`, systemd or Slurm do
        proc.wait(timeout=60)
        # nothing left running: the embedded Ray is stopped by the driver itself
        wait_for(lambda: not session_pids(proc.pid), 20, "the embedded Ray to end")
    text = log.read_text()
    assert proc.returncode == 128 + signum, text
    assert f"interrupted ({sig})" in text and "relaunch the same command to resume" in text
    for bad in ("Traceback", "received at time", "Segmentation", "stack"):
        assert bad not in text, text
    if sig == "SIGTERM":  # status says nothing runs any more; a relaunch resumes exactly
        st = run_cli("status", results / "long", timeout=60)
        assert "no driver is running" in st.stdout, st.stdout
        out = run_cli("run", path, "--results", results, timeout=240)
        assert out.returncode == 0, out.stdout + out.stderr
        assert_matches_reference(results, reference)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
def test_signal_during_ray_start_is_clean(tmp_path: Path, sig: str) -> None:
    signum = getattr(signal, sig)
    path = write_sweep(tmp_path / "long.yaml", LONG)
    results = tmp_path / "results"
    log = tmp_path / "driver.log"
    with driver(["run", path, "--results", results], log) as proc:
        wait_for(lambda: "to train" in log.read_text(), 60, "the driver to start Ray")
        os.kill(proc.pid, signum)
        proc.wait(timeout=60)
        wait_for(lambda: not session_pids(proc.pid), 20, "the embedded Ray to end")
    text = log.read_text()
    assert proc.returncode == 128 + signum, text
    assert f"interrupted ({sig})" in text and "Traceback" not in text, text
    assert "received at time" not in text, text


# --------------------------------------------------------------------------- 6. sizes


def _grid_file(tmp_path: Path, name: str, seeds: int) -> Path:
    grid = {"policy_lr": [0.001 * (i + 1) for i in range(100)],
            "value_lr": [0.0001 * (i + 1) for i in range(100)],
            "gamma": [0.9 + 0.001 * i for i in range(10)]}  # fmt: skip
    return write_sweep(tmp_path / f"{name}.yaml",
                       tiny_sweep(name, epochs=2, grid=grid, seeds=list(range(seeds))))  # fmt: skip


@pytest.mark.timeout(120)
def test_huge_grids_are_counted_not_built(tmp_path: Path) -> None:
    results = tmp_path / "results"
    million = _grid_file(tmp_path, "million", 10)  # 10^5 configs x 10 seeds
    start = time.monotonic()
    out = run_cli("run", million, "--dry-run", "--results", results, timeout=60)
    took = time.monotonic() - start
    assert out.returncode == 0, out.stderr
    assert "100,000 configs x 10 seeds = 1,000,000 runs" in out.stdout, out.stdout
    assert took < 30, took
    ten_million = _grid_file(tmp_path, "ten-million", 100)
    for args in (["--dry-run"], []):
        out = run_cli("run", ten_million, *args, "--results", results, timeout=60)
        assert out.returncode == 2, out.stdout + out.stderr
        line = one_error_line(out)
        assert "10,000,000 runs" in line and "--max-runs" in line, line
    out = run_cli("run", ten_million, "--dry-run", "--max-runs", "10000000", "--results",
                  results, timeout=60)  # fmt: skip
    assert out.returncode == 0 and "= 10,000,000 runs" in out.stdout, out.stderr
    assert not results.exists()


# --------------------------------------------------------------------------- 7. smaller


@pytest.mark.timeout(60)
def test_unwritable_results_root_is_one_line(tmp_path: Path) -> None:
    spec = tiny_sweep("ro", epochs=2, grid={"policy_lr": [0.1]}, seeds=[1])
    path = write_sweep(tmp_path / "ro.yaml", spec)
    blocker = tmp_path / "results"
    blocker.write_text("a file where the results root should be")
    out = run_cli("run", path, "--results", blocker)
    assert out.returncode == 2, out.stdout + out.stderr
    assert str(blocker) in one_error_line(out)
    assert blocker.read_text() == "a file where the results root should be"


@pytest.mark.timeout(120)
def test_runs_done_in_another_sweep_are_copied_not_trained(tmp_path: Path, cut_reference) -> None:
    ref_results, ref_rows = cut_reference
    results = tmp_path / "results"
    shutil.copytree(ref_results, results)
    other = {**CUT, "name": "cut-again", "description": "the same runs under another name"}
    out = run_cli("run", write_sweep(tmp_path / "again.yaml", other), "--results", results)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "4 already finished, 0 to train" in out.stdout and "ray started" not in out.stdout
    for rid, want in ref_rows.items():
        got = read_rows(run_dir(results, "cut-again", rid) / "returns.csv")
        assert got == want, rid


@pytest.mark.timeout(180)
def test_status_of_an_all_diverged_sweep(tmp_path: Path) -> None:
    spec = tiny_sweep("boom", epochs=3, grid={"value_lr": [1.0e30]}, seeds=[1, 2])
    path = write_sweep(tmp_path / "boom.yaml", spec)
    results = tmp_path / "results"
    out = run_cli("run", path, "--results", results)
    assert out.returncode == 1, out.stdout + out.stderr
    for r in load_spec(path).runs():
        st = state_of(results, "boom", r.run_id)
        assert st["state"] == "diverged"
        assert "value_loss is" in st["error"] and " at epoch " in st["error"], st["error"]
    st = run_cli("status", results / "boom", timeout=60)
    assert "best configuration: none (every run failed or diverged)" in st.stdout, st.stdout
    assert "best so far" not in st.stdout


def test_worker_side_writes_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a Ray worker runs (pack_task_body: train, checkpoint, finish) opens no file for
    writing outside the kernel caches: rows, checkpoints and policies travel to the driver,
    so a cluster needs no shared disk and a worker can never damage the results."""
    import sys

    from a2c_core import A2CConfig
    from runner.launch import pack_task_body

    monkeypatch.chdir(tmp_path)  # as if the worker's working directory were a results root
    caches = [str(Path.home() / ".cache"), os.environ.get("A2C_SWEEP_KERNEL_DIR", "~"),
              os.environ.get("NUMBA_CACHE_DIR", "~"), "/dev/"]  # fmt: skip
    written: list[str] = []
    active = True

    def hook(event: str, args: tuple) -> None:
        if active and event == "open" and isinstance(args[0], str | bytes | os.PathLike):
            mode, flags = args[1], args[2] if len(args) > 2 else 0
            if (mode and any(c in str(mode) for c in "wax+")) or (flags or 0) & (
                os.O_WRONLY | os.O_RDWR | os.O_CREAT
            ):
                written.append(os.path.abspath(os.fsdecode(args[0])))

    sys.addaudithook(hook)  # (hooks cannot be removed: `active` turns it off)
    try:
        cfg = A2CConfig(num_envs=2, steps_per_epoch=32, value_iters=1, epochs=3).to_dict()
        msgs = list(pack_task_body([cfg, cfg], [1, 2], ["a", "b"], [None, None], 0.0))
    finally:
        active = False
    assert [type(m).__name__ for m in msgs].count("RunEnded") == 2, msgs
    outside = [p for p in written if "/__pycache__" not in p  # numba's on-disk cache
               and not any(p.startswith(os.path.abspath(os.path.expanduser(c))) for c in caches)]  # fmt: skip
    assert outside == [], outside
    assert list(tmp_path.iterdir()) == []


@pytest.mark.timeout(120)
def test_a_refused_launch_changes_nothing_on_disk(tmp_path: Path, cut_reference) -> None:
    """Another experiment under an existing name is refused (exit 2) and leaves every file,
    runs.csv included, as it was: analyze, refine and gif --best keep working."""
    from test_launch import tree_snapshot, without_lock

    ref_results, _ = cut_reference
    results = tmp_path / "results"
    shutil.copytree(ref_results, results)
    before = tree_snapshot(results)
    other = {**CUT, "lam": 0.5}  # another experiment under the same name
    out = run_cli("run", write_sweep(tmp_path / "other.yaml", other), "--results", results)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "lam: fixed to 0.5 here" in one_error_line(out)
    assert without_lock(tree_snapshot(results)) == without_lock(before)


# --------------------------------------------------------------------------- a second review


@pytest.mark.timeout(240)
def test_nohup_keeps_a_sweep_running_through_sighup(tmp_path: Path) -> None:
    """`nohup` (SIGHUP ignored) must keep its meaning: a logout does not stop the sweep."""
    spec = tiny_sweep("nohup", epochs=150, grid={"policy_lr": [0.1]}, seeds=[1, 2])
    path = write_sweep(tmp_path / "nohup.yaml", spec)
    results = tmp_path / "results"
    log = tmp_path / "nohup.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(["nohup", *cli(), "run", str(path), "--results", str(results)],
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=child_env(), start_new_session=True)  # fmt: skip
    try:
        wait_for(lambda: "training 2 runs" in log.read_text(), 120, "training to start")
        os.kill(proc.pid, signal.SIGHUP)
        assert proc.wait(timeout=180) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert "interrupted" not in log.read_text()
    assert "done: 2 done" in log.read_text()


@pytest.mark.timeout(180)
def test_foreign_checkpoint_damaged_rows_and_config_are_recomputed(
    tmp_path: Path, cut_reference
) -> None:
    """A checkpoint copied from another run is not resumed; a finished run whose returns.csv
    cannot be parsed (CRLF, garbage in a middle row) is moved aside and recomputed; a
    garbled config.json is written again; `status` reports, never a traceback."""
    ref_results, ref_rows = cut_reference
    results = tmp_path / "results"
    shutil.copytree(ref_results, results)
    ids = sorted(ref_rows)
    d = {rid: run_dir(results, "cut", rid) for rid in ids}
    # a: unfinished, with b's checkpoint
    status = d[ids[0]] / "status.json"
    status.write_text(json.dumps({**json.loads(status.read_text()), "state": "running",
                                  "epochs_done": 59}))  # fmt: skip
    shutil.copyfile(d[ids[1]] / "checkpoint.pt", d[ids[0]] / "checkpoint.pt")
    # b: done, CRLF line endings
    f = d[ids[1]] / "returns.csv"
    f.write_bytes(f.read_bytes().replace(b"\n", b"\r\n"))
    # c: done, binary garbage in a middle row
    f = d[ids[2]] / "returns.csv"
    lines = f.read_bytes().splitlines(keepends=True)
    f.write_bytes(b"".join(lines[:12] + [b"\x00\xff garbage\n"] + lines[13:]))
    # d: done, config.json garbled
    (d[ids[3]] / "config.json").write_bytes(b"\x00garbage{")

    st = run_cli("status", results / "cut", timeout=60)
    assert st.returncode == 0 and "Traceback" not in st.stdout + st.stderr, st.stderr
    assert sum("cannot be read" in line for line in st.stdout.splitlines()) == 2, st.stdout

    out = run_cli("run", write_sweep(tmp_path / "cut.yaml", CUT), "--results", results)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "checkpoint.pt belongs to another run" in out.stderr, out.stderr
    assert out.stderr.count("cannot be read") == 2 and "config.json was unreadable" in out.stderr
    for rid in ids:
        got = read_rows(d[rid] / "returns.csv")
        assert without_wall(got) == without_wall(ref_rows[rid]), rid
        assert state_of(results, "cut", rid)["state"] == "done"
    assert json.loads((d[ids[3]] / "config.json").read_text())["run_id"] == ids[3]
    kept = sorted(p.name.split(".corrupt-")[0] for p in results.rglob("*.corrupt-*"))
    assert kept == ["returns.csv", "returns.csv"]  # moved aside, never deleted
    an = run_cli("analyze", results / "cut", timeout=120)
    assert an.returncode == 0, an.stderr


@pytest.mark.timeout(60)
@pytest.mark.parametrize("what", ["fifo", "hardlink", "sweep-dir-symlink"])
def test_lock_file_and_sweep_dir_must_be_real(tmp_path: Path, what: str) -> None:
    spec = tiny_sweep("real", epochs=2, grid={"policy_lr": [0.1]}, seeds=[1])
    path = write_sweep(tmp_path / "real.yaml", spec)
    results = tmp_path / "results"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_text("keep me")
    if what == "sweep-dir-symlink":
        results.mkdir()
        (results / "real").symlink_to(outside, target_is_directory=True)
    else:
        (results / "real").mkdir(parents=True)
        if what == "fifo":
            os.mkfifo(results / "real" / ".lock")
        else:
            os.link(outside / "precious", results / "real" / ".lock")
    out = run_cli("run", path, "--results", results, timeout=50)
    assert out.returncode == 2, out.stdout + out.stderr
    one_error_line(out)
    assert sorted(p.name for p in outside.iterdir()) == ["precious"]
    assert (outside / "precious").read_text() == "keep me"


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "case",
    ["deep-yaml", "huge-seed-count", "idna-address", "show-huge", "long-grid-key"],
)
def test_more_bad_input_is_one_line(tmp_path: Path, case: str) -> None:
    results = tmp_path / "results"
    spec = tiny_sweep("bad", epochs=2, grid={"policy_lr": [0.1]}, seeds=[1])
    args: list = []
    if case == "deep-yaml":
        path = tmp_path / "deep.yaml"
        path.write_text("name: bad\nseeds: [1]\ndescription: " + "[" * 5000 + "]" * 5000 + "\n")
    elif case == "huge-seed-count":  # counted, never built: refused at once by the limit
        path = write_sweep(tmp_path / "s.yaml", {**spec, "seeds": {"count": 10**12}})
    elif case == "idna-address":
        path = write_sweep(tmp_path / "s.yaml", spec)
        args = ["--address", "a..b:6379"]
    elif case == "show-huge":
        path = write_sweep(tmp_path / "s.yaml", spec)
        args = ["--dry-run", "--show", "99999999999999999999"]
    else:  # 80k values of one key: validated in linear time (a list made it ~70 s)
        spec = {**spec, "grid": {"policy_lr": [1e-6 * (i + 1) for i in range(80_000)]},
                "seeds": list(range(30))}  # fmt: skip
        path = write_sweep(tmp_path / "s.yaml", spec)
    start = time.monotonic()
    out = run_cli("run", path, "--results", results, *args, timeout=50)
    assert out.returncode == 2, out.stdout + out.stderr
    if case == "show-huge":  # argparse's error, on one line too
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("a2c-sweep run: error: argument --show")
    else:
        one_error_line(out)
    assert time.monotonic() - start < 20
    assert not results.exists()

"""The results store: atomic files, torn rows, finished runs, reuse across sweeps."""

from __future__ import annotations

import csv
import json
import math
import os
import textwrap
from pathlib import Path

import numpy as np
import pytest

from a2c_core.config import A2CConfig
from a2c_core.results import policy_state
from runner.spec import SpecError, Sweep, load_spec, run_id
from runner.store import (
    RETURN_COLUMNS,
    FinishedRunError,
    Store,
    StoreError,
)

pytestmark = pytest.mark.timeout(120)

RID = run_id(A2CConfig(), 0)
SWEEP = """\
name: {name}
epochs: 20
grid:
  policy_lr: [0.1, 0.01]
  gamma: [0.99, 0.999]
seeds: [1, 2]
"""


def row(epoch: int, **over: float) -> dict:
    base = {
        "epoch": epoch,
        "env_steps": epoch * 1000,
        "episodes": epoch * 3,
        "return_mean": 10.0 + epoch / 3,
        "return_median": 10.0,
        "return_min": 1.0,
        "return_max": 200.0,
        "length_mean": 21.5,
        "value_loss": 0.1 * epoch,
        "policy_loss": -0.01,
        "entropy": 0.69,
        "explained_variance": 0.5,
        "wall_s": 0.25,
    }
    base.update(over)
    return base


def write_sweep(tmp_path: Path, name: str, text: str | None = None, file: str = "") -> Sweep:
    path = tmp_path / "sweeps" / (file or f"{name}.yaml")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text if text is not None else SWEEP.format(name=name)))
    return load_spec(path)


def temp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.startswith(".") or ".tmp" in p.name]


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "results", "exp")


# --------------------------------------------------------------------------- atomic files


def test_atomic_writes_leave_no_temp_files(tmp_path: Path, store: Store) -> None:
    sweep = write_sweep(tmp_path, "exp")
    store.init_sweep(sweep)
    store.write_config(RID, A2CConfig(), 0)
    store.write_status(RID, "running", epochs_done=0)
    store.append_returns(RID, [row(1), row(2)])
    store.write_checkpoint(RID, {"epoch": 2, "w": __import__("torch").zeros(3)})
    store.write_policy(RID, policy_state(A2CConfig(), 0, {"w": np.ones(3)}))
    store.write_runs_csv_for(sweep)
    store.write_status(RID, "done", wall_s=1.5, epochs_done=2)
    assert temp_files(store.root) == []
    assert (store.dir / "sweep.yaml").read_text() == sweep.text
    files = sorted(p.name for p in store.run_dir(RID).iterdir())
    assert files == [
        "checkpoint.pt",
        "config.json",
        "policy.pt",
        "returns.csv",
        "status.json",
    ]
    config = json.loads(store.config_path(RID).read_text())
    assert config["run_id"] == RID and config["seed"] == 0
    assert config["config"] == A2CConfig().to_dict()
    assert config["versions"]["python"] and "torch" in config["versions"]
    assert store.read_checkpoint(RID)["epoch"] == 2
    assert store.read_policy(RID)["params"]["w"].tolist() == [1.0, 1.0, 1.0]


def test_failed_atomic_write_keeps_old_file_and_no_temp(store: Store) -> None:
    store.write_checkpoint(RID, {"epoch": 1})

    class Boom:
        def __reduce__(self):  # torch.save pickles it and fails midway
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        store.write_checkpoint(RID, {"epoch": 2, "bad": Boom()})
    assert store.read_checkpoint(RID) == {"epoch": 1}
    assert temp_files(store.root) == []


def test_checkpoint_loads_with_weights_only(store: Store) -> None:
    import torch

    state = {
        "epoch": 3,
        "params": torch.arange(4.0),
        "rng": torch.tensor([1, 2], dtype=torch.int64),
    }
    store.write_checkpoint(RID, state)
    loaded = torch.load(store.checkpoint_path(RID), weights_only=True)
    assert loaded["epoch"] == 3 and torch.equal(loaded["params"], state["params"])


# --------------------------------------------------------------------------- returns.csv


def test_returns_header_and_rows(store: Store) -> None:
    assert store.append_returns(RID, [row(1)]) == 1
    assert store.append_returns(RID, [row(2), row(3)]) == 2
    assert store.append_returns(RID, []) == 0
    lines = store.returns_path(RID).read_text().splitlines()
    assert lines[0] == ",".join(RETURN_COLUMNS)
    assert len(lines) == 4
    rows = store.read_returns(RID)
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert rows[1] == row(2)
    assert store.read_returns("0123456789ab") == []


def test_float_round_trip_exact(store: Store) -> None:
    values = [0.1, 1 / 3, 1e-310, 2.0**-1074, 1.7976931348623157e308, -0.0, 123456789.123456789]
    extra = {
        "return_mean": float("nan"),
        "return_max": float("inf"),
        "return_min": float("-inf"),
        "entropy": np.float32(0.1),  # numpy scalars widen exactly
        "episodes": np.int64(7),
    }
    rows = [row(i + 1, value_loss=v) for i, v in enumerate(values)]
    rows[0].update(extra)
    store.append_returns(RID, rows)
    back = store.read_returns(RID)
    for value, got in zip(values, back, strict=True):
        assert got["value_loss"] == value and math.copysign(1, got["value_loss"]) == math.copysign(
            1, value
        )
    assert math.isnan(back[0]["return_mean"])
    assert back[0]["return_max"] == math.inf and back[0]["return_min"] == -math.inf
    assert back[0]["entropy"] == float(np.float32(0.1))
    assert back[0]["episodes"] == 7 and type(back[0]["episodes"]) is int
    text = store.returns_path(RID).read_text()
    assert ",nan," in text and "np." not in text


def test_returns_accepts_dataclass_records(store: Store) -> None:
    from dataclasses import make_dataclass

    Record = make_dataclass("Record", [(c, float) for c in RETURN_COLUMNS] + [("run", int)])
    store.append_returns(RID, [Record(**row(1), run=0)])
    assert store.read_returns(RID)[0]["epoch"] == 1


def test_returns_rejects_missing_column(store: Store) -> None:
    bad = row(1)
    del bad["entropy"]
    with pytest.raises(StoreError, match="entropy"):
        store.append_returns(RID, [bad])


@pytest.mark.parametrize(
    "torn",
    [
        b"4,4000,12,11.0",  # no trailing newline
        b"4,4000,12,11.0\n",  # wrong field count
        b"4,4000,12,11.0,x,1,1,1,1,1,1,1,1\n",  # unparsable
    ],
)
def test_torn_last_line_repaired(store: Store, torn: bytes) -> None:
    store.append_returns(RID, [row(1), row(2), row(3)])
    with open(store.returns_path(RID), "ab") as f:
        f.write(torn)
    assert [r["epoch"] for r in store.read_returns(RID)] == [1, 2, 3]  # readers tolerate it
    assert store.repair_returns(RID) == 3
    assert store.returns_path(RID).read_bytes().endswith(b"\n")
    assert [r["epoch"] for r in store.read_returns(RID)] == [1, 2, 3]
    store.append_returns(RID, [row(4)])
    assert [r["epoch"] for r in store.read_returns(RID)] == [1, 2, 3, 4]
    assert temp_files(store.root) == []


def test_append_after_torn_line_repairs_first(store: Store) -> None:
    store.append_returns(RID, [row(1)])
    with open(store.returns_path(RID), "ab") as f:
        f.write(b"2,2000,6")
    store.append_returns(RID, [row(2)])
    assert [r["epoch"] for r in store.read_returns(RID)] == [1, 2]


def test_torn_header_repaired(store: Store) -> None:
    store.run_dir(RID).mkdir(parents=True)
    store.returns_path(RID).write_bytes(b"epoch,env_st")
    assert store.repair_returns(RID) == 0
    store.append_returns(RID, [row(1)])
    assert [r["epoch"] for r in store.read_returns(RID)] == [1]


def test_truncate_to_checkpoint_epoch(store: Store) -> None:
    store.append_returns(RID, [row(e) for e in range(1, 8)])
    with open(store.returns_path(RID), "ab") as f:
        f.write(b"8,80")
    assert store.truncate_returns(RID, 5) == 5
    assert [r["epoch"] for r in store.read_returns(RID)] == [1, 2, 3, 4, 5]
    assert store.truncate_returns(RID, 5) == 5  # idempotent
    assert store.truncate_returns(RID, 0) == 0
    assert store.read_returns(RID) == []
    assert store.returns_path(RID).read_text() == ",".join(RETURN_COLUMNS) + "\n"
    assert store.truncate_returns("0123456789ab", 3) == 0  # no file


def test_malformed_complete_last_line_dropped_on_append(store: Store) -> None:
    store.append_returns(RID, [row(1)])
    with open(store.returns_path(RID), "ab") as f:
        f.write(b"\x00\x00garbage\n")
    store.append_returns(RID, [row(2)])
    assert [r["epoch"] for r in store.read_returns(RID)] == [1, 2]


def test_corrupt_middle_row_is_an_error(store: Store) -> None:
    store.append_returns(RID, [row(1), row(2)])
    lines = store.returns_path(RID).read_bytes().split(b"\n")
    lines.insert(2, b"garbage")
    store.returns_path(RID).write_bytes(b"\n".join(lines))
    with pytest.raises(StoreError, match="line 3: corrupt returns.csv"):
        store.read_returns(RID)
    with pytest.raises(StoreError, match="line 3: corrupt returns.csv"):
        store.repair_returns(RID)


# --------------------------------------------------------------------------- status.json


def test_status_round_trip(store: Store) -> None:
    assert store.read_status(RID) is None
    store.write_status(RID, "running", wall_s=2.5, epochs_done=3)
    status = store.read_status(RID)
    assert status["state"] == "running" and status["error"] is None
    assert status["wall_s"] == 2.5 and status["epochs_done"] == 3 and status["updated"]
    assert not store.is_finished(RID)
    with pytest.raises(StoreError):
        store.write_status(RID, "finished")


@pytest.mark.parametrize(
    "content", [b'{"state": "do', b"", b"\x00\x00\x00", b"[1, 2]", b'{"state": "weird"}']
)
def test_half_written_status_is_missing(store: Store, content: bytes) -> None:
    store.run_dir(RID).mkdir(parents=True)
    store.status_path(RID).write_bytes(content)
    assert store.read_status(RID) is None
    assert not store.is_finished(RID)
    store.write_status(RID, "running")  # the run is resumed
    assert store.read_status(RID)["state"] == "running"


@pytest.mark.parametrize("state", ["done", "failed", "diverged"])
def test_finished_run_not_rewritable(tmp_path: Path, state: str) -> None:
    store = Store(tmp_path / "results", "exp")
    store.write_config(RID, A2CConfig(), 0)
    store.append_returns(RID, [row(1)])
    store.write_status(RID, state, error="Traceback ..." if state == "failed" else None)
    before = {p.name: p.read_bytes() for p in store.run_dir(RID).iterdir()}
    fresh = Store(tmp_path / "results", "exp")  # no cached knowledge
    for s in (store, fresh):
        assert s.is_finished(RID)
        with pytest.raises(FinishedRunError):
            s.write_status(RID, "running")
        with pytest.raises(FinishedRunError):
            s.append_returns(RID, [row(2)])
        with pytest.raises(FinishedRunError):
            s.write_config(RID, A2CConfig(), 0)
        with pytest.raises(FinishedRunError):
            s.truncate_returns(RID, 0)
        with pytest.raises(FinishedRunError):
            s.write_checkpoint(RID, {"epoch": 1})
        with pytest.raises(FinishedRunError):
            s.write_policy(RID, {})
    after = {p.name: p.read_bytes() for p in store.run_dir(RID).iterdir()}
    assert after == before


def test_bad_run_id_rejected(store: Store) -> None:
    for bad in ("../x", "abc", "ZZZZZZZZZZZZ", "0123456789ab/.."):
        with pytest.raises(StoreError):
            store.run_dir(bad)


def test_bad_store_name_rejected(tmp_path: Path) -> None:
    for bad in ("../x", "a/b", "", ".hidden"):
        with pytest.raises(StoreError):
            Store(tmp_path, bad)


# --------------------------------------------------------------------------- runs.csv


def test_runs_csv_content(tmp_path: Path, store: Store) -> None:
    sweep = write_sweep(tmp_path, "exp")
    runs = sweep.runs()
    store.write_status(runs[0].run_id, "done")
    store.write_status(runs[1].run_id, "running")
    store.write_status(runs[2].run_id, "diverged")
    rows = store.write_runs_csv_for(sweep)
    assert len(rows) == 8
    with open(store.runs_csv, newline="") as f:
        table = list(csv.reader(f))
    assert table[0] == ["run_id", "policy_lr", "gamma", "seed", "state"]
    assert table[1] == [runs[0].run_id, "0.1", "0.99", "1", "done"]
    assert table[2] == [runs[1].run_id, "0.1", "0.99", "2", "running"]
    assert table[3] == [runs[2].run_id, "0.1", "0.999", "1", "diverged"]
    assert [r[4] for r in table[4:]] == ["pending"] * 5
    assert [r["run_id"] for r in store.read_runs_csv()] == [r.run_id for r in runs]
    # explicit rows, float repr
    store.write_runs_csv([{"run_id": "a" * 12, "lam": 1 / 3, "seed": 5, "state": "done"}])
    assert store.read_runs_csv() == [
        {"run_id": "a" * 12, "lam": repr(1 / 3), "seed": "5", "state": "done"}
    ]
    assert temp_files(store.root) == []


# --------------------------------------------------------------------------- reuse


def finish(store: Store, rid: str, config: A2CConfig, seed: int, state: str = "done") -> None:
    store.write_config(rid, config, seed)
    n = config.epochs if state == "done" else 2  # a done run has every epoch (verified)
    store.append_returns(rid, [row(e) for e in range(1, n + 1)])
    store.write_checkpoint(rid, {"epoch": 2})
    store.write_policy(rid, {"w": __import__("torch").ones(2)})
    store.write_status(rid, state, epochs_done=n, wall_s=3.0)


def test_copy_finished_from_other_sweep(tmp_path: Path) -> None:
    root = tmp_path / "results"
    one, two = Store(root, "one"), Store(root, "two")
    config = A2CConfig(gamma=0.9)
    rid = run_id(config, 4)
    finish(one, rid, config, 4)
    assert two.copy_finished_from_other_sweep(rid) == one.run_dir(rid)
    target = two.run_dir(rid)
    # with the final checkpoint, from which raising `epochs` continues the run
    assert sorted(p.name for p in target.iterdir()) == [
        "checkpoint.pt",
        "config.json",
        "policy.pt",
        "returns.csv",
        "status.json",
    ]
    for name in ("checkpoint.pt", "config.json", "policy.pt", "returns.csv", "status.json"):
        assert (target / name).read_bytes() == (one.run_dir(rid) / name).read_bytes()
    assert two.is_finished(rid)
    assert two.copy_finished_from_other_sweep(rid) is None  # already there
    assert temp_files(root) == []
    # an id nobody finished
    other = run_id(config, 5)
    assert two.copy_finished_from_other_sweep(other) is None
    # an unfinished run elsewhere is not copied
    one.write_status(other, "running")
    assert two.copy_finished_from_other_sweep(other) is None
    assert not two.run_dir(other).exists()


def test_copy_replaces_unfinished_local_run(tmp_path: Path) -> None:
    root = tmp_path / "results"
    one, two = Store(root, "one"), Store(root, "two")
    config = A2CConfig(lam=0.8)
    rid = run_id(config, 1)
    two.write_config(rid, config, 1)
    two.append_returns(rid, [row(1)])
    two.write_checkpoint(rid, {"epoch": 1})
    two.write_status(rid, "running")
    finish(one, rid, config, 1)
    assert two.copy_finished_from_other_sweep(rid)
    # the local run's stale checkpoint is replaced by the finished copy's
    assert two.checkpoint_path(rid).read_bytes() == one.checkpoint_path(rid).read_bytes()
    assert [r["epoch"] for r in two.read_returns(rid)] == list(range(1, config.epochs + 1))
    assert two.read_status(rid)["state"] == "done"
    assert temp_files(root) == []


def test_copy_prefers_done(tmp_path: Path) -> None:
    root = tmp_path / "results"
    a, b, c = Store(root, "a"), Store(root, "b"), Store(root, "c")
    config = A2CConfig()
    rid = run_id(config, 0)
    finish(a, rid, config, 0, state="failed")
    finish(b, rid, config, 0, state="done")
    assert c.copy_finished_from_other_sweep(rid)
    assert c.read_status(rid)["state"] == "done"


# --------------------------------------------------------------------------- init_sweep


def test_init_sweep_relaunch_and_compatible_edit(tmp_path: Path) -> None:
    root = tmp_path / "results"
    sweep = write_sweep(tmp_path, "exp")
    store = Store(root, "exp")
    store.init_sweep(sweep)
    store.init_sweep(sweep)  # relaunch
    edited = write_sweep(
        tmp_path,
        "exp",
        SWEEP.format(name="exp").replace("[0.99, 0.999]", "[0.99, 0.995]") + "# edited\n",
        file="edited.yaml",
    )
    store.init_sweep(edited)
    assert store.sweep_yaml.read_text() == edited.text  # the latest launch
    assert store.read_sweep().grid["gamma"] == [0.99, 0.995]


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (("epochs: 20", "epochs: 20\nvalue_iters: 40"), "value_iters"),
        (("grid:\n", "grid:\n  lam: [0.9, 0.95]\n"), "grid.lam"),
        (("grid:\n", "lam: 0.9\ngrid:\n"), "lam"),
        (("  gamma: [0.99, 0.999]\n", "gamma: 0.99\n"), "gamma"),
    ],
)
def test_init_sweep_incompatible(tmp_path: Path, change: tuple[str, str], key: str) -> None:
    root = tmp_path / "results"
    store = Store(root, "exp")
    store.init_sweep(write_sweep(tmp_path, "exp"))
    before = store.sweep_yaml.read_bytes()
    listing = sorted(root.rglob("*"))
    text = SWEEP.format(name="exp").replace(*change)
    assert text != SWEEP.format(name="exp")
    new = write_sweep(tmp_path, "exp", text, file="new.yaml")
    with pytest.raises(SpecError) as info:
        store.init_sweep(new)
    assert key in str(info.value) and "\n" not in str(info.value)
    assert store.sweep_yaml.read_bytes() == before
    assert sorted(root.rglob("*")) == listing


def test_init_sweep_name_mismatch(tmp_path: Path) -> None:
    with pytest.raises(StoreError):
        Store(tmp_path / "results", "other").init_sweep(write_sweep(tmp_path, "exp"))


def test_clean_temp_removes_crash_leftovers(tmp_path: Path) -> None:
    store = Store(tmp_path / "results", "exp")
    store.write_status(RID, "running")
    (store.run_dir(RID) / ".tmp-status.json.a8_k2x9q").write_text("x")  # mkstemp's names
    (store.runs_dir / f".tmp-{RID}.x7yz0abc").mkdir()
    keep = store.run_dir(RID) / "notes.txt"
    keep.write_text("mine")
    mine = store.run_dir(RID) / ".tmp-my-notes"  # not a name this store makes: kept
    mine.write_text("mine too")
    store.init_sweep(write_sweep(tmp_path, "exp"))
    assert temp_files(store.root) == [mine]
    assert keep.exists() and store.run_ids() == [RID]
    assert os.listdir(store.runs_dir) == [RID]


def test_store_and_analysis_read_returns_alike(tmp_path: Path, store: Store) -> None:
    """One reader: the store, analysis and status see the same rows in the same files."""
    from analysis.load import AnalysisError
    from analysis.load import read_returns as analysis_rows

    store.append_returns(RID, [row(1), row(2), row(3)])
    path = store.returns_path(RID)
    good = path.read_bytes()
    cases = {
        "torn": good + b"4,4000,1",
        "blank lines at the end": good + b"\n\n",
        "bad last line": good + b"4,x\n",
        "bad middle line": good.replace(b"\n2,", b"\n2,x,", 1),
        "crlf": good.replace(b"\n", b"\r\n"),
        "binary": b"\x00\xff\xfe",
    }
    for what, data in cases.items():
        path.write_bytes(data)
        try:
            mine = [r["epoch"] for r in store.read_returns(RID)]
        except StoreError as exc:
            mine = str(exc)
        try:
            theirs = analysis_rows(path)["epoch"].tolist()
        except AnalysisError as exc:
            theirs = str(exc)
        assert mine == theirs, what
        if what in ("bad middle line", "crlf", "binary"):
            assert "corrupt returns.csv" in mine and str(path) in mine, what
        else:
            assert mine == [1, 2, 3], what
        if what == "crlf":
            assert "CRLF (Windows) line endings" in mine, mine


@pytest.mark.parametrize("bad", ['"abc"', "[1]", "-3", "true", "1.5", "{}"])
def test_status_with_a_garbage_epoch_count_is_unreadable_not_a_crash(tmp_path, bad) -> None:
    """A hand-edited status.json whose epochs_done is not a count reads as unreadable (the
    run is then verified from its rows and resumed), never as a traceback in `run` or
    `status` (seen: int("abc") in row_problem)."""
    import json as _json

    from runner.spec import load_spec as _load

    sweep = _load({"name": "s", "env": "CartPole-v0", "epochs": 3, "seeds": [1]})
    store = Store(tmp_path, "s")
    store.init_sweep(sweep)
    (run,) = sweep.runs()
    store.write_config(run.run_id, run.config, run.seed)
    store.write_status(run.run_id, "running", epochs_done=2)
    path = store.status_path(run.run_id)
    path.write_text(path.read_text().replace('"epochs_done": 2', f'"epochs_done": {bad}'))
    assert _json.loads(path.read_text())["epochs_done"] == _json.loads(bad)
    assert store.read_status(run.run_id) is None
    assert store.row_problem(run.run_id, 3, None) is None


def test_second_launch_names_a_holder_that_is_still_writing_its_name(tmp_path) -> None:
    """The holder takes the flock, then writes its name: a second launch between the two
    must wait for the name rather than say "holder unknown" (seen once in CI under load)."""
    import fcntl
    import json as _json
    import os
    import threading

    from runner.store import SweepLock, SweepLockedError

    path = tmp_path / ".lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # locked, nothing written yet
    info = {"host": "h", "pid": 4242, "started": "now"}
    later = threading.Timer(0.3, lambda: os.pwrite(fd, _json.dumps(info).encode(), 0))
    later.start()
    try:
        with pytest.raises(SweepLockedError, match="pid 4242 on h"):
            SweepLock(path).acquire()
    finally:
        later.join()
        os.close(fd)

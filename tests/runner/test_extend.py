"""Extending a sweep: raising `epochs` continues every run from its final checkpoint, with
the numbers the longer run would have had in one go; lowering it keeps the rows; results
made under the older run-id rule (epochs in the id) are renamed, not recomputed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runner import run_sweep
from runner.spec import load_spec

SPEC = {
    "name": "ext",
    "env": "CartPole-v0",
    "num_envs": 2,
    "steps_per_epoch": 64,
    "value_iters": 3,
    "epochs": 3,
    "grid": {"policy_lr": [0.1, 0.01], "value_target": ["returns", "lambda_returns"]},
    "seeds": [4, 9],
    "execution": {"num_cpus": 1, "checkpoint_every_s": 1000},
}


def rows_without_wall(path: Path) -> list[str]:
    """returns.csv lines minus the last column (wall_s)."""
    return [line.rsplit(",", 1)[0] for line in path.read_text().splitlines()]


def run_files(results: Path, name: str) -> dict[tuple, dict]:
    out = {}
    for r in load_spec({**SPEC, "name": name}).runs():
        d = results / name / "runs" / r.run_id
        out[(tuple(sorted(r.swept.items())), r.seed)] = {
            "rows": rows_without_wall(d / "returns.csv"),
            "status": json.loads((d / "status.json").read_text()),
            "policy": (d / "policy.pt").read_bytes(),
        }
    return out


@pytest.mark.timeout(300)
def test_raise_then_lower_epochs(tmp_path: Path) -> None:
    lines: list[str] = []
    first = run_sweep(SPEC, tmp_path / "a", log=lines.append, warn=lines.append)
    assert first.counts["done"] == 8
    ids = {r.run_id for r in load_spec(SPEC).runs()}
    # raise 3 -> 7: the same run ids, each continued from its final checkpoint at epoch 3
    longer = {**SPEC, "epochs": 7}
    assert {r.run_id for r in load_spec(longer).runs()} == ids
    extended = run_sweep(longer, tmp_path / "a", log=lines.append, warn=lines.append)
    assert extended.trained == 8 and extended.counts["done"] == 8, extended
    assert sum("extended from 3 to 7 epochs, continuing from its final checkpoint" in x
               for x in lines) == 8, lines  # fmt: skip
    # ... and equal, bitwise, to the same runs trained to 7 epochs in one go
    one_go = run_sweep({**longer, "name": "ext"}, tmp_path / "b", log=None)
    assert one_go.trained == 8
    a, b = run_files(tmp_path / "a", "ext"), run_files(tmp_path / "b", "ext")
    assert a.keys() == b.keys()
    for key in a:
        assert len(a[key]["rows"]) == 1 + 7, key
        assert a[key]["rows"] == b[key]["rows"], key
        assert a[key]["status"]["epochs_done"] == 7 and a[key]["status"]["state"] == "done"
    # lowering 7 -> 5 keeps the 7 rows, trains nothing, and reports every run done
    lower = run_sweep({**SPEC, "epochs": 5}, tmp_path / "a", log=lines.append, warn=lines.append)
    assert lower.trained == 0 and lower.already_finished == 8 and lower.counts["done"] == 8
    assert all(len(f["rows"]) == 1 + 7 for f in run_files(tmp_path / "a", "ext").values())


@pytest.mark.timeout(300)
def test_interrupted_extension_and_lowered_below_a_checkpoint(tmp_path: Path) -> None:
    """A run whose checkpoint is already past a lowered `epochs` is done at that checkpoint
    (rows kept up to it, its policy taken from it), not trained again."""
    spec = {**SPEC, "grid": {"policy_lr": [0.1]}, "seeds": [4]}
    run_sweep({**spec, "epochs": 6}, tmp_path / "a", log=None)
    (rid,) = [r.run_id for r in load_spec(spec).runs()]
    d = tmp_path / "a" / "ext" / "runs" / rid
    # pretend the 6-epoch run was cut off after its final checkpoint was written
    (d / "status.json").write_text(json.dumps({"state": "running", "error": None,
                                               "wall_s": 0.0, "epochs_done": 6}))  # fmt: skip
    (d / "policy.pt").unlink()
    result = run_sweep({**spec, "epochs": 4}, tmp_path / "a", log=None)
    assert result.trained == 0 and result.counts["done"] == 1
    status = json.loads((d / "status.json").read_text())
    assert status["state"] == "done" and status["epochs_done"] == 6
    assert len(rows_without_wall(d / "returns.csv")) == 1 + 6 and (d / "policy.pt").is_file()


@pytest.mark.timeout(300)
def test_results_of_the_older_run_id_rule_are_renamed_not_recomputed(tmp_path: Path) -> None:
    spec = {**SPEC, "grid": {"policy_lr": [0.1]}, "seeds": [4, 9]}
    run_sweep(spec, tmp_path / "a", log=None)
    runs = tmp_path / "a" / "ext" / "runs"
    before = {}
    for i, d in enumerate(sorted(runs.iterdir())):
        old = runs / f"00000000000{i}"  # as if named by the older rule
        d.rename(old)
        config = json.loads((old / "config.json").read_text())
        (old / "config.json").write_text(json.dumps({**config, "run_id": old.name}))
        before[d.name] = rows_without_wall(old / "returns.csv")
    lines: list[str] = []
    again = run_sweep(spec, tmp_path / "a", log=lines.append, warn=lines.append)
    assert again.trained == 0 and again.already_finished == 2, again
    assert any("2 run directories renamed" in x for x in lines), lines
    for rid, rows in before.items():
        assert rows_without_wall(runs / rid / "returns.csv") == rows
        assert json.loads((runs / rid / "config.json").read_text())["run_id"] == rid


@pytest.mark.timeout(300)
def test_extension_is_not_replaced_by_a_shorter_copy_from_another_sweep(tmp_path: Path) -> None:
    """A run also done in another sweep of the same root (with fewer epochs) is extended
    here, never replaced by that shorter copy (which would redo the epochs it had)."""
    spec = {**SPEC, "grid": {"policy_lr": [0.1]}, "seeds": [4]}
    run_sweep({**spec, "name": "short"}, tmp_path / "r", log=None)  # 3 epochs elsewhere
    run_sweep({**spec, "epochs": 5}, tmp_path / "r", log=None)
    lines: list[str] = []
    info: list[str] = []
    result = run_sweep({**spec, "epochs": 8}, tmp_path / "r", log=info.append, warn=lines.append)
    assert result.counts["done"] == 1
    extended = [x for x in info + lines if "extended from" in x]
    assert extended == [x for x in info if "extended from 5 to 8 epochs, continuing" in x], (
        info, lines)  # fmt: skip
    assert len(extended) == 1 and not lines, lines  # information, not a warning
    (rid,) = [r.run_id for r in load_spec(spec).runs()]
    short = tmp_path / "r" / "short" / "runs" / rid / "returns.csv"
    assert len(rows_without_wall(short)) == 1 + 3  # the other sweep is left as it was

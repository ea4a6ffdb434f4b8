"""analysis.load: results directory -> long-form frame; partial, failed, empty, corrupt."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
from fake_results import build_results, row, rows_from

from analysis.load import RETURN_COLUMNS, AnalysisError, load, param_columns

pytestmark = pytest.mark.timeout(60)


def test_long_form_columns_rows_and_values(known) -> None:
    results, sweep = known
    frame = load(results)
    assert list(frame.columns) == [
        "policy_lr",
        "config",
        "run_id",
        "seed",
        "state",
        *RETURN_COLUMNS,
    ]
    assert param_columns(frame) == ["policy_lr"]
    assert frame.attrs["name"] == "known"
    # 9 runs of 10 epochs, one running with 4, failed and pending keep one placeholder row
    assert len(frame) == 9 * 10 + 4 + 2
    assert frame["run_id"].nunique() == sweep.num_runs == 12
    run = next(r for r in sweep.runs() if r.swept["policy_lr"] == 0.1 and r.seed == 4)
    rows = frame[frame["run_id"] == run.run_id]
    assert list(rows["epoch"]) == list(range(1, 11))
    assert list(rows["env_steps"]) == [100 * e for e in range(1, 11)]
    assert rows["return_mean"].iloc[-1] == 100.0
    assert rows["policy_lr"].iloc[0] == 0.1 and isinstance(rows["policy_lr"].iloc[0], float)
    assert rows["config"].iloc[0] == "policy_lr=0.1"
    # rows follow grid order, then seed, then epoch
    assert list(dict.fromkeys(frame["config"])) == [
        "policy_lr=0.1",
        "policy_lr=0.01",
        "policy_lr=0.001",
    ]


def test_states_partial_failed_and_pending_runs_stay_visible(known) -> None:
    results, _ = known
    frame = load(results)
    states = frame.drop_duplicates("run_id")["state"].value_counts().to_dict()
    assert states == {"done": 8, "diverged": 1, "failed": 1, "running": 1, "pending": 1}
    placeholders = frame[frame["epoch"].isna()]
    assert sorted(placeholders["state"]) == ["failed", "pending"]
    assert placeholders["return_mean"].isna().all()
    running = frame[frame["state"] == "running"]
    assert running["epoch"].max() == 4  # unequal lengths are kept as they are


def test_status_json_is_fresher_than_runs_csv(known) -> None:
    results, sweep = known
    run = next(r for r in sweep.runs() if r.swept["policy_lr"] == 0.001 and r.seed == 3)
    (results / "runs" / run.run_id / "status.json").write_text('{"state": "done"}')
    frame = load(results)
    assert frame.loc[frame["run_id"] == run.run_id, "state"].iloc[0] == "done"


def test_nan_epochs_are_kept_as_nan(tmp_path: Path) -> None:
    results, _ = build_results(
        tmp_path / "results",
        "nan",
        {"policy_lr": [0.1]},
        [0],
        lambda run: ("done", rows_from([math.nan, 5.0, math.nan])),
    )
    frame = load(results)
    assert list(frame["epoch"]) == [1, 2, 3]
    assert frame["return_mean"].isna().tolist() == [True, False, True]


def test_without_runs_csv_params_come_from_sweep_yaml(grid2) -> None:
    results, _ = grid2
    expected = load(results)
    (results / "runs.csv").unlink()
    frame = load(results)
    assert param_columns(frame) == ["policy_lr", "value_lr"]
    key = ["run_id", "epoch"]
    a = expected.sort_values(key).reset_index(drop=True)
    b = frame.sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b, check_like=False)


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(AnalysisError, match="no such results directory"):
        load(tmp_path / "nope")


def test_empty_sweep(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(AnalysisError, match="empty sweep"):
        load(tmp_path / "empty")
    (tmp_path / "empty" / "runs.csv").write_text("run_id,policy_lr,seed,state\n")
    with pytest.raises(AnalysisError, match="empty sweep"):
        load(tmp_path / "empty")


@pytest.mark.parametrize(
    "content",
    [
        "epoch,oops\n1,2\n",  # wrong header
        ",".join(RETURN_COLUMNS) + "\n1,100,5,garbage,1,1,1,1,1,1,1,1,1\n",  # not a number
        ",".join(RETURN_COLUMNS) + "\n1,100,5\n2,200,5,1,1,1,1,1,1,1,1,1,1\n",  # short row
        ",".join(RETURN_COLUMNS) + "\n2,100,5,1,1,1,1,1,1,1,1,1,1\n1,200,5,1,1,1,1,1,1,1,1,1,1\n",
        "\x00\xff\xfe binary",
    ],
    ids=["header", "cell", "fields", "order", "binary"],
)
def test_corrupt_returns_csv_names_the_file(known, content: str) -> None:
    results, sweep = known
    run = next(iter(sweep.runs()))
    path = results / "runs" / run.run_id / "returns.csv"
    path.write_bytes(content.encode("latin-1"))
    with pytest.raises(AnalysisError) as err:
        load(results)
    assert str(path) in str(err.value)
    assert "\n" not in str(err.value)


def test_torn_last_line_is_ignored(known) -> None:
    results, sweep = known
    run = next(iter(sweep.runs()))
    path = results / "runs" / run.run_id / "returns.csv"
    with open(path, "a") as f:
        f.write("11,1100,5,3.0,1")  # a crash in the middle of an append: no newline
    frame = load(results)
    assert frame.loc[frame["run_id"] == run.run_id, "epoch"].max() == 10


def test_row_helper_matches_the_store_columns() -> None:
    assert tuple(row(1, 100, 1.0)) == RETURN_COLUMNS

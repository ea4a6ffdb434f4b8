"""analysis.load: results directory -> long-form frame; partial, failed, empty, corrupt."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from fake_results import build_results, keep_epochs, row, rows_from

from analysis.load import RETURN_COLUMNS, AnalysisError, load, param_columns, row_problems

pytestmark = pytest.mark.timeout(60)


def test_long_form_columns_rows_and_values(known) -> None:
    results, sweep = known
    frame = load(results)
    assert list(frame.columns) == [
        "policy_lr",
        "config",
        "config_id",
        "run_id",
        "seed",
        "state",
        "stopped_at",
        *RETURN_COLUMNS,
    ]
    assert param_columns(frame) == ["policy_lr"]
    assert frame["stopped_at"].dtype == "Int64" and frame["stopped_at"].isna().all()
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
        ",".join(RETURN_COLUMNS)
        + "\n1,100,5,garbage,1,1,1,1,1,1,1,1,1\n2,2,2,1,1,1,1,1,1,1,1,1,1\n",  # not a number
        ",".join(RETURN_COLUMNS) + "\n1,100,5\n2,200,5,1,1,1,1,1,1,1,1,1,1\n",  # short row
        "\x00\xff\xfe binary",
    ],
    ids=["header", "cell", "fields", "binary"],
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


# --------------------------------------------------------------------------- row_problems


def run_ids(sweep) -> dict[tuple[float, int], str]:
    return {(run.swept["policy_lr"], run.seed): run.run_id for run in sweep.runs()}


def test_row_problems_flags_gaps_and_short_done_runs(known) -> None:
    results, sweep = known
    ids = run_ids(sweep)
    returns = {key: results / "runs" / run_id / "returns.csv" for key, run_id in ids.items()}
    assert row_problems(results) == {}  # the fixture is clean: 10 of 10 epochs when done
    keep_epochs(returns[(0.1, 1)], [*range(1, 4), *range(7, 11)])  # done, 4-6 missing
    keep_epochs(returns[(0.1, 2)], range(1, 8))  # done, stopped at 7 of 10
    keep_epochs(returns[(0.1, 3)], [1, 2, 3, 4, 6, 7, 8, 9, 10])  # done, one missing
    keep_epochs(returns[(0.01, 1)], range(3, 11))  # done, starts at 3
    keep_epochs(returns[(0.001, 3)], [1, 2, 4])  # running: a gap is still a gap
    keep_epochs(returns[(0.01, 4)], range(1, 6))  # diverged at 10 (status), 5 rows
    assert row_problems(results) == {
        ids[(0.1, 1)]: "epochs 4-6 missing; done but has 7 of 10 epochs",
        ids[(0.1, 2)]: "done but has 7 of 10 epochs",
        ids[(0.1, 3)]: "epoch 5 missing; done but has 9 of 10 epochs",
        ids[(0.01, 1)]: "epochs 1-2 missing; done but has 8 of 10 epochs",
        ids[(0.001, 3)]: "epoch 3 missing",
        ids[(0.01, 4)]: "diverged but has 5 of 10 epochs",
    }
    load(results)  # gaps are not corrupt files: the analysis still runs


def test_row_problems_reports_repeated_epochs_and_corrupt_files(known) -> None:
    results, sweep = known
    ids = run_ids(sweep)
    path = results / "runs" / ids[(0.1, 1)] / "returns.csv"
    header, *rows = path.read_text().splitlines()
    path.write_text("\n".join([header, *rows[:5], rows[4], *rows[5:]]) + "\n")  # epoch 5 twice
    frame = load(results)  # the rows before the repeat are kept
    assert list(frame[frame["run_id"] == ids[(0.1, 1)]]["epoch"]) == [1, 2, 3, 4, 5]
    problems = row_problems(results)
    assert list(problems) == [ids[(0.1, 1)]]
    assert "epoch 5 after epoch 5" in problems[ids[(0.1, 1)]]
    path.write_text("epoch,oops\n1,2\n")
    assert "corrupt returns.csv" in row_problems(results)[ids[(0.1, 1)]]


def test_row_problems_without_runs_csv_or_results(grid2, tmp_path: Path) -> None:
    results, sweep = grid2
    (results / "runs.csv").unlink()
    run = next(iter(sweep.runs()))
    keep_epochs(results / "runs" / run.run_id / "returns.csv", [1, 2, 9, 10])
    assert row_problems(results) == {run.run_id: "epochs 3-8 missing; done but has 4 of 10 epochs"}
    with pytest.raises(AnalysisError, match="no such results directory"):
        row_problems(tmp_path / "nope")


def test_row_problems_imports_neither_runner_nor_torch(known) -> None:
    results, _ = known
    code = (
        "import sys\nfrom analysis.load import row_problems\n"
        f"assert row_problems({str(results)!r}) == {{}}\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'runner', 'torch', 'ray'}))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=50)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_configs_that_format_alike_stay_apart(tmp_path) -> None:
    """gamma 0.99999 and 0.999994 both print as 1 with 4 significant digits: they are two
    configurations (two ids, two labels, two rows in ranking.csv, two curves)."""
    from analysis import aggregate
    from analysis.load import config_label

    assert config_label({"gamma": 0.99999}) == config_label({"gamma": 0.999994})
    results, _ = build_results(tmp_path / "results", "alike", {"gamma": [0.99999, 0.999994]},
                               [1, 2], lambda run: ("done", rows_from([10.0 * run.seed] * 3)),
                               fixed={"epochs": 3})  # fmt: skip
    frame = load(results)
    assert frame["config_id"].nunique() == 2 and frame["config"].nunique() == 2
    assert sorted(frame["config"].unique()) == ["gamma=0.99999", "gamma=0.999994"]
    table = aggregate.ranking(aggregate.final_scores(frame, "return_mean"), seed=0)
    assert len(table) == 2


def test_repeated_epochs_keep_the_first_rows_and_are_flagged(known) -> None:
    """Two writers once interleaved a run's rows (1, 2, 1, 2, 3): load keeps epochs 1-2 (the
    rows before the repeat), row_problems names the run, and the rest of the sweep loads."""
    results, sweep = known
    run = next(iter(sweep.runs()))
    path = results / "runs" / run.run_id / "returns.csv"
    header, *rows = path.read_text().splitlines()
    path.write_text("\n".join([header, *rows[:2], *rows[:3]]) + "\n\n")  # and a blank line
    frame = load(results)
    assert list(frame[frame["run_id"] == run.run_id]["epoch"]) == [1, 2]
    assert "not increasing" in row_problems(results)[run.run_id]

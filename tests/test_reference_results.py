"""The published reference results (results/reference/, docs/results.md) are consistent with
their raw per-run CSVs: rankings, final scores and outcome counts recomputed from returns.csv
with the analysis module equal the committed files, and every run is finished."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import aggregate
from analysis.load import load

REFERENCE = Path(__file__).resolve().parents[1] / "results" / "reference"
EXPERIMENTS = ["cartpole-v0-grid", "swingup", "swingup-grid", "swingup-grid-refined"]


@pytest.fixture(scope="module", params=EXPERIMENTS)
def experiment(request):
    path = REFERENCE / request.param
    assert (path / "sweep.yaml").is_file(), f"missing reference experiment {path}"
    return path


def test_every_run_is_finished(experiment):
    runs = pd.read_csv(experiment / "runs.csv")
    assert len(runs) > 0
    assert set(runs["state"]) <= {"done", "diverged", "failed"}, runs["state"].value_counts()
    frame = load(experiment)
    epochs = frame.groupby("run_id")["epoch"].max()
    assert len(epochs) == len(runs)


def test_committed_ranking_matches_raw_csvs(experiment):
    frame = load(experiment)
    scores = aggregate.final_scores(frame, "return_mean")
    table = aggregate.ranking(scores, seed=0)
    committed = pd.read_csv(experiment / "analysis" / "ranking.csv")
    assert list(committed["config"]) == list(table["config"])
    for column in (
        "iqm",
        "ci_low",
        "ci_high",
        "median",
        "mean",
        "n_done",
        "n_diverged",
        "n_failed",
    ):
        np.testing.assert_allclose(committed[column].to_numpy(float), table[column].to_numpy(float),
                                   rtol=1e-9, equal_nan=True, err_msg=column)  # fmt: skip
    committed_scores = pd.read_csv(experiment / "analysis" / "scores.csv").set_index("run_id")
    mine = scores.set_index("run_id")
    np.testing.assert_allclose(committed_scores.loc[mine.index, "final_score"].to_numpy(float),
                               mine["final_score"].to_numpy(float), rtol=1e-12, equal_nan=True)  # fmt: skip


def test_swingup_outcome_counts_match_raw_csvs():
    path = REFERENCE / "swingup"
    scores = aggregate.final_scores(load(path), "return_mean")
    mine = aggregate.outcome_bins(scores, aggregate.SWINGUP_BINS)
    committed = pd.read_csv(path / "analysis" / "outcomes.csv")
    assert committed.to_dict("records") == mine.to_dict("records")
    assert int(committed[committed["config"] == "all"]["n"].iloc[0]) == 16

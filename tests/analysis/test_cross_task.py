"""A sweep over several envs (env as a grid key): rankings per env, never one across tasks,
and the normalised cross-task aggregate (per-env min-max, bootstrap stratified by env)
checked against a computation written independently here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fake_results import build_results, rows_from

from analysis import aggregate, cli, stats
from analysis.load import load

pytestmark = pytest.mark.timeout(120)

ENVS = ("CartPole-v1", "Acrobot-v1")


@pytest.fixture(scope="module")
def two_tasks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 envs on different scales x 3 policy_lr x 4 seeds; the best policy_lr differs by env
    only in size of the effect: 0.1 best on both."""
    grid = {"env": list(ENVS), "policy_lr": [0.1, 0.03, 0.01]}

    def run_fn(run):
        rng = np.random.default_rng(run.seed * 101 + int(run.swept["policy_lr"] * 1000))
        skill = {0.1: 1.0, 0.03: 0.6, 0.01: 0.2}[run.swept["policy_lr"]] + rng.normal(0, 0.1)
        if run.swept["env"] == "CartPole-v1":
            final = 20 + 480 * skill
        else:
            final = -500 + 420 * skill  # Acrobot: -500 (never) .. -80
        return "done", rows_from([final * e / 10 for e in range(1, 11)])

    results, _ = build_results(
        tmp_path_factory.mktemp("tasks") / "results", "tasks", grid, [1, 2, 3, 4], run_fn
    )
    return results


def by_hand(scores: pd.DataFrame, rng_seed: int = 0, n: int = 2000):
    """Min-max per env, pool per policy_lr, IQM; stratified bootstrap with plain loops."""
    done = scores[scores["state"] == "done"].copy()
    for env in ENVS:
        at = done["env"] == env
        low, high = done.loc[at, "final_score"].min(), done.loc[at, "final_score"].max()
        done.loc[at, "norm"] = (done.loc[at, "final_score"] - low) / (high - low)

    def iqm(x):
        x = np.sort(np.asarray(x))
        k = len(x) // 4  # 8 runs: drop 2 at each end (trim_mean with 0.25)
        return x[k : len(x) - k].mean()

    out = {}
    for lr in (0.1, 0.03, 0.01):
        groups = [
            done[(done["policy_lr"] == lr) & (done["env"] == e)]["norm"].to_numpy() for e in ENVS
        ]
        out[lr] = iqm(np.concatenate(groups))
    return out


def test_rankings_stay_per_env_and_cross_task_aggregate(two_tasks: Path, capsys) -> None:
    frame = load(two_tasks)
    scores = aggregate.final_scores(frame)
    table = aggregate.ranking_by_env(scores, n_resamples=200)
    for env in ENVS:
        ranked = table[table["env"] == env]
        assert list(ranked["rank"]) == [1, 2, 3]  # ranked within the env
        assert list(ranked["policy_lr"]) == [0.1, 0.03, 0.01]
        assert np.isnan(ranked["p_beats_next"].iloc[-1])  # never compared across envs
    tasks = stats.cross_task(scores, n_resamples=500)
    expected = by_hand(scores)
    assert list(tasks["policy_lr"]) == [0.1, 0.03, 0.01]
    assert list(tasks["n_tasks"]) == [2, 2, 2] and list(tasks["n_runs"]) == [8, 8, 8]
    for row in tasks.itertuples():
        assert row.estimate == pytest.approx(expected[row.policy_lr], abs=1e-12)
        assert 0.0 <= row.ci_low <= row.estimate <= row.ci_high <= 1.0


def test_stratified_interval_against_a_loop(two_tasks: Path) -> None:
    """The stratified bootstrap keeps each env's share of runs: a loop that resamples within
    each env (same Generator draws, in the documented order) gives the same bounds."""
    scores = aggregate.final_scores(load(two_tasks))
    tasks = stats.cross_task(scores, n_resamples=300, seed=7)
    done = scores[scores["state"] == "done"].copy()
    for env in ENVS:
        at = done["env"] == env
        low, high = done.loc[at, "final_score"].min(), done.loc[at, "final_score"].max()
        done.loc[at, "norm"] = (done.loc[at, "final_score"] - low) / (high - low)
    rng = np.random.default_rng(7)
    from scipy.stats import trim_mean

    for lr in (0.1, 0.03, 0.01):  # groups in order of first appearance in the frame
        per_env = [
            done[(done["policy_lr"] == lr) & (done["env"] == e)]["norm"].to_numpy()
            for e in dict.fromkeys(done["env"])
        ]
        draws = [rng.integers(0, len(x), size=(300, len(x))) for x in per_env]
        resampled = [
            trim_mean(np.concatenate([x[d[b]] for x, d in zip(per_env, draws, strict=True)]), 0.25)
            for b in range(300)
        ]
        low, high = np.quantile(resampled, [0.025, 0.975])
        row = tasks[tasks["policy_lr"] == lr].iloc[0]
        assert (row.ci_low, row.ci_high) == pytest.approx((low, high), abs=1e-12)


def test_analyze_and_report_keep_tasks_apart(two_tasks: Path, tmp_path: Path, capsys) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(two_tasks, copy)
    assert cli.main(["analyze", str(copy)]) == 0
    out = capsys.readouterr().out
    assert "on CartPole-v1: top 3" in out and "on Acrobot-v1: top 3" in out
    assert "## Across tasks (CartPole-v1, Acrobot-v1)" in out
    analysis = copy / "analysis"
    for env in ENVS:
        for plot in ("curves_top", "profile", "sensitivity", "strip"):
            assert (analysis / f"{plot}_{env}.png").stat().st_size > 0, (plot, env)
    for plot in ("curves_top", "profile", "sensitivity", "strip"):  # none mixes the tasks
        assert not (analysis / f"{plot}.png").exists(), plot
    tasks = pd.read_csv(analysis / "cross_task.csv")
    assert list(tasks["policy_lr"]) == [0.1, 0.03, 0.01]
    assert "min-max normalised within its env" in (analysis / "ranking.md").read_text()
    assert cli.main(["report", str(copy), "--no-gif"]) == 0
    page = (copy / "report.html").read_text()
    assert '<h2 id="tasks">Across tasks</h2>' in page
    for env in ENVS:  # one profile per task (seen: only the first env's)
        assert f"Fraction of done runs on {env} whose final score" in page
    assert page.count("band, top 3 configurations.") == 2  # one curve figure per env


def test_sweep_envs_are_the_swept_ones_only(tmp_path):
    """A swept env replaces the fixed one: no phantom default (CartPole-v0) in titles."""
    from analysis.common import _sweep_envs

    (tmp_path / "sweep.yaml").write_text("name: x\ngrid:\n  env: [Acrobot-v1, Pendulum-v1]\n")
    assert _sweep_envs(tmp_path) == ["Acrobot-v1", "Pendulum-v1"]
    (tmp_path / "sweep.yaml").write_text("name: x\nenv: Pendulum-v1\n")
    assert _sweep_envs(tmp_path) == ["Pendulum-v1"]
    (tmp_path / "sweep.yaml").write_text("name: x\n")
    assert _sweep_envs(tmp_path) == ["CartPole-v0"]


def test_status_best_configuration_is_per_env(tmp_path):
    """`a2c-sweep status` (runner.launch.best_so_far) names the best configuration of each
    env: Pendulum's -150 is not "worse" than Acrobot's -80 (seen: one cross-task best)."""

    from runner.launch import best_so_far
    from runner.store import Store

    score = {("Acrobot-v1", 0.1): -80.0, ("Acrobot-v1", 0.01): -120.0,
             ("Pendulum-v1", 0.1): -900.0, ("Pendulum-v1", 0.01): -150.0}  # fmt: skip

    def run_fn(run):
        return "done", rows_from([score[(run.config.env, run.config.policy_lr)]] * 5)

    root, sweep = build_results(tmp_path / "results", "mix",
                                {"env": ["Acrobot-v1", "Pendulum-v1"], "policy_lr": [0.1, 0.01]},
                                [1, 2], run_fn)  # fmt: skip
    best = best_so_far(sweep, Store(tmp_path / "results", "mix"))
    assert [(label, s) for label, s, _, _ in best] == [
        ("env=Acrobot-v1, policy_lr=0.1", -80.0),
        ("env=Pendulum-v1, policy_lr=0.01", -150.0),
    ]
    assert all(seeds == 2 and done for _, _, seeds, done in best)


def test_cross_task_names_an_env_left_out_for_lack_of_spread(tmp_path):
    """An env whose done runs all score the same (MountainCar at -200: no run reached the
    goal) cannot be normalised; the aggregate says it left it out instead of silently
    showing one env fewer."""
    from analysis.common import cross_task_text

    score = {("Acrobot-v1", 0.1): -80.0, ("Acrobot-v1", 0.01): -120.0,
             ("MountainCar-v0", 0.1): -200.0, ("MountainCar-v0", 0.01): -200.0}  # fmt: skip
    root, _ = build_results(tmp_path / "results", "mc",
                            {"env": ["Acrobot-v1", "MountainCar-v0"], "policy_lr": [0.1, 0.01]},
                            [1, 2],
                            lambda run: ("done", rows_from([score[(run.config.env,
                                                                   run.config.policy_lr)]] * 5)))  # fmt: skip
    tasks = stats.cross_task(aggregate.final_scores(load(root)), n_resamples=100)
    assert tasks.attrs["excluded"] == ["MountainCar-v0"]
    assert "Left out: MountainCar-v0 (fewer than two distinct" in cross_task_text(tasks)

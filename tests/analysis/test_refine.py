"""analysis.refine: neighbours per kind of parameter, and a follow-up sweep that validates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fake_results import build_results, learning_curve_sweep, rows_from
from scipy import stats

from analysis.aggregate import final_scores
from analysis.load import AnalysisError, load
from analysis.refine import TOLERANCE, effect, neighbours, write_refined
from runner.spec import load_spec

pytestmark = pytest.mark.timeout(60)


def test_learning_rate_neighbours_are_log_spaced_to_half_the_old_gap() -> None:
    values = neighbours("policy_lr", float, 0.01, [0.1, 0.01, 0.001], 5)
    assert values[0] == 0.01  # the center itself, exactly
    # old grid is one decade apart -> +-0.5 decade: 0.01 * 10**[-0.5, -0.25, 0, 0.25, 0.5]
    expected = [float(f"{0.01 * 10**o:.3g}") for o in np.linspace(-0.5, 0.5, 5)]
    assert values[1:] == expected == [0.00316, 0.00562, 0.01, 0.0178, 0.0316]


def test_gamma_neighbours_on_the_one_minus_scale_stay_in_unit_interval() -> None:
    values = neighbours("gamma", float, 0.99, [0.99, 0.999], 3)
    assert values == [0.99, 0.99684, 0.99, 0.9684]
    assert all(0.0 <= v <= 1.0 for v in neighbours("lam", float, 0.5, [0.5], 5))
    ones = neighbours("lam", float, 1.0, [0.9, 1.0], 4)
    assert ones[0] == 1.0 and all(0.9 < v <= 1.0 for v in ones)
    zero = neighbours("gamma", float, 0.0, [0.0, 0.5], 3)
    assert all(0.0 <= v <= 1.0 for v in zero)


def test_integer_and_boolean_neighbours() -> None:
    ints = neighbours("hidden", int, 64, [32, 64], 3)
    assert ints[0] == 64 and all(isinstance(v, int) and v >= 1 for v in ints)
    assert neighbours("normalize_advantages", bool, True, [True, False], 5) == [True]


def test_refined_sweep_validates_and_contains_the_best_configuration(tmp_path: Path) -> None:
    results = learning_curve_sweep(tmp_path / "results", epochs=12)
    out = tmp_path / "finer.yaml"
    path, refinement = write_refined(results, out, top=2, points=3)
    assert path == out and out.is_file()
    sweep = load_spec(out)  # the runner's own loader accepts it
    assert sweep.name == "fake-grid-refined"
    best = refinement.best
    # the fake sweep's best: policy_lr=0.1, value_lr=0.01, gamma=0.99
    assert best == {"policy_lr": 0.1, "value_lr": 0.01, "gamma": 0.99}
    points = [{**sweep.fixed, **swept} for swept, _ in sweep.configs()]
    assert any(all(p.get(k) == v for k, v in best.items()) for p in points)
    # learning rates mattered: refined around the best on a log scale
    assert 0.1 in sweep.grid["policy_lr"] and len(sweep.grid["policy_lr"]) > 2
    assert min(sweep.grid["policy_lr"]) > 0
    # new seeds, after the old ones (1, 2, 3)
    assert list(sweep.seeds) == [4, 5, 6]
    assert sweep.fixed["epochs"] == 12
    assert out.read_text().startswith("# written by `a2c-sweep refine")


def test_a_parameter_without_effect_is_fixed_at_its_best_value(tmp_path: Path) -> None:
    # value_lr changes nothing (scores depend on policy_lr and seed only)
    def run_fn(run):
        base = {0.1: 100.0, 0.01: 50.0, 0.001: 10.0}[run.swept["policy_lr"]]
        return "done", rows_from([base + run.seed])

    grid = {"policy_lr": [0.1, 0.01, 0.001], "value_lr": [0.01, 0.001]}
    results, _ = build_results(tmp_path / "results", "fx", grid, list(range(6)), run_fn)
    _, refinement = write_refined(results, tmp_path / "fx.yaml", top=1, points=3, seeds=2)
    assert "value_lr" in refinement.fixed and "value_lr" not in refinement.grid
    assert refinement.fixed["value_lr"] == refinement.best["value_lr"]
    assert refinement.grid["policy_lr"] == [0.0316, 0.1, 0.316]
    sweep = load_spec(tmp_path / "fx.yaml")
    assert list(sweep.seeds) == [6, 7]
    assert any(
        note.startswith("value_lr: fixed") and "did not matter" in note for note in refinement.notes
    )


def test_same_seeds_option(tmp_path: Path) -> None:
    results = learning_curve_sweep(tmp_path / "results", epochs=6)
    write_refined(results, tmp_path / "same.yaml", same_seeds=True)
    assert list(load_spec(tmp_path / "same.yaml").seeds) == [1, 2, 3]


def test_nothing_to_refine_without_done_runs(tmp_path: Path) -> None:
    results, _ = build_results(
        tmp_path / "results",
        "nr",
        {"policy_lr": [0.1, 0.01]},
        [0],
        lambda run: ("running", rows_from([1.0])),
    )
    with pytest.raises(AnalysisError, match="nothing to refine"):
        write_refined(results, tmp_path / "x.yaml")
    assert not (tmp_path / "x.yaml").exists()


def test_a_clear_effect_stays_in_the_grid_with_few_seeds(tmp_path: Path) -> None:
    # 2 seeds per value: no rank test can be significant, but the seeds move each IQM by
    # at most 1 and the gap is 30: its bootstrap CI excludes 0, policy_lr "matters"
    def run_fn(run):
        return "done", rows_from([{0.1: 40.0, 0.01: 10.0}[run.swept["policy_lr"]] + run.seed])

    results, _ = build_results(
        tmp_path / "results", "le", {"policy_lr": [0.1, 0.01]}, [0, 1], run_fn
    )
    _, refinement = write_refined(results, tmp_path / "le.yaml", top=1, points=3)
    assert refinement.grid == {"policy_lr": [0.0316, 0.1, 0.316]}
    note = next(n for n in refinement.notes if n.startswith("policy_lr:"))
    assert "matters: IQM 0.01: 10.5, 0.1: 40.5; gap (0.1 vs 0.01) 30.0 [29.0, 31.0]" in note
    assert "P(0.1 > 0.01) 1.00 [1.00, 1.00]" in note


# --------------------------------------------------------------------------- what matters

STUCK = -28.0  # swing-up's local optimum


def _bimodal(shares: dict[float, float], seeds: int, contexts: int = 1) -> pd.DataFrame:
    """final_scores-like frame: for each policy_lr and each of ``contexts`` values of a
    second parameter, ``seeds`` runs, the first round(share * seeds) in the good mode
    (150-250), the others stuck near -28 (as swing-up runs end)."""
    rows = []
    for lr, share in shares.items():
        good = round(share * seeds)
        for c in range(contexts):
            for s in range(seeds):
                score = 150.0 + 100.0 * s / seeds if s < good else STUCK - 0.01 * s
                rows.append(
                    {
                        "policy_lr": lr,
                        "value_lr": 0.1 * (c + 1),
                        "config": f"policy_lr={lr}, value_lr={0.1 * (c + 1)}",
                        "state": "done",
                        "final_score": score,
                    }
                )
    frame = pd.DataFrame(rows)
    frame.attrs["params"] = ["policy_lr", "value_lr"]
    return frame


def test_bimodal_share_of_good_seeds_matters_although_every_median_is_stuck() -> None:
    # the swing-up shape: policy_lr sets how many seeds escape the local optimum (40 %, 20 %,
    # none); fewer than half escape for every value, so every median is stuck (the old rule:
    # range of medians ~0 -> fixed), while the IQMs spread widely
    frame = _bimodal({0.003: 0.4, 0.01: 0.2, 0.03: 0.0}, seeds=10, contexts=3)
    medians = frame.groupby("policy_lr")["final_score"].median()
    assert (medians.round() == STUCK).all()
    # the old rule's two conditions for "did not matter" both hold: no significant
    # Kruskal-Wallis, and a range of medians below the pooled seed-to-seed spread
    groups = [g.to_numpy() for _, g in frame.groupby("policy_lr")["final_score"]]
    assert stats.kruskal(*groups).pvalue > 0.05
    spread = np.sqrt(frame.groupby("config")["final_score"].var(ddof=1).mean())
    assert medians.max() - medians.min() < spread
    found = effect(frame, "policy_lr", seed=0)
    assert found is not None and found.matters()
    assert found.decision in ("matters", "may matter")
    assert found.best == 0.003 and found.worst in (0.01, 0.03)  # both stuck: IQM -28
    assert found.gap > TOLERANCE * (frame["final_score"].max() - STUCK)
    assert found.iqms[found.values.index(0.003)] > 0 > found.iqms[found.values.index(0.03)]
    assert found.gap_ci[1] > found.tolerance  # cannot be called negligible


def test_a_parameter_with_no_effect_is_fixed_even_with_bimodal_outcomes() -> None:
    # same distribution (each run good with probability 0.4) for both values, many seeds:
    # the CI of the gap is tight and within the tolerance -> "did not matter"
    frame = _bimodal({0.003: 0.0, 0.01: 0.0}, seeds=500, contexts=2)
    rng = np.random.default_rng(1)
    good = rng.random(len(frame)) < 0.4
    frame.loc[good, "final_score"] = 150.0 + 100.0 * rng.random(int(good.sum()))
    assert (frame.groupby("policy_lr")["final_score"].median() < 0).all()  # stuck
    found = effect(frame, "policy_lr", seed=0, n_resamples=500)
    assert found is not None and found.decision == "did not matter" and not found.matters()
    assert -found.tolerance <= found.gap_ci[0] and found.gap_ci[1] <= found.tolerance


def test_few_seeds_of_a_bimodal_null_effect_are_not_enough_to_fix_it() -> None:
    # the same null effect with 3 seeds per configuration: too uncertain, kept
    frame = _bimodal({0.003: 0.34, 0.01: 0.34}, seeds=3, contexts=2)
    found = effect(frame, "policy_lr", seed=0)
    assert found is not None and found.decision == "may matter"


def test_effect_is_deterministic_given_the_seed() -> None:
    frame = _bimodal({0.003: 0.4, 0.01: 0.2, 0.03: 0.0}, seeds=10, contexts=3)
    assert effect(frame, "policy_lr", seed=3) == effect(frame, "policy_lr", seed=3)
    assert effect(frame, "policy_lr", seed=3) != effect(frame, "policy_lr", seed=4)
    assert effect(frame, "policy_lr", seed=3).iqms == effect(frame, "policy_lr", seed=4).iqms


def test_effect_with_a_single_seed_per_configuration_resamples_within_values() -> None:
    frame = _bimodal({0.003: 0.45, 0.01: 0.25}, seeds=1, contexts=6)
    found = effect(frame, "policy_lr")
    assert found is not None and not found.stratified
    assert effect(frame[frame["policy_lr"] == 0.003], "policy_lr") is None  # one value


def test_null_parameter_fixed_and_bimodal_parameter_kept_in_a_refined_sweep(
    tmp_path: Path,
) -> None:
    # policy_lr changes the share of good seeds, never the median; value_lr changes nothing
    # (each run's noise is drawn from its own (seed, value_lr) generator: same distribution)
    share = {0.1: 0.45, 0.01: 0.25, 0.001: 0.05}

    def run_fn(run):
        p = run.swept
        rng = np.random.default_rng([run.seed, int(p["value_lr"] * 1e4)])
        good = rng.random() < share[p["policy_lr"]]
        score = 200.0 + rng.normal(0, 30) if good else STUCK + rng.normal(0, 0.5)
        return "done", rows_from([score])

    grid = {"policy_lr": [0.1, 0.01, 0.001], "value_lr": [0.01, 0.001]}
    results, _ = build_results(tmp_path / "results", "bi", grid, list(range(40)), run_fn)
    scores = final_scores(load(results))
    assert (scores.groupby("policy_lr")["final_score"].median() < STUCK + 2).all()
    out = tmp_path / "bi.yaml"
    _, refinement = write_refined(results, out, top=1, points=3, seeds=4)
    assert "policy_lr" in refinement.grid
    assert refinement.fixed == {"value_lr": refinement.best["value_lr"]}
    header = [line for line in out.read_text().splitlines() if line.startswith("#")]
    statistic = header[2]
    assert "IQM" in statistic and "bootstrap" in statistic and "gap" in statistic
    assert "+-10% of the score range" in statistic
    lines = {line.split(":")[0][2:]: line for line in header[3:5]}
    assert "policy_lr: 3 values around 1 best (" in lines["policy_lr"]
    assert "value_lr: fixed at" in lines["value_lr"] and "did not matter" in lines["value_lr"]
    for line in lines.values():  # per-value IQMs, the gap with its CI, P(X > Y): one line
        assert "IQM 0.001: " in line and "gap (" in line and "tolerance +-" in line
        assert "P(" in line


def test_refine_of_a_multi_env_sweep_needs_env_and_keeps_tasks_apart():
    """Returns of different tasks are never pooled: a sweep over two envs is refined one env
    at a time (--env), with that env fixed and only its rows judged."""
    import pandas as pd

    from a2c_core.spec import load_spec
    from analysis.load import AnalysisError
    from analysis.refine import _one_task

    sweep = load_spec({"name": "mix", "grid": {"env": ["Acrobot-v1", "Pendulum-v1"],
                                               "policy_lr": [0.1, 0.01]}, "seeds": [1]})  # fmt: skip
    frame = pd.DataFrame({"env": ["Acrobot-v1", "Pendulum-v1"], "return_mean": [-90.0, -900.0]})
    with pytest.raises(AnalysisError, match="spans 2 envs .* pass --env ENV"):
        _one_task(sweep, frame, None)
    with pytest.raises(AnalysisError, match="not one of the swept envs"):
        _one_task(sweep, frame, "CartPole-v1")
    one, rows = _one_task(sweep, frame, "Pendulum-v1")
    assert "env" not in one.grid and one.fixed["env"] == "Pendulum-v1"
    assert one.raw["env"] == "Pendulum-v1" and one.name == "mix-Pendulum-v1"
    assert list(rows["return_mean"]) == [-900.0]
    single = load_spec({"name": "one", "env": "Acrobot-v1", "seeds": [1]})
    assert _one_task(single, frame, None)[0] is single


def test_knob_grids_analyse_and_refine_back_into_sweep_values(tmp_path: Path) -> None:
    """Layer widths (lists) and a null max_grad_norm as grid values: analysis holds one
    scalar per value ("[32, 32]", inf), every analysis command runs, and refine writes them
    back as the sweep file's values (a list, null)."""
    from analysis.cli import main as analysis_main

    def run_fn(run):
        c = run.config
        good = (c.policy_hidden == (32, 32)) * 100 + (c.max_grad_norm is None) * 20
        return "done", rows_from([10.0 + good * e / 8 + run.seed for e in range(1, 9)])

    grid = {"policy_hidden": [[], [32, 32]], "max_grad_norm": [None, 0.5]}
    results, _ = build_results(tmp_path / "results", "knobs", grid, [1, 2, 3], run_fn,
                               fixed={"env": "CartPole-v1", "epochs": 8})  # fmt: skip
    assert '"[32, 32]",null,1,done' in (results / "runs.csv").read_text()
    frame = load(results)
    assert set(frame["policy_hidden"]) == {"[]", "[32, 32]"}
    assert set(frame["max_grad_norm"]) == {0.5, float("inf")}
    scores = final_scores(frame)
    assert set(scores.groupby("config").size()) == {3}
    assert analysis_main(["analyze", str(results)]) == 0
    assert (results / "analysis" / "heatmaps.png").is_file()
    out = tmp_path / "finer.yaml"
    _, refinement = write_refined(results, out, top=1, points=3)
    assert refinement.best == {"policy_hidden": "[32, 32]", "max_grad_norm": float("inf")}
    sweep = load_spec(out)
    configs = [config for _, config in sweep.configs()]
    assert {c.policy_hidden for c in configs} == {(32, 32)}
    assert None in {c.max_grad_norm for c in configs}
    assert analysis_main(["report", str(results), "--no-gif", "-o", str(tmp_path / "r.html")]) == 0


def test_init_log_std_is_refined_on_a_linear_scale() -> None:
    """A signed log-scale knob: evenly spaced neighbours, negatives kept apart when merged."""
    from analysis.refine import _merge

    assert neighbours("init_log_std", float, 0.0, [-0.5, 0.0, 0.5], 3) == [0.0, -0.25, 0.0, 0.25]
    assert neighbours("init_log_std", float, 4.9, [4.9, 3.0], 3)[-1] == 5.0  # its range
    merged = _merge([-0.25, 0.0, 0.25, 0.25, 0.5, 0.75], [0.0, 0.5], "init_log_std")
    assert merged == [-0.25, 0.0, 0.25, 0.5, 0.75]

"""analysis.refine: neighbours per kind of parameter, and a follow-up sweep that validates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fake_results import build_results, learning_curve_sweep, rows_from

from analysis.load import AnalysisError
from analysis.refine import neighbours, write_refined
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


def test_a_large_effect_stays_in_the_grid_even_when_not_significant(tmp_path: Path) -> None:
    # 2 seeds per value: Kruskal-Wallis cannot reach p < 0.05, but the effect (30) dwarfs
    # the seed spread (~0.7), so policy_lr is refined rather than fixed
    def run_fn(run):
        return "done", rows_from([{0.1: 40.0, 0.01: 10.0}[run.swept["policy_lr"]] + run.seed])

    results, _ = build_results(
        tmp_path / "results", "le", {"policy_lr": [0.1, 0.01]}, [0, 1], run_fn
    )
    _, refinement = write_refined(results, tmp_path / "le.yaml", top=1, points=3)
    assert refinement.grid == {"policy_lr": [0.0316, 0.1, 0.316]}
    assert "p=0.12" in refinement.notes[1] and "effect 30" in refinement.notes[1]

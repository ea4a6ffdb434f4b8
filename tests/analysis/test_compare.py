"""`a2c-sweep compare RESULTS/A RESULTS/B` (analysis.compare): the published P(X > Y) of the
reference results, hand-computed numbers on small fake sweeps, symmetry, --minimize, the
files written, and one-line errors (exit 2, nothing written) for bad input."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fake_results import build_results, rows_from

from analysis import aggregate
from analysis.compare import compare, main, read_configs
from analysis.load import load
from runner.spec import RunSpec

pytestmark = pytest.mark.timeout(60)

REFERENCE = Path(__file__).resolve().parents[2] / "results" / "reference"
ARTICLE, REFINED = REFERENCE / "swingup", REFERENCE / "swingup-grid-refined"

# Final returns per (policy_lr, seed): the last of 10 epochs (all others 0), so with the
# default window (last 10 % = 1 epoch) the final score is exactly this value.
#   A "alpha": 0.1  -> [10, 20, 30, 100]  IQM 25           0.01 -> [50, 60, 70, 80] IQM 65 (best)
#              seed 5 of 0.1 diverged (not scored)
#   B "beta":  0.01 -> [40, 55, 65, 90]   IQM 60 (same parameters as A's 0.01)
#              0.003 -> [70, 75, 80, 85]  IQM 77.5 (best)
#              0.3 -> stopped by racing at epoch 4 with [500, 600, 700, 800]: never the best
# P(B's 0.003 > A's 0.01) = (2.5 + 3 + 3.5 + 4) / 16 = 13/16 (70 ties 70, 80 ties 80).
ALPHA = {0.1: [10.0, 20.0, 30.0, 100.0, 1000.0], 0.01: [50.0, 60.0, 70.0, 80.0]}
BETA = {0.01: [40.0, 55.0, 65.0, 90.0], 0.003: [70.0, 75.0, 80.0, 85.0], 0.3: [500, 600, 700, 800]}


def alpha_run(run: RunSpec) -> tuple[str, list]:
    finals = ALPHA[run.swept["policy_lr"]]
    if run.seed > len(finals):
        return "pending", None
    state = "diverged" if run.seed == 5 else "done"
    return state, rows_from([0.0] * 9 + [finals[run.seed - 1]])


def beta_run(run: RunSpec) -> tuple[str, list]:
    final = BETA[run.swept["policy_lr"]][run.seed - 1]
    if run.swept["policy_lr"] == 0.3:
        return "stopped", rows_from([0.0] * 3 + [final])
    return "done", rows_from([0.0] * 9 + [final])


@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("compare") / "results"
    a, _ = build_results(root, "alpha", {"policy_lr": list(ALPHA)}, [1, 2, 3, 4, 5], alpha_run)
    b, _ = build_results(root, "beta", {"policy_lr": list(BETA)}, [1, 2, 3, 4], beta_run)
    return a, b


def run_compare(a: Path, b: Path, **kwargs) -> pd.DataFrame:
    fa, fb = load(a), load(b)
    kwargs.setdefault("n_resamples", 2000)
    return compare(fa, fb, configs_a=read_configs(a, fa), configs_b=read_configs(b, fb), **kwargs)


@pytest.fixture(scope="module")
def reference() -> tuple[pd.DataFrame, pd.DataFrame, dict, dict]:
    article, refined = load(ARTICLE), load(REFINED)
    return article, refined, read_configs(ARTICLE, article), read_configs(REFINED, refined)


def row(table: pd.DataFrame, side: str, label: str) -> pd.Series:
    rows = table[(table["side"] == side) & (table["label"] == label)]
    assert len(rows) == 1, (side, label, table[["side", "label"]])
    return rows.iloc[0]


# --------------------------------------------------------------------------- reference


def test_reproduces_the_published_p_069_on_the_reference_results(reference) -> None:
    article, refined, configs_article, configs_refined = reference
    table = compare(article, refined, configs_a=configs_article, configs_b=configs_refined)
    headline = table.attrs["headline"]
    # docs/results.md section 3: P(refined > article) = 0.69, the same pairs as aggregate's
    assert round(headline["p"], 2) == 0.69
    assert headline["p"] == pytest.approx(177 / 256)
    assert headline["ci_low"] < headline["p"] < headline["ci_high"]
    # the labels name the one parameter that differs (both sweeps sweep nothing)
    assert (headline["best_a"], headline["best_b"]) == ("policy_lr=0.01", "policy_lr=0.003")
    refined_row = row(table, "B", "policy_lr=0.003")
    assert round(refined_row["p_better"], 2) == 0.69
    # the docs' table: IQM 180.2 [45.1, 304.8] and 10.5 [-28.2, 157.5] over 16 seeds each
    assert (round(refined_row["iqm"], 1), refined_row["n"]) == (180.2, 16)
    assert (round(refined_row["ci_low"], 1), round(refined_row["ci_high"], 1)) == (45.1, 304.8)
    article_row = row(table, "A", "policy_lr=0.01")
    assert round(article_row["iqm"], 1) == 10.5 and article_row["reference"]
    assert (round(article_row["ci_low"], 1), round(article_row["ci_high"], 1)) == (-28.2, 157.5)
    assert article_row["p_better"] == 0.5 and refined_row["same_as"] == ""


def test_symmetry_and_minimize_on_the_reference_results(reference) -> None:
    article, refined, ca, cr = reference
    forward = compare(article, refined, configs_a=ca, configs_b=cr, n_resamples=500)
    backward = compare(refined, article, configs_a=cr, configs_b=ca, n_resamples=500)
    p, q = forward.attrs["headline"]["p"], backward.attrs["headline"]["p"]
    assert p + q == pytest.approx(1.0) and p != pytest.approx(0.5)
    lower = compare(article, refined, configs_a=ca, configs_b=cr, minimize=True, n_resamples=500)
    assert lower.attrs["headline"]["p"] == pytest.approx(1.0 - p)  # P(B < A) = P(A > B)


# --------------------------------------------------------------------------- fake sweeps


def test_known_numbers_labels_same_parameters_and_stopped(fake) -> None:
    table = run_compare(*fake)
    assert table["sweep"].tolist() == ["alpha"] * 2 + ["beta"] * 3
    assert table["label"].tolist() == [
        "policy_lr=0.1",
        "policy_lr=0.01",
        "policy_lr=0.01",
        "policy_lr=0.003",
        "policy_lr=0.3",
    ]
    first = row(table, "A", "policy_lr=0.1")
    assert (first["n"], first["n_runs"], first["iqm"]) == (4, 5, 25.0)  # diverged: not scored
    assert (first["median"], first["mean"]) == (25.0, 40.0)
    best_a = row(table, "A", "policy_lr=0.01")
    assert best_a["best"] and best_a["reference"] and best_a["iqm"] == 65.0
    assert best_a["ci_low"] <= 65.0 <= best_a["ci_high"]
    twin = row(table, "B", "policy_lr=0.01")
    assert twin["same_as"] == "policy_lr=0.01" and not twin["best"] and twin["iqm"] == 60.0
    assert twin["p_better"] == aggregate.probability_of_improvement(BETA[0.01], ALPHA[0.01])
    best_b = row(table, "B", "policy_lr=0.003")
    assert best_b["best"] and best_b["iqm"] == 77.5 and best_b["same_as"] == ""
    assert best_b["p_better"] == 13 / 16 == table.attrs["headline"]["p"]
    # racing stopped 0.3 with the highest scores: marked, not the best, no P against finals
    stopped = row(table, "B", "policy_lr=0.3")
    assert stopped["stopped_at"] == 4 and stopped["iqm"] == 650.0 and not stopped["best"]
    assert math.isnan(stopped["p_better"])
    assert table.attrs["headline"]["best_b"] == "policy_lr=0.003"


def test_p_symmetry_per_configuration_and_minimize_flips(fake) -> None:
    high = run_compare(*fake, against="B:policy_lr=0.003")
    x = row(high, "A", "policy_lr=0.1")["p_better"]  # P(A's 0.1 > B's 0.003)
    back = run_compare(*fake, against="policy_lr=0.1")  # A's 0.1 is the reference
    y = row(back, "B", "policy_lr=0.003")["p_better"]
    assert x + y == pytest.approx(1.0) and x != pytest.approx(y)

    low = run_compare(*fake, minimize=True)
    # lower is better: the best of each sweep is its lowest IQM (stopped 0.3 still excluded)
    assert row(low, "A", "policy_lr=0.1")["best"] and row(low, "A", "policy_lr=0.1")["reference"]
    assert row(low, "B", "policy_lr=0.01")["best"]
    # P(B's 0.01 < A's 0.1) = P(A's 0.1 > B's 0.01)
    expected = aggregate.probability_of_improvement(ALPHA[0.1][:4], BETA[0.01])
    assert low.attrs["headline"]["p"] == pytest.approx(expected)
    same_refs = run_compare(*fake, minimize=True, against="policy_lr=0.01")
    flipped = row(same_refs, "B", "policy_lr=0.003")["p_better"]
    assert flipped == pytest.approx(1 - 13 / 16)


def test_window_and_statistic(fake) -> None:
    # last 20 % of 10 epochs = the last 2 rows, (0 + final) / 2: every score halves
    half = run_compare(*fake, window=0.2, statistic="median")
    assert row(half, "A", "policy_lr=0.1")["median"] == 12.5
    assert list(half.columns[7:10]) == ["median", "ci_low", "ci_high"]
    assert half.attrs["headline"]["p"] == 13 / 16  # a monotone change keeps every pair
    for window in (0.0, 1.5, math.nan):
        with pytest.raises(ValueError, match="window"):
            run_compare(*fake, window=window)


def test_headline_ci_is_a_stratified_bootstrap(fake) -> None:
    table = run_compare(*fake, n_resamples=4000, seed=3)
    h = table.attrs["headline"]
    assert 0.0 <= h["ci_low"] < h["p"] < h["ci_high"] <= 1.0
    assert run_compare(*fake, n_resamples=4000, seed=3).attrs["headline"] == h  # reproducible
    # against a plain loop: resample the 4 runs of each best configuration separately
    rng = np.random.default_rng(12345)
    x, y = np.array(BETA[0.003]), np.array(ALPHA[0.01])
    draws = [
        aggregate.probability_of_improvement(rng.choice(x, x.size), rng.choice(y, y.size))
        for _ in range(4000)
    ]
    low, high = np.quantile(draws, [0.025, 0.975])
    assert h["ci_low"] == pytest.approx(low, abs=0.04)
    assert h["ci_high"] == pytest.approx(high, abs=0.04)
    # B's best beats A's best in every pair: P = 1 in every resample, a zero-width CI
    certain = run_compare(*fake, window=0.1, against="policy_lr=0.1", minimize=False)
    assert certain.attrs["headline"]["p"] == 13 / 16  # the headline ignores --against
    frame_a, frame_b = load(fake[0]), load(fake[1])
    frame_b["return_mean"] += 1000.0
    sure = compare(frame_a, frame_b, n_resamples=500).attrs["headline"]
    assert (sure["p"], sure["ci_low"], sure["ci_high"]) == (1.0, 1.0, 1.0)


def test_a_sweep_without_a_scored_done_run_raises(fake) -> None:
    frame_a, frame_b = load(fake[0]), load(fake[1])
    frame_b.loc[frame_b["state"] == "done", "return_mean"] = np.nan
    with pytest.raises(ValueError, match="sweep B .*no done run"):
        compare(frame_a, frame_b, n_resamples=100)


# --------------------------------------------------------------------------- command


def test_cli_prints_and_writes_the_four_files(fake, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    assert main(["compare", str(fake[0]), str(fake[1]), "-o", str(out), "--top", "1"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert "P(best of B > best of A) = 0.81" in captured.out
    assert "same parameters" in captured.out
    csv = pd.read_csv(out / "compare.csv")
    assert len(csv) == 5 and csv.loc[csv["best"], "label"].tolist() == [
        "policy_lr=0.01",
        "policy_lr=0.003",
    ]
    md = (out / "compare.md").read_text()
    assert md.startswith("# alpha (A) vs beta (B)")
    assert "**P(best of B > best of A) = 0.81" in md and "probability of improvement" in md
    assert "| sweep | configuration | n | IQM | 95% CI |" in md
    assert "| beta | policy_lr=0.003 | 4 | 77.5 |" in md
    assert "policy_lr=0.1 |" not in md  # --top 1: A's second configuration is left out
    assert (out / "compare.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "compare.png").stat().st_size > 10_000
    svg = (out / "compare.svg").read_text()
    assert "<svg" in svg[:2000] and "0.81" in svg and "policy_lr=0.003" in svg


def test_cli_default_output_and_minimize(fake, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["compare", str(fake[0]), str(fake[1]), "--minimize", "--stat", "mean"]) == 0
    out = tmp_path / "compare-alpha-vs-beta"
    assert sorted(p.name for p in out.iterdir()) == [
        "compare.csv",
        "compare.md",
        "compare.png",
        "compare.svg",
    ]
    text = capsys.readouterr().out
    assert "P(best of B < best of A)" in text and "P(X < ref)" in text
    assert not (fake[0] / "compare.csv").exists() and not (fake[0] / "analysis").exists()


def test_cli_same_directory_twice_warns(fake, tmp_path: Path, capsys) -> None:
    code = main(["compare", str(fake[0]), str(fake[0]), "-o", str(tmp_path / "o")])
    captured = capsys.readouterr()
    assert code == 0
    assert captured.err.count("\n") == 1 and "warning" in captured.err
    assert "with itself" in captured.err
    assert "P(best of B > best of A) = 0.50" in captured.out
    # seen: "fake-grid (A) (A) vs fake-grid (B) (B)"
    assert "(A) (A)" not in captured.out and "(A) vs" in captured.out
    md = (tmp_path / "o" / "compare.md").read_text()
    assert "(A) (A)" not in md and "(B) (B)" not in md


def corrupt(results: Path) -> Path:
    run_dir = next(p for p in sorted((results / "runs").iterdir()) if p.is_dir())
    (run_dir / "config.json").write_text("{not json")
    return run_dir / "config.json"


def no_done(results: Path) -> Path:
    def running(run: RunSpec) -> tuple[str, list]:
        return "running", rows_from([1.0, 2.0])

    path, _ = build_results(results.parent, "unfinished", {"policy_lr": [0.1]}, [1, 2], running)
    return path


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing", "no such results directory"),
        ("not-results", "empty sweep"),
        ("corrupt", "corrupt JSON"),
        ("metric", "--metric: 'nope' is not a returns.csv column"),
        ("window-0", "--window"),
        ("window-big", "--window"),
        ("window-text", "--window"),
        ("against", "--against: no configuration"),
        ("against-stopped", "stopped by racing"),
        ("no-done", "no done run"),
    ],
)
def test_cli_bad_input_one_line_exit_2_nothing_written(
    fake, tmp_path: Path, capsys, case: str, message: str
) -> None:
    import shutil

    a = tmp_path / "results" / "alpha"
    shutil.copytree(fake[0], a)  # corrupt a copy, never the shared fixture
    b = fake[1]
    extra: list[str] = []
    if case == "missing":
        b = tmp_path / "nope"
    elif case == "not-results":
        b = tmp_path / "empty"
        b.mkdir()
    elif case == "corrupt":
        message = str(corrupt(a))
    elif case == "metric":
        extra = ["--metric", "nope"]
    elif case.startswith("window"):
        extra = ["--window", {"window-0": "0", "window-big": "1.5", "window-text": "x"}[case]]
    elif case == "against":
        extra = ["--against", "policy_lr=42"]
    elif case == "against-stopped":
        extra = ["--against", "B:policy_lr=0.3"]
    elif case == "no-done":
        b = no_done(tmp_path / "results" / "x")
    out = tmp_path / "out"
    assert main(["compare", str(a), str(b), "-o", str(out), *extra]) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("a2c-sweep: error:"), captured.err
    assert message in lines[0]
    assert captured.out == "" and not out.exists()


def test_cli_different_envs_warns_and_says_so_in_the_files(tmp_path: Path, capsys) -> None:
    out = tmp_path / "c"
    args = [str(REFERENCE / "cartpole-v0-grid"), str(REFERENCE / "swingup"), "-o", str(out)]
    assert main(["compare", *args, "--top", "1"]) == 0
    assert "different envs (CartPole-v0 vs CartPoleSwingUp-v0)" in capsys.readouterr().err
    assert "**Caveat:** different envs" in (out / "compare.md").read_text()
    assert "different envs" in (out / "compare.svg").read_text()


def test_a_config_json_from_before_the_knobs_holds_their_defaults(tmp_path: Path) -> None:
    """Comparing a sweep written before the knobs existed (its config.json lacks them) with
    a knob sweep names only the knobs that differ, not every knob as 'None'."""
    import json

    from a2c_core.config import LATER_FIELDS

    def run_fn(run: RunSpec):
        return "done", rows_from([10.0 + run.seed] * 4)

    old, _ = build_results(tmp_path / "a", "old", {"policy_lr": [0.01]}, [1, 2], run_fn,
                           fixed={"env": "CartPole-v1", "epochs": 4})  # fmt: skip
    for path in (old / "runs").glob("*/config.json"):
        data = json.loads(path.read_text())
        data["config"] = {k: v for k, v in data["config"].items() if k not in LATER_FIELDS}
        path.write_text(json.dumps(data))
    new, _ = build_results(tmp_path / "b", "new", {"policy_lr": [0.01]}, [1, 2], run_fn,
                           fixed={"env": "CartPole-v1", "epochs": 4, "obs_norm": True,
                                  "entropy_coef": 0.01})  # fmt: skip
    configs = read_configs(old, load(old))
    assert all(c["obs_norm"] is False and c["max_grad_norm"] is None for c in configs.values())
    table = run_compare(old, new, n_resamples=200)
    labels = " ".join(str(x) for x in table["label"])
    assert "entropy_coef=0.01" in labels and "obs_norm=True" in labels
    assert "policy_hidden" not in labels and "None" not in labels

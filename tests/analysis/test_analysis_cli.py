"""`a2c-sweep analyze | refine | gif` through analysis.cli.main (the commands' own parser)."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from fake_results import (
    build_results,
    gif_frames,
    keep_epochs,
    learning_curve_sweep,
    rows_from,
    write_policy,
)

from analysis import cli
from runner.spec import load_spec

pytestmark = pytest.mark.timeout(120)

PLOTS = ("curves_top", "facets", "sensitivity", "heatmaps", "strip", "profile")


@pytest.fixture(scope="module")
def analyzed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    results = learning_curve_sweep(tmp_path_factory.mktemp("cli") / "results", epochs=12)
    # the best configuration's best seed gets a policy for `gif --best`
    write_policy(results / "runs" / best_run_id(results), "CartPole-v0")
    proc = subprocess.run(
        [sys.executable, "-m", "analysis.cli", "analyze", str(results), "--top", "3"],
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert proc.returncode == 0, proc.stderr
    return results, proc.stdout


def best_run_id(results: Path) -> str:
    from analysis import aggregate
    from analysis.load import load

    scores = aggregate.final_scores(load(results))
    return aggregate.best_run(scores, aggregate.ranking(scores, n_resamples=100))


def test_analyze_writes_tables_and_non_empty_png_and_svg(analyzed) -> None:
    results, stdout = analyzed
    out = results / "analysis"
    for name in PLOTS:
        png, svg = out / f"{name}.png", out / f"{name}.svg"
        assert png.stat().st_size > 10_000, png
        assert png.read_bytes()[:4] == b"\x89PNG"
        assert svg.stat().st_size > 10_000 and b"<svg" in svg.read_bytes()[:2000], svg
        assert str(png) in stdout
    ranking = pd.read_csv(out / "ranking.csv")
    assert len(ranking) == 8 and ranking["rank"].tolist() == list(range(1, 9))
    assert {
        "iqm",
        "ci_low",
        "ci_high",
        "median",
        "mean",
        "n_done",
        "n_diverged",
        "n_failed",
        "n_running",
        "p_beats_next",
        "policy_lr",
        "value_lr",
        "gamma",
    } <= set(ranking)
    assert ranking[["n_done", "n_running", "n_diverged", "n_failed"]].sum().tolist() == [
        21,
        1,
        1,
        1,
    ]
    curves = pd.read_csv(out / "curves.csv")
    assert {"env_steps", "iqm", "iqm_low", "iqm_high", "median", "mean"} <= set(curves)
    md = (out / "ranking.md").read_text()
    assert md.startswith("# Ranking of fake-grid") and "| rank | policy_lr |" in md
    # the terminal table: top 3 rows and the counts
    assert "top 3 of 8 configurations" in stdout
    assert "24 runs (21 done, 1 running, 1 diverged, 1 failed)" in stdout


def test_refine_cli_output_is_a_valid_sweep_with_the_best(analyzed, tmp_path: Path, capsys):
    results, _ = analyzed
    out = tmp_path / "finer.yaml"
    code = cli.main(["refine", str(results), "-o", str(out), "--top", "2", "--points", "3"])
    assert code == 0
    sweep = load_spec(out)
    best = pd.read_csv(results / "analysis" / "ranking.csv").iloc[0]
    keys = ["policy_lr", "value_lr", "gamma"]
    assert any(
        all(float({**sweep.fixed, **swept}[k]) == float(best[k]) for k in keys)
        for swept, _ in sweep.configs()
    )
    assert not set(sweep.seeds) & {1, 2, 3}
    assert f"a2c-sweep run {out}" in capsys.readouterr().out


def test_gif_best_cli(analyzed, tmp_path: Path, capsys) -> None:
    results, _ = analyzed
    out = tmp_path / "best.gif"
    code = cli.main(["gif", "--best", str(results), "-o", str(out), "--max-steps", "8"])
    assert code == 0, capsys.readouterr().err
    text = capsys.readouterr().out
    assert f"best run: {best_run_id(results)}" in text
    assert gif_frames(out) == int(text.split(" frames")[0].rsplit(" ", 1)[1])


def test_gif_run_dir_cli(tmp_path: Path, capsys) -> None:
    run_dir = write_policy(tmp_path / "run", "CartPoleSwingUp-v0")
    out = tmp_path / "agent.gif"
    code = cli.main(["gif", str(run_dir), "-o", str(out), "--max-steps", "5", "--deterministic"])
    assert code == 0
    assert "6 frames" in capsys.readouterr().out and gif_frames(out) == 6


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("a2c-sweep: error: "), err
    return err


def test_empty_sweep_exit_2_with_message(tmp_path: Path, capsys) -> None:
    empty = tmp_path / "results" / "empty"
    empty.mkdir(parents=True)
    (empty / "runs.csv").write_text("run_id,policy_lr,seed,state\n")
    assert cli.main(["analyze", str(empty)]) == 2
    assert "empty sweep" in one_error_line(capsys)
    assert not (empty / "analysis").exists()  # nothing written


def test_missing_directory_exit_2(tmp_path: Path, capsys) -> None:
    assert cli.main(["analyze", str(tmp_path / "nope")]) == 2
    assert "no such results directory" in one_error_line(capsys)
    assert cli.main(["refine", str(tmp_path / "nope"), "-o", str(tmp_path / "x.yaml")]) == 2
    assert "no such results directory" in one_error_line(capsys)
    assert cli.main(["gif", str(tmp_path / "nope")]) == 2
    assert "no such run directory" in one_error_line(capsys)


def test_corrupt_returns_csv_exit_2_naming_the_file(known, capsys) -> None:
    results, sweep = known
    path = results / "runs" / next(iter(sweep.runs())).run_id / "returns.csv"
    path.write_text(path.read_text().replace("\n2,", "\n2,x", 1))
    assert cli.main(["analyze", str(results)]) == 2
    assert str(path) in one_error_line(capsys)


def test_unknown_metric_exit_2(known, capsys) -> None:
    results, _ = known
    assert cli.main(["analyze", str(results), "--metric", "nope"]) == 2
    assert "--metric" in one_error_line(capsys)


def test_bad_bins_exit_2_before_any_file_is_written(known, capsys) -> None:
    results, _ = known
    assert cli.main(["analyze", str(results), "--bins", "0,abc"]) == 2
    assert "--bins" in one_error_line(capsys)
    assert not (results / "analysis").exists()


def test_register_adds_three_subcommands() -> None:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    for argv in (["analyze", "r/x"], ["refine", "r/x", "-o", "f.yaml"], ["gif", "--best", "r/x"]):
        args = parser.parse_args(argv)
        assert callable(args.func)


# --------------------------------------------------------------------------- refine -o


def test_refine_refuses_an_existing_file_unless_force(analyzed, tmp_path: Path, capsys) -> None:
    results, _ = analyzed
    out = tmp_path / "finer.yaml"
    out.write_text("# my own sweep\n")
    assert cli.main(["refine", str(results), "-o", str(out)]) == 2
    err = one_error_line(capsys)
    assert str(out) in err and "exists" in err and "--force" in err
    assert out.read_text() == "# my own sweep\n"  # untouched
    assert sorted(tmp_path.iterdir()) == [out]  # no temp file left
    assert cli.main(["refine", str(results), "-o", str(out), "--force"]) == 0
    assert load_spec(out).name == "fake-grid-refined"
    assert sorted(tmp_path.iterdir()) == [out]


def test_refine_never_overwrites_the_sweep_it_reads(analyzed, tmp_path: Path, capsys) -> None:
    results = Path(shutil.copytree(analyzed[0], tmp_path / "copy"))
    sweep_yaml = results / "sweep.yaml"
    before = sweep_yaml.read_bytes()
    files = sorted(results.iterdir())
    for force in ([], ["--force"]):
        assert cli.main(["refine", str(results), "-o", str(sweep_yaml), *force]) == 2
        assert str(sweep_yaml) in one_error_line(capsys)
    assert sweep_yaml.read_bytes() == before and sorted(results.iterdir()) == files


def test_refine_output_directory_or_missing_parent_exit_2_nothing_written(
    analyzed, tmp_path: Path, capsys
) -> None:
    results, _ = analyzed
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    for force in ([], ["--force"]):
        assert cli.main(["refine", str(results), "-o", str(out_dir), *force]) == 2
        err = one_error_line(capsys)
        assert str(out_dir) in err and "is a directory" in err
    missing = tmp_path / "nope" / "finer.yaml"
    assert cli.main(["refine", str(results), "-o", str(missing)]) == 2
    err = one_error_line(capsys)
    assert str(missing.parent) in err and "no such directory" in err
    assert sorted(tmp_path.iterdir()) == [out_dir] and not any(out_dir.iterdir())


# --------------------------------------------------------------------------- gif -o


@pytest.mark.parametrize("name", ["agent.mp4", "agent.png", "agent", "agent.gif.mp4"])
def test_gif_refuses_a_non_gif_output_before_any_work(tmp_path: Path, capsys, name) -> None:
    out = tmp_path / name
    # checked first: before the results directory is even looked at
    assert cli.main(["gif", "--best", str(tmp_path / "nope"), "-o", str(out)]) == 2
    err = one_error_line(capsys)
    assert str(out) in err and ".gif" in err
    run_dir = write_policy(tmp_path / "run", "CartPole-v0")
    assert cli.main(["gif", str(run_dir), "-o", str(out), "--max-steps", "3"]) == 2
    assert ".gif" in one_error_line(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_gif_refuses_a_directory_output(tmp_path: Path, capsys) -> None:
    run_dir = write_policy(tmp_path / "run", "CartPole-v0")
    for out in (tmp_path / "run", tmp_path / "frames.gif"):
        out.mkdir(exist_ok=True)
        assert cli.main(["gif", str(run_dir), "-o", str(out), "--max-steps", "3"]) == 2
        err = one_error_line(capsys)
        assert str(out) in err and "is a directory" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames.gif", "run"]
    assert not any((tmp_path / "frames.gif").iterdir())
    assert sorted(p.name for p in run_dir.iterdir()) == ["policy.pt"]


def test_gif_suffix_is_case_insensitive(tmp_path: Path, capsys) -> None:
    run_dir = write_policy(tmp_path / "run", "CartPole-v0")
    out = tmp_path / "AGENT.GIF"
    assert cli.main(["gif", str(run_dir), "-o", str(out), "--max-steps", "3"]) == 0
    assert gif_frames(out) == 4


# --------------------------------------------------------------------------- analyze warnings


def test_analyze_warns_once_per_run_with_missing_epochs(known, capsys) -> None:
    results, sweep = known
    ids = {(run.swept["policy_lr"], run.seed): run.run_id for run in sweep.runs()}
    keep_epochs(results / "runs" / ids[(0.1, 1)] / "returns.csv", [1, 2, 3, 7, 8, 9, 10])
    keep_epochs(results / "runs" / ids[(0.01, 2)] / "returns.csv", range(1, 8))
    assert cli.main(["analyze", str(results), "--top", "1"]) == 0
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        f"a2c-sweep: warning: run {ids[(0.1, 1)]}: epochs 4-6 missing; done but has 7 of 10 epochs",
        f"a2c-sweep: warning: run {ids[(0.01, 2)]}: done but has 7 of 10 epochs",
    ]
    assert "wrote " in captured.out and (results / "analysis" / "ranking.csv").is_file()


def test_analyze_clean_results_print_no_warning(known, capsys) -> None:
    results, _ = known
    assert cli.main(["analyze", str(results), "--top", "1"]) == 0
    assert "warning" not in capsys.readouterr().err


def test_gif_missing_output_directory_exit_2_before_any_work(tmp_path: Path, capsys) -> None:
    out = tmp_path / "nope" / "agent.gif"
    assert cli.main(["gif", "--best", str(tmp_path / "results"), "-o", str(out)]) == 2
    err = one_error_line(capsys)
    assert str(out.parent) in err and "no such directory" in err
    assert not any(tmp_path.iterdir())


def test_analyze_warns_when_done_runs_have_no_final_score(tmp_path: Path, capsys) -> None:
    """Long episodes and short epochs (seen on HalfCheetah: 1000-step episodes, 200-step
    epochs): no episode ends in the final window, every score is NaN and the ranking empty.
    One warning says why and what to do."""
    nan = float("nan")
    results, _ = build_results(tmp_path / "results", "long-episodes", {"policy_lr": [0.1]},
                               [1, 2], lambda run: ("done", rows_from([nan] * 4 + [-5.0] + [nan] * 5)))  # fmt: skip
    assert cli.main(["analyze", str(results), "--top", "1"]) == 0
    err = capsys.readouterr().err
    assert "2 of 2 done runs have no return_mean in their last 0.1 of epochs" in err
    assert "--window 0.5" in err
    assert cli.main(["analyze", str(results), "--top", "1", "--window", "0.6"]) == 0
    assert "no final score" not in capsys.readouterr().err


def test_gif_best_of_a_multi_env_sweep_needs_env(tmp_path: Path, capsys) -> None:
    """The best run is per task: `gif --best` on a sweep over two envs asks for --env (seen:
    it picked the env with the highest raw returns)."""
    results, _ = build_results(tmp_path / "results", "mix",
                               {"env": ["CartPole-v0", "CartPoleSwingUp-v0"]}, [1],
                               lambda run: ("done", rows_from([10.0] * 3)))  # fmt: skip
    out = tmp_path / "a.gif"
    assert cli.main(["gif", "--best", str(results), "-o", str(out)]) == 2
    assert "spans 2 envs (CartPole-v0, CartPoleSwingUp-v0)" in one_error_line(capsys)
    assert cli.main(["gif", "--best", str(results), "--env", "Acrobot-v1", "-o", str(out)]) == 2
    assert "not one of the swept envs" in one_error_line(capsys)
    assert not out.exists()

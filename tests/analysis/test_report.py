"""`a2c-sweep report`: one self-contained HTML file per sweep, opened offline in a real browser
(headless Chromium) for every published reference sweep; and the analyze view options."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from browser import check_offline, need_browser, open_browser, static_external_urls
from fake_results import learning_curve_sweep, write_policy

from analysis import cli

pytestmark = pytest.mark.timeout(300)

REFERENCE = Path(__file__).resolve().parents[2] / "results" / "reference"
REFERENCE_SWEEPS = sorted(p.name for p in REFERENCE.iterdir() if (p / "sweep.yaml").exists())


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    results = learning_curve_sweep(tmp_path_factory.mktemp("report") / "results", epochs=12)
    from analysis import aggregate
    from analysis.load import load

    scores = aggregate.final_scores(load(results))
    best = aggregate.best_run(scores, aggregate.ranking(scores, n_resamples=100))
    write_policy(results / "runs" / best, "CartPole-v0")
    return results


@pytest.fixture(scope="module")
def chromium():
    need_browser()  # skips loudly, or fails when A2C_REQUIRE_BROWSER=1 (CI)
    with open_browser() as browser:
        yield browser


def sections(text: str) -> list[str]:
    return re.findall(r'<h2 id="([^"]+)"', text)


def test_report_is_one_self_contained_file(sweep: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "r.html"
    assert cli.main(["report", str(sweep), "-o", str(out)]) == 0
    assert "one self-contained HTML file" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html"]  # nothing beside it
    text = out.read_text(encoding="utf-8")
    assert static_external_urls(text) == []
    assert "<script" not in text and "<link" not in text
    # every figure inline; the GIF of the best agent (its run has a policy)
    images = re.findall(r'src="data:image/(png|gif);base64,', text)
    assert images.count("png") >= 6 and images.count("gif") == 1
    assert sections(text) == [
        "summary",
        "ranking",
        "curves",
        "heatmaps",
        "sensitivity",
        "seeds",
        "profile",
        "facets",
        "agent",
        "runs",
        "reproduce",
    ]
    # the sweep's state: a running run makes the page reload itself and say so
    assert "in progress: 1 runs unfinished" in text and 'http-equiv="refresh"' in text
    assert "24 (20 done, 1 running, 1 diverged, 1 failed" not in text  # pending counted below
    assert re.search(r"<dt>runs</dt><dd>24 \(", text)
    # the exact commands, with the results path
    assert f"a2c-sweep analyze {sweep}" in text and f"a2c-sweep run {sweep}/sweep.yaml" in text
    # package versions the runs recorded, the machine, the ranking table
    assert "recorded with" in text and "report written" in text
    assert text.count("<tr>") > 24  # ranking rows (8) + runs rows (24)


def test_report_default_output_and_options(sweep: Path, tmp_path: Path, capsys) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(sweep, copy)
    argv = ["report", str(copy), "--stat", "median", "--window", "0.5", "--no-gif"]
    assert cli.main([*argv, "--title", "My <b>sweep</b>"]) == 0
    text = (copy / "report.html").read_text(encoding="utf-8")
    assert "agent" not in sections(text)
    assert "ranked by the median" in text and "last 50% of epochs" in text
    assert "--stat median --window 0.5" in text  # the reproducing command keeps the options
    assert "<b>sweep</b>" not in text  # every text escaped


@pytest.mark.parametrize(
    "argv, message",
    [
        (["-o", "{tmp}/r.txt"], "must end in .html"),
        (["-o", "{tmp}/missing/r.html"], "no such directory"),
        (["-o", "{tmp}"], "is a directory"),
        (["--metric", "nope"], "'nope' is not a returns.csv column"),
    ],
)
def test_report_bad_input_exit_2_nothing_written(
    sweep: Path, tmp_path: Path, capsys, argv: list[str], message: str
) -> None:
    before = sorted(p.name for p in tmp_path.iterdir())
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert cli.main(["report", str(sweep), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert not (sweep / "report.html").exists()


def test_report_missing_results_exit_2(tmp_path: Path, capsys) -> None:
    assert cli.main(["report", str(tmp_path / "nope")]) == 2
    assert "nope" in capsys.readouterr().err


def test_report_failure_keeps_the_previous_report(sweep: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "r.html"
    out.write_text("previous report")
    runs = sweep / "runs"
    victim = sorted(runs.iterdir())[0] / "returns.csv"
    saved = victim.read_bytes()
    try:
        victim.write_bytes(b"epoch,env_steps\n\x00garbage\n")
        assert cli.main(["report", str(sweep), "-o", str(out)]) == 2
    finally:
        victim.write_bytes(saved)
    assert out.read_text() == "previous report"


@pytest.mark.parametrize("name", REFERENCE_SWEEPS)
def test_reference_report_opens_offline_in_chromium(
    name: str, chromium, tmp_path: Path, capsys
) -> None:
    """Acceptance: the report of each published sweep opens in a real browser with the
    network off: no console error, no failed or external request, a page that is not blank."""
    out = tmp_path / f"{name}.html"
    gif = [] if name == "cartpole-v0-grid" else ["--no-gif"]  # one GIF is enough to test
    assert cli.main(["report", str(REFERENCE / name), "-o", str(out), *gif]) == 0
    report = check_offline(out, tmp_path / f"{name}.png", browser=chromium)
    assert report.ok, report.summary()
    assert report.nonblank and report.colours > 1000  # plots, not a page of text
    assert report.title == f"{name}: sweep report"
    assert not report.external_requests and not report.console_errors
    assert not report.failed_requests and not report.page_errors


# --------------------------------------------------------------------------- analyze options


def ranking_csv(results: Path) -> pd.DataFrame:
    return pd.read_csv(results / "analysis" / "ranking.csv")


def test_analyze_stat_minimize_and_window(sweep: Path, tmp_path: Path, capsys) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(sweep, copy)
    assert cli.main(["analyze", str(copy), "--stat", "median"]) == 0
    table = ranking_csv(copy)
    done = table[table["n_done"] > 0]
    assert list(done["median"]) == sorted(done["median"], reverse=True)
    assert (
        "| median | 95% CI (median) | IQM | mean |"
        in (copy / "analysis" / "ranking.md").read_text()
    )
    # a loss: --minimize ranks the lowest first, and P(> next) becomes P(< next)
    assert cli.main(["analyze", str(copy), "--metric", "length_mean", "--minimize"]) == 0
    table = ranking_csv(copy)
    done = table[table["n_done"] > 0]
    assert list(done["iqm"]) == sorted(done["iqm"])
    assert "lowest first" in (copy / "analysis" / "ranking.md").read_text()
    # --window: the final score is the mean over the last half of the epochs
    assert cli.main(["analyze", str(copy), "--window", "0.5"]) == 0
    scores = pd.read_csv(copy / "analysis" / "scores.csv")
    from analysis.load import load

    frame = load(copy)
    run = scores[scores["state"] == "done"].iloc[0]
    rows = frame[frame["run_id"] == run["run_id"]].sort_values("epoch")
    assert run["final_score"] == pytest.approx(rows["return_mean"].iloc[-6:].mean())


def test_analyze_warns_when_ranking_a_loss_highest_first(sweep: Path, tmp_path: Path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(sweep, copy)
    assert cli.main(["analyze", str(copy), "--metric", "value_loss"]) == 0
    assert "add --minimize" in capsys.readouterr().err


@pytest.mark.parametrize("x, column", [("epoch", "epoch"), ("wall", "wall_time_s")])
def test_analyze_x_axis(sweep: Path, tmp_path: Path, capsys, x: str, column: str) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(sweep, copy)
    assert cli.main(["analyze", str(copy), "--x", x]) == 0
    curves = pd.read_csv(copy / "analysis" / "curves.csv")
    assert column in curves.columns and "env_steps" not in curves.columns
    if x == "epoch":
        assert curves[column].min() == 1 and curves[column].max() == 12
    svg = (copy / "analysis" / "curves_top.svg").read_text()
    assert {"epoch": "epoch", "wall": "training wall time (s)"}[x] in svg


def test_analyze_title_and_size(sweep: Path, tmp_path: Path, capsys) -> None:
    from PIL import Image

    copy = tmp_path / "copy"
    shutil.copytree(sweep, copy)
    assert cli.main(["analyze", str(copy), "--title", "Figure 3", "--size", "4x3"]) == 0
    assert "Figure 3" in (copy / "analysis" / "curves_top.svg").read_text()
    small = Image.open(copy / "analysis" / "curves_top.png").size
    assert cli.main(["analyze", str(copy), "--size", "10x6"]) == 0
    large = Image.open(copy / "analysis" / "curves_top.png").size
    assert large[0] > small[0] * 1.6 and large[1] > small[1] * 1.4  # titles set a min width


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--size", "7"], "expected WIDTHxHEIGHT"),
        (["--size", "0x4"], "between 1 and 40"),
        (["--window", "0"], "(0, 1]"),
        (["--window", "nan"], "(0, 1]"),
        (["--stat", "max"], "invalid choice"),
        (["--x", "time"], "invalid choice"),
    ],
)
def test_analyze_bad_view_options_exit_2(sweep: Path, capsys, argv, message) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["analyze", str(sweep), *argv])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err
    assert not (sweep / "analysis").exists()


def test_report_before_any_run_finishes_shows_progress(sweep: Path, tmp_path: Path) -> None:
    """An overnight sweep's first hours: no empty ranking or empty plots, but the latest
    return of each configuration and the learning curves so far."""
    import json

    copy = tmp_path / "copy"
    shutil.copytree(sweep, copy)
    for status in (copy / "runs").glob("*/status.json"):
        data = json.loads(status.read_text())
        if data["state"] == "done":
            data["state"] = "running"
        status.write_text(json.dumps(data))
    assert cli.main(["report", str(copy), "--no-gif"]) == 0
    page = (copy / "report.html").read_text(encoding="utf-8")
    assert "No run has finished yet, so nothing is ranked" in page
    assert sections(page) == ["summary", "ranking", "curves", "facets", "runs", "reproduce"]
    assert 'http-equiv="refresh"' in page
    assert "gif --best" not in page  # no best run, no command that would fail


def test_report_training_time_is_not_a_sum_over_packed_runs(sweep: Path, tmp_path: Path):
    from analysis.load import load

    out = tmp_path / "r.html"
    assert cli.main(["report", str(sweep), "-o", str(out), "--no-gif"]) == 0
    frame = load(sweep)
    longest = frame.groupby("run_id")["wall_s"].sum().max()
    page = out.read_text(encoding="utf-8")
    assert "for the longest run" in page and f"{longest:.0f} s" in page


# --------------------------------------------------------------------------- clumsy input


def test_dollar_signs_are_text_not_math(sweep: Path, tmp_path: Path, capsys) -> None:
    """Seen: `--title 'cost $x^$'` raised matplotlib's mathtext ParseSyntaxException after
    ranking.csv had been rewritten."""
    copy = tmp_path / "copy"
    shutil.copytree(sweep, copy)
    assert cli.main(["analyze", str(copy), "--title", "cost $x^$ and $\\frac$"]) == 0
    assert "cost $x^$" in (copy / "analysis" / "curves_top.svg").read_text()
    assert cli.main(["report", str(copy), "--no-gif", "--title", "$\\frac$"]) == 0


def test_unwritable_analysis_output_is_one_line_and_leaves_no_temp(
    sweep: Path, tmp_path: Path, capsys
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(sweep, copy)
    (copy / "analysis" / "ranking.csv").mkdir(parents=True)  # in the way of the file
    assert cli.main(["analyze", str(copy)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot write the analysis there" in err[0]
    assert not list((copy / "analysis").glob(".tmp-*"))


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--bins", "nan"], "--bins"),
        (["--bins", "0,nan"], "--bins"),
        (["--seed", "-1"], "integer >= 0"),
    ],
)
def test_more_bad_options_exit_2(sweep: Path, capsys, argv, message) -> None:
    try:
        code = cli.main(["analyze", str(sweep), *argv])
    except SystemExit as exit_:
        code = exit_.code
    assert code == 2 and message in capsys.readouterr().err
    assert not (sweep / "analysis").exists()


def test_damaged_side_files_do_not_break_the_report(sweep: Path, tmp_path: Path) -> None:
    """A sweep.yaml that is a list, a naive timestamp, versions that are not a mapping:
    the report loses a detail, never the page."""
    import json

    copy = tmp_path / "copy"
    shutil.copytree(sweep, copy)
    (copy / "sweep.yaml").write_text("- a list\n")
    status = next((copy / "runs").glob("*/status.json"))
    data = json.loads(status.read_text())
    data["updated"] = "2026-01-01T00:00:00"
    status.write_text(json.dumps(data))
    config = next((copy / "runs").glob("*/config.json"))
    data = json.loads(config.read_text())
    data["versions"] = "abc"
    config.write_text(json.dumps(data))
    assert cli.main(["report", str(copy), "--no-gif"]) == 0
    assert cli.main(["analyze", str(copy)]) == 0


def test_out_of_range_integer_in_returns_is_one_line(sweep: Path, tmp_path: Path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(sweep, copy)
    victim = sorted((copy / "runs").glob("*/returns.csv"))[0]
    lines = victim.read_text().splitlines()
    cells = lines[1].split(",")
    cells[1] = "99999999999999999999999"  # env_steps
    lines[1] = ",".join(cells)
    victim.write_text("\n".join(lines) + "\n")
    assert cli.main(["report", str(copy)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "out of range" in err[0] and "env_steps" in err[0]


def test_report_on_a_file_says_not_a_directory(tmp_path: Path, capsys) -> None:
    path = tmp_path / "afile"
    path.write_text("x")
    assert cli.main(["report", str(path)]) == 2
    assert "not a directory" in capsys.readouterr().err


@pytest.mark.parametrize("bad", ["../../other/runs/x", "", "DUP"])
def test_runs_csv_run_ids_never_leave_runs_or_repeat(
    sweep: Path, tmp_path: Path, capsys, bad: str
) -> None:
    """Seen: runs.csv naming `../../other/runs/x` was read from outside the results
    directory; a duplicated run_id was counted twice."""
    copy = tmp_path / "copy"
    shutil.copytree(sweep, copy)
    lines = (copy / "runs.csv").read_text().splitlines()
    first = lines[1].split(",")
    extra = [lines[1]] if bad == "DUP" else [",".join([bad, *first[1:]])]
    (copy / "runs.csv").write_text("\n".join([*lines, *extra]) + "\n")
    assert cli.main(["report", str(copy)]) == 2
    err = capsys.readouterr().err
    assert "corrupt runs.csv" in err and "run_id" in err


def test_analyze_warns_about_two_seeds(tmp_path: Path, capsys) -> None:
    """Seen: a 2-seed sweep reported CIs like [48.9, 52.2] and P(> next) = 1 without a word
    (and the first version of the warning raised TypeError on numpy's bool)."""
    results = learning_curve_sweep(tmp_path / "results", epochs=4, seeds=(1, 2))
    assert cli.main(["analyze", str(results), "--top", "2"]) == 0
    assert "at most 2 seeds per configuration" in capsys.readouterr().err


def test_top_above_the_colour_limit_warns_only_when_configurations_are_cut(tmp_path, capsys):
    """Seen: `--top 20` on the 4-configuration demo warned that only 10 are shown."""
    results = learning_curve_sweep(tmp_path / "results", epochs=3, seeds=(1, 2, 3))
    assert cli.main(["analyze", str(results), "--top", "20"]) == 0
    assert "--top 20" not in capsys.readouterr().err


def test_read_only_report_target_is_refused_and_kept(sweep: Path, tmp_path: Path, capsys) -> None:
    """Seen: `report -o ro.html` on a chmod 444 file replaced it (rename ignores the mode)."""
    target = tmp_path / "ro.html"
    target.write_text("original")
    target.chmod(0o444)
    assert cli.main(["report", str(sweep), "-o", str(target), "--no-gif"]) == 2
    assert "read-only" in capsys.readouterr().err
    assert target.read_text() == "original" and not target.stat().st_mode & 0o222

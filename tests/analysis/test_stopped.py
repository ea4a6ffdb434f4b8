"""Configurations stopped early by racing (state ``stopped``, status.json ``rung``): loaded
with their rung, ranked after the survivors, never the best, drawn up to their rung."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fake_results import (
    build_results,
    keep_epochs,
    learning_curve_sweep,
    rows_from,
    stop_status,
)
from matplotlib.text import Text

from analysis import aggregate, cli, plots
from analysis.load import AnalysisError, load
from analysis.refine import write_refined
from runner.spec import RunSpec, Sweep

pytestmark = pytest.mark.timeout(120)

# Final returns per (policy_lr, seed): the final score is the last row (1 row in 10 % of
# fewer than 15 epochs). Known answers, computed by hand in the tests:
#   0.1   : done [10, 20, 30]                     IQM 20
#   0.01  : done [50, 60, 70]                     IQM 60  (the best)
#   0.001 : stopped at rung 4, [500, 600, 700]    IQM 600 at epoch 4
#   0.0001: stopped at rung 2, [800, 900, 1000]   IQM 900 at epoch 2
# The stopped ones score more at their rung than any survivor at the end: only their state
# keeps them below.
RACED = {
    0.1: ("done", 10, [10.0, 20.0, 30.0]),
    0.01: ("done", 10, [50.0, 60.0, 70.0]),
    0.001: ("stopped", 4, [500.0, 600.0, 700.0]),
    0.0001: ("stopped", 2, [800.0, 900.0, 1000.0]),
}
LABELS = ["policy_lr=0.01", "policy_lr=0.1", "policy_lr=0.0001", "policy_lr=0.001"]


def raced_run(run: RunSpec) -> tuple[str, list]:
    state, epochs, finals = RACED[run.swept["policy_lr"]]
    return state, rows_from([0.0] * (epochs - 1) + [finals[run.seed - 1]])


@pytest.fixture
def raced(tmp_path: Path) -> tuple[Path, Sweep]:
    """results/raced: policy_lr in RACED x seeds 1-3, two configurations stopped."""
    return build_results(
        tmp_path / "results", "raced", {"policy_lr": list(RACED)}, [1, 2, 3], raced_run
    )


def run_ids(sweep: Sweep) -> dict[tuple[float, int], str]:
    return {(run.swept["policy_lr"], run.seed): run.run_id for run in sweep.runs()}


# --------------------------------------------------------------------------- load


def test_load_carries_the_stopped_state_and_its_rung(raced) -> None:
    results, sweep = raced
    frame = load(results)
    per_run = frame.drop_duplicates("run_id").set_index("run_id")
    ids = run_ids(sweep)
    assert per_run["state"].value_counts().to_dict() == {"done": 6, "stopped": 6}
    assert frame["stopped_at"].dtype == "Int64"
    for (lr, _), run_id in ids.items():
        rows = frame[frame["run_id"] == run_id]
        state, rung, _ = RACED[lr]
        assert per_run.loc[run_id, "state"] == state
        if state == "stopped":
            assert (rows["stopped_at"] == rung).all()
            assert list(rows["epoch"]) == list(range(1, rung + 1))  # rows end at the rung
        else:
            assert rows["stopped_at"].isna().all()
    # the per-run frame: state, rung, and the final-score rule over the rows it has
    scores = aggregate.final_scores(frame).set_index("run_id")
    assert scores["stopped_at"].dtype == "Int64"
    assert scores.loc[ids[(0.001, 2)], ["state", "stopped_at", "epochs"]].tolist() == [
        "stopped",
        4,
        4,
    ]
    assert scores.loc[ids[(0.001, 2)], "final_score"] == 600.0
    assert pd.isna(scores.loc[ids[(0.01, 2)], "stopped_at"])


def test_stopped_at_without_a_rung_in_status_json_is_the_last_epoch(raced) -> None:
    """An old or hand-edited status.json may lack rung and reason (or hold nonsense there):
    the run is still stopped, at its status's epochs_done, else the last epoch it recorded."""
    results, sweep = raced
    ids = run_ids(sweep)
    runs = results / "runs"
    stop_status(runs / ids[(0.001, 1)] / "status.json", None)
    (runs / ids[(0.001, 2)] / "status.json").write_text('{"state": "stopped", "rung": true}')
    (runs / ids[(0.001, 3)] / "returns.csv").unlink()
    stop_status(runs / ids[(0.001, 3)] / "status.json", None)
    per_run = load(results).drop_duplicates("run_id").set_index("run_id")
    assert per_run.loc[ids[(0.001, 1)], ["state", "stopped_at"]].tolist() == ["stopped", 4]
    assert per_run.loc[ids[(0.001, 2)], ["state", "stopped_at"]].tolist() == ["stopped", 4]
    # rows lost: stopped where its status's verified epoch count says, and flagged
    assert per_run.loc[ids[(0.001, 3)], ["state", "stopped_at"]].tolist() == ["stopped", 4]
    from analysis.load import row_problems

    assert "stopped but has 0 of 4 epochs" in row_problems(results)[ids[(0.001, 3)]]


# --------------------------------------------------------------------------- ranking


def test_ranking_lists_survivors_first_then_stopped_ones_by_score_at_their_rung(raced) -> None:
    results, _ = raced
    scores = aggregate.final_scores(load(results))
    table = aggregate.ranking(scores, seed=3, n_resamples=500)
    assert list(table["config"]) == LABELS
    assert list(table["rank"]) == [1, 2, 3, 4]
    assert table["iqm"].tolist() == [60.0, 20.0, 900.0, 600.0]
    assert table["stopped_at"].tolist()[2:] == [2, 4]
    assert table["stopped_at"].isna().tolist() == [True, True, False, False]
    assert table["n_stopped"].tolist() == [0, 0, 3, 3]
    assert table["n_done"].tolist() == [3, 3, 0, 0]
    # P(> next) within each block only: survivor vs stopped compares different epochs
    assert table["p_beats_next"].iloc[0] == 1.0
    assert math.isnan(table["p_beats_next"].iloc[1])
    assert table["p_beats_next"].iloc[2] == 1.0
    assert math.isnan(table["p_beats_next"].iloc[3])
    # the survivors' numbers (CIs included) are those of the sweep without the stopped ones
    alone = aggregate.ranking(scores[scores["state"] != "stopped"], seed=3, n_resamples=500)
    columns = ["rank", "config", "iqm", "ci_low", "ci_high", "median", "mean", "std", "n_done"]
    pd.testing.assert_frame_equal(table[columns].head(2), alone[columns].head(2))
    assert list(aggregate.stopped_configs(scores)) == ["policy_lr=0.001", "policy_lr=0.0001"]
    assert list(aggregate.survivors(table)["config"]) == LABELS[:2]


def test_a_stopped_configuration_is_never_the_best(raced, tmp_path: Path) -> None:
    results, sweep = raced
    ids = run_ids(sweep)
    scores = aggregate.final_scores(load(results))
    table = aggregate.ranking(scores, n_resamples=100)
    assert table["config"].iloc[0] == "policy_lr=0.01"
    assert aggregate.best_run(scores, table) == ids[(0.01, 3)]  # 70, not a stopped 1000
    _, refinement = write_refined(results, tmp_path / "refined.yaml", top=3, seeds=2)
    assert refinement.best == {"policy_lr": 0.01}
    assert 0.001 not in refinement.grid["policy_lr"]  # the top 3 are survivors only: 0.01, 0.1
    assert any("stopped early by racing" in note for note in refinement.notes)
    # no survivor at all: still no best, and nothing to refine
    for lr in (0.1, 0.01):
        for seed in (1, 2, 3):
            stop_status(results / "runs" / ids[(lr, seed)] / "status.json", 10)
    scores = aggregate.final_scores(load(results))
    table = aggregate.ranking(scores, n_resamples=100)
    assert table["stopped_at"].notna().all() and aggregate.survivors(table).empty
    with pytest.raises(ValueError, match="no done run"):
        aggregate.best_run(scores, table)
    with pytest.raises(AnalysisError, match="nothing to refine"):
        write_refined(results, tmp_path / "again.yaml", force=True)


# --------------------------------------------------------------------------- curves


def test_curves_draw_stopped_runs_up_to_their_rung(raced) -> None:
    results, _ = raced
    curves = aggregate.aggregate_curves(load(results), points=10, n_resamples=100)
    stopped = curves[curves["config"] == "policy_lr=0.001"]
    # 10-point grid over 100..1000 env steps: the stopped seeds cover 100..400, all three
    assert stopped["env_steps"].tolist() == [100.0, 200.0, 300.0, 400.0]
    assert (stopped["n_runs"] == 3).all()
    assert stopped["mean"].iloc[-1] == 600.0
    done = curves[curves["config"] == "policy_lr=0.1"]
    assert len(done) == 10 and (done["n_runs"] == 3).all()


# --------------------------------------------------------------------------- plots and CLI


@pytest.fixture(scope="module")
def raced_grid(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The realistic 2x2x2 grid of 12 epochs with the two slowest configurations stopped
    at epochs 4 and 8 (every seed)."""
    return learning_curve_sweep(
        tmp_path_factory.mktemp("raced") / "results",
        "raced-grid",
        epochs=12,
        stopped={(0.01, 0.001, 0.999): 4, (0.01, 0.001, 0.99): 8},
    )


def facet_config(ax) -> str:
    """The configuration of a facet panel, from its title ("#3  5 done\na=1, b=2\nc=3")."""
    return ax.get_title().split("\n", 1)[1].replace("\n", ", ")


STOPPED = {
    "policy_lr=0.01, value_lr=0.001, gamma=0.999": 4,
    "policy_lr=0.01, value_lr=0.001, gamma=0.99": 8,
}


def test_plots_mark_stopped_configurations_and_never_highlight_them(raced_grid: Path) -> None:
    frame = load(raced_grid)
    scores = aggregate.final_scores(frame)
    table = aggregate.ranking(scores, n_resamples=100)
    curves = aggregate.aggregate_curves(frame, points=20, n_resamples=50)
    assert set(table["config"][-2:]) == set(STOPPED)
    # curves: the legend names the epoch a configuration was stopped at
    ax = plots.plot_curves(curves, frame, configs=list(STOPPED))
    legend = [t.get_text() for t in ax.figure.legends[-1].get_texts()]
    assert legend == [
        "gamma=0.999 (3 seeds, stopped at epoch 4)",
        "gamma=0.99 (3 seeds, stopped at epoch 8)",
    ]
    # facets: one panel per configuration, the stopped ones say so, none of them in colour
    axes = plots.plot_facets(curves, frame, ranking=table)
    panels = {facet_config(ax): ax for ax in axes if ax.get_visible()}
    for config, rung in STOPPED.items():
        # the note is in the panel's title, above the curves, not drawn over them
        assert panels[config].get_title().split("\n")[0].endswith(f"3 stopped at epoch {rung}")
        assert not panels[config].texts
        assert {line.get_color() for line in panels[config].lines} == {"#444444"}
    assert plots.PALETTE[0] in {line.get_color() for line in panels[table["config"][0]].lines}
    # the strip plot labels its rows with the same note; heatmaps, sensitivity and profile
    # use done runs only and take configurations without one
    ax = plots.plot_strip(scores, order=list(table["config"]))
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert {label.rsplit("[", 1)[1] for label in labels[-2:]} == {
        "3 stopped at epoch 4]",
        "3 stopped at epoch 8]",
    }
    cells = aggregate.cell_table(scores, "policy_lr", "value_lr", where={"gamma": 0.999})
    assert cells.notna().sum().sum() == 3  # (0.01, 0.001) has only stopped runs: blank
    plots.plot_heatmaps(scores)
    plots.plot_sensitivity_grid(scores)
    plots.plot_performance_profile(
        aggregate.performance_profile(scores, configs=list(STOPPED), n_resamples=50)
    )


def test_analyze_lists_stopped_configurations_with_their_epoch(raced_grid: Path, capsys) -> None:
    code = cli.main(["analyze", str(raced_grid), "--top", "3"])
    out = capsys.readouterr().out
    assert code == 0
    assert "24 runs (16 done, 1 diverged, 1 failed, 6 stopped), 8 configurations" in out
    assert "stopped early by racing: 2 of 8 configurations" in out
    for config, rung in STOPPED.items():
        assert f"{config}: stopped at epoch {rung}" in out
    ranking = pd.read_csv(raced_grid / "analysis" / "ranking.csv")
    assert ranking["n_stopped"].tolist()[-2:] == [3, 3]
    assert set(ranking["config"][-2:]) == set(STOPPED)
    assert ranking["stopped_at"].isna().tolist() == [True] * 6 + [False] * 2
    assert ranking["config"].iloc[0] not in STOPPED
    md = (raced_grid / "analysis" / "ranking.md").read_text()
    assert "stopped early by racing" in md
    header, _, *lines = [line for line in md.splitlines() if line.startswith("|")]
    rows = [dict(zip(header.split(" | "), line.split(" | "), strict=True)) for line in lines]
    assert [r["stopped at epoch"] for r in rows] == ["-"] * 6 + [
        str(STOPPED[c]) for c in ranking["config"][-2:]
    ]
    assert [r["stopped"] for r in rows] == ["0"] * 6 + ["3", "3"]
    # curves.csv keeps the stopped runs, ending at their rung
    curves = pd.read_csv(raced_grid / "analysis" / "curves.csv")
    early = curves[curves["config"] == "policy_lr=0.01, value_lr=0.001, gamma=0.999"]
    assert 0 < len(early) < len(curves[curves["config"] == ranking["config"].iloc[0]])
    for name in ("curves_top", "facets", "sensitivity", "heatmaps", "strip", "profile"):
        assert (raced_grid / "analysis" / f"{name}.png").stat().st_size > 10_000


def test_analyze_when_racing_stopped_every_configuration(tmp_path: Path, capsys) -> None:
    results, _ = build_results(
        tmp_path / "results",
        "all-stopped",
        {"policy_lr": [0.1, 0.01], "value_lr": [0.01, 0.001]},
        [1, 2],
        lambda run: ("stopped", rows_from([run.swept["policy_lr"] * 100 * e for e in (1, 2, 3)])),
    )
    assert cli.main(["analyze", str(results)]) == 0
    out = capsys.readouterr().out
    assert "stopped early by racing: 4 of 4 configurations" in out
    assert out.count(": stopped at epoch 3 (IQM") == 4
    assert (results / "analysis" / "curves_top.png").stat().st_size > 10_000
    table = pd.read_csv(results / "analysis" / "ranking.csv")
    assert np.allclose(table["iqm"], [30.0, 30.0, 3.0, 3.0])
    # no panel is drawn as the best configuration's
    frame = load(results)
    table = aggregate.ranking(aggregate.final_scores(frame), n_resamples=50)
    axes = plots.plot_facets(
        aggregate.aggregate_curves(frame, n_resamples=50), frame, ranking=table
    )
    colors = {line.get_color() for ax in axes for line in ax.lines}
    assert colors == {"#444444"}


# --------------------------------------------------------------------------- plots of done runs
# sensitivity, heatmaps and profile use done runs only; they say what racing left out


def texts(fig) -> list[str]:
    """Every text of a figure (titles, labels, legends, annotations), in drawing order."""
    return [t.get_text() for t in fig.findobj(Text) if t.get_text()]


def stop_config(results: Path, sweep: Sweep, swept: dict, rung: int) -> None:
    """Every seed of one configuration stopped by racing at ``rung``, its rows cut there."""
    for run in sweep.runs():
        if run.swept == swept:
            keep_epochs(results / "runs" / run.run_id / "returns.csv", range(1, rung + 1))
            stop_status(results / "runs" / run.run_id / "status.json", rung)


def test_sensitivity_notes_stopped_configurations_and_marks_values_without_a_done_run(
    raced, raced_grid: Path
) -> None:
    results, _ = raced
    scores = aggregate.final_scores(load(results))
    axes = plots.plot_sensitivity_grid(scores)
    fig = axes[0].figure
    assert fig.get_suptitle() == (
        "Sensitivity of the final score to each swept parameter (others marginalised)\n"
        "2 configurations stopped early by racing are not included (epochs 2, 4)"
    )
    (ax,) = axes
    # 0.0001 and 0.001 have no done run: an "x" on the axis and "stopped @R", not nothing
    marks = {t.get_text(): t.get_position()[0] for t in ax.texts}
    assert marks == {"stopped @2": 0.0001, "stopped @4": 0.001}
    crosses = [line.get_xdata()[0] for line in ax.lines if line.get_marker() == "x"]
    assert crosses == [0.0001, 0.001]
    low, high = ax.get_xlim()
    assert low < 0.0001 and high > 0.01  # on the axis, with their tick labels
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0.0001", "0.001", "0.01", "0.1"]
    assert "stopped by racing (no done run)" in texts(fig)  # the figure legend
    # a single panel says it too
    ax = plots.plot_sensitivity(scores, "policy_lr")
    assert ax.get_title().endswith(
        "2 configurations stopped early by racing are not included (epochs 2, 4)"
    )
    # the 2x2x2 grid: every value has a done run, so no mark, but the note
    scores = aggregate.final_scores(load(raced_grid))
    axes = plots.plot_sensitivity_grid(scores)
    assert (
        axes[0]
        .figure.get_suptitle()
        .endswith("\n2 configurations stopped early by racing are not included (epochs 4, 8)")
    )
    assert not any(ax.texts for ax in axes)
    assert not any(line.get_marker() == "x" for ax in axes for line in ax.lines)


def test_heatmaps_label_stopped_cells_in_grey(raced_grid: Path) -> None:
    from matplotlib.colors import to_hex

    scores = aggregate.final_scores(load(raced_grid))
    axes = plots.plot_heatmaps(scores)
    panels = {ax.get_title(): ax for ax in axes if ax.get_visible()}
    assert list(panels) == ["gamma=0.99", "gamma=0.999"]
    for gamma, rung in (("0.99", 8), ("0.999", 4)):
        ax = panels[f"gamma={gamma}"]
        # columns policy_lr 0.01, 0.1; rows value_lr 0.001, 0.01: (0.01, 0.001) is cell (0, 0)
        stopped = [t for t in ax.texts if t.get_text().startswith("stopped")]
        # seaborn draws cell (row r, column c) of 2 rows, largest y on top, centred at
        # (c + 0.5, 1 - r + 0.5): value_lr 0.001 (row 0) is the bottom row
        assert [(t.get_text(), t.get_position()) for t in stopped] == [
            (f"stopped @{rung}", (0.5, 1.5))
        ]
        assert len(ax.texts) == 4  # the three other cells keep their value
        (patch,) = ax.patches
        assert patch.get_xy() == (0.0, 1.0) and to_hex(patch.get_facecolor()) == "#e6e6e6"
    # the plain cell table is unchanged: that cell has no done run
    cells = aggregate.cell_table(scores, "policy_lr", "value_lr", where={"gamma": 0.99})
    assert np.isnan(cells.loc[0.001, 0.01])


def test_heatmaps_of_two_parameters_are_titled_once(grid2) -> None:
    results, sweep = grid2
    stop_config(results, sweep, {"policy_lr": 0.01, "value_lr": 0.001}, 5)
    scores = aggregate.final_scores(load(results))
    (ax,) = plots.plot_heatmaps(scores)
    assert ax.get_title() == ""
    assert (
        sum(t.startswith("IQM final score over value_lr x policy_lr") for t in texts(ax.figure))
        == 1
    )
    assert not any(t.startswith("IQM final score:") for t in texts(ax.figure))
    assert sorted(t.get_text() for t in ax.texts)[-1] == "stopped @5"
    # a single heatmap keeps its own title
    ax = plots.plot_heatmap(scores, "policy_lr", "value_lr")
    assert ax.get_title() == "IQM final score: value_lr x policy_lr"


def test_profile_says_racing_stopped_configurations_are_not_shown(raced_grid: Path) -> None:
    scores = aggregate.final_scores(load(raced_grid))
    table = aggregate.ranking(scores, n_resamples=50)
    top = list(aggregate.survivors(table)["config"][:2])
    profile = aggregate.performance_profile(scores, configs=top, n_resamples=50)
    ax = plots.plot_performance_profile(profile, scores=scores)
    legend = [t.get_text() for t in ax.figure.legends[-1].get_texts()]
    assert legend[-1] == "done runs of 6 configurations (16 runs; 2 stopped by racing not shown)"
    # a stopped configuration drawn anyway (racing stopped them all) says so
    profile = aggregate.performance_profile(scores, configs=list(STOPPED), n_resamples=50)
    ax = plots.plot_performance_profile(profile, scores=scores)
    legend = [t.get_text() for t in ax.figure.legends[-1].get_texts()]
    assert legend[:2] == [
        "gamma=0.999 (0 runs, stopped at epoch 4)",
        "gamma=0.99 (0 runs, stopped at epoch 8)",
    ]
    # without the scores: as before
    ax = plots.plot_performance_profile(profile)
    assert [t.get_text() for t in ax.figure.legends[-1].get_texts()][
        -1
    ] == "all configurations (16 runs)"


def test_write_plots_notes_stopped_configurations_only_when_there_are_some(
    grid2, tmp_path: Path, monkeypatch
) -> None:
    """What ``a2c-sweep analyze`` draws (through write_plots): a sweep without stopped runs
    gets no new text; the same sweep with one configuration stopped gets the notes."""
    saved: dict[str, list[str]] = {}
    save = plots.save_figure

    def recording(fig, stem, dpi=None):
        saved[Path(stem).name] = texts(fig)
        return save(fig, stem, dpi=dpi)

    monkeypatch.setattr(plots, "save_figure", recording)
    results, sweep = grid2

    def analyze() -> dict[str, list[str]]:
        saved.clear()
        frame = load(results)
        scores = aggregate.final_scores(frame)
        table = aggregate.ranking(scores, n_resamples=50)
        curves = aggregate.aggregate_curves(frame, n_resamples=50)
        plots.write_plots(frame, scores, table, curves, tmp_path / "analysis", top=2)
        return dict(saved)

    plain = analyze()
    for name in ("sensitivity", "heatmaps", "profile"):
        assert not any("stopped" in t or "racing" in t for t in plain[name]), name
    assert (
        "Sensitivity of the final score to each swept parameter (others marginalised)"
        in plain["sensitivity"]
    )
    assert "all configurations (8 runs)" in plain["profile"]
    assert (
        sum(t.startswith("IQM final score over value_lr x policy_lr") for t in plain["heatmaps"])
        == 1
    )

    stop_config(results, sweep, {"policy_lr": 0.01, "value_lr": 0.001}, 5)
    raced = analyze()
    assert (
        "Sensitivity of the final score to each swept parameter (others marginalised)\n"
        "1 configuration stopped early by racing is not included (epoch 5)"
    ) in raced["sensitivity"]
    assert "stopped @5" in raced["heatmaps"]
    assert (
        "done runs of 3 configurations (6 runs; 1 stopped by racing not shown)"
        in (raced["profile"])
    )

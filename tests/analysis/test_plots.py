"""Every plot function draws on the Axes it is given (or a given figure) and returns it."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pytest
from fake_results import learning_curve_sweep

from analysis import aggregate, plots
from analysis.load import load

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory):
    results = learning_curve_sweep(tmp_path_factory.mktemp("plots") / "results", epochs=12)
    frame = load(results)
    scores = aggregate.final_scores(frame)
    table = aggregate.ranking(scores, n_resamples=200)
    curves = aggregate.aggregate_curves(frame, points=30, n_resamples=100)
    return frame, scores, table, curves


def drawn(ax) -> bool:
    return bool(ax.lines or ax.collections or ax.images)


def test_curves_on_given_axes(sweep) -> None:
    frame, _, table, curves = sweep
    _, ax = plt.subplots()
    top = list(table["config"][:3])
    out = plots.plot_curves(curves, frame, configs=top, ax=ax)
    assert out is ax and drawn(ax)
    assert ax.get_xlabel() == "environment steps"
    assert ax.get_ylabel() == "mean episode return"
    assert ax.get_title()
    # 3 aggregate lines + thin per-seed lines; legend names the varying parameters
    labels = [t.get_text() for t in ax.figure.legends[-1].get_texts()]
    assert len(labels) == 3 and all("policy_lr=" in t or "value_lr=" in t for t in labels)
    assert len(ax.lines) > 3


@pytest.mark.parametrize("statistic", ["median", "mean"])
def test_curves_other_statistics(sweep, statistic: str) -> None:
    frame, _, _, curves = sweep
    ax = plots.plot_curves(curves, statistic=statistic)
    assert drawn(ax) and statistic in ax.get_title()


def test_facets_on_given_figure(sweep) -> None:
    frame, _, table, curves = sweep
    fig = plt.figure()
    axes = plots.plot_facets(curves, frame, ranking=table, fig=fig)
    visible = [ax for ax in axes if ax.get_visible()]
    assert len(visible) == 8 and all(ax.figure is fig for ax in axes)
    assert all(drawn(ax) for ax in visible)
    assert any(ax.get_title().startswith("#1") for ax in visible)


@pytest.mark.parametrize("param", ["policy_lr", "value_lr", "gamma"])
def test_sensitivity_on_given_axes(sweep, param: str) -> None:
    _, scores, _, _ = sweep
    _, ax = plt.subplots()
    assert plots.plot_sensitivity(scores, param, ax=ax) is ax
    assert drawn(ax) and param in ax.get_xlabel()
    assert ax.get_xscale() == ("log" if param.endswith("lr") else "linear")


def test_sensitivity_grid_on_given_figure(sweep) -> None:
    _, scores, _, _ = sweep
    fig = plt.figure()
    axes = plots.plot_sensitivity_grid(scores, fig=fig)
    assert [ax.get_title() for ax in axes] == ["policy_lr", "value_lr", "gamma"]
    assert all(drawn(ax) for ax in axes)


def test_heatmap_on_given_axes(sweep) -> None:
    _, scores, _, _ = sweep
    _, ax = plt.subplots()
    out = plots.plot_heatmap(scores, "policy_lr", "value_lr", where={"gamma": 0.99}, ax=ax)
    assert out is ax and ax.collections  # seaborn's QuadMesh
    assert ax.get_xlabel() == "policy_lr" and ax.get_ylabel() == "value_lr"
    assert len(ax.texts) == 4  # each cell annotated
    # ... with its estimate, its 95% CI and n, so overlapping intervals are visible
    cells = aggregate.cell_estimates(scores, "policy_lr", "value_lr", where={"gamma": 0.99})
    top_left = ax.texts[0].get_text().split("\n")  # seaborn annotates from the top row
    row = cells["estimate"].index[-1]  # the largest value_lr is on top
    column = cells["estimate"].columns[0]
    assert top_left[0] == f"{cells['estimate'].loc[row, column]:.3g}"
    low, high = cells["low"].loc[row, column], cells["high"].loc[row, column]
    assert top_left[1] == f"[{low:.3g}, {high:.3g}]" and low <= high
    assert top_left[2] == f"n={cells['n'].loc[row, column]}"


def test_heatmaps_faceted_by_the_other_parameters(sweep) -> None:
    _, scores, _, _ = sweep
    fig = plt.figure()
    axes = plots.plot_heatmaps(scores, fig=fig)
    titles = [ax.get_title() for ax in axes if ax.get_visible()]
    assert titles == ["gamma=0.99", "gamma=0.999"]
    assert all(ax.collections for ax in axes)


def test_strip_on_given_axes(sweep) -> None:
    _, scores, table, _ = sweep
    _, ax = plt.subplots()
    assert plots.plot_strip(scores, order=list(table["config"]), ax=ax) is ax
    assert drawn(ax)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[0].startswith("#1 ") and any("diverged" in t for t in labels)


def test_performance_profile_on_given_axes(sweep) -> None:
    _, scores, table, _ = sweep
    profile = aggregate.performance_profile(scores, configs=list(table["config"][:2]))
    _, ax = plt.subplots()
    assert plots.plot_performance_profile(profile, ax=ax) is ax
    assert len(ax.lines) == 3 and "τ" in ax.get_xlabel()


def test_save_figure_writes_png_and_svg(sweep, tmp_path: Path) -> None:
    _, scores, table, _ = sweep
    ax = plots.plot_strip(scores, order=list(table["config"]))
    paths = plots.save_figure(ax.figure, tmp_path / "strip")
    assert [p.name for p in paths] == ["strip.png", "strip.svg"]
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in paths[1].read_bytes()[:1000]


def _ten_config_curves(tmp_path: Path):
    """A 10-configuration sweep (5 policy_lr x 2 value_lr, 2 seeds) and its curves."""
    from fake_results import build_results, rows_from

    grid = {"policy_lr": [0.1, 0.05, 0.02, 0.01, 0.005], "value_lr": [0.01, 0.001]}

    def run_fn(run):
        lr = run.swept["policy_lr"] * (1 + run.swept["value_lr"])
        return "done", rows_from([10 + 1000 * lr * e + run.seed for e in range(1, 9)])

    results, _ = build_results(tmp_path / "results", "ten", grid, [1, 2], run_fn)
    frame = load(results)
    curves = aggregate.aggregate_curves(frame, points=20, n_resamples=50)
    return frame, curves


def test_ten_curves_keep_their_axes_and_distinct_visible_colours(tmp_path: Path) -> None:
    """--top 10: the legend gets its own band below (the axes keep the height asked for),
    ten colours all differ and none is too light to see on white (the old palette repeated
    colours 9-10 and had a yellow)."""
    from matplotlib.colors import to_rgb

    frame, curves = _ten_config_curves(tmp_path)
    configs = list(dict.fromkeys(curves["config"]))
    assert len(configs) == plots.MAX_LINES == 10
    with plots.style():
        ax = plots.plot_curves(curves, frame, configs=configs, ax=plots._axes(None, (7.0, 4.0)))
        fig = ax.figure
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        axes_box = ax.get_window_extent(renderer)
        legend = fig.legends[-1]
        legend_box = legend.get_window_extent(renderer)
    assert axes_box.height / fig.dpi >= 0.75 * 4.0  # not squashed by 10 legend entries
    assert legend_box.y1 <= axes_box.y0  # entirely below the axes: never over a curve
    colours = [line.get_color() for line in ax.lines if line.get_linewidth() == 2.0]
    assert len(colours) == 10 and len(set(colours)) == 10
    for colour in colours:
        r, g, b = to_rgb(colour)
        assert 0.2126 * r + 0.7152 * g + 0.0722 * b < 0.72, colour  # visible on white
    # no per-seed lines beyond 3 configurations (they merged into one mass)
    assert all(line.get_linewidth() == 2.0 for line in ax.lines)
    with pytest.raises(ValueError, match="at most 10"):
        plots.plot_curves(curves, configs=[*configs, configs[0]])


def test_facets_note_is_in_the_title_not_over_the_curves(sweep) -> None:
    frame, _, table, curves = sweep
    axes = plots.plot_facets(curves, frame, ranking=table)
    visible = [ax for ax in axes if ax.get_visible()]
    assert all(not ax.texts for ax in visible)
    assert all(
        "done" in ax.get_title().split("\n")[0] or "failed" in ax.get_title() for ax in visible
    )
    width, height = axes[0].figure.get_size_inches()
    assert width <= 6 * 2.3 + 0.5 and height <= width * 1.5  # compact, not a 2503x4643 strip


def test_profile_reference_line_differs_from_every_configuration(sweep) -> None:
    _, scores, table, _ = sweep
    top = list(table["config"][:3])
    ax = plots.plot_performance_profile(aggregate.performance_profile(scores, configs=top))
    reference = ax.lines[-1]
    assert reference.get_label().startswith("all configurations")
    others = ax.lines[:-1]
    assert all(line.get_color() != reference.get_color() for line in others)
    assert all(line.get_linestyle() == "-" for line in others)
    assert reference.get_linestyle() != "-"
    assert len(ax.get_ylabel()) <= 24  # fits the axes' height

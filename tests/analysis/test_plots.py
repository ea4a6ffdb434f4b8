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

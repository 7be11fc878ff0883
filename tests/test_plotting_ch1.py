"""Tests of the chapter-1 plotting helpers in fisherbook.plotting."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from fisherbook.plotting import new_figure, plot_running_mean, plot_score_slopes  # noqa: E402


def _slope(line) -> float:
    (x0, y0), (x1, y1) = line.get_xydata()[[0, -1]]
    return (y1 - y0) / (x1 - x0)


def test_score_slopes_draws_tangents_with_the_given_slopes() -> None:
    fig, ax = new_figure()
    grid = np.linspace(-2.0, 2.0, 81)
    xs = np.array([-0.5, 1.0])
    curves = -(xs[:, None] - grid[None, :]) ** 2 / 2
    plot_score_slopes(ax, grid, curves, 0.0, xs, peaks=xs, labels=["a", "b"])
    # vertical line + per curve: curve, tangent, touch point, peak marker
    assert len(ax.lines) == 1 + 2 * 4
    tangents = [ax.lines[2], ax.lines[6]]
    assert [_slope(t) for t in tangents] == pytest.approx(list(xs))
    assert tangents[0].get_xydata()[:, 0] == pytest.approx([-0.5, 0.5])
    peak = ax.lines[4].get_xydata()[0]
    assert peak == pytest.approx([-0.5, 0.0], abs=1e-3)
    assert "theta" in ax.get_xlabel()
    plt.close(fig)


def test_score_slopes_one_sided_tangent() -> None:
    fig, ax = new_figure()
    grid = np.linspace(1.0, 3.0, 21)
    plot_score_slopes(ax, grid, -np.log(grid)[None, :], 2.0, [-0.5], tangent_side="right",
                      tangent_halfwidth=0.4)
    assert ax.lines[2].get_xydata()[:, 0] == pytest.approx([2.0, 2.4])
    plt.close(fig)


def test_score_slopes_checks_its_input() -> None:
    fig, ax = new_figure()
    grid = np.linspace(0.0, 1.0, 5)
    with pytest.raises(ValueError, match="column"):
        plot_score_slopes(ax, grid, np.zeros((2, 4)), 0.5, [0.0, 0.0])
    with pytest.raises(ValueError, match="slope"):
        plot_score_slopes(ax, grid, np.zeros((2, 5)), 0.5, [0.0])
    with pytest.raises(ValueError, match="outside the grid"):
        plot_score_slopes(ax, grid, np.zeros((1, 5)), 2.0, [0.0])
    with pytest.raises(ValueError, match="tangent_side"):
        plot_score_slopes(ax, grid, np.zeros((1, 5)), 0.5, [0.0], tangent_side="up")
    with pytest.raises(ValueError, match="label"):
        plot_score_slopes(ax, grid, np.zeros((1, 5)), 0.5, [0.0], labels=["a", "b"])
    plt.close(fig)


def test_running_mean_band_and_curve() -> None:
    fig, ax = new_figure()
    values = np.array([1.0, -1.0, 1.0, -1.0, 1.0, -1.0])
    plot_running_mean(ax, values, 0.0, sigmas=5)
    line = ax.lines[0]
    np.testing.assert_allclose(line.get_ydata(), [0.0, 1 / 3, 0.0, 0.2, 0.0])
    assert ax.get_xscale() == "log"
    with pytest.raises(ValueError, match="finite"):
        plot_running_mean(ax, [1.0, np.nan, 2.0], 0.0)
    plt.close(fig)


def test_score_slopes_can_write_labels_at_the_peaks() -> None:
    fig, ax = new_figure()
    grid = np.linspace(-2.0, 2.0, 41)
    xs = np.array([-1.0, 1.0])
    curves = -(xs[:, None] - grid[None, :]) ** 2 / 2
    plot_score_slopes(ax, grid, curves, 0.0, xs, peaks=xs, labels=["$x_1$", "$x_2$"],
                      annotate_peaks=True)
    assert [t.get_text() for t in ax.texts] == ["$x_1$", "$x_2$"]
    handles, legend_labels = ax.get_legend_handles_labels()
    assert legend_labels == [r"$\theta^{*}$"]
    with pytest.raises(ValueError, match="annotate_peaks"):
        plot_score_slopes(ax, grid, curves, 0.0, xs, annotate_peaks=True)
    plt.close(fig)


def test_score_slopes_names_the_parameter() -> None:
    fig, ax = new_figure()
    grid = np.linspace(-1, 1, 21)
    plot_score_slopes(ax, grid, -(grid[None, :] ** 2), 0.0, np.array([0.0]), symbol=r"\mu",
                      colors=["#000000"])
    assert ax.get_xlabel() == r"parameter $\mu$"
    assert ax.get_legend_handles_labels()[1] == [r"$\mu^{*}$"]
    plt.close(fig)


def test_score_slopes_stacks_labels_of_close_peaks() -> None:
    fig, ax = new_figure()
    grid = np.linspace(-2.0, 2.0, 81)
    xs = np.array([-1.5, 0.0, 0.1, 0.15, 1.5])
    curves = -(xs[:, None] - grid[None, :]) ** 2 / 2
    plot_score_slopes(ax, grid, curves, 0.0, xs, peaks=xs,
                      labels=[f"$x_{i}$" for i in range(5)], annotate_peaks=True)
    heights = [text.xyann[1] for text in ax.texts]
    assert heights[0] == heights[4] == 7          # far apart: first row
    assert len({heights[1], heights[2], heights[3]}) == 3   # close: three rows
    plt.close(fig)

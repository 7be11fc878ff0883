"""Tests of the chapter-2 plotting helpers in fisherbook.plotting."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from scipy import stats  # noqa: E402

from fisherbook.plotting import (  # noqa: E402
    new_figure,
    plot_qq,
    plot_scaled_variance,
    plot_score_histogram,
)


def test_score_histogram_is_a_density_with_overlay() -> None:
    fig, ax = new_figure()
    scores = np.random.default_rng(0).normal(size=5000)
    plot_score_histogram(ax, scores, lambda t: np.exp(-t**2 / 2) / np.sqrt(2 * np.pi), bins=30)
    heights = np.array([patch.get_height() for patch in ax.patches])
    widths = np.array([patch.get_width() for patch in ax.patches])
    assert len(heights) == 30
    assert np.sum(heights * widths) == pytest.approx(1.0)
    assert any(line.get_label() == "closed form" for line in ax.lines)
    plt.close(fig)


def test_score_histogram_rejects_nan() -> None:
    fig, ax = new_figure()
    with pytest.raises(ValueError, match="finite"):
        plot_score_histogram(ax, np.array([0.0, np.nan]))
    plt.close(fig)


def test_scaled_variance_plot() -> None:
    fig, ax = new_figure()
    sizes = [10, 100, 1000]
    plot_scaled_variance(ax, sizes, np.array([1.5, 1.05, 1.0]), np.array([0.1, 0.05, 0.02]),
                         1.0, label="MLE", exact=lambda n: n / (n - 2))
    assert ax.get_xscale() == "log"
    labels = ax.get_legend_handles_labels()[1]
    assert "MLE" in labels and "exact at finite $n$" in labels
    with pytest.raises(ValueError, match="one entry"):
        plot_scaled_variance(ax, sizes, np.ones(2), np.ones(3), 1.0, label="x")
    plt.close(fig)


def test_scaled_variance_without_bound_line() -> None:
    fig, ax = new_figure()
    plot_scaled_variance(ax, [10, 100], np.ones(2), np.zeros(2), None, label="second estimator")
    assert ax.get_legend_handles_labels()[1] == ["second estimator"]
    plt.close(fig)


def test_qq_plot_of_normal_values_lies_on_the_diagonal() -> None:
    fig, ax = new_figure()
    values = np.random.default_rng(0).normal(size=50_000)
    plot_qq(ax, values, exact_quantile=stats.norm.ppf)
    dots, exact, diagonal = ax.lines
    x, y = dots.get_xydata().T
    assert len(x) == 41 and np.max(np.abs(y - x)) < 0.15
    np.testing.assert_allclose(exact.get_ydata(), exact.get_xdata(), atol=1e-9)
    assert diagonal.get_label() == r"$\mathcal{N}(0, 1)$ limit"
    with pytest.raises(ValueError, match="finite"):
        plot_qq(ax, np.r_[np.zeros(20), np.nan])
    plt.close(fig)

"""Tests of the chapter-3 plotting helpers in fisherbook.plotting."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from fisherbook.plotting import (  # noqa: E402
    CYCLE,
    PALETTE,
    new_figure,
    plot_kl_with_quadratic,
    plot_loglog_with_slope,
    plot_overlap,
    plot_relative_error_with_residual,
)


def gaussian(xs: np.ndarray, center: float) -> np.ndarray:
    return np.exp(-(xs - center) ** 2 / 2) / np.sqrt(2 * np.pi)


def test_overlap_area_of_two_unit_gaussians() -> None:
    fig, ax = new_figure()
    xs = np.linspace(-10, 11, 4001)
    area = plot_overlap(ax, xs, gaussian(xs, 0.0), gaussian(xs, 1.0))
    # overlap of N(0,1) and N(1,1) is 2 Phi(-1/2)
    assert area == pytest.approx(0.617075077, rel=1e-5)  # trapezoid rule over the kink
    assert len(ax.lines) == 2 and len(ax.collections) == 1
    assert ax.get_xlabel() == "$x$"
    plt.close(fig)


def test_overlap_discrete_sums_minimum() -> None:
    fig, ax = new_figure()
    xs = np.arange(3)
    area = plot_overlap(ax, xs, np.array([0.5, 0.3, 0.2]), np.array([0.2, 0.3, 0.5]),
                        discrete=True)
    assert area == pytest.approx(0.7)
    plt.close(fig)


def test_overlap_refuses_bad_input() -> None:
    fig, ax = new_figure()
    with pytest.raises(ValueError, match="shapes"):
        plot_overlap(ax, np.arange(3.0), np.ones(3), np.ones(2))
    with pytest.raises(ValueError, match="non-negative"):
        plot_overlap(ax, np.arange(3.0), -np.ones(3), np.ones(3))
    plt.close(fig)


def test_kl_with_quadratic_draws_both_and_the_minimum() -> None:
    fig, ax = new_figure()
    deltas = np.linspace(-1, 1, 11)
    plot_kl_with_quadratic(ax, deltas, deltas**2 / 2 + deltas**3 / 10, deltas**2 / 2)
    assert len(ax.lines) == 3
    np.testing.assert_allclose(ax.lines[1].get_ydata(), deltas**2 / 2)
    with pytest.raises(ValueError, match="one length"):
        plot_kl_with_quadratic(ax, deltas, deltas, deltas[:-1])
    plt.close(fig)


def test_loglog_reference_line_has_the_slope() -> None:
    fig, ax = new_figure()
    deltas = np.geomspace(1e-3, 1, 20)
    plot_loglog_with_slope(ax, deltas, 2 * deltas, slope=3, label="data",
                           prediction=2 * deltas)
    reference = ax.lines[1].get_ydata()
    measured = np.polyfit(np.log(deltas), np.log(reference), 1)[0]
    assert measured == pytest.approx(3.0)
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    with pytest.raises(ValueError, match="non-zero"):
        plot_loglog_with_slope(ax, deltas, 0 * deltas, slope=1, label="zero")
    with pytest.raises(ValueError, match="prediction"):
        plot_loglog_with_slope(ax, deltas, deltas, slope=1, label="x", prediction=deltas[:3])
    plt.close(fig)


def test_relative_error_with_residual_isolates_the_next_order() -> None:
    fig, (ax, residual_ax) = new_figure(1, 2)
    deltas = np.geomspace(1e-3, 1e-1, 30)
    quadratic = deltas**2 / 2
    kl = quadratic + deltas**3 / 10 + deltas**4 / 7  # c2 = 1/2, c3 = 1/10, c4 = 1/7
    residual = plot_relative_error_with_residual(ax, residual_ax, deltas, kl, quadratic, 0.2)
    signed = (kl - quadratic) / kl
    np.testing.assert_allclose(residual, np.abs(signed - 0.2 * deltas))
    # the residual is what the cubic term leaves: order delta^2, coefficient c4/c2 - (c3/c2)^2
    np.testing.assert_allclose(residual[:5] / deltas[:5] ** 2, 2 / 7 - 0.04, rtol=0.02)
    np.testing.assert_allclose(ax.lines[2].get_ydata(), 0.2 * deltas)  # the prediction
    assert residual_ax.get_yscale() == "log" and residual_ax.get_ylabel() == "residual"
    with pytest.raises(ValueError, match="cubic_ratio"):
        plot_relative_error_with_residual(ax, residual_ax, deltas, kl, quadratic, 0.0)
    with pytest.raises(ValueError, match="one length"):
        plot_relative_error_with_residual(ax, residual_ax, deltas, kl[:-1], quadratic, 0.2)
    plt.close(fig)


def test_shared_style_is_sharp_and_colour_blind_safe() -> None:
    fig, _ = new_figure()
    assert fig.dpi >= 150 and matplotlib.rcParams["savefig.dpi"] >= 150
    cycle = [c.lower() for c in matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]]
    assert cycle == [c.lower() for c in CYCLE] and len(set(cycle)) == len(cycle)
    assert set(cycle) <= {c.lower() for c in PALETTE.values()}  # Okabe-Ito colours only
    assert PALETTE["yellow"].lower() not in cycle  # too faint on white for a line
    plt.close(fig)

"""Tests of the chapter-4 plotting helpers (loss contours, optimiser paths)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from fisherbook.plotting import draw_loss_contours, draw_path, new_figure  # noqa: E402


def bowl(theta: np.ndarray) -> float:
    return float(theta[0] ** 2 + 10 * np.log(theta[1]) ** 2) if theta[1] > 0 else float("inf")


def test_draw_loss_contours_and_path():
    fig, ax = new_figure()
    contours = draw_loss_contours(ax, bowl, (-2, 2), (0.1, 10), levels=12, resolution=40,
                                  log_y=True)
    assert len(contours.levels) == 12
    assert ax.get_yscale() == "log"
    path = np.array([[1.5, 5.0], [1.0, 2.0], [0.2, 1.1]])
    line = draw_path(ax, path, label="GD", color="#0072B2")
    np.testing.assert_allclose(line.get_xydata(), path)
    assert [t.get_text() for t in ax.legend().get_texts()] == ["GD"]
    plt.close(fig)


def test_bad_input_is_refused():
    fig, ax = new_figure()
    with pytest.raises(ValueError, match="not finite anywhere"):
        draw_loss_contours(ax, lambda th: float("nan"), (0, 1), (0, 1), resolution=5)
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        draw_path(ax, np.zeros((3, 3)), label="x", color="k")
    plt.close(fig)


def test_draw_path_without_markers_passes_line_style_through():
    fig, ax = new_figure()
    path = np.array([[0.0, 1.0], [0.5, 1.5], [1.0, 1.2]])
    line = draw_path(ax, path, label="NGD", color="#56B4E9", marker="", ls="--", lw=6.0)
    assert line.get_linestyle() == "--" and line.get_linewidth() == 6.0
    assert line.get_marker() in ("", "None")
    # start (hollow circle) and end (star) are drawn as two further lines
    assert [ln.get_marker() for ln in ax.get_lines()[1:]] == ["o", "*"]
    plt.close(fig)

"""One figure style for the whole book, and the plotting helpers chapters share.

Every chapter calls :func:`use_style` once; figures then share fonts, sizes and colours.
"""

from __future__ import annotations

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

#: Colours used throughout the book (colour-blind safe, Okabe–Ito palette).
PALETTE: dict[str, str] = {
    "blue": "#0072B2",
    "orange": "#E69F00",
    "green": "#009E73",
    "red": "#D55E00",
    "purple": "#CC79A7",
    "sky": "#56B4E9",
    "yellow": "#F0E442",
    "black": "#000000",
}

STYLE: dict[str, object] = {
    "figure.figsize": (6.4, 4.0),
    "figure.dpi": 110,
    "savefig.dpi": 150,
    "savefig.bbox": "tight",
    "font.size": 11,
    "axes.titlesize": 12,
    "axes.labelsize": 11,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
    "lines.linewidth": 2.0,
    "axes.prop_cycle": mpl.cycler(color=list(PALETTE.values())),
}


def use_style() -> None:
    """Apply the book's matplotlib style (idempotent)."""
    mpl.rcParams.update(STYLE)


def new_figure(ncols: int = 1, nrows: int = 1, *, width: float | None = None,
               height: float | None = None, **kwargs) -> tuple[Figure, Axes | list]:
    """Create a figure in the book's style: ``ncols`` panels side by side, each about 4.2 in wide."""
    use_style()
    size = (width or 4.2 * ncols + 0.6, height or 3.6 * nrows)
    fig, axes = plt.subplots(nrows, ncols, figsize=size, layout="constrained", **kwargs)
    return fig, axes


# ---------------------------------------------------------------------------------------------
# Chapter 4 (natural gradient descent): loss landscapes and optimiser paths


def draw_loss_contours(ax: Axes, loss, x_range: tuple[float, float],
                       y_range: tuple[float, float], *, levels: int = 25,
                       resolution: int = 150, log_y: bool = False):
    """Filled-line contours of a two-parameter ``loss(theta)`` over a grid (``log_y``: log-spaced y).

    Points where the loss is not finite are left blank. Returns the matplotlib contour set.
    """
    xs = np.linspace(*x_range, resolution)
    ys = np.geomspace(*y_range, resolution) if log_y else np.linspace(*y_range, resolution)
    grid = np.array([[loss(np.array([x, y])) for x in xs] for y in ys], dtype=float)
    grid[~np.isfinite(grid)] = np.nan
    finite = grid[np.isfinite(grid)]
    if finite.size == 0:
        raise ValueError("draw_loss_contours: the loss is not finite anywhere on the grid")
    # levels spaced evenly in log(loss - min) so that the valley floor is resolved
    floor = finite.min()
    offsets = np.geomspace(1e-3 * (finite.max() - floor) + 1e-12, finite.max() - floor, levels)
    contours = ax.contour(xs, ys, grid, levels=floor + offsets, colors="0.6", linewidths=0.7)
    if log_y:
        ax.set_yscale("log")
    return contours


def draw_path(ax: Axes, path, *, label: str, color: str, marker: str = "o",
              markevery: int | None = None, **kwargs):
    """Draw an optimiser path (rows are iterates of two parameters): a line with markers,
    a hollow circle at the start and a star at the end. Returns the line."""
    path = np.asarray(path, dtype=float)
    if path.ndim != 2 or path.shape[1] != 2:
        raise ValueError(f"draw_path needs an (n, 2) array of iterates, got shape {path.shape}")
    (line,) = ax.plot(path[:, 0], path[:, 1], color=color, marker=marker, markersize=3,
                      markevery=markevery, label=label, **kwargs)
    ax.plot(*path[0], marker="o", markersize=8, markerfacecolor="white", color=color)
    ax.plot(*path[-1], marker="*", markersize=12, color=color)
    return line

"""One figure style for the whole book, and the plotting helpers chapters share.

Every chapter calls :func:`use_style` once; figures then share fonts, sizes and colours.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
from matplotlib import patheffects
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

#: The colour cycle, the Okabe–Ito colours that read well as thin lines on white (yellow left out).
CYCLE: list[str] = [PALETTE[name] for name in ("blue", "orange", "green", "red", "purple", "sky",
                                               "black")]

#: Dots per inch of every figure, on the page and in files. 200 keeps lines and text sharp on
#: high-density (2x) screens, where the browser scales each image down to the text width.
DPI = 200

STYLE: dict[str, object] = {
    "figure.figsize": (6.4, 4.0),
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
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
    "axes.prop_cycle": mpl.cycler(color=CYCLE),
}


def use_style() -> None:
    """Apply the book's matplotlib style (idempotent): fonts, colour cycle, and DPI dots per inch
    (the inline backend of Jupyter renders a figure at its own dpi, so pages get sharp PNGs)."""
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
        ax.yaxis.set_major_locator(mpl.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(mpl.ticker.FormatStrFormatter("%g"))
        ax.yaxis.set_minor_formatter(mpl.ticker.NullFormatter())
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


# ------------------------------------------------------------ chapter 2: Fisher information
def plot_score_histogram(ax: Axes, scores: np.ndarray,
                         density: Callable[[np.ndarray], np.ndarray] | None = None, *,
                         bins: int = 50, color: str = PALETTE["blue"],
                         label: str = "simulated scores", density_label: str = "closed form",
                         span: tuple[float, float] | None = None,
                         symbol: str = r"\theta") -> Axes:
    """Histogram (as a density) of simulated scores, over a closed-form density if given."""
    scores = np.asarray(scores, dtype=float).ravel()
    if scores.size < 2 or not np.all(np.isfinite(scores)):
        raise ValueError("scores must be at least 2 finite numbers")
    low, high = span if span is not None else np.quantile(scores, [0.0005, 0.9995])
    ax.hist(scores, bins=np.linspace(low, high, bins + 1), density=True, color=color,
            alpha=0.45, label=label)
    if density is not None:
        grid = np.linspace(low, high, 400)
        ax.plot(grid, density(grid), color=PALETTE["black"], linewidth=1.8, label=density_label)
    ax.axvline(0.0, color=PALETTE["black"], linestyle=":", linewidth=1.0)
    ax.set_xlabel(rf"score $s({symbol}^{{{_STAR}}})$")
    ax.set_ylabel("density")
    return ax


def plot_scaled_variance(ax: Axes, sizes: Sequence[int], values: np.ndarray,
                         stderrs: np.ndarray, bound: float | None, *, label: str,
                         color: str = PALETTE["blue"], exact: Callable | None = None,
                         bound_label: str = r"$F^{-1}$ (Cramér–Rao)") -> Axes:
    """n Var(estimator) against n (log axis), error bars of 2 standard errors, and F^-1 as a line.

    ``exact``, if given, is the exact finite-n curve n -> n Var, drawn dashed; ``bound=None``
    skips the F^-1 line (when several estimators share one)."""
    sizes = np.asarray(sizes, dtype=float)
    values = np.asarray(values, dtype=float)
    stderrs = np.asarray(stderrs, dtype=float)
    if not sizes.shape == values.shape == stderrs.shape:
        raise ValueError(f"sizes, values and stderrs must have one entry each per n, got "
                         f"{sizes.shape}, {values.shape}, {stderrs.shape}")
    ax.errorbar(sizes, values, yerr=2 * stderrs, fmt="o", color=color, capsize=3,
                label=label)
    if exact is not None:
        grid = np.geomspace(sizes.min(), sizes.max(), 200)
        ax.plot(grid, exact(grid), color=color, linestyle="--", linewidth=1.2,
                label="exact at finite $n$")
    if bound is not None:
        ax.axhline(bound, color=PALETTE["black"], linewidth=1.2, label=bound_label)
    ax.set_xscale("log")
    ax.set_xlabel("sample size $n$")
    ax.set_ylabel(r"$n \cdot \mathrm{Var}(\hat\theta_n)$")
    return ax


def plot_qq(ax: Axes, values: np.ndarray, *, color: str = PALETTE["blue"], label: str = "simulated",
            exact_quantile: Callable[[np.ndarray], np.ndarray] | None = None,
            diagonal: bool = True, points: int = 41, span: float = 3.2) -> Axes:
    """Normal QQ plot: sample quantiles of ``values`` (dots) against N(0, 1) quantiles, at
    probabilities Phi(z) for ``points`` z evenly spaced in [-span, span]; ``exact_quantile``
    (q -> quantile of the exact law) is drawn as a thin line, ``diagonal`` the line y = x."""
    from scipy import stats  # local: only this helper needs scipy

    values = np.asarray(values, dtype=float).ravel()
    if values.size < 10 or not np.all(np.isfinite(values)):
        raise ValueError("values must be at least 10 finite numbers")
    normal = np.linspace(-span, span, points)
    probabilities = stats.norm.cdf(normal)
    ax.plot(normal, np.quantile(values, probabilities), "o", color=color, markersize=4,
            label=label)
    if exact_quantile is not None:
        fine = np.linspace(-span, span, 200)
        ax.plot(fine, exact_quantile(stats.norm.cdf(fine)), color=color, linewidth=1.0)
    if diagonal:
        ax.plot([-span, span], [-span, span], color=PALETTE["black"], linewidth=1.0,
                linestyle="--", label=r"$\mathcal{N}(0, 1)$ limit")
    ax.set_xlabel(r"quantiles of $\mathcal{N}(0, 1)$")
    ax.set_ylabel("sample quantiles")
    return ax


# ------------------------------------------------------------------ chapter 1: the score
# The star of theta* in figure text: mathtext's \star is drawn so small that it reads as a dot
# (theta-dot) at figure sizes, so figures use an asterisk.
_STAR = "*"

_TANGENT_OUTLINE = [patheffects.Stroke(linewidth=4.2, foreground="black"), patheffects.Normal()]


def _label_levels(peaks: np.ndarray, grid: np.ndarray, min_gap: float = 0.06) -> np.ndarray:
    """Rows (0, 1, 2) for labels written above peaks: a label closer than ``min_gap`` of the grid
    span to a label in the same row moves up a row, so neighbouring labels do not collide."""
    span = float(grid.max() - grid.min())
    levels = np.zeros(peaks.size, dtype=int)
    last: dict[int, float] = {}
    for i in np.argsort(peaks):
        level = 0
        while level in last and abs(peaks[i] - last[level]) < min_gap * span and level < 2:
            level += 1
        levels[i], last[level] = level, peaks[i]
    return levels


def plot_score_slopes(ax: Axes, theta_grid: np.ndarray, curves: np.ndarray, theta_star: float,
                      slopes: np.ndarray, *, peaks: np.ndarray | None = None,
                      labels: Sequence[str] | None = None, colors: Sequence[str] | None = None,
                      tangent_halfwidth: float = 0.5, tangent_side: str = "both",
                      annotate_peaks: bool = False, symbol: str = r"\theta",
                      star_label: str | None = None) -> Axes:
    """One coloured curve theta -> log p(x_i | theta) per row of ``curves``, with its tangent of
    slope ``slopes[i]`` (the score at theta_star) drawn through theta_star in the same colour.

    ``peaks`` (theta positions) puts a triangle at each curve's maximum; theta_star is a dashed
    line, and a black dot marks where each tangent touches its curve. ``tangent_side`` "right"
    (or "left") draws only that half of each tangent: a one-sided slope at a kink. With
    ``annotate_peaks``, the ``labels`` are written above the peak markers instead of in a legend.
    ``symbol`` is the parameter's LaTeX name (axis labels; the default star label is its star).
    Chapter 2 draws its narrow-against-wide panels with the same routine, in one colour."""
    theta_grid = np.asarray(theta_grid, dtype=float)
    curves = np.atleast_2d(np.asarray(curves, dtype=float))
    slopes = np.asarray(slopes, dtype=float).ravel()
    n = curves.shape[0]
    if curves.shape[1] != theta_grid.size:
        raise ValueError(f"curves must have one column per grid point ({theta_grid.size}), "
                         f"got shape {curves.shape}")
    if slopes.shape != (n,):
        raise ValueError(f"give one slope per curve ({n}), got {slopes.size}")
    if peaks is not None and np.asarray(peaks).size != n:
        raise ValueError(f"give one peak position per curve ({n}), got {np.asarray(peaks).size}")
    if labels is not None and len(labels) != n:
        raise ValueError(f"give one label per curve ({n}), got {len(labels)}")
    if annotate_peaks and (peaks is None or labels is None):
        raise ValueError("annotate_peaks needs both peaks and labels")
    if not theta_grid.min() <= theta_star <= theta_grid.max():
        raise ValueError(f"theta_star = {theta_star} lies outside the grid "
                         f"[{theta_grid.min()}, {theta_grid.max()}]")
    cycle = list(colors) if colors is not None else [c for k, c in PALETTE.items()
                                                     if k not in ("black", "yellow")]
    sides = {"both": (-1.0, 1.0), "right": (0.0, 1.0), "left": (-1.0, 0.0)}
    if tangent_side not in sides:
        raise ValueError(f"tangent_side must be one of {sorted(sides)}, got {tangent_side!r}")
    offsets = tangent_halfwidth * np.array(sides[tangent_side])
    ax.axvline(theta_star, color=PALETTE["black"], linestyle="--", linewidth=1.0,
               label=star_label if star_label is not None else rf"${symbol}^{{{_STAR}}}$")
    levels = _label_levels(np.asarray(peaks, dtype=float).ravel(), theta_grid) \
        if annotate_peaks else None
    for i, (curve, slope) in enumerate(zip(curves, slopes, strict=True)):
        color = cycle[i % len(cycle)]
        ax.plot(theta_grid, curve, color=color, linewidth=1.4, alpha=0.8,
                label=None if labels is None or annotate_peaks else labels[i])
        height = np.interp(theta_star, theta_grid, curve)
        ax.plot(theta_star + offsets, height + slope * offsets, color=color, linewidth=2.6,
                solid_capstyle="round", path_effects=_TANGENT_OUTLINE)
        ax.plot([theta_star], [height], marker="o", markersize=4, color=PALETTE["black"])
        if peaks is not None:
            peak = float(np.asarray(peaks).ravel()[i])
            # the highest grid value next to the peak: right for smooth curves and for walls
            near = np.abs(theta_grid - peak) <= np.max(np.diff(theta_grid))
            top = curve[near].max() if near.any() else np.interp(peak, theta_grid, curve)
            ax.plot([peak], [top], marker="^", markersize=7,
                    color=color, markeredgecolor=PALETTE["black"], markeredgewidth=0.6)
            if annotate_peaks:
                ax.annotate(labels[i], (peak, top), xytext=(0, 7 + 11 * levels[i]),
                            textcoords="offset points",
                            ha="center", va="bottom", color=color, fontsize="small")
    ax.set_xlabel(rf"parameter ${symbol}$")
    ax.set_ylabel(rf"log-likelihood $\log p(x_i \mid {symbol})$")
    return ax


def plot_running_mean(ax: Axes, values: np.ndarray, exact: float, *, sigmas: float = 5.0,
                      color: str = PALETTE["blue"], label: str = "running mean") -> Axes:
    """Mean of values[:n] against n (log axis), with the band exact +- sigmas * se_n, where
    se_n = sd(values[:n]) / sqrt(n) is the running standard error; exact is a horizontal line."""
    values = np.asarray(values, dtype=float).ravel()
    if values.size < 3 or not np.all(np.isfinite(values)):
        raise ValueError("values must be at least 3 finite numbers")
    n = np.arange(1, values.size + 1)
    mean = np.cumsum(values) / n
    second = np.cumsum(values**2) / n
    variance = np.maximum(second - mean**2, 0.0) * n / np.maximum(n - 1, 1)
    stderr = np.sqrt(variance / n)
    keep = n >= 2
    ax.fill_between(n[keep], exact - sigmas * stderr[keep], exact + sigmas * stderr[keep],
                    color=color, alpha=0.15, linewidth=0,
                    label=rf"{exact:g} $\pm$ {sigmas:g} standard errors")
    ax.plot(n[keep], mean[keep], color=color, linewidth=1.4, label=label)
    ax.axhline(exact, color=PALETTE["black"], linewidth=1.0)
    ax.set_xscale("log")
    ax.set_xlabel("number of draws $n$")
    return ax


# ------------------------------------------------------ chapter 3: KL divergence and curvature
def plot_overlap(ax: Axes, xs: np.ndarray, density: np.ndarray, shifted: np.ndarray, *,
                 labels: tuple[str, str] = (r"$p(x \mid \theta)$", r"$p(x \mid \theta + \delta)$"),
                 colors: tuple[str, str] = (PALETTE["blue"], PALETTE["orange"]),
                 discrete: bool = False) -> float:
    """Two densities on a grid with their overlap min(p, q) shaded; returns the overlap area.

    For ``discrete`` (pmfs on the integers ``xs``) bars are drawn and the area is a sum."""
    xs = np.asarray(xs, dtype=float)
    density = np.asarray(density, dtype=float)
    shifted = np.asarray(shifted, dtype=float)
    if not xs.ndim == 1 or not xs.shape == density.shape == shifted.shape or xs.size < 2:
        raise ValueError(f"xs, density and shifted must be 1-d of one length >= 2, got shapes "
                         f"{xs.shape}, {density.shape}, {shifted.shape}")
    if np.any(density < 0) or np.any(shifted < 0) or not np.all(np.isfinite(density + shifted)):
        raise ValueError("densities must be finite and non-negative")
    common = np.minimum(density, shifted)
    if discrete:
        ax.bar(xs, common, width=0.9, color="0.75", label="overlap")
        ax.step(xs, density, where="mid", color=colors[0], label=labels[0])
        ax.step(xs, shifted, where="mid", color=colors[1], label=labels[1])
        area = float(common.sum())
    else:
        ax.fill_between(xs, common, color="0.75", label="overlap")
        ax.plot(xs, density, color=colors[0], label=labels[0])
        ax.plot(xs, shifted, color=colors[1], label=labels[1])
        area = float(np.trapezoid(common, xs))
    ax.set_xlabel("$x$")
    ax.set_ylabel("density")
    return area


def _kl_curves(deltas: np.ndarray, kl_values: np.ndarray, quadratic: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The shifts, KL values and quadratic model as float arrays, checked 1-d of one length."""
    deltas, kl_values, quadratic = (np.asarray(a, dtype=float) for a in (deltas, kl_values, quadratic))
    if not deltas.ndim == 1 or not deltas.shape == kl_values.shape == quadratic.shape:
        raise ValueError(f"deltas, kl_values and quadratic must be 1-d of one length, got "
                         f"{deltas.shape}, {kl_values.shape}, {quadratic.shape}")
    return deltas, kl_values, quadratic


def plot_kl_with_quadratic(ax: Axes, deltas: np.ndarray, kl_values: np.ndarray,
                           quadratic: np.ndarray, *, color: str = PALETTE["blue"],
                           label: str = r"$\mathrm{KL}(p_\theta \,\|\, p_{\theta+\delta})$",
                           quadratic_label: str = r"$\frac{1}{2} F(\theta)\, \delta^2$") -> Axes:
    """KL against the shift delta (solid), the quadratic 1/2 F delta^2 (dashed), minimum marked."""
    deltas, kl_values, quadratic = _kl_curves(deltas, kl_values, quadratic)
    ax.plot(deltas, kl_values, color=color, label=label)
    ax.plot(deltas, quadratic, color=PALETTE["black"], linestyle="--", linewidth=1.4,
            label=quadratic_label)
    ax.plot([0.0], [0.0], marker="o", color=PALETTE["black"], markersize=5)
    ax.set_xlabel(r"shift $\delta$")
    ax.set_ylabel("KL divergence (nats)")
    return ax


def plot_loglog_with_slope(ax: Axes, deltas: np.ndarray, values: np.ndarray, *, slope: float,
                           label: str, color: str = PALETTE["blue"],
                           prediction: np.ndarray | None = None,
                           prediction_label: str = "leading term") -> Axes:
    """abs(values) against abs(delta) on log-log axes, with a faint reference line of the given slope
    through the smallest-delta point, and optionally a predicted curve (dotted)."""
    deltas = np.abs(np.asarray(deltas, dtype=float))
    values = np.abs(np.asarray(values, dtype=float))
    if not deltas.ndim == 1 or deltas.shape != values.shape or deltas.size < 2:
        raise ValueError(f"deltas and values must be 1-d of one length >= 2, got "
                         f"{deltas.shape}, {values.shape}")
    if np.any(deltas <= 0) or np.any(values <= 0):
        raise ValueError("log-log axes need non-zero deltas and values")
    ax.plot(deltas, values, color=color, label=label)
    first = np.argmin(deltas)
    reference = values[first] * (deltas / deltas[first]) ** slope
    ax.plot(deltas, reference, color="0.55", linewidth=4, alpha=0.35,
            label=f"slope {slope:g}")
    if prediction is not None:
        prediction = np.abs(np.asarray(prediction, dtype=float))
        if prediction.shape != deltas.shape:
            raise ValueError(f"prediction must have the shape of deltas {deltas.shape}, got "
                             f"{prediction.shape}")
        ax.plot(deltas, prediction, color=PALETTE["black"], linestyle=":", linewidth=1.4,
                label=prediction_label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"$|\delta|$")
    return ax


def plot_relative_error_with_residual(ax: Axes, residual_ax: Axes, deltas: np.ndarray,
                                      kl_values: np.ndarray, quadratic: np.ndarray,
                                      cubic_ratio: float, *, color: str = PALETTE["blue"]
                                      ) -> np.ndarray:
    """Top: r = abs(KL - q) / KL against delta (log-log) with the prediction abs(c3/c2) delta;
    bottom: the residual abs((KL - q) / KL - (c3/c2) delta), what the cubic term leaves, with a
    reference line of slope 2.

    ``quadratic`` is q = 1/2 F delta^2 and ``cubic_ratio`` the signed c3/c2. Returns the residual."""
    deltas, kl_values, quadratic = _kl_curves(deltas, kl_values, quadratic)
    if not np.isfinite(cubic_ratio) or cubic_ratio == 0:
        raise ValueError(f"cubic_ratio must be finite and non-zero, got {cubic_ratio!r}")
    signed = (kl_values - quadratic) / kl_values
    residual = np.abs(signed - cubic_ratio * deltas)
    plot_loglog_with_slope(ax, deltas, signed, slope=1, color=color, label="relative error",
                           prediction=abs(cubic_ratio) * deltas,
                           prediction_label=r"$|c_3/c_2|\,\delta$")
    plot_loglog_with_slope(residual_ax, deltas, residual, slope=2, color=color,
                           label="residual")
    ax.set_xlabel("")
    residual_ax.set_ylabel("residual")
    return residual

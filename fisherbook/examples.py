"""Worked examples of chapter 1: log-likelihood curves in one parameter, and the Uniform(0, theta)
family whose moving support breaks E[s] = 0.

``log_likelihood_curves`` and ``expected_log_likelihood`` work for any ``Family``; the
Uniform(0, theta) helpers exist because ``Family`` (rightly) refuses a support that depends on a
parameter.
"""

from __future__ import annotations

import numpy as np
import sympy as sp
from sympy.printing.latex import LatexPrinter

from .errors import DomainError
from .family import Family, Theta


def _varied_index(family: Family, param: str | None) -> int:
    """Position of the parameter called ``param`` (the only parameter when ``param`` is None)."""
    if param is None:
        if len(family.params) != 1:
            raise DomainError(f"{family.name}: has parameters {[p.name for p in family.params]};"
                              " say which one to vary with param=")
        return 0
    return family.params.index(family.symbol(param))


def _point_with(family: Family, theta: Theta, index: int, value: float) -> tuple[float, ...]:
    point = list(family.theta_tuple(theta))
    point[index] = float(value)
    return tuple(point)


def _grid(values: np.ndarray, what: str) -> np.ndarray:
    grid = np.asarray(values, dtype=float)
    if grid.ndim != 1 or grid.size < 2 or not np.all(np.isfinite(grid)):
        raise DomainError(f"{what} must be a 1-d array of at least 2 finite numbers, "
                          f"got shape {grid.shape}")
    return grid


def log_likelihood_curves(family: Family, samples: np.ndarray, theta: Theta,
                          grid: np.ndarray, *, param: str | None = None) -> np.ndarray:
    """Row i, column j: log p(x_i | theta with ``param`` set to grid[j]); an (n, len(grid)) array.

    ``theta`` fixes the other parameters (its value of ``param`` is replaced along the grid)."""
    index = _varied_index(family, param)
    grid = _grid(grid, "grid")
    samples = np.asarray(samples, dtype=float)
    columns = [family.logpdf(samples, _point_with(family, theta, index, value))
               for value in grid]
    return np.stack(columns, axis=-1)


def expected_log_likelihood(family: Family, theta_star: Theta, grid: np.ndarray, *,
                            param: str | None = None) -> np.ndarray:
    """theta -> E_{x ~ p(. | theta_star)}[log p(x | theta)] along ``grid`` (by quadrature).

    Only ``param`` moves along the grid; the other parameters keep their values in
    ``theta_star``. Its slope at theta_star is E[s(theta_star)], zero under regularity."""
    index = _varied_index(family, param)
    grid = _grid(grid, "grid")
    symbol = family.params[index]
    out = np.empty(grid.size)
    for j, value in enumerate(grid):
        _point_with(family, theta_star, index, value)  # checks value is inside the domain
        out[j] = family.expect(family.log_density.subs(symbol, float(value)), theta_star)
    return out


# --------------------------------------------------------------------- Uniform(0, theta)
def uniform_scale_log_likelihood(samples: np.ndarray, grid: np.ndarray, *,
                                 floor: float | None = None) -> np.ndarray:
    """log p(x_i | theta) for Uniform(0, theta): -log(theta) if 0 <= x_i <= theta, else -inf.

    Returns an (n, len(grid)) array; with ``floor``, -inf is replaced by ``floor`` (for plots
    that should draw the vertical wall at theta = x_i)."""
    samples = np.asarray(samples, dtype=float).ravel()
    grid = _grid(grid, "grid")
    if np.any(grid <= 0):
        raise DomainError("Uniform(0, theta) needs theta > 0 on the whole grid")
    if not np.all(np.isfinite(samples)) or np.any(samples < 0):
        raise DomainError("Uniform(0, theta) samples must be finite and >= 0")
    inside = samples[:, None] <= grid[None, :]
    low = -np.inf if floor is None else float(floor)
    return np.where(inside, -np.log(grid)[None, :], low)


def uniform_scale_expected_log_likelihood(theta_star: float, grid: np.ndarray, *,
                                          floor: float | None = None) -> np.ndarray:
    """theta -> E_{X ~ Uniform(0, theta_star)}[log p(X | theta)]: -log(theta) for theta >= theta_star,
    -inf below (some X then falls outside [0, theta]); ``floor`` replaces -inf for plotting."""
    grid = _grid(grid, "grid")
    if not theta_star > 0:
        raise DomainError(f"Uniform(0, theta) needs theta_star > 0, got {theta_star!r}")
    if np.any(grid <= 0):
        raise DomainError("Uniform(0, theta) needs theta > 0 on the whole grid")
    low = -np.inf if floor is None else float(floor)
    return np.where(grid >= theta_star, -np.log(grid), low)


def uniform_scale_scores(samples: np.ndarray, theta: float) -> np.ndarray:
    """The score d/dtheta log p(x | theta) = -1/theta of Uniform(0, theta) at each x in [0, theta).

    Refuses points outside the support, where log p = -inf has no derivative."""
    samples = np.asarray(samples, dtype=float).ravel()
    if not theta > 0:
        raise DomainError(f"Uniform(0, theta) needs theta > 0, got {theta!r}")
    if np.any((samples < 0) | (samples >= theta)):
        raise DomainError(f"a sample lies outside [0, {theta:g}): the score of Uniform(0, theta) "
                          "exists only inside the support")
    return np.full(samples.shape, -1.0 / theta)


def leibniz_terms(density: sp.Expr, x: sp.Symbol, theta: sp.Symbol,
                  lower: sp.Expr, upper: sp.Expr) -> dict[str, sp.Expr]:
    """The Leibniz rule for d/dtheta of int_lower^upper p(x | theta) dx, term by term.

    Returns ``interior`` = int dp/dtheta dx (the only term when the support is fixed, and equal
    to E[s]), ``upper_boundary`` = p(upper) d upper/dtheta, ``lower_boundary`` =
    -p(lower) d lower/dtheta, and ``total`` = their sum = d/dtheta of the integral."""
    interior = sp.simplify(sp.integrate(sp.diff(density, theta), (x, lower, upper)))
    upper_boundary = sp.simplify(density.subs(x, upper) * sp.diff(upper, theta))
    lower_boundary = sp.simplify(-density.subs(x, lower) * sp.diff(lower, theta))
    return {"interior": interior, "upper_boundary": upper_boundary,
            "lower_boundary": lower_boundary,
            "total": sp.simplify(interior + upper_boundary + lower_boundary)}


#: Symbol names the package uses that LaTeX should write as Greek letters.
_GREEK_NAMES = {"lam": r"\lambda"}


class _BookLatexPrinter(LatexPrinter):
    """sympy's LaTeX printer, with the trigamma and its relatives written psi_m(z), and the
    package's symbol ``lam`` (``lam'``) written lambda (lambda')."""

    def _print_Symbol(self, expr: sp.Symbol, style: str = "plain") -> str:
        base = expr.name.rstrip("'")
        if base in _GREEK_NAMES:
            return _GREEK_NAMES[base] + "'" * (len(expr.name) - len(base))
        return super()._print_Symbol(expr, style)

    def _print_polygamma(self, expr: sp.Expr, exp: str | None = None) -> str:
        order, argument = expr.args
        text = rf"\psi_{{{self._print(order)}}}\left({self._print(argument)}\right)"
        return rf"{text}^{{{exp}}}" if exp is not None else text


def book_latex(expr: sp.Basic) -> str:
    """LaTeX for a sympy result as a reader writes it: psi_1(alpha), not polygamma(1, alpha);
    lambda, not lam."""
    return _BookLatexPrinter().doprint(expr)


__all__ = [
    "book_latex",
    "expected_log_likelihood",
    "leibniz_terms",
    "log_likelihood_curves",
    "uniform_scale_expected_log_likelihood",
    "uniform_scale_log_likelihood",
    "uniform_scale_scores",
]

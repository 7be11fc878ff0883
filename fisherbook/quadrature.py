"""Numeric expectations by quadrature (continuous) or summation (discrete).

E_theta[f(X)] = integral of f(x) p(x | theta) dx over the support, computed with scipy; these are
the independent checks every closed form is compared against.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy import integrate

from .errors import DerivationError

Bounds = tuple[float, float]

#: Discrete supports are summed in chunks of this many points until the tail is negligible.
_CHUNK = 2048
_MAX_TERMS = 2_000_000


def _centre(log_density: Callable, lower: float, upper: float) -> float:
    """A point near the mode of a 1-D density, found on a coarse log-spaced grid."""
    offsets = np.concatenate([-np.logspace(-3, 6, 300)[::-1], [0.0], np.logspace(-3, 6, 300)])
    base = 0.0
    if np.isfinite(lower) and np.isfinite(upper):
        grid = lower + (upper - lower) * np.linspace(1e-4, 1 - 1e-4, 601)
    else:
        if np.isfinite(lower):
            base = lower
        elif np.isfinite(upper):
            base = upper
        grid = base + offsets
        grid = grid[(grid > lower) & (grid < upper)]
    with np.errstate(all="ignore"):
        values = np.array([float(log_density(g)) for g in grid])
    values[~np.isfinite(values)] = -np.inf
    if not np.isfinite(values).any():
        raise DerivationError("the log density is not finite anywhere on a search grid of its support")
    return float(grid[int(np.argmax(values))])


def integrate_1d(integrand: Callable[[float], float], log_density: Callable[[float], float],
                 bounds: Bounds, extra_points: Sequence[float] = ()) -> float:
    """Integral of integrand(x) over bounds, split at the density's mode (and at extra_points,
    e.g. another density's mode or a kink) for robustness."""
    lower, upper = bounds
    cuts = sorted({_centre(log_density, lower, upper), *extra_points})
    edges = [lower, *(c for c in cuts if lower < c < upper), upper]
    total = 0.0
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        value, _ = integrate.quad(integrand, a, b, limit=400, epsabs=1e-13, epsrel=1e-11)
        total += value
    return total


def integrate_nd(integrand: Callable[..., float], bounds: Sequence[Bounds]) -> float:
    """Integral over a box (possibly infinite) in several dimensions with scipy's nquad."""
    value, _ = integrate.nquad(integrand, list(bounds), opts={"limit": 200, "epsabs": 1e-9,
                                                              "epsrel": 1e-7})
    return value


def sum_discrete(terms: Callable[[np.ndarray], np.ndarray], pmf: Callable[[np.ndarray], np.ndarray],
                 bounds: Bounds) -> float:
    """Sum of terms(k) over the integers k in bounds; an infinite side is summed until its tail
    of probability mass is below 1e-17 relative to the total."""
    lower, upper = bounds
    if np.isfinite(lower) and np.isfinite(upper):
        ks = np.arange(int(lower), int(upper) + 1, dtype=float)
        return float(np.sum(terms(ks)))
    if not np.isfinite(lower) and not np.isfinite(upper):
        return (sum_discrete(terms, pmf, (-np.inf, -1.0)) + sum_discrete(terms, pmf, (0.0, np.inf)))
    direction = 1 if np.isfinite(lower) else -1
    start = int(lower) if direction == 1 else int(upper)
    total, mass, count = 0.0, 0.0, 0
    while count < _MAX_TERMS:
        ks = start + direction * np.arange(count, count + _CHUNK, dtype=float)
        with np.errstate(all="ignore"):
            probs = np.nan_to_num(pmf(ks), nan=0.0)
            values = terms(ks)
        values = np.where(probs > 0, values, 0.0)
        total += float(np.sum(values))
        mass += float(np.sum(probs))
        count += _CHUNK
        if mass > 0 and probs[-1] < 1e-17 * mass and probs[-1] <= probs[0] and count >= _CHUNK:
            return total
    raise DerivationError(f"summation over the infinite support did not converge in {_MAX_TERMS} "
                          "terms (a heavy tail, or an unnormalised mass function?)")

"""Numeric expectations by quadrature (continuous) or summation (discrete).

E_theta[f(X)] = integral of f(x) p(x | theta) dx over the support, computed with scipy; these are
the independent checks every closed form is compared against.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import integrate

from . import numeric
from .errors import DerivationError, QuadratureWarning

if TYPE_CHECKING:
    from .family import Family

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


#: Error estimates of quad within this fraction of the integral (or below QUAD_ABSOLUTE_ERROR)
#: are accepted silently; a larger one gives a QuadratureWarning.
QUAD_RELATIVE_ERROR = 1e-8
QUAD_ABSOLUTE_ERROR = 1e-11


def integrate_1d(integrand: Callable[[float], float], log_density: Callable[[float], float],
                 bounds: Bounds, extra_points: Sequence[float] = ()) -> float:
    """Integral of integrand(x) over bounds, split at the density's mode (and at extra_points,
    e.g. another density's mode or a kink) for robustness."""
    lower, upper = bounds
    cuts = sorted({_centre(log_density, lower, upper), *extra_points})
    edges = [lower, *(c for c in cuts if lower < c < upper), upper]
    total, error = 0.0, 0.0
    with warnings.catch_warnings():
        # scipy warns (roundoff, slow convergence) from deep in quad, printing its own path on a
        # page; what matters is the error it then reports, judged once for the whole integral.
        warnings.simplefilter("ignore", integrate.IntegrationWarning)
        for a, b in zip(edges[:-1], edges[1:], strict=True):
            value, piece_error = integrate.quad(integrand, a, b, limit=400, epsabs=1e-13,
                                                epsrel=1e-11)
            total += value
            error += piece_error
    if not error <= max(QUAD_RELATIVE_ERROR * abs(total), QUAD_ABSOLUTE_ERROR):
        warnings.warn(f"quadrature over [{lower:.6g}, {upper:.6g}] gave {total:.10g} with an "
                      f"estimated error of {error:.3g}: the value may be inaccurate",
                      QuadratureWarning, stacklevel=2)
    return total


def integrate_nd(integrand: Callable[..., float], bounds: Sequence[Bounds]) -> float:
    """Integral over a box (possibly infinite) in several dimensions with scipy's nquad."""
    value, _ = integrate.nquad(integrand, list(bounds), opts={"limit": 200, "epsabs": 1e-9,
                                                              "epsrel": 1e-7})
    return value


#: Mass (relative to the largest term) below which a stretch of the support is negligible.
_NEGLIGIBLE = 1e-25
#: Largest tail, relative to the sum, that the tail estimate may leave uncertain.
_TAIL_TOLERANCE = 1e-10
#: Term counts at which a heavy tail is tried as an integral (if its mass is not yet negligible).
_TAIL_ATTEMPTS = (16 * _CHUNK, 64 * _CHUNK, 256 * _CHUNK)


def _reach(pmf: Callable[[np.ndarray], np.ndarray], start: int, direction: int) -> int:
    """How far from ``start`` the mass reaches: a scan of the pmf on a log-spaced grid out to
    10^15 steps finds far modes that a chunk-by-chunk sum would stop short of."""
    offsets = np.unique(np.round(np.geomspace(1.0, 1e15, 4000)))
    with np.errstate(all="ignore"):
        values = np.nan_to_num(np.asarray(pmf(start + direction * offsets), dtype=float)
                               * np.ones_like(offsets), nan=0.0, posinf=0.0)
    if not np.any(values > 0):
        return 0
    weighted = values * offsets
    alive = np.nonzero(weighted > _NEGLIGIBLE * np.max(weighted))[0]
    return int(offsets[alive[-1]]) if alive.size else 0


def _tail(terms: Callable[[np.ndarray], np.ndarray], first: int, direction: int) -> float:
    """Sum of terms(k) for k = first, first + direction, ... beyond the direct sum, as the
    Euler-Maclaurin (midpoint) integral of the terms from first - 1/2 on; allowed only where the
    terms are monotone and of one sign on a log-spaced grid of the tail (the caller bounds the
    midpoint error by the change of the terms per step). Raises DerivationError otherwise."""
    offsets = np.geomspace(1.0, 1e15, 600)
    with np.errstate(all="ignore"):
        grid = np.asarray(terms(first + direction * (offsets - 1.0)), dtype=float)
    if not np.all(np.isfinite(grid)):
        raise DerivationError("the terms of the sum are not finite on its tail (they must be "
                              "smooth in k to bound it)")
    magnitudes = np.abs(grid)
    if np.any(np.diff(magnitudes) > 1e-12 * magnitudes[:-1]) or np.any(np.diff(np.sign(grid))):
        raise DerivationError(f"could not bound the tail of the sum beyond k = {first}: its "
                              "terms are not monotone there")

    origin = first - direction * 0.5

    def integrand(u: float) -> float:
        # k = origin + direction * (e^u - 1): a power-law tail is smooth and short in u
        with np.errstate(all="ignore"):
            k = origin + direction * np.expm1(u)
            value = float(np.asarray(terms(np.array([k])), dtype=float)[0]) * np.exp(u)
        return value if np.isfinite(value) else 0.0

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", integrate.IntegrationWarning)
        value = sum(integrate.quad(integrand, a, b, limit=400, epsabs=0.0, epsrel=1e-11)[0]
                    for a, b in ((0.0, 10.0), (10.0, 60.0), (60.0, 690.0)))
    if not np.isfinite(value):
        raise DerivationError(f"the tail of the sum beyond k = {first} is not finite")
    return float(value)


def sum_discrete(terms: Callable[[np.ndarray], np.ndarray], pmf: Callable[[np.ndarray], np.ndarray],
                 bounds: Bounds) -> float:
    """Sum of terms(k) over the integers k in bounds. An infinite side is summed directly at
    least as far as its mass reaches (scanned out to 10^15, so a far mode is not missed) and
    until its tail of probability is below 1e-17 of the total; a heavy tail left beyond
    2,000,000 terms is added as an integral (Euler-Maclaurin), or the sum is refused, saying the
    tail could not be bounded."""
    lower, upper = bounds
    if np.isfinite(lower) and np.isfinite(upper) and upper - lower < _MAX_TERMS:
        ks = np.arange(int(lower), int(upper) + 1, dtype=float)
        return float(np.sum(terms(ks)))
    if not np.isfinite(lower) and not np.isfinite(upper):
        return (sum_discrete(terms, pmf, (-np.inf, -1.0)) + sum_discrete(terms, pmf, (0.0, np.inf)))
    direction = 1 if np.isfinite(lower) else -1
    start = int(lower) if direction == 1 else int(upper)
    reach = _reach(pmf, start, direction)
    total, mass, count = 0.0, 0.0, 0
    failure = "the terms were not summed"
    while count < _MAX_TERMS:
        ks = start + direction * np.arange(count, count + _CHUNK, dtype=float)
        with np.errstate(all="ignore"):
            probs = np.nan_to_num(pmf(ks), nan=0.0)
            values = terms(ks)
        values = np.where(probs > 0, values, 0.0)
        total += float(np.sum(values))
        mass += float(np.sum(probs))
        count += _CHUNK
        if (count > reach and mass > 0 and probs[-1] < 1e-17 * mass and probs[-1] <= probs[0]):
            return total
        if count in _TAIL_ATTEMPTS or count >= _MAX_TERMS:
            try:
                return total + _bounded_tail(terms, start + direction * count, direction, total)
            except DerivationError as error:
                failure = str(error)
    raise DerivationError(f"could not sum over the infinite support: after {count} terms, "
                          f"{failure}")


def _bounded_tail(terms: Callable[[np.ndarray], np.ndarray], first: int, direction: int,
                  total: float) -> float:
    """The tail from ``first`` on (see ``_tail``), if its error is below the tail tolerance."""
    tail = _tail(terms, first, direction)
    with np.errstate(all="ignore"):
        ends = np.asarray(terms(np.array([first, first + direction], dtype=float)), dtype=float)
    # midpoint-rule error of a monotone tail: about |f'(first)| / 24, bounded by |f(k) - f(k+1)|
    error = 2.0 * abs(float(ends[0] - ends[1]))
    if not error <= _TAIL_TOLERANCE * max(abs(total + tail), 1e-300):
        raise DerivationError(
            f"the tail could not be bounded: its terms still change by {error:.3g} per step, "
            f"too much to bound the rest to a relative {_TAIL_TOLERANCE:g}")
    return tail


def nonsmooth_points(family: Family, point: tuple[float, ...]) -> list[float]:
    """Points of the support where log p(. | point) is not smooth (quadrature splits there)."""
    if not family._switch_fns:
        return []
    lower, upper = (float(b) for b in family.bounds[0])
    grid = numeric.support_grid(lower, upper, False, size=2001)
    return numeric.zeros_on_grid(
        [lambda t, g=g: g(t, *point) for g in family._switch_fns], grid)

def expectation(family: Family, fn: Callable, point: tuple[float, ...],
               other: tuple[float, ...] | None = None) -> float:
    """E_theta[fn(x...)] by quadrature or summation; fn takes the coordinates of x.

    For a 1-D integral the range is split at the mode of p_theta (and of p_other if given)
    and at every kink or branch switch of either density."""
    def density(*coords: Any) -> Any:
        with np.errstate(all="ignore"):
            return np.exp(family._log_density_fn(*coords, *point))

    bounds = [(float(lo), float(hi)) for lo, hi in family.bounds]

    def weighted(*coords: Any) -> Any:
        if all(np.ndim(c) == 0 for c in coords):  # scalar calls from quad: the fast path
            scalars = tuple(np.float64(c) for c in coords)
            p_scalar = float(density(*scalars))
            if not p_scalar > 0:
                return 0.0
            with np.errstate(all="ignore"):
                return float(np.asarray(fn(*scalars), dtype=float)) * p_scalar
        coords = tuple(np.asarray(c, dtype=float) for c in coords)
        p = np.asarray(density(*coords), dtype=float)
        shape = np.broadcast_shapes(p.shape, *(c.shape for c in coords))
        p = np.broadcast_to(p, shape)
        value = np.zeros(shape)
        alive = p > 0  # fn is evaluated only where the density is positive
        if alive.any():
            inside = [np.broadcast_to(c, shape)[alive] for c in coords]
            with np.errstate(all="ignore"):
                value[alive] = np.broadcast_to(np.asarray(fn(*inside), dtype=float),
                                               p[alive].shape) * p[alive]
        return value if np.ndim(value) else float(value)

    if family.discrete:
        if len(bounds) != 1:
            raise DerivationError(f"{family.name}: sums over vector discrete variables are "
                                  "not supported")
        return sum_discrete(weighted, density, bounds[0])
    if len(bounds) == 1:
        extra = list(nonsmooth_points(family, point))
        if other is not None:
            extra.append(_centre(lambda t: family._log_density_fn(t, *other),
                                            *bounds[0]))
            extra += nonsmooth_points(family, other)
        return integrate_1d(
            weighted, lambda t: family._log_density_fn(t, *point), bounds[0], tuple(extra))
    return integrate_nd(weighted, bounds)

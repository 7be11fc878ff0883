"""The KL divergence near its minimum: Taylor terms, values along a line, third-order terms.

Chapter 3 of the book checks that KL(p_theta || p_theta') has value 0, gradient 0 and Hessian
F(theta) at theta' = theta, how far the quadratic 1/2 d^T F d holds, and how the two directions
of the divergence part at third order. The helpers here compute those quantities for any
:class:`~fisherbook.Family`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import sympy as sp

from .errors import DomainError
from .family import MODULES, Family, Theta

#: The symbol of the step length in expansions along a direction.
DELTA = sp.Symbol("delta", real=True)

# kl_series results by (family, direction, order, reverse): the chapter asks for the same ones often
_SERIES_CACHE: dict[tuple, list[sp.Expr]] = {}


@dataclass(frozen=True)
class KLTaylorTerms:
    """KL(p_theta || p_theta') at theta' = theta: value, gradient and Hessian in theta' (sympy)."""

    value: sp.Expr
    gradient: sp.Matrix
    hessian: sp.Matrix


def _primed_symbols(family: Family) -> list[sp.Symbol]:
    """Fresh symbols theta'_i with the assumptions of theta_i (so that logs still simplify)."""
    return [sp.Dummy(f"{p.name}'", **p.assumptions0) for p in family.params]


def kl_taylor_terms(family: Family) -> KLTaylorTerms:
    """Value, gradient and Hessian in theta' of KL(p_theta || p_theta') at theta' = theta, simplified."""
    primed = _primed_symbols(family)
    kl = family.kl(primed)
    back = dict(zip(primed, family.params, strict=True))
    value = sp.simplify(kl.xreplace(back))
    gradient = sp.Matrix([sp.diff(kl, q) for q in primed]).xreplace(back).applyfunc(sp.simplify)
    hessian = sp.hessian(kl, primed).xreplace(back).applyfunc(sp.simplify)
    return KLTaylorTerms(value, gradient, hessian)


def _direction(family: Family, direction: Sequence[float] | None) -> np.ndarray:
    k = len(family.params)
    if direction is None:
        if k != 1:
            raise DomainError(f"{family.name}: give a direction (one entry per parameter "
                              f"{[p.name for p in family.params]}) for a {k}-parameter family")
        return np.ones(1)
    vector = np.asarray(direction, dtype=float).ravel()
    if vector.shape != (k,):
        raise DomainError(f"{family.name}: the direction needs {k} entries (one per parameter "
                          f"{[p.name for p in family.params]}), got {vector.size}")
    if not np.all(np.isfinite(vector)) or not np.any(vector):
        raise DomainError(f"{family.name}: the direction must be finite and non-zero, "
                          f"got {vector.tolist()}")
    return vector


def _symbolic_direction(family: Family, direction: Sequence[float | sp.Expr] | None
                        ) -> list[sp.Expr]:
    if direction is None:
        _direction(family, None)
        return [sp.Integer(1)]
    entries = [sp.nsimplify(v) for v in direction]
    if len(entries) != len(family.params):
        raise DomainError(f"{family.name}: the direction needs {len(family.params)} entries "
                          f"(one per parameter), got {len(entries)}")
    if all(v == 0 for v in entries):
        raise DomainError(f"{family.name}: the direction must be non-zero")
    return entries


def kl_line_expr(family: Family, direction: Sequence[float | sp.Expr] | None = None, *,
                 reverse: bool = False) -> sp.Expr:
    """KL(p_theta || p_{theta + delta v}) as a sympy expression in theta and ``DELTA``
    (``reverse``: KL(p_{theta + delta v} || p_theta))."""
    v = _symbolic_direction(family, direction)
    primed = _primed_symbols(family)
    kl = family.kl(primed)
    moved = [p + DELTA * vi for p, vi in zip(family.params, v, strict=True)]
    if reverse:
        replacement = {**dict(zip(family.params, moved, strict=True)),
                       **dict(zip(primed, family.params, strict=True))}
    else:
        replacement = dict(zip(primed, moved, strict=True))
    return kl.xreplace(replacement)


def kl_series(family: Family, direction: Sequence[float | sp.Expr] | None = None,
              order: int = 3, *, reverse: bool = False) -> list[sp.Expr]:
    """Coefficients c_0..c_order of KL(p_theta || p_{theta + delta v}) = sum_m c_m delta^m + ...

    Each coefficient is a simplified sympy expression in theta (``reverse`` swaps the two
    distributions)."""
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or order < 0:
        raise DomainError(f"order must be a non-negative integer, got {order!r}")
    key = (family, None if direction is None else tuple(direction), int(order), bool(reverse))
    if key not in _SERIES_CACHE:
        # c_m = (d/d delta)^m KL at delta = 0, divided by m! (faster than sympy's series)
        derivative = kl_line_expr(family, direction, reverse=reverse)
        coefficients = []
        for m in range(int(order) + 1):
            at_zero = derivative.xreplace({DELTA: sp.Integer(0)})
            coefficients.append(sp.factor(sp.simplify(at_zero)) / sp.factorial(m))
            derivative = sp.diff(derivative, DELTA)
        _SERIES_CACHE[key] = coefficients
    return list(_SERIES_CACHE[key])


def _points_on_line(family: Family, theta: Theta, vector: np.ndarray,
                    deltas: np.ndarray) -> tuple[tuple[float, ...], np.ndarray]:
    start = family.theta_tuple(theta)
    deltas = np.atleast_1d(np.asarray(deltas, dtype=float))
    if deltas.ndim != 1 or not np.all(np.isfinite(deltas)):
        raise DomainError(f"{family.name}: deltas must be a 1-d array of finite numbers")
    for delta in (deltas.min(), deltas.max()):
        family.theta_tuple(np.asarray(start) + delta * vector)  # raises DomainError, naming it
    return start, deltas


def kl_along_line(family: Family, theta: Theta, deltas: np.ndarray,
                  direction: Sequence[float] | None = None, *,
                  reverse: bool = False) -> np.ndarray:
    """KL(p_theta || p_{theta + delta v}) for each delta (closed form; ``reverse`` swaps them)."""
    vector = _direction(family, direction)
    start, deltas = _points_on_line(family, theta, vector, deltas)
    function = sp.lambdify([*family.params, DELTA],
                           kl_line_expr(family, vector.tolist(), reverse=reverse), MODULES)
    values = np.asarray(function(*start, deltas), dtype=float)
    return np.broadcast_to(values, deltas.shape).copy()


def kl_quadratic(family: Family, theta: Theta, deltas: np.ndarray,
                 direction: Sequence[float] | None = None) -> np.ndarray:
    """The second-order approximation 1/2 delta^2 v^T F(theta) v for each delta."""
    vector = _direction(family, direction)
    start, deltas = _points_on_line(family, theta, vector, deltas)
    curvature = float(vector @ family.fisher_numeric(start) @ vector)
    return 0.5 * curvature * deltas**2


def score_cubed_along(family: Family, theta: Theta,
                      direction: Sequence[float] | None = None) -> float:
    """E_theta[(s(theta)^T v)^3] by quadrature: the skewness tensor T(v, v, v) of the score."""
    vector = _direction(family, direction)
    projected = sum(sp.nsimplify(v) * s for v, s in zip(vector, family.score(), strict=True))
    return family.expect(projected**3, theta)


def expected_loss_hessian(family: Family, theta: Theta, theta_data: Theta) -> np.ndarray:
    """-E_{theta_data}[Hessian of log p(X | theta)] by quadrature: the curvature at theta of the
    expected loss when the data come from theta_data (equal to F(theta) when theta_data = theta)."""
    point = family.theta_tuple(theta)
    at_theta = dict(zip(family.params, point, strict=True))
    hessian = family.hessian().xreplace({p: sp.Float(v) for p, v in at_theta.items()})
    k = len(family.params)
    out = np.empty((k, k))
    for i in range(k):
        for j in range(i, k):
            out[i, j] = out[j, i] = -family.expect(hessian[i, j], theta_data)
    return out


def loglog_slope(deltas: np.ndarray, values: np.ndarray) -> float:
    """Least-squares slope of log(abs(values)) against log(abs(deltas)): p in values ~ delta^p."""
    deltas = np.abs(np.asarray(deltas, dtype=float)).ravel()
    values = np.abs(np.asarray(values, dtype=float)).ravel()
    if deltas.shape != values.shape or deltas.size < 2:
        raise ValueError(f"need two arrays of equal length >= 2, got {deltas.size} deltas and "
                         f"{values.size} values")
    if np.any(deltas == 0) or np.any(values == 0) or not np.all(np.isfinite(values)):
        raise ValueError("deltas and values must be non-zero and finite for a log-log slope")
    return float(np.polyfit(np.log(deltas), np.log(values), 1)[0])


def _second_differences(family: Family, point: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """Central second differences of theta' -> KL(p_theta || p_theta') at theta' = theta."""
    k = point.size

    def divergence(offset: np.ndarray) -> float:
        return family.kl_by_quadrature(tuple(point), tuple(point + offset))

    hessian = np.empty((k, k))
    for i in range(k):
        e_i = np.eye(k)[i] * steps[i]
        # the value at offset 0 is exactly 0, so the second difference has two terms
        hessian[i, i] = (divergence(e_i) + divergence(-e_i)) / steps[i] ** 2
        for j in range(i):
            e_j = np.eye(k)[j] * steps[j]
            mixed = (divergence(e_i + e_j) - divergence(e_i - e_j) - divergence(-e_i + e_j)
                     + divergence(-e_i - e_j))
            hessian[i, j] = hessian[j, i] = mixed / (4 * steps[i] * steps[j])
    return hessian


def kl_hessian_by_differences(family: Family, theta: Theta, *, step: float = 1e-2
                              ) -> np.ndarray:
    """Hessian in theta' of KL(p_theta || p_theta') at theta' = theta from the KL computed by
    quadrature (no closed form used): central second differences at steps h, h/2, h/4,
    extrapolated to h = 0 through a + b h + c h^2 (so a KL that is only twice differentiable,
    like Laplace's with its abs(d)^3 term, converges as well as a smooth one).

    The step h in theta_i is ``step`` times the smaller of abs(theta_i) (1 if theta_i = 0) and the
    distance from theta_i to the edge of its domain, so it stays relative near a boundary."""
    if not 0 < step < 0.5:
        raise DomainError(f"the relative step must lie in (0, 0.5), got {step!r}")
    point = np.array(family.theta_tuple(theta))
    scales = np.where(point != 0, np.abs(point), 1.0)
    for i, p in enumerate(family.params):
        lower, upper = (float(bound) for bound in family.domains[p])
        scales[i] = min(scales[i], point[i] - lower, upper - point[i])
    fractions = np.array([1.0, 0.5, 0.25])
    estimates = np.stack([_second_differences(family, point, step * scales * f)
                          for f in fractions])
    weights = np.linalg.solve(np.vander(fractions, 3, increasing=True).T, np.array([1.0, 0, 0]))
    return np.tensordot(weights, estimates, axes=1)

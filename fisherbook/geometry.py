"""The Fisher information as a Riemannian metric: lengths, geodesics, distances, Jeffreys prior.

The metric is a family's closed-form Fisher ``F(theta)``; the length of a path is
``L = int sqrt(theta'(t)^T F(theta(t)) theta'(t)) dt`` and the Fisher–Rao distance is the
length of the shortest path. Geodesics solve
``theta''^k + Gamma^k_ij theta'^i theta'^j = 0`` (Christoffel symbols from sympy) as a
boundary-value problem (``scipy.integrate.solve_bvp``), in unbounded coordinates (log of a
positive parameter, logit of one in (0, 1)) so that the solver cannot leave the domain. A
distance is reported in closed form when the metric is one the module recognises (a constant
metric; one parameter with an elementary antiderivative of ``sqrt F``; a scaled hyperbolic
half-plane; a scaled simplex, the sphere of square roots), and numerically otherwise;
:class:`Distance` says which.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import sympy as sp
from scipy import integrate

from .errors import FisherbookError, SingularFisherError
from .family import Family, Theta

#: Modules for lambdify, scipy.special first (polygamma, loggamma).
MODULES = ["scipy", "numpy"]
#: Largest relative spread of the speed along a solved geodesic (a geodesic has constant speed).
SPEED_RTOL = 1e-6
#: Residual tolerance passed to ``solve_bvp``.
BVP_TOL = 1e-8
#: Points at which a solved geodesic is checked (domain, metric, speed, length).
CHECK_POINTS = 401

CLOSED_FORM = "closed form"
NUMERIC = "numeric"


class GeodesicError(FisherbookError):
    """The geodesic solver did not converge, or its answer failed a check (never a wrong length)."""


@dataclass(frozen=True)
class Geodesic:
    """A solved geodesic t -> theta(t), t in [0, 1], between two parameter points."""

    start: tuple[float, ...]
    end: tuple[float, ...]
    length: float
    speed_spread: float
    nodes: int
    solution: Any
    to_theta: Callable[[np.ndarray], np.ndarray]

    def __call__(self, ts: np.ndarray | float) -> np.ndarray:
        """Points theta(t) of the geodesic, shape (len(ts), k)."""
        working = self.solution.sol(np.atleast_1d(ts))[: len(self.start)]
        return np.atleast_2d(self.to_theta(working).T)


@dataclass(frozen=True)
class Distance:
    """A Fisher–Rao distance and how it was obtained: ``method`` is "closed form" or "numeric"."""

    value: float
    method: str
    formula: str
    geodesic: Geodesic | None = None

    def __float__(self) -> float:
        return self.value


def _broadcast(values: Any, shape: tuple[int, ...]) -> np.ndarray:
    """A nested list from lambdify (entries scalars or arrays) as one float array."""
    return np.array([np.broadcast_to(np.asarray(v, dtype=float), shape) for v in values])


def _christoffel_of(g: sp.Matrix, params: Sequence[sp.Symbol], cancel: bool
                    ) -> list[list[list[sp.Expr]]]:
    """Gamma^k_ij = 1/2 g^kl (d_i g_lj + d_j g_li - d_l g_ij) of a metric g, indexed [k][i][j]."""
    n = len(params)
    g_inv = g.inv()
    dg = [g.diff(q) for q in params]
    gamma = [[[sp.Integer(0)] * n for _ in range(n)] for _ in range(n)]
    for k in range(n):
        for i in range(n):
            for j in range(i, n):
                term = sum(g_inv[k, m] * (dg[i][m, j] + dg[j][m, i] - dg[m][i, j])
                           for m in range(n)) / 2
                gamma[k][i][j] = gamma[k][j][i] = sp.cancel(term) if cancel else term
    return gamma


def _unbounded_map(u: sp.Symbol, lower: sp.Expr, upper: sp.Expr) -> sp.Expr:
    """theta(u) taking the real line onto the open interval (lower, upper)."""
    if lower.is_finite and upper.is_finite:
        return lower + (upper - lower) / (1 + sp.exp(-u))
    if lower.is_finite:
        return lower + sp.exp(u)
    if upper.is_finite:
        return upper - sp.exp(u)
    return u


class FisherRao:
    """The Fisher–Rao geometry of a family: metric, Christoffel symbols, curvature, geodesics."""

    def __init__(self, family: Family) -> None:
        self.family = family
        self.params = family.params
        self.k = len(family.params)

    # ------------------------------------------------------------------ sympy
    @cached_property
    def metric(self) -> sp.Matrix:
        """g_ij(theta) = F_ij(theta), the family's closed-form Fisher information."""
        return self.family.fisher()

    @cached_property
    def christoffel(self) -> list[list[list[sp.Expr]]]:
        """Gamma^k_ij = 1/2 g^kl (d_i g_lj + d_j g_li - d_l g_ij), indexed [k][i][j]."""
        return _christoffel_of(self.metric, self.params, cancel=True)

    @cached_property
    def _working(self) -> tuple[list[sp.Symbol], list[sp.Expr]]:  # theta_k = phi_k(u_k)
        """Unbounded coordinates u (log, logit or identity) in which the geodesic is solved."""
        us = [sp.Symbol(f"u{i}", real=True) for i in range(self.k)]
        thetas = [_unbounded_map(u, *self.family.domains[p])
                  for u, p in zip(us, self.params, strict=True)]
        return us, thetas

    @cached_property
    def gaussian_curvature(self) -> sp.Expr:
        """K = R_1212 / det g of a two-parameter family (Riemann tensor from the Christoffels)."""
        if self.k != 2:
            raise FisherbookError(f"{self.family.name}: the Gaussian curvature is defined here for "
                                  f"two parameters, the family has {self.k}")
        gamma, p, g = self.christoffel, self.params, self.metric

        def riemann(a: int, b: int, c: int, d: int) -> sp.Expr:  # R^a_bcd
            value = sp.diff(gamma[a][d][b], p[c]) - sp.diff(gamma[a][c][b], p[d])
            value += sum(gamma[a][c][e] * gamma[e][d][b] - gamma[a][d][e] * gamma[e][c][b]
                         for e in range(2))
            return value

        lowered = sum(g[0, a] * riemann(a, 1, 0, 1) for a in range(2))  # R_1212
        return sp.factor(sp.cancel(lowered / g.det()))

    @cached_property
    def jeffreys(self) -> sp.Expr:
        """The (unnormalised) Jeffreys prior sqrt(det F(theta))."""
        return sp.simplify(sp.sqrt(sp.factor(self.metric.det())))

    # ------------------------------------------------------------------ numpy
    @cached_property
    def _metric_fn(self) -> Callable:
        return sp.lambdify(self.params, list(self.metric), MODULES)

    @cached_property
    def _christoffel_fn(self) -> Callable:
        """The Christoffel symbols in theta, flattened, as one numpy function."""
        flat = [self.christoffel[k][i][j] for k in range(self.k) for i in range(self.k)
                for j in range(self.k)]
        return sp.lambdify(self.params, flat, MODULES)

    @cached_property
    def _second_derivative_fn(self) -> Callable:
        us, thetas = self._working
        return sp.lambdify(us, [sp.diff(t, u, 2) for t, u in zip(thetas, us, strict=True)],
                           MODULES)

    @cached_property
    def _to_theta_fn(self) -> Callable:
        us, thetas = self._working
        return sp.lambdify(us, thetas, MODULES)

    @cached_property
    def _jacobian_fn(self) -> Callable:
        us, thetas = self._working
        return sp.lambdify(us, [sp.diff(t, u) for t, u in zip(thetas, us, strict=True)],
                           MODULES)

    def _to_theta(self, u: np.ndarray) -> np.ndarray:
        return _broadcast(self._to_theta_fn(*u), u.shape[1:])

    def _to_working(self, theta: np.ndarray) -> np.ndarray:
        out = []
        for value, p in zip(theta, self.params, strict=True):
            lower, upper = (float(end) for end in self.family.domains[p])
            if np.isfinite(lower) and np.isfinite(upper):
                share = (value - lower) / (upper - lower)
                out.append(np.log(share) - np.log1p(-share))
            elif np.isfinite(lower):
                out.append(np.log(value - lower))
            elif np.isfinite(upper):
                out.append(np.log(upper - value))
            else:
                out.append(value)
        return np.array(out, dtype=float)

    def metric_at(self, theta: Theta) -> np.ndarray:
        """F(theta) as a float array, checked: inside the domain, finite, positive definite."""
        point = self.family.theta_tuple(theta)
        value = _broadcast(self._metric_fn(*point), ()).reshape(self.k, self.k)
        self._check_metric(value, point)
        return value

    def _check_metric(self, value: np.ndarray, point: Sequence[float]) -> None:
        where = ", ".join(f"{p}={v:g}" for p, v in zip(self.params, point, strict=True))
        if not np.all(np.isfinite(value)):
            raise SingularFisherError(f"{self.family.name}: the Fisher metric is not finite at "
                                      f"{where}")
        eigenvalues = np.linalg.eigvalsh((value + value.T) / 2)
        if eigenvalues[0] <= 1e-12 * max(abs(eigenvalues[-1]), 1e-300):
            raise SingularFisherError(f"{self.family.name}: the Fisher metric is singular at "
                                      f"{where} (eigenvalues {eigenvalues}); lengths and "
                                      "geodesics are not defined there")

    def _metric_on(self, points: np.ndarray) -> np.ndarray:
        """F at each column of ``points`` (k x m), shape (m, k, k)."""
        m = points.shape[1]
        flat = _broadcast(self._metric_fn(*points), (m,))
        return np.transpose(flat.reshape(self.k, self.k, m), (2, 0, 1))

    def _acceleration(self, u: np.ndarray, u_velocity: np.ndarray) -> np.ndarray:
        """u'' of the geodesic equation in the working coordinates, theta_k = phi_k(u_k):
        u''_k = -(phi''_k u'_k^2 + Gamma^k_ij(theta) phi'_i phi'_j u'_i u'_j) / phi'_k."""
        k, m = self.k, u.shape[1]
        theta = self._to_theta(u)
        first = _broadcast(self._jacobian_fn(*u), (m,))
        second = _broadcast(self._second_derivative_fn(*u), (m,))
        gamma = _broadcast(self._christoffel_fn(*theta), (m,)).reshape(k, k, k, m)
        velocity = first * u_velocity
        curvature_term = np.einsum("kijm,im,jm->km", gamma, velocity, velocity)
        return -(second * u_velocity**2 + curvature_term) / first

    def path_length(self, path: np.ndarray, ts: np.ndarray | None = None,
                    velocities: np.ndarray | None = None) -> float:
        """Length int sqrt(theta'^T F theta') dt of a path sampled at ``ts`` (rows are points);
        the velocities are finite differences unless given."""
        path = np.asarray(path, dtype=float)
        ts = np.linspace(0.0, 1.0, len(path)) if ts is None else np.asarray(ts, dtype=float)
        for point in path:
            self.family.theta_tuple(point)
        if velocities is None:
            velocity = np.gradient(path, ts, axis=0, edge_order=2)
        else:
            velocity = np.asarray(velocities, dtype=float)
        metric = self._metric_on(path.T)
        speed = np.sqrt(np.einsum("mi,mij,mj->m", velocity, metric, velocity))
        return float(integrate.simpson(speed, x=ts))

    # ---------------------------------------------------------------- geodesics
    def geodesic(self, start: Theta, end: Theta, *, tol: float = BVP_TOL,
                 max_nodes: int = 20_000, initial_nodes: int = 21) -> Geodesic:
        """The geodesic from ``start`` to ``end``, solved as a boundary-value problem and checked.

        Raises GeodesicError if the solver fails, the path leaves the domain, the speed is not
        constant to SPEED_RTOL, or the solution is longer than the straight line between the
        points (then it is not the shortest path)."""
        a = np.array(self.family.theta_tuple(start))
        b = np.array(self.family.theta_tuple(end))
        self.metric_at(a)
        self.metric_at(b)
        k = self.k
        ua, ub = self._to_working(a), self._to_working(b)
        ts = np.linspace(0.0, 1.0, initial_nodes)
        guess = np.vstack([ua[:, None] + (ub - ua)[:, None] * ts,
                           np.repeat((ub - ua)[:, None], len(ts), 1)])

        def rhs(_t: np.ndarray, y: np.ndarray) -> np.ndarray:
            with np.errstate(all="ignore"):
                return np.vstack([y[k:], self._acceleration(y[:k], y[k:])])

        def boundary(ya: np.ndarray, yb: np.ndarray) -> np.ndarray:
            return np.concatenate([ya[:k] - ua, yb[:k] - ub])

        label = f"{self.family.name}: geodesic from {tuple(a)} to {tuple(b)}"
        if np.allclose(a, b, rtol=0, atol=0):
            raise GeodesicError(f"{label}: the two points are equal; the distance is 0 and there "
                                "is no geodesic to solve for")
        solution = integrate.solve_bvp(rhs, boundary, ts, guess, tol=tol, max_nodes=max_nodes)
        if solution.status != 0:
            raise GeodesicError(f"{label}: the boundary-value solver did not converge "
                                f"({solution.message}); no length is returned")
        grid = np.linspace(0.0, 1.0, CHECK_POINTS)
        y = solution.sol(grid)
        theta = self._to_theta(y[:k])
        velocity = _broadcast(self._jacobian_fn(*y[:k]), grid.shape) * y[k:]
        self._check_inside(theta, label)
        metric = self._metric_on(theta)
        for value, point in zip(metric, theta.T, strict=True):
            self._check_metric(value, point)
        speed2 = np.einsum("im,mij,jm->m", velocity, metric, velocity)
        speed = np.sqrt(np.maximum(speed2, 0.0))
        spread = float((speed.max() - speed.min()) / speed.mean())
        if not np.isfinite(spread) or spread > SPEED_RTOL:
            raise GeodesicError(f"{label}: the solution's speed varies by a relative {spread:.1e} "
                                f"(a geodesic has constant speed; tolerance {SPEED_RTOL:g}); "
                                "no length is returned")
        length = float(integrate.simpson(speed, x=grid))
        straight = self.path_length(a + (b - a) * grid[:, None], grid)
        if length > straight * (1 + 1e-9):
            raise GeodesicError(f"{label}: the solved geodesic ({length:.6g}) is longer than the "
                                f"straight line ({straight:.6g}), so it is not the shortest path")
        return Geodesic(tuple(a), tuple(b), length, spread, solution.x.size, solution,
                        self._to_theta)

    def _check_inside(self, theta: np.ndarray, label: str) -> None:
        for row, p in zip(theta, self.params, strict=True):
            lower, upper = (float(end) for end in self.family.domains[p])
            if not (np.all(np.isfinite(row)) and np.all(row > lower) and np.all(row < upper)):
                raise GeodesicError(f"{label}: the solution leaves the domain of {p} "
                                    f"({lower:g}, {upper:g}); no length is returned")

    # ------------------------------------------------------------- closed forms
    @cached_property
    def closed_form(self) -> tuple[Callable[[np.ndarray, np.ndarray], float], str] | None:
        """A distance function d(a, b) and its formula when the metric is a recognised one."""
        for recogniser in (self._constant, self._simplex, self._half_plane, self._one_parameter):
            found = recogniser()
            if found is not None:
                return found
        return None

    def _constant(self) -> tuple[Callable, str] | None:
        """A constant metric (flat): d = sqrt((b - a)^T F (b - a))."""
        if self.metric.free_symbols:
            return None
        fixed = np.array(self.metric, dtype=float)

        def distance(a: np.ndarray, b: np.ndarray) -> float:
            return float(np.sqrt((b - a) @ fixed @ (b - a)))

        return distance, "sqrt((b - a)^T F (b - a)) (constant metric)"

    def _simplex(self) -> tuple[Callable, str] | None:
        """c (sum_i dp_i^2 / p_i) on probabilities p_1..p_m, p_0 = 1 - sum: a sphere of radius
        2 sqrt(c) through sqrt(p), so d = 2 sqrt(c) arccos(sum_i sqrt(p_i q_i))."""
        p = self.params
        if any(tuple(self.family.domains[q]) != (0, 1) for q in p):
            return None
        rest = 1 - sum(p)
        template = sp.Matrix(self.k, self.k, lambda i, j: (1 / p[i] if i == j else 0) + 1 / rest)
        ratio = sp.simplify(self.metric[0, 0] / template[0, 0])
        if ratio.free_symbols or not ratio.is_positive:
            return None
        if sp.simplify(self.metric - ratio * template) != sp.zeros(self.k, self.k):
            return None
        c = float(ratio)

        def distance(a: np.ndarray, b: np.ndarray) -> float:
            overlap = np.sum(np.sqrt(a * b)) + np.sqrt((1 - a.sum()) * (1 - b.sum()))
            return float(2 * np.sqrt(c) * np.arccos(np.clip(overlap, -1.0, 1.0)))

        return distance, f"2 sqrt({sp.sstr(ratio)}) arccos(sum_i sqrt(p_i q_i)) (sphere)"

    def _half_plane(self) -> tuple[Callable, str] | None:
        """(alpha dx^2 + beta dy^2) / y^2 with constants alpha, beta: a hyperbolic half-plane,
        d = sqrt(beta) arccosh(1 + (alpha/beta dx^2 + dy^2) / (2 y1 y2))."""
        if self.k != 2 or self.metric[0, 1] != 0:
            return None
        for ix, iy in ((0, 1), (1, 0)):
            y = self.params[iy]
            if tuple(self.family.domains[y]) != (0, sp.oo):
                continue
            alpha = sp.simplify(self.metric[ix, ix] * y**2)
            beta = sp.simplify(self.metric[iy, iy] * y**2)
            if alpha.free_symbols or beta.free_symbols:
                continue
            if not (alpha.is_positive and beta.is_positive):
                continue
            ratio, scale = float(alpha / beta), float(sp.sqrt(beta))

            def distance(a: np.ndarray, b: np.ndarray, ix: int = ix, iy: int = iy,
                         ratio: float = ratio, scale: float = scale) -> float:
                gap = ratio * (a[ix] - b[ix]) ** 2 + (a[iy] - b[iy]) ** 2
                return float(scale * np.arccosh(1 + gap / (2 * a[iy] * b[iy])))

            formula = (f"sqrt({sp.sstr(beta)}) arccosh(1 + ({sp.sstr(alpha / beta)} "
                       f"d{self.params[ix]}^2 + d{y}^2) / (2 {y}1 {y}2)) (half-plane)")
            return distance, formula
        return None

    def _one_parameter(self) -> tuple[Callable, str] | None:
        """One parameter: d = |Phi(b) - Phi(a)| with Phi an antiderivative of sqrt F (checked)."""
        if self.k != 1:
            return None
        p = self.params[0]
        speed = sp.simplify(sp.sqrt(self.metric[0, 0]))
        antiderivative = sp.integrate(speed, p)
        if antiderivative.has(sp.Integral):
            return None
        function = sp.lambdify(p, antiderivative, MODULES)

        def distance(a: np.ndarray, b: np.ndarray) -> float:
            with np.errstate(all="ignore"):
                gap = complex(function(complex(b[0]))) - complex(function(complex(a[0])))
            if not abs(gap.imag) <= 1e-9 * max(1.0, abs(gap.real)):
                raise GeodesicError(f"{self.family.name}: the antiderivative {antiderivative} "
                                    "gave a complex length")
            return float(abs(gap.real))

        points = [np.array(q, dtype=float) for q in self.family.test_points]
        for a, b in ((points[0], points[-1]),):
            by_quadrature = self._one_parameter_quadrature(a, b)
            try:
                closed = distance(a, b)
            except GeodesicError:
                return None
            if not np.isclose(closed, by_quadrature, rtol=1e-8, atol=0):
                return None
        return distance, f"|Phi({p}2) - Phi({p}1)|, Phi = {sp.sstr(antiderivative)}"

    def _one_parameter_quadrature(self, a: np.ndarray, b: np.ndarray) -> float:
        function = sp.lambdify(self.params, sp.sqrt(self.metric[0, 0]), MODULES)
        lower, upper = sorted((float(a[0]), float(b[0])))
        value, _error = integrate.quad(lambda t: float(function(t)), lower, upper,
                                       epsabs=0, epsrel=1e-11, limit=200)
        return float(value)

    # ---------------------------------------------------------------- distances
    def distance(self, start: Theta, end: Theta, *, method: str = "auto",
                 **solver: Any) -> Distance:
        """The Fisher–Rao distance; ``method`` "auto" (closed form if known), "closed form" or
        "numeric" (the geodesic solver; for one parameter the integral of sqrt F)."""
        if method not in ("auto", CLOSED_FORM, NUMERIC):
            raise FisherbookError(f"method must be 'auto', '{CLOSED_FORM}' or '{NUMERIC}', got "
                                  f"{method!r}")
        a = np.array(self.family.theta_tuple(start))
        b = np.array(self.family.theta_tuple(end))
        self.metric_at(a)
        self.metric_at(b)
        if method in ("auto", CLOSED_FORM) and self.closed_form is not None:
            function, formula = self.closed_form
            return Distance(function(a, b), CLOSED_FORM, formula)
        if method == CLOSED_FORM:
            raise FisherbookError(f"{self.family.name}: no closed-form distance is known for "
                                  f"the metric {self.metric}; use method='numeric'")
        if np.array_equal(a, b):
            return Distance(0.0, NUMERIC, "equal points")
        if self.k == 1:
            return Distance(self._one_parameter_quadrature(a, b), NUMERIC,
                            "integral of sqrt F (quadrature)")
        geodesic = self.geodesic(a, b, **solver)
        return Distance(geodesic.length, NUMERIC, "geodesic boundary-value problem (solve_bvp)",
                        geodesic)


# Geometries shared by every Family with the same definition (the second call is instant).
_GEOMETRY_CACHE: dict[tuple, FisherRao] = {}


def _family_key(family: Family) -> tuple:
    domains = tuple((p, *family.domains[p]) for p in family.params)
    return (sp.srepr(family.log_density), family.xs, family.params, tuple(family.bounds),
            family.discrete, domains)


def fisher_rao(family: Family) -> FisherRao:
    """The (cached) Fisher–Rao geometry of ``family``."""
    key = _family_key(family)
    if key not in _GEOMETRY_CACHE:
        _GEOMETRY_CACHE[key] = FisherRao(family)
    return _GEOMETRY_CACHE[key]


def christoffel_symbols(family: Family) -> list[list[list[sp.Expr]]]:
    """Gamma^k_ij of the Fisher metric, indexed [k][i][j]."""
    return fisher_rao(family).christoffel


def gaussian_curvature(family: Family) -> sp.Expr:
    """K(theta) of a two-parameter family; the scalar curvature is 2K."""
    return fisher_rao(family).gaussian_curvature


def geodesic(family: Family, start: Theta, end: Theta, **solver: Any) -> Geodesic:
    """The checked numeric geodesic from ``start`` to ``end`` (see :meth:`FisherRao.geodesic`)."""
    return fisher_rao(family).geodesic(start, end, **solver)


def distance(family: Family, start: Theta, end: Theta, *, method: str = "auto",
             **solver: Any) -> Distance:
    """d(start, end), the Fisher–Rao distance, saying whether it is a closed form or numeric."""
    return fisher_rao(family).distance(start, end, method=method, **solver)


def path_length(family: Family, path: np.ndarray, ts: np.ndarray | None = None,
                velocities: np.ndarray | None = None) -> float:
    """Fisher length int sqrt(theta'^T F theta') dt of a sampled path (rows are points)."""
    return fisher_rao(family).path_length(path, ts, velocities)


def jeffreys_prior(family: Family) -> sp.Expr:
    """sqrt(det F(theta)), the Jeffreys prior up to normalisation."""
    return fisher_rao(family).jeffreys


def family_volume(family: Family) -> sp.Expr:
    """int sqrt(det F(theta)) dtheta over the box of parameter domains (sympy; oo if infinite).

    The box is the product of the declared domains, so a family whose parameters are further
    constrained (the categorical probabilities sum to at most one) is not covered."""
    density = jeffreys_prior(family)
    for p in family.params:
        lower, upper = family.domains[p]
        density = sp.simplify(sp.integrate(density, (p, lower, upper)))
        if density == sp.oo:  # the integrand is positive: the volume is infinite
            return sp.oo
    return density

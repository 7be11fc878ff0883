"""Location-scale standardisation: F(theta) from integrals of one standard density.

If, in y = x or y = log x, the density is f((y - m(theta)) / s(theta)) / s(theta) with f free of
theta, then with z ~ f and psi = -(log f)', the scores are psi / s and (z psi - 1) / s, so::

    F_(m, s) = (1 / s^2) [[E psi^2,           E psi (z psi - 1)],
                          [E psi (z psi - 1), E (z psi - 1)^2  ]]

and ``F(theta) = J^T F_(m, s) J`` with J = d(m, s) / d theta (a change of variable y = g(x) free of
theta leaves the Fisher information unchanged). The three integrals are numbers, found once:
terms w^a log(w)^b exp(-r w) in closed form with Gamma derivatives (after w = e^z or e^-z), the
rest by sympy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import sympy as sp

if TYPE_CHECKING:
    from .family import Family

#: Relative agreement asked of the standard log density at two parameter points.
FREENESS_RTOL = 1e-10


@dataclass(frozen=True)
class Standardisation:
    """log p_y(m + s z) + log s = log f(z) for y = x or log x, z on (z_lower, oo)."""

    log_variable: bool
    z: sp.Symbol
    location: sp.Expr
    scale: sp.Expr
    standard_log_density: sp.Expr
    z_lower: sp.Expr


def _candidates(params: list[sp.Symbol]) -> tuple[list[sp.Expr], list[sp.Expr]]:
    """Locations 0, theta_i, log theta_i and scales 1, theta_i^(+-1), theta_i^(+-1/2)."""
    locations: list[sp.Expr] = [sp.Integer(0)]
    scales: list[sp.Expr] = [sp.Integer(1)]
    for p in params:
        locations.append(p)
        if p.is_positive:
            locations.append(sp.log(p))
            scales += [p, 1 / p, sp.sqrt(p), 1 / sp.sqrt(p)]
    return locations, scales


def _free_of_theta(function: sp.Expr, z: sp.Symbol, params: list[sp.Symbol],
                   points: list[tuple[float, ...]], z_values: np.ndarray) -> bool:
    """True if function(z, theta) takes the same finite values at every parameter point."""
    evaluate = sp.lambdify([z, *params], function, "numpy")
    rows = []
    for point in points:
        with np.errstate(all="ignore"):
            values = np.asarray(evaluate(z_values, *point), dtype=float) * np.ones_like(z_values)
        if not np.all(np.isfinite(values)):
            return False
        rows.append(values)
    return all(np.allclose(row, rows[0], rtol=FREENESS_RTOL, atol=FREENESS_RTOL) for row in rows)


def standardise(family: Family) -> Standardisation | None:
    """The first (y, m, s) from the candidates under which log p is a fixed standard density."""
    if family.discrete or family.vector_x:
        return None
    lower, upper = family.bounds[0]
    if upper != sp.oo or lower not in (-sp.oo, sp.Integer(0)):
        return None
    x, params = family._wxs[0], family._wparams
    log_density = family._work(family.log_density)
    y, z = sp.Dummy("y", real=True), sp.Dummy("z", real=True)
    variables = [(False, log_density.xreplace({x: y}))]
    if lower == 0:  # x = e^y, |dx/dy| = e^y
        variables.append((True, log_density.xreplace({x: sp.exp(y)}) + y))
    points = [tuple(float(v) for v in q) for q in family.coverage_points()[:3]]
    if len(points) < 2:
        return None
    locations, scales = _candidates(params)
    found = []
    for log_variable, log_y in variables:
        z_lower = -sp.oo if (log_variable or lower == -sp.oo) else sp.Integer(0)
        z_values = (np.array([-2.3, -0.7, 0.35, 1.2, 2.8]) if z_lower == -sp.oo
                    else np.array([0.15, 0.6, 1.3, 2.4, 4.1]))
        for location in locations:
            if z_lower == 0 and location != 0:
                continue  # the support (0, oo) would move with the location
            for scale in scales:
                used = (location.free_symbols | scale.free_symbols)
                if not used or not set(params) <= used:
                    continue
                candidate = log_y.xreplace({y: location + scale * z}) + sp.log(scale)
                if not _free_of_theta(candidate, z, params, points, z_values):
                    continue
                standard = sp.simplify(sp.expand_log(candidate, force=True))
                if standard.has(*params):  # theta-free in value: fix theta at a rational point
                    exact = {p: sp.nsimplify(v, rational=True)
                             for p, v in zip(params, points[0], strict=True)}
                    standard = sp.simplify(sp.expand_log(candidate.xreplace(exact), force=True))
                found.append(Standardisation(log_variable, z, location, scale, standard, z_lower))
        if found:
            break
    # N(theta, theta^2) is theta N(1, 1) and also theta + theta N(0, 1): the simplest standard
    # density (fewest operations: N(0, 1) here) makes the easiest integrals
    return min(found, key=lambda s: sp.count_ops(s.standard_log_density), default=None)


def gamma_moment_integral(integrand: sp.Expr, w: sp.Symbol) -> sp.Expr | None:
    """int_0^oo of a sum of c w^a log(w)^b exp(-r w) (r > 0, a > -1), term by term as
    c d^b/da^b [Gamma(a + 1) r^-(a + 1)]; None if a term is of another kind."""
    expanded = sp.expand(sp.powsimp(sp.expand(sp.expand_log(sp.expand(integrand), force=True)),
                                    combine="exp"))
    total = sp.Integer(0)
    for term in sp.Add.make_args(expanded):
        constant, rest = term.as_independent(w, as_Add=False)
        power, log_power, rate = sp.Integer(0), 0, sp.Integer(0)
        for factor in sp.Mul.make_args(rest):
            base, exponent = factor.as_base_exp()
            if base == w and not exponent.has(w):
                power += exponent
            elif isinstance(base, sp.log) and base.args[0] == w and exponent.is_Integer \
                    and exponent > 0:
                log_power += int(exponent)
            elif isinstance(factor, sp.exp):
                argument = sp.expand(factor.args[0])
                if not argument.is_polynomial(w) or sp.degree(argument, w) != 1 \
                        or argument.subs(w, 0) != 0:
                    return None
                rate -= argument.coeff(w)
            else:
                return None
        if not (rate.is_positive and (power + 1).is_positive):
            return None
        s = sp.Dummy("s")
        total += constant * sp.diff(sp.gamma(s) * rate ** (-s), s, log_power).subs(s, power + 1)
    return total


def standard_expectation(function: sp.Expr, standard: Standardisation, z: sp.Symbol) -> sp.Expr:
    """E[function(Z)], Z with log density ``standard_log_density``, in closed form (or raise)."""
    from .symbolic import expectation  # local: symbolic imports nothing from here

    integrand = function * sp.exp(standard.standard_log_density)
    w = sp.Symbol("w", positive=True)
    substitutions = ([sp.log(w), -sp.log(w)] if standard.z_lower == -sp.oo else [w])
    for substitution in substitutions:
        # dz = dw / w for z = log w, and the orientation flips back for z = -log w
        jacobian = 1 if substitution == w else 1 / w
        value = gamma_moment_integral(integrand.xreplace({z: substitution}) * jacobian, w)
        if value is not None:
            return sp.simplify(value)
    return expectation(sp.expand(integrand), [z], [(standard.z_lower, sp.oo)], False)


def fisher_by_standardisation(family: Family) -> sp.Matrix | None:
    """``F(theta) = J^T F_(m, s) J`` from the standard density's three integrals, or None if log p is
    not a location-scale family (in x or log x) for the candidate m(theta), s(theta)."""
    standard = standardise(family)
    if standard is None:
        return None
    z = standard.z
    psi = -sp.diff(standard.standard_log_density, z)
    params = family._wparams
    jacobian = sp.Matrix([[sp.diff(standard.location, p) for p in params],
                          [sp.diff(standard.scale, p) for p in params]])
    moving_location = any(e != 0 for e in jacobian.row(0))
    moving_scale = any(e != 0 for e in jacobian.row(1))
    location_info = standard_expectation(psi**2, standard, z) if moving_location else 0
    scale_info = standard_expectation((z * psi - 1) ** 2, standard, z) if moving_scale else 0
    cross = (standard_expectation(psi * (z * psi - 1), standard, z)
             if moving_location and moving_scale else 0)
    standard_fisher = sp.Matrix([[location_info, cross], [cross, scale_info]]) / standard.scale**2
    fisher = (jacobian.T * standard_fisher * jacobian).applyfunc(sp.simplify)
    return family._unwork(fisher)

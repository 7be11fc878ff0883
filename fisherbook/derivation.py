"""The derivation portfolio: strategies tried in turn, the first that quadrature confirms kept.

F(theta) and KL(theta || theta') are each derived by a list of strategies (the exponential-family
route, the pull-back through an embedding, location-scale standardisation, a Gaussian in x,
point masses on a discrete support, direct integration), each under a time limit in a worker
process; an answer is returned only after it agrees with quadrature at parameter points that
cover every branch and the whole domain. Derivations are cached by everything they depend on.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
import sympy as sp

from . import curved, domains, gaussian, location_scale, numeric, point_masses, symbolic
from .errors import DerivationError

if TYPE_CHECKING:
    from .family import Family

#: Relative tolerance of the quadrature cross-checks of closed forms.
CROSS_CHECK_RTOL = 1e-6
#: Modules for lambdify, scipy.special first (binomial, factorial, loggamma, polygamma, bessel).
MODULES = numeric.MODULES

# Derivations shared by every Family with the same definition (the second call is instant),
# and the label of the strategy that gave each.
_DERIVATION_CACHE: dict[tuple, Any] = {}
_ROUTES: dict[tuple, str] = {}


def route(family: Family, what: str = "fisher") -> str | None:
    """The strategy that gave the family's closed form ("fisher" or "kl"); None if not derived."""
    if what not in ("fisher", "kl"):
        raise ValueError(f"what must be 'fisher' or 'kl', got {what!r}")
    return _ROUTES.get((what, family._key))


def fisher(family: Family) -> sp.Matrix:
    """F(theta) in closed form: the first strategy whose answer quadrature confirms."""
    key = ("fisher", family._key)
    if key not in _DERIVATION_CACHE:
        if family.embedding is not None:  # derived here, not in a worker (workers cannot fork)
            _derive_quietly(family.embedding[0].fisher)
        _DERIVATION_CACHE[key], _ROUTES[key] = first_checked(
            family, fisher_strategies(family), check_fisher, "Fisher")
    return _DERIVATION_CACHE[key]


def kl(family: Family) -> sp.Expr:
    """KL(p_theta || p_theta') in closed form, in theta and the primed parameters."""
    key = ("kl", family._key)
    if key not in _DERIVATION_CACHE:
        if family.embedding is not None:
            _derive_quietly(family.embedding[0]._kl_generic)
        _DERIVATION_CACHE[key], _ROUTES[key] = first_checked(family, kl_strategies(family),
                                                             check_kl, "KL")
    return _DERIVATION_CACHE[key]


def _derive_quietly(derive: Callable) -> None:
    """Run a parent's derivation; its failure only makes the pull-back inapplicable."""
    try:
        derive()
    except DerivationError:
        pass


def fisher_strategies(family: Family) -> list[tuple[str, Callable]]:
    """The Fisher strategies, cheapest and most robust first; a declared embedding comes after
    the exponential-family route, so that a reparametrised exponential family is still derived
    on its own (and the pull-back J^T F J is a check, not an assumption, there)."""
    return [("exponential-family route", fisher_by_form),
            ("pull-back through the declared embedding", curved.fisher_by_embedding),
            ("Gaussian in x", gaussian.fisher_by_gaussian_form),
            ("curved exponential family (full family pulled back)", curved.fisher_by_curved_form),
            ("location-scale standardisation", location_scale.fisher_by_standardisation),
            ("point masses on the discrete support", point_masses.fisher_by_point_masses),
            ("direct integration of s s^T p", fisher_by_integration),
            ("direct integration after a location shift x -> x + mu",
             functools.partial(fisher_by_integration, shift=True))]


def kl_strategies(family: Family) -> list[tuple[str, Callable]]:
    """The KL strategies, cheapest and most robust first."""
    return [("exponential-family route (Bregman form)", kl_by_form),
            ("pull-back through the declared embedding", curved.kl_by_embedding),
            ("Gaussian in x", gaussian.kl_by_gaussian_form),
            ("curved exponential family (Bregman form of the full family)",
             curved.kl_by_curved_form),
            ("point masses on the discrete support", point_masses.kl_by_point_masses),
            ("direct integration of p log(p/p')", kl_by_integration)]


def first_checked(family: Family, strategies: Iterable, check: Callable, what: str) -> Any:
    """(answer, label) of the first strategy whose answer ``check`` accepts, its conditions
    resolved; or raise, naming why each strategy failed."""
    failures = []
    for label, strategy in strategies:
        try:
            result = symbolic.run_with_time_limit(strategy, family, seconds=family.time_limit)
            if result is None:
                failures.append(f"{label}: not applicable")
                continue
            check(family, result)
            return drop_conditions_that_hold(family, result), label
        except DerivationError as error:
            failures.append(f"{label}: {error}")
    raise DerivationError(f"{family.name}: no trustworthy closed form for the {what} "
                          f"({'; '.join(failures)})")

def domain_scan(family: Family, size: int = 256) -> list[tuple[float, ...]]:
    """Deterministic quasi-random points (Halton) filling the box of parameter domains."""
    from scipy.stats import qmc

    fractions = qmc.Halton(len(family.params), scramble=False).random(size + 1)[1:]
    return [tuple(domains.point_at_fraction(family.domains[p], float(f[i]), 0)
                  for i, p in enumerate(family.params)) for f in fractions]

def drop_conditions_that_hold(family: Family, result: Any) -> Any:
    """Replace Piecewise((e, c), (nan, True)) by e when c holds at every point of a scan of
    the parameter domains (sympy's convergence conditions); otherwise keep it, so that it
    evaluates to NaN (and the numeric side falls back to quadrature) where c fails."""
    replacements = {}
    for piecewise in sp.sympify(result).atoms(sp.Piecewise):
        (expr, condition), rest = piecewise.args[0], piecewise.args[1:]
        if (len(rest) != 1 or rest[0].expr is not sp.nan or condition.has(*family.xs)
                or expr.has(sp.Piecewise)):
            continue
        if not condition.free_symbols <= set(family.params):
            continue
        test = sp.lambdify(family.params, family._unwork(condition), MODULES)
        points = domain_scan(family) + family.coverage_points()
        try:
            holds = all(bool(test(*q)) for q in points)
        except (TypeError, ValueError, NameError):
            holds = False
        if holds:
            replacements[piecewise] = expr
    result = sp.sympify(result).xreplace(replacements) if replacements else result
    return resolve_case_distinctions(family, result)

def resolve_case_distinctions(family: Family, result: Any) -> Any:
    """Min, Max, abs and sign of the parameters alone replaced by the one argument (or sign)
    they take at every point of a scan of the domains (Min(1, c) = c for c in (0, 1))."""
    replacements = {}
    points = domain_scan(family) + family.coverage_points()
    for atom in sp.sympify(result).atoms(sp.Min, sp.Max, sp.Abs, sp.sign):
        if not atom.free_symbols or not atom.free_symbols <= set(family.params):
            continue
        candidates = (list(atom.args) if isinstance(atom, (sp.Min, sp.Max))
                      else [atom.args[0], -atom.args[0]] if isinstance(atom, sp.Abs)
                      else [sp.Integer(1), sp.Integer(-1)])
        value = sp.lambdify(family.params, atom, MODULES)
        for candidate in candidates:
            other = sp.lambdify(family.params, candidate, MODULES)
            try:
                same = all(float(value(*q)) == float(other(*q)) for q in points)
            except (TypeError, ValueError, ZeroDivisionError):
                same = False
            if same:
                replacements[atom] = candidate
                break
    if not replacements:
        return result
    return sp.sympify(result).xreplace(replacements).applyfunc(sp.simplify) if isinstance(
        result, sp.MatrixBase) else sp.simplify(sp.sympify(result).xreplace(replacements))

def check_fisher(family: Family, matrix: sp.Matrix) -> None:
    """Raise DerivationError unless the closed form agrees with quadrature at every coverage point."""
    function = numeric.lambdify_checked(family.params, list(matrix), "the Fisher information")
    k = len(family.params)
    for point in family.coverage_points(matrix):
        with np.errstate(all="ignore"):
            closed = np.asarray(function(*point), dtype=float).reshape(k, k)
        numeric_value = family.fisher_by_quadrature(point)
        assert_close(closed, numeric_value, f"Fisher at {family._describe(point)}")

def check_kl(family: Family, divergence: sp.Expr) -> None:
    """Raise DerivationError unless the closed-form KL agrees with quadrature at pairs of points."""
    function = numeric.lambdify_checked([*family.params, *family._primed], divergence, "the KL divergence")
    points = family.coverage_points(divergence)
    first, second = points[0], points[1 % len(points)]
    pairs = [(first, second), (second, first), (first, first)]
    pairs += [(q, first) for q in points[2:]]
    for a, b in pairs:
        with np.errstate(all="ignore"):
            closed = float(function(*a, *b))
        numeric_value = family.kl_by_quadrature(a, b)
        assert_close(np.array(closed), np.array(numeric_value),
                      f"KL between {family._describe(a)} and {family._describe(b)}")


def assert_close(closed: np.ndarray, numeric: np.ndarray, what: str) -> None:
    """Raise DerivationError unless abs(closed - numeric) <= CROSS_CHECK_RTOL max(1, abs(numeric))."""
    scale = max(1.0, float(np.max(np.abs(numeric))))
    if not np.all(np.isfinite(closed)):
        raise DerivationError(f"closed form is not finite for the {what}")
    error = float(np.max(np.abs(closed - numeric)))
    if error > CROSS_CHECK_RTOL * scale:
        raise DerivationError(f"closed form disagrees with quadrature for the {what} "
                              f"(closed {np.array2string(closed, precision=6)}, quadrature "
                              f"{np.array2string(numeric, precision=6)})")


# Strategies run in a worker process (module-level so they can be handed to it).
def fisher_by_form(family: Family) -> sp.Matrix | None:
    """F = Hess A - sum_k E[T_k] Hess eta_k when log p is an exponential family with as many
    statistics as parameters (None otherwise)."""
    form = symbolic.exponential_form(family._work(family.log_density), family._wxs,
                                     family._wparams)
    if form is None:
        return None
    fisher = symbolic.fisher_from_form(form, family._wparams)
    return None if fisher is None else family._unwork(fisher)


def location_shift(family: Family) -> dict:
    """{x: x + mu} for a location parameter mu (log p depends on x - mu only), else {}."""
    if family.vector_x or family.discrete or family.bounds[0] != (-sp.oo, sp.oo):
        return {}
    log_density = family._work(family.log_density)
    x = family._wxs[0]
    for p in family._wparams:
        if p.is_real and not p.is_positive and not sp.simplify(
                log_density.xreplace({x: x + p})).has(p):
            return {x: x + p}
    return {}


def fisher_by_integration(family: Family, shift: bool = False) -> sp.Matrix | None:
    """F_ij = int s_i s_j p dx by sympy (a sum if discrete), after x -> x + mu if ``shift``."""
    log_density = family._work(family.log_density)
    density = sp.exp(log_density)
    score = [sp.diff(log_density, p) for p in family._wparams]
    bounds = [tuple(b) for b in family.bounds]
    substitution = location_shift(family) if shift else {}
    if shift and not substitution:
        return None
    k = len(score)
    fisher = sp.zeros(k, k)
    for i in range(k):
        for j in range(i, k):
            integrand = sp.simplify(score[i] * score[j] * density)
            if substitution:
                integrand = sp.cancel(sp.simplify(integrand.xreplace(substitution)))
            fisher[i, j] = fisher[j, i] = symbolic.expectation(integrand, family._wxs, bounds,
                                                               family.discrete)
    return family._unwork(fisher.applyfunc(sp.simplify))


def kl_by_form(family: Family) -> sp.Expr | None:
    """KL in the Bregman form (eta - eta') . E[T] - A + A' of an exponential family (else None)."""
    form = symbolic.exponential_form(family._work(family.log_density), family._wxs,
                                     family._wparams)
    if form is None:
        return None
    primed = [family._work(p) for p in family._primed]
    kl = symbolic.kl_from_form(form, family._wparams, primed)
    return None if kl is None else family._unwork(tidy_kl(kl))


def tidy_kl(kl: sp.Expr) -> sp.Expr:
    """Logs split and terms expanded (valid under the working symbols' assumptions): a form that
    reads term by term and that sympy's series expansion handles quickly."""
    return sp.expand(sp.expand_log(kl))


def kl_by_integration(family: Family) -> sp.Expr:
    """KL = int p log(p / p') dx by sympy (a sum if discrete)."""
    log_density = family._work(family.log_density)
    swap = dict(zip(family._wparams, family._primed, strict=True))
    integrand = sp.simplify(sp.exp(log_density) * (log_density - log_density.xreplace(swap)))
    bounds = [tuple(b) for b in family.bounds]
    return family._unwork(tidy_kl(symbolic.expectation(integrand, family._wxs, bounds,
                                                         family.discrete)))

"""A parametric family given by its log density: closed forms in sympy, numbers in numpy.

``Family(log p(x | theta), x, theta, support)`` derives the score, Hessian, Fisher information and
KL divergence, checks each closed form against quadrature before returning it, and samples.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import cached_property
from typing import Any

import mpmath
import numpy as np
import sympy as sp

from . import derivation, numeric, quadrature, sampling, symbolic
from .domains import Interval, default_domain, generic_values, point_at_fraction, spread_values
from .errors import (
    DerivationError,
    DomainError,
    FamilySpecError,
    NormalisationError,
    RegularityError,
)

Theta = Mapping[sp.Symbol | str, float] | Sequence[float]

#: Relative tolerance of the normalisation check at construction.
NORMALISATION_RTOL = 1e-6

#: Modules for lambdify, scipy.special first (binomial, factorial, loggamma, polygamma, bessel).
MODULES = numeric.MODULES

#: Everything a derivation depends on; the derivation cache key holds each of them in full
#: (sympy's srepr keeps every symbol's assumptions).
DERIVATION_INPUTS = ("log_density", "xs", "params", "bounds", "discrete", "domains")



def _positive(log_value: Any) -> bool:
    """True where a log density (an mpmath number, None for no value) is above -inf."""
    return log_value is not None and bool(log_value > -mpmath.inf)


class Family:
    """A parametric family p(x | theta) given by its log density, a sympy expression.

    Parameters
    ----------
    log_density
        log p(x | theta) in ``x`` and ``params``.
    x
        The variable; a sequence of Symbols for a vector variable.
    params
        The parameters theta_1, ..., theta_k.
    support
        (lower, upper) of every coordinate; for a discrete family, the integers in it. It may not
        depend on the parameters.
    discrete
        True for a probability mass function.
    name
        A name for messages and reports.
    param_domains
        The open interval of each parameter; by default read off the symbol's assumptions
        (``positive=True`` gives (0, oo)).
    test_points
        Parameter points used by the numeric cross-checks; by default two generic points inside
        the domains.
    sampler
        ``sampler(theta_tuple, n, rng)``; by default one is derived (numerical inversion for
        continuous families, inverse CDF for discrete ones; a multivariate normal for a vector
        variable whose log density is quadratic in it).
    time_limit
        Seconds each sympy strategy may run.
    embedding
        ``(parent, phi)``: this family is ``parent`` with each parent parameter replaced by an
        expression phi in these parameters (checked numerically at construction); then
        F(theta) = J^T F_parent(phi(theta)) J and KL is the parent's at phi is tried first.
        ``reparametrize`` sets it.
    """

    def __init__(self, log_density: sp.Expr | str, x: sp.Symbol | Sequence[sp.Symbol],
                 params: Sequence[sp.Symbol], support: Interval | Sequence[Interval], *,
                 discrete: bool = False, name: str | None = None,
                 param_domains: Mapping[sp.Symbol, Interval] | None = None,
                 test_points: Sequence[Theta] | None = None,
                 sampler: Callable[[tuple[float, ...], int, np.random.Generator], np.ndarray]
                 | None = None,
                 time_limit: float = symbolic.DEFAULT_TIME_LIMIT,
                 embedding: tuple[Family, Mapping[sp.Symbol, sp.Expr]] | None = None) -> None:
        self.log_density = sp.sympify(log_density)
        self.vector_x = not isinstance(x, sp.Basic)
        self.xs: tuple[sp.Symbol, ...] = tuple(x) if self.vector_x else (x,)
        self.x = self.xs if self.vector_x else x
        self.params: tuple[sp.Symbol, ...] = tuple(params)
        self.discrete = bool(discrete)
        self.name = name or f"family({self.log_density})"
        if isinstance(time_limit, bool) or not isinstance(time_limit, (int, float)) or not (
                np.isfinite(time_limit) and time_limit > 0):
            raise FamilySpecError(f"{self.name}: the time limit must be a positive finite number "
                                  f"of seconds, got {time_limit!r}")
        self.time_limit = float(time_limit)
        self._sampler = sampler
        self.support = support
        self.bounds = self._check_support(support)
        self._check_symbols()
        self.domains = self._check_domains(param_domains)
        if test_points is None:
            pairs = [generic_values(self.domains[p], i) for i, p in enumerate(self.params)]
            self.test_points = [tuple(v[j] for v in pairs) for j in range(2)]
        else:
            self.test_points = [self.theta_tuple(point) for point in test_points]
        for point in self.test_points:
            self.check_normalised(point)
        self._check_fixed_support()
        self.embedding = self._check_embedding(embedding)

    # ----------------------------------------------------------------------- validation
    def __repr__(self) -> str:
        names = ", ".join(p.name for p in self.params)
        return f"Family({self.name!r}, params=({names}))"

    def _check_symbols(self) -> None:
        if not self.params:
            raise FamilySpecError(f"{self.name}: give at least one parameter")
        for symbol in (*self.xs, *self.params):
            if not isinstance(symbol, sp.Symbol):
                raise FamilySpecError(f"{self.name}: {symbol!r} is not a sympy Symbol; "
                                      "variables and parameters must be Symbols")
        if len(set(self.params)) != len(self.params):
            raise FamilySpecError(f"{self.name}: a parameter is listed twice in {self.params}")
        if set(self.xs) & set(self.params):
            raise FamilySpecError(f"{self.name}: the variable x is also listed as a parameter")
        free = self.log_density.free_symbols
        for x in self.xs:
            if x not in free:
                raise FamilySpecError(f"{self.name}: the log density does not contain the "
                                      f"variable {x}")
        for p in self.params:
            if p not in free:
                raise FamilySpecError(f"{self.name}: parameter {p} does not appear in the log "
                                      "density (the family would not depend on it)")
        unknown = free - set(self.xs) - set(self.params)
        if unknown:
            names = ", ".join(sorted(s.name for s in unknown))
            raise FamilySpecError(f"{self.name}: unknown symbol(s) {names} in the log density: "
                                  "neither the variable nor a parameter (fix them to numbers)")

    def _check_support(self, support: Any) -> list[tuple[sp.Expr, sp.Expr]]:
        pairs = support
        if len(support) == 2 and not isinstance(support[0], (tuple, list)):
            pairs = [support] * len(self.xs)
        if len(pairs) != len(self.xs):
            raise FamilySpecError(f"{self.name}: support has {len(pairs)} intervals for "
                                  f"{len(self.xs)} variables")
        bounds = []
        for lower, upper in pairs:
            lower, upper = sp.sympify(lower), sp.sympify(upper)
            moving = (lower.free_symbols | upper.free_symbols) & set(self.params)
            if moving:
                names = ", ".join(sorted(s.name for s in moving))
                raise RegularityError(
                    f"{self.name}: the support ({lower}, {upper}) depends on the parameter(s) "
                    f"{names}. The Fisher identities need a support that does not move with theta "
                    "(the gradient cannot pass the integral sign, and E[score] = 0 fails there).")
            if lower.free_symbols or upper.free_symbols:
                raise FamilySpecError(f"{self.name}: support ({lower}, {upper}) contains unknown "
                                      "symbols")
            if not bool(lower < upper):
                raise FamilySpecError(f"{self.name}: reversed or empty support ({lower}, {upper}):"
                                      " the lower end must be below the upper end")
            if self.discrete:
                for end in (lower, upper):
                    if end.is_finite and not end.is_integer:
                        raise FamilySpecError(f"{self.name}: a discrete support needs integer "
                                              f"ends, got {end}")
            bounds.append((lower, upper))
        return bounds

    def _check_domains(self, given: Mapping[sp.Symbol, Interval] | None
                       ) -> dict[sp.Symbol, Interval]:
        domains = {p: default_domain(p) for p in self.params}
        for key, interval in (given or {}).items():
            symbol = self.symbol(key) if isinstance(key, str) else key
            if symbol not in domains:
                raise FamilySpecError(f"{self.name}: domain given for {key}, which is not a "
                                      "parameter")
            lower, upper = sp.sympify(interval[0]), sp.sympify(interval[1])
            if not bool(lower < upper):
                raise FamilySpecError(f"{self.name}: empty domain ({lower}, {upper}) for {key}")
            domains[symbol] = (lower, upper)
        return domains

    def _check_embedding(self, embedding: Any) -> tuple[Family, dict[sp.Symbol, sp.Expr]] | None:
        """(parent, phi) checked: same variable and support, and log p = parent's log p at phi
        (numerically, on a grid of x at every test point)."""
        if embedding is None:
            return None
        try:
            parent, substitution = embedding
        except (TypeError, ValueError) as error:
            raise FamilySpecError(f"{self.name}: embedding must be (parent Family, {{parent "
                                  "parameter: expression}})") from error
        if not isinstance(parent, Family):
            raise FamilySpecError(f"{self.name}: the embedding's parent must be a Family, got "
                                  f"{type(parent).__name__}")
        phi = {sp.sympify(k): sp.sympify(v) for k, v in dict(substitution).items()}
        for key, value in phi.items():
            if key not in parent.params:
                raise FamilySpecError(f"{self.name}: the embedding maps {key}, which is not a "
                                      f"parameter of {parent.name}")
            if not value.free_symbols <= set(self.params):
                raise FamilySpecError(f"{self.name}: the embedding's expression {value} for {key}"
                                      " uses symbols that are not parameters of this family")
        if (parent.xs != self.xs or list(parent.bounds) != list(self.bounds)
                or parent.discrete != self.discrete):
            raise FamilySpecError(f"{self.name}: the embedding's parent {parent.name} has another "
                                  "variable, support or kind (discrete / continuous)")
        values = [phi.get(p, p) for p in parent.params]
        if not set().union(*(sp.sympify(v).free_symbols for v in values)) <= set(self.params):
            raise FamilySpecError(f"{self.name}: the embedding leaves parent parameters unmapped")
        to_parent = sp.lambdify(self.params, values, MODULES)
        lower, upper = (float(b) for b in self.bounds[0])
        grid = numeric.support_grid(lower, upper, self.discrete, size=41)[::5]
        if self.vector_x:
            grid = np.array([[0.3 * (i + 1) * (-1) ** i for i in range(len(self.xs))],
                             [0.7] * len(self.xs)])
        for point in self.test_points:
            mapped = tuple(float(v) for v in to_parent(*point))
            try:
                with np.errstate(all="ignore"):
                    mine, theirs = self.logpdf(grid, point), parent.logpdf(grid, mapped)
            except DomainError as error:
                raise FamilySpecError(f"{self.name}: the embedding maps {self._describe(point)} "
                                      f"outside the parent's domain: {error}") from error
            same = np.isclose(mine, theirs, rtol=1e-9, atol=1e-9) | ((mine == -np.inf)
                                                                     & (theirs == -np.inf))
            if not np.all(same):
                raise FamilySpecError(f"{self.name}: the log density is not the parent's "
                                      f"({parent.name}) at the embedding's parameters, at "
                                      f"{self._describe(point)}")
        return parent, phi

    def symbol(self, name: str) -> sp.Symbol:
        """The parameter symbol called ``name``."""
        for p in self.params:
            if p.name == name:
                return p
        raise DomainError(f"{self.name}: no parameter named {name!r}; parameters are "
                          f"{[p.name for p in self.params]}")

    def theta_tuple(self, theta: Theta) -> tuple[float, ...]:
        """Parameter values in parameter order, checked: present, finite, inside their domains."""
        if isinstance(theta, Mapping):
            values: dict[sp.Symbol, Any] = {}
            for key, value in theta.items():
                symbol = self.symbol(key) if isinstance(key, str) else key
                if symbol not in self.params:
                    raise DomainError(f"{self.name}: {key} is not a parameter; parameters are "
                                      f"{[p.name for p in self.params]}")
                values[symbol] = value
            missing = [p.name for p in self.params if p not in values]
            if missing:
                raise DomainError(f"{self.name}: missing value for parameter(s) {missing}")
            raw = [values[p] for p in self.params]
        else:
            raw = list(theta)
            if len(raw) != len(self.params):
                raise DomainError(f"{self.name}: expected {len(self.params)} parameter values "
                                  f"{[p.name for p in self.params]}, got {len(raw)}")
        out = []
        for p, value in zip(self.params, raw, strict=True):
            try:
                number = float(value)
            except (TypeError, ValueError) as error:
                raise DomainError(f"{self.name}: value {value!r} of {p} is not a number") from error
            if not np.isfinite(number):
                raise DomainError(f"{self.name}: value {number} of {p} is not finite")
            lower, upper = self.domains[p]
            if not float(lower) < number < float(upper):
                raise DomainError(f"{self.name}: {p} = {number:g} is outside its domain "
                                  f"({lower}, {upper})")
            out.append(number)
        return tuple(out)

    def _check_fixed_support(self) -> None:
        """Raise RegularityError if the set where p > 0 moves with theta, however it is written
        (a Piecewise, an indicator, a log that turns -inf): scanned on a grid of x at the test
        points and at points spread over the parameter domains."""
        if len(self.xs) != 1:
            return
        lower, upper = (float(b) for b in self.bounds[0])
        grid = numeric.support_grid(lower, upper, self.discrete, size=401)
        masks = []
        evaluator = self._log_density_eval
        for point in self.coverage_points():
            with np.errstate(all="ignore"):
                values = evaluator(grid, *point)[0]
            masks.append((point, values > -np.inf))
        reference_point, reference = masks[0]
        for point, mask in masks[1:]:
            for index in np.nonzero(mask != reference)[0]:
                # a float -inf may be an underflow: confirm both values in mpmath
                # (in mpmath numbers: -exp(700 / 0.5) is below the float range, yet not -inf)
                here = _positive(evaluator.precise_value(0, [grid[index], *point]))
                there = _positive(evaluator.precise_value(0, [grid[index], *reference_point]))
                if here == there:
                    continue
                where = grid[index]
                inside, outside = (point, reference_point) if here else (reference_point, point)
                raise RegularityError(
                    f"{self.name}: the set where the density is positive moves with theta: at "
                    f"x = {where:.6g} it is positive for {self._describe(inside)} and zero for "
                    f"{self._describe(outside)}. The Fisher identities need a support that does "
                    "not move with theta (the gradient cannot pass the integral sign, and "
                    "E[score] = 0 fails there).")

    def _is_valid_point(self, point: tuple[float, ...]) -> bool:
        """True where p(. | point) is a normalised density (parameters may be constrained
        jointly, like probabilities that sum to at most one)."""
        try:
            self.check_normalised(point)
        except (NormalisationError, DomainError):
            return False
        return True

    @cached_property
    def _spread_points(self) -> list[tuple[float, ...]]:
        """Three points spread over the parameter domains, kept where the density is valid."""
        spreads = [spread_values(self.domains[p], i) for i, p in enumerate(self.params)]
        points = [tuple(v[j] for v in spreads) for j in range(3)]
        return [q for q in points if q not in self.test_points and self._is_valid_point(q)]

    def coverage_points(self, *expressions: sp.Expr) -> list[tuple[float, ...]]:
        """Parameter points for cross-checks: the test points, three points spread over the
        domains, and one point in every branch of each Piecewise in theta found in the log
        density or in ``expressions`` (conditions on theta alone)."""
        points = list(self.test_points)
        if len(self.xs) > 1:  # each check is a costly n-d quadrature: the test points only
            return points
        points += self._spread_points
        conditions = []
        for expr in (self.log_density, *expressions):
            for piecewise in sp.sympify(expr).atoms(sp.Piecewise):
                for _branch, condition in piecewise.args:
                    if (isinstance(condition, sp.Basic) and condition.free_symbols
                            and not condition.has(*self.xs)):
                        conditions.append(self._unwork(condition))
        if conditions:
            functions = [sp.lambdify(self.params, c, MODULES) for c in conditions]
            seen = {tuple(bool(f(*q)) for f in functions) for q in points}
            for fraction in np.linspace(0.01, 0.99, 99):
                candidate = tuple(point_at_fraction(self.domains[p], fraction, i)
                                  for i, p in enumerate(self.params))
                pattern = tuple(bool(f(*candidate)) for f in functions)
                if pattern not in seen and self._is_valid_point(candidate):
                    seen.add(pattern)
                    points.append(candidate)
        unique = []
        for q in points:
            if q not in unique:
                unique.append(q)
        return unique

    # ------------------------------------------------------------------ sympy: closed forms
    def score(self) -> sp.Matrix:
        """The score s(theta) = grad_theta log p(x | theta), a k x 1 column."""
        log_density = self._work(self.log_density)
        return self._unwork(sp.Matrix([sp.simplify(sp.diff(log_density, p))
                                       for p in self._wparams]))

    def hessian(self) -> sp.Matrix:
        """The k x k matrix of second derivatives of log p(x | theta) in theta."""
        return self._unwork(sp.hessian(self._work(self.log_density), self._wparams)
                            .applyfunc(sp.simplify))

    def kinks(self) -> list[sp.Expr]:
        """The g(x, theta) whose zero set is a kink or branch switch of log p that moves with theta
        (abs(x - m), a Piecewise in x and theta, max, ...): there the second derivative in theta
        has a Dirac term that pointwise Hessians miss."""
        return [self._unwork(g) for g in numeric.kinks_in_x(self._work(self.log_density),
                                                            self._wxs, self._wparams)]

    def refuse_hessian_form(self) -> None:
        """Raise DerivationError if log p has a kink that moves with theta (see ``kinks``)."""
        kinks = self.kinks()
        hessian_deltas = [d for d in self.hessian().atoms(sp.DiracDelta) if d.has(*self.xs)]
        if kinks or hessian_deltas:
            where = ", ".join(f"{g} = 0" for g in kinks) or str(hessian_deltas[0])
            raise DerivationError(
                f"{self.name}: log p is not twice differentiable in theta: it has a kink at "
                f"{where}, so its Hessian carries a Dirac delta there that pointwise Hessians "
                "miss; use the score form E[s s^T] (method='score')")

    @cached_property
    def _key(self) -> tuple:
        """Everything a derivation depends on (DERIVATION_INPUTS), assumptions included."""
        domains = tuple((p, self.domains.get(p)) for p in self.params)
        values = {"log_density": self.log_density, "xs": self.xs, "params": self.params,
                  "bounds": tuple(self.bounds), "discrete": self.discrete, "domains": domains}
        return tuple((name, sp.srepr(values[name]) if name != "discrete" else values[name])
                     for name in DERIVATION_INPUTS)

    @cached_property
    def _working(self) -> tuple[dict, dict]:
        """Substitutions to symbols carrying assumptions (real x, positive scales), and back."""
        forward: dict[sp.Symbol, sp.Symbol] = {}
        for x, (lower, _upper) in zip(self.xs, self.bounds, strict=True):
            if self.discrete:
                nonneg = bool(lower >= 0)
                forward[x] = sp.Symbol(f"{x.name}_w", integer=True, nonnegative=nonneg)
            elif bool(lower >= 0):
                forward[x] = sp.Symbol(f"{x.name}_w", positive=True)
            else:
                forward[x] = sp.Symbol(f"{x.name}_w", real=True)
        for p in self.params:
            lower, upper = self.domains[p]
            if bool(lower >= 0):
                forward[p] = sp.Symbol(f"{p.name}_w", positive=True)
            elif bool(upper <= 0):
                forward[p] = sp.Symbol(f"{p.name}_w", negative=True)
            else:
                forward[p] = sp.Symbol(f"{p.name}_w", real=True)
        backward = {v: k for k, v in forward.items()}
        return forward, backward

    def _work(self, expr: sp.Expr) -> sp.Expr:
        return sp.sympify(expr).xreplace(self._working[0])

    def _unwork(self, expr: Any) -> Any:
        return expr.xreplace(self._working[1])

    @property
    def _wxs(self) -> list[sp.Symbol]:
        return [self._working[0][x] for x in self.xs]

    @property
    def _wparams(self) -> list[sp.Symbol]:
        return [self._working[0][p] for p in self.params]

    def exponential_form(self) -> symbolic.ExponentialForm | None:
        """The split eta(theta) . T(x) - A(theta) + log h(x), or None if log p has no such form."""
        return symbolic.exponential_form(self.log_density, self.xs, self.params)


    def fisher(self) -> sp.Matrix:
        """The Fisher information F(theta) = E[s s^T] in closed form (k x k sympy Matrix).

        Tries the strategies of ``fisherbook.derivation`` in turn, each under a time limit, and
        returns the first answer that agrees with quadrature at the coverage points."""
        return derivation.fisher(self)

    def kl(self, other: Sequence[sp.Expr | float]) -> sp.Expr:
        """KL(p_theta || p_other) = E_theta[log p_theta(X) - log p_other(X)] in closed form."""
        other = [sp.sympify(o) for o in other]
        if len(other) != len(self.params):
            raise DomainError(f"{self.name}: kl needs {len(self.params)} values for the second "
                              f"distribution, got {len(other)}")
        return self._kl_generic().xreplace(dict(zip(self._primed, other, strict=True)))

    @cached_property
    def _primed(self) -> tuple[sp.Symbol, ...]:
        working = self._working[0]
        return tuple(sp.Symbol(f"{p.name}'", **working[p].assumptions0) for p in self.params)

    def _kl_generic(self) -> sp.Expr:
        return derivation.kl(self)

    def _domain_scan(self, size: int = 256) -> list[tuple[float, ...]]:
        return derivation.domain_scan(self, size)

    def _describe(self, point: Sequence[float]) -> str:
        return ", ".join(f"{p}={v:g}" for p, v in zip(self.params, point, strict=True))

    def reparametrize(self, substitution: Mapping[sp.Symbol, sp.Expr],
                      new_params: Sequence[sp.Symbol], *, name: str | None = None,
                      param_domains: Mapping[sp.Symbol, Interval] | None = None) -> Family:
        """The same family in new parameters: old parameters replaced by expressions in new ones."""
        sampler = None
        if self._sampler is not None:
            old_from_new = sp.lambdify(list(new_params),
                                       [sp.sympify(substitution.get(p, p)) for p in self.params],
                                       MODULES)
            own_sampler = self._sampler

            def sampler(theta: tuple[float, ...], n: int, rng: np.random.Generator) -> np.ndarray:
                return own_sampler(tuple(float(v) for v in old_from_new(*theta)), n, rng)

        family = Family(self.log_density.subs(substitution), self.x, new_params, self.bounds,
                        discrete=self.discrete, name=name or f"{self.name} (reparametrized)",
                        param_domains=param_domains, time_limit=self.time_limit, sampler=sampler)
        try:  # the pull-back F = J^T F_self J is tried first where the map is valid
            family.embedding = family._check_embedding((self, substitution))
        except (FamilySpecError, DomainError):
            family.embedding = None
        return family

    # ------------------------------------------------------------------- numpy: numbers
    @cached_property
    def _log_density_eval(self) -> numeric.Evaluator:
        return numeric.Evaluator([*self.xs, *self.params], [self.log_density], "the log density",
                                 keep_minus_inf=True)

    @cached_property
    def _log_density_fn(self) -> Callable:
        evaluator = self._log_density_eval
        return lambda *values: evaluator(*values)[0]

    @cached_property
    def _score_eval(self) -> numeric.Evaluator:
        # the user's own form differentiated, not a simplified one (simplification may make it
        # overflow where the density is ordinary); NaN / inf entries are redone in mpmath
        log_density = self._work(self.log_density)
        raw = [self._unwork(sp.diff(log_density, p)) for p in self._wparams]
        return numeric.Evaluator([*self.xs, *self.params], raw, "the score")

    @cached_property
    def _score_fn(self) -> Callable:
        evaluator = self._score_eval
        return lambda *values: evaluator(*values)

    @cached_property
    def _hessian_eval(self) -> numeric.Evaluator:
        log_density = self._work(self.log_density)
        k = len(self.params)
        entries = [self._unwork(sp.diff(log_density, self._wparams[i], self._wparams[j]))
                   for i in range(k) for j in range(k)]
        return numeric.Evaluator([*self.xs, *self.params], entries, "the Hessian of log p")

    def _columns(self, xs: Any) -> list[np.ndarray]:
        array = np.asarray(xs, dtype=float)
        if self.vector_x:
            array = np.atleast_2d(array)
            if array.shape[-1] != len(self.xs):
                raise DomainError(f"{self.name}: points must have {len(self.xs)} coordinates")
            return [array[..., i] for i in range(len(self.xs))]
        return [array]

    def logpdf(self, xs: Any, theta: Theta) -> np.ndarray:
        """log p(x | theta) at the points xs."""
        columns = self._columns(xs)
        values = self._log_density_fn(*columns, *self.theta_tuple(theta))
        return np.broadcast_to(np.asarray(values, dtype=float), columns[0].shape).copy()

    def score_numeric(self, xs: Any, theta: Theta) -> np.ndarray:
        """Scores at the points xs: an (n, k) array."""
        columns = self._columns(xs)
        values = self._score_fn(*columns, *self.theta_tuple(theta))
        return np.stack([np.broadcast_to(np.asarray(v, dtype=float), columns[0].shape)
                         for v in values], axis=-1)

    def hessian_numeric(self, xs: Any, theta: Theta) -> np.ndarray:
        """Hessians of log p at the points xs: an (n, k, k) array.

        Refused (DerivationError) where log p has a kink that moves with theta."""
        self.refuse_hessian_form()
        columns = self._columns(xs)
        point = self.theta_tuple(theta)
        k = len(self.params)
        values = self._hessian_eval(*columns, *point)
        out = np.empty(columns[0].shape + (k, k))
        for i in range(k):
            for j in range(k):
                out[..., i, j] = np.broadcast_to(values[i * k + j], columns[0].shape)
        return out

    @cached_property
    def _fisher_fns(self) -> tuple[Callable, Callable]:
        entries = list(self.fisher())
        return (numeric.lambdify_checked(self.params, entries, "the Fisher information"),
                numeric.lambdify_checked(self.params, entries, "the Fisher information",
                                         modules=["mpmath"]))

    @cached_property
    def _kl_fns(self) -> tuple[Callable, Callable]:
        args = [*self.params, *self._primed]
        kl = [self._kl_generic()]
        return (numeric.lambdify_checked(args, kl, "the KL divergence"),
                numeric.lambdify_checked(args, kl, "the KL divergence", modules=["mpmath"]))

    def fisher_numeric(self, theta: Theta) -> np.ndarray:
        """The closed-form Fisher information evaluated at theta: a (k, k) array.

        Floats are checked against mpmath; where the closed form is ill-conditioned (cancellation
        near a removable singularity) the high-precision value is returned, and where it has no
        value (0/0 at the singularity itself) the quadrature is."""
        point = self.theta_tuple(theta)
        k = len(self.params)
        value = numeric.closed_form_value(*self._fisher_fns, point)
        if value is None:
            return self.fisher_by_quadrature(point)
        return np.asarray(value, dtype=float).reshape(k, k)

    def kl_numeric(self, theta: Theta, theta_other: Theta) -> float:
        """The closed-form KL(p_theta || p_theta_other) evaluated (checked like fisher_numeric)."""
        point, other = self.theta_tuple(theta), self.theta_tuple(theta_other)
        value = numeric.closed_form_value(*self._kl_fns, (*point, *other))
        if value is None:
            return self.kl_by_quadrature(point, other)
        return float(np.ravel(value)[0])

    # --------------------------------------------------------- quadrature: independent numbers
    @cached_property
    def _switch_fns(self) -> list[Callable]:
        """g(x, theta) whose zeros in x are kinks or branch switches of the log density."""
        if len(self.xs) != 1:
            return []
        functions = numeric.switching_functions(self.log_density, self.xs)
        return [sp.lambdify([*self.xs, *self.params], g, MODULES) for g in functions]

    def expect(self, expr: sp.Expr, theta: Theta) -> float:
        """E_theta[expr] by quadrature (or summation), expr a sympy expression in x and theta."""
        point = self.theta_tuple(theta)
        function = sp.lambdify([*self.xs, *self.params], sp.sympify(expr), MODULES)
        return quadrature.expectation(self, lambda *c: function(*c, *point), point)

    def check_normalised(self, theta: Theta) -> None:
        """Raise NormalisationError unless p(. | theta) integrates (sums) to one."""
        point = self.theta_tuple(theta)
        try:
            with np.errstate(all="ignore"):
                total = quadrature.expectation(self, lambda *c: np.ones_like(np.asarray(c[0], dtype=float)),
                                        point)
        except DerivationError as error:
            raise NormalisationError(f"{self.name}: could not normalise at "
                                     f"{self._describe(point)}: {error}") from error
        if not np.isfinite(total) or abs(total - 1.0) > NORMALISATION_RTOL:
            raise NormalisationError(
                f"{self.name}: the density {'sums' if self.discrete else 'integrates'} to "
                f"{total:.6g}, not 1, at {self._describe(point)}: is it normalised, and is the "
                "support right?")

    def score_mean_by_quadrature(self, theta: Theta) -> np.ndarray:
        """E_theta[s(theta)] by quadrature: a length-k array (zero under regularity)."""
        point = self.theta_tuple(theta)
        return np.array([quadrature.expectation(self, lambda *c, i=i: self._score_fn(*c, *point)[i], point)
                         for i in range(len(self.params))])

    def fisher_by_quadrature(self, theta: Theta, form: str = "score") -> np.ndarray:
        """F(theta) by quadrature: E[s s^T] (form="score") or -E[Hessian] (form="hessian").

        The Hessian form is refused (DerivationError) where log p has a kink that moves with
        theta: its Dirac term is invisible to quadrature."""
        if form not in ("score", "hessian"):
            raise ValueError(f"form must be 'score' or 'hessian', got {form!r}")
        point = self.theta_tuple(theta)
        k = len(self.params)
        out = np.empty((k, k))
        if form == "hessian":
            self.refuse_hessian_form()
        for i in range(k):
            for j in range(i, k):
                if form == "score":
                    def entry(*c: Any, i: int = i, j: int = j) -> Any:
                        s = self._score_fn(*c, *point)
                        return s[i] * s[j]
                else:
                    def entry(*c: Any, i: int = i, j: int = j) -> Any:
                        return -self._hessian_eval(*c, *point)[i * k + j]
                out[i, j] = out[j, i] = quadrature.expectation(self, entry, point)
        return out

    def kl_by_quadrature(self, theta: Theta, theta_other: Theta) -> float:
        """KL(p_theta || p_other) by quadrature of p_theta log(p_theta / p_other)."""
        point, other = self.theta_tuple(theta), self.theta_tuple(theta_other)
        return quadrature.expectation(self, lambda *c: self._log_density_fn(*c, *point)
                               - self._log_density_fn(*c, *other), point, other)

    # ---------------------------------------------------------------------------- sampling
    def sample(self, theta: Theta, n: int, rng: np.random.Generator) -> np.ndarray:
        """n draws from p(. | theta): shape (n,), or (n, d) for a vector variable."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
            raise DomainError(f"{self.name}: the sample size n must be a positive integer, "
                              f"got {n!r}")
        if not isinstance(rng, np.random.Generator):
            raise TypeError("rng must be a numpy Generator: numpy.random.default_rng(seed)")
        point = self.theta_tuple(theta)
        if self._sampler is not None:
            return np.asarray(self._sampler(point, int(n), rng))
        return sampling.sample_family(self, point, int(n), rng)


"""A parametric family given by its log density: closed forms in sympy, numbers in numpy.

``Family(log p(x | theta), x, theta, support)`` derives the score, Hessian, Fisher information and
KL divergence, checks each closed form against quadrature before returning it, and samples.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cached_property
from typing import Any

import numpy as np
import sympy as sp

from . import quadrature, symbolic
from .errors import (
    DerivationError,
    DomainError,
    FamilySpecError,
    NormalisationError,
    RegularityError,
)

Theta = Mapping[sp.Symbol | str, float] | Sequence[float]
Interval = tuple[sp.Expr, sp.Expr]

#: Relative tolerance of the quadrature cross-checks of closed forms.
CROSS_CHECK_RTOL = 1e-6
#: Relative tolerance of the normalisation check at construction.
NORMALISATION_RTOL = 1e-6

#: Modules for lambdify, scipy.special first (binomial, factorial, loggamma, polygamma, bessel).
MODULES = ["scipy", "numpy"]

# Derivations shared by every Family with the same definition (the second call is instant).
_DERIVATION_CACHE: dict[tuple, Any] = {}


def _default_domain(symbol: sp.Symbol) -> Interval:
    """The open interval a parameter lives in, read off its sympy assumptions."""
    if symbol.is_positive or symbol.is_nonnegative:
        return (sp.Integer(0), sp.oo)
    if symbol.is_negative or symbol.is_nonpositive:
        return (-sp.oo, sp.Integer(0))
    return (-sp.oo, sp.oo)


def _test_values(domain: Interval, index: int) -> tuple[float, float]:
    """Two generic points inside a domain (shifted by parameter index to avoid symmetries)."""
    lower, upper = float(domain[0]), float(domain[1])
    shift = 0.15 * (index % 3)
    if np.isfinite(lower) and np.isfinite(upper):
        return (lower + (upper - lower) * (0.3 + 0.1 * shift),
                lower + (upper - lower) * (0.45 - 0.1 * shift))
    if np.isfinite(lower):
        return (lower + 1.7 + shift, lower + 2.6 - shift)
    if np.isfinite(upper):
        return (upper - 1.7 - shift, upper - 2.6 + shift)
    return (0.4 + shift, -1.1 + shift)


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
        continuous families, inverse CDF for discrete ones).
    time_limit
        Seconds each sympy strategy may run.
    """

    def __init__(self, log_density: sp.Expr | str, x: sp.Symbol | Sequence[sp.Symbol],
                 params: Sequence[sp.Symbol], support: Interval | Sequence[Interval], *,
                 discrete: bool = False, name: str | None = None,
                 param_domains: Mapping[sp.Symbol, Interval] | None = None,
                 test_points: Sequence[Theta] | None = None,
                 sampler: Callable[[tuple[float, ...], int, np.random.Generator], np.ndarray]
                 | None = None,
                 time_limit: float = symbolic.DEFAULT_TIME_LIMIT) -> None:
        self.log_density = sp.sympify(log_density)
        self.vector_x = not isinstance(x, sp.Basic)
        self.xs: tuple[sp.Symbol, ...] = tuple(x) if self.vector_x else (x,)
        self.x = self.xs if self.vector_x else x
        self.params: tuple[sp.Symbol, ...] = tuple(params)
        self.discrete = bool(discrete)
        self.name = name or f"family({self.log_density})"
        self.time_limit = time_limit
        self._sampler = sampler
        self.support = support
        self.bounds = self._check_support(support)
        self._check_symbols()
        self.domains = self._check_domains(param_domains)
        if test_points is None:
            pairs = [_test_values(self.domains[p], i) for i, p in enumerate(self.params)]
            self.test_points = [tuple(v[j] for v in pairs) for j in range(2)]
        else:
            self.test_points = [self.theta_tuple(point) for point in test_points]
        for point in self.test_points:
            self.check_normalised(point)

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
        domains = {p: _default_domain(p) for p in self.params}
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

    # ------------------------------------------------------------------ sympy: closed forms
    def score(self) -> sp.Matrix:
        """The score s(theta) = grad_theta log p(x | theta), a k x 1 column."""
        return sp.Matrix([sp.simplify(sp.diff(self.log_density, p)) for p in self.params])

    def hessian(self) -> sp.Matrix:
        """The k x k matrix of second derivatives of log p(x | theta) in theta."""
        return sp.hessian(self.log_density, list(self.params)).applyfunc(sp.simplify)

    @cached_property
    def _key(self) -> tuple:
        return (sp.srepr(self.log_density), self.xs, self.params, tuple(self.bounds),
                self.discrete)

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

        Tries the exponential-family route, then direct integration, each under a time limit,
        and returns the first answer that agrees with quadrature at the test points."""
        key = ("fisher", self._key)
        if key not in _DERIVATION_CACHE:
            strategies = [("exponential-family route", _fisher_by_form),
                          ("direct integration of s s^T p", _fisher_by_integration),
                          ("direct integration after a location shift x -> x + mu",
                           functools.partial(_fisher_by_integration, shift=True))]
            _DERIVATION_CACHE[key] = self._first_checked(strategies, self._check_fisher, "Fisher")
        return _DERIVATION_CACHE[key]

    def kl(self, other: Sequence[sp.Expr | float]) -> sp.Expr:
        """KL(p_theta || p_other) = E_theta[log p_theta(X) - log p_other(X)] in closed form."""
        other = [sp.sympify(o) for o in other]
        if len(other) != len(self.params):
            raise DomainError(f"{self.name}: kl needs {len(self.params)} values for the second "
                              f"distribution, got {len(other)}")
        generic = self._kl_generic()
        return generic.xreplace(dict(zip(self._primed, other, strict=True)))

    @cached_property
    def _primed(self) -> tuple[sp.Symbol, ...]:
        working = self._working[0]
        return tuple(sp.Symbol(f"{p.name}'", **working[p].assumptions0) for p in self.params)

    def _kl_generic(self) -> sp.Expr:
        key = ("kl", self._key)
        if key not in _DERIVATION_CACHE:
            strategies = [("exponential-family route (Bregman form)", _kl_by_form),
                          ("direct integration of p log(p/p')", _kl_by_integration)]
            _DERIVATION_CACHE[key] = self._first_checked(strategies, self._check_kl, "KL")
        return _DERIVATION_CACHE[key]

    def _first_checked(self, strategies: Iterable, check: Callable, what: str) -> Any:
        failures = []
        for label, strategy in strategies:
            try:
                result = symbolic.run_with_time_limit(strategy, self, seconds=self.time_limit)
                if result is None:
                    failures.append(f"{label}: not applicable")
                    continue
                check(result)
                return result
            except DerivationError as error:
                failures.append(f"{label}: {error}")
        raise DerivationError(f"{self.name}: no trustworthy closed form for the {what} "
                              f"({'; '.join(failures)})")

    def _check_fisher(self, fisher: sp.Matrix) -> None:
        function = sp.lambdify(self.params, fisher, MODULES)
        for point in self.test_points:
            closed = np.asarray(function(*point), dtype=float)
            numeric = self.fisher_by_quadrature(point)
            _assert_close(closed, numeric, f"Fisher at {self._describe(point)}")

    def _check_kl(self, kl: sp.Expr) -> None:
        function = sp.lambdify([*self.params, *self._primed], kl, MODULES)
        first, second = self.test_points[0], self.test_points[-1]
        for a, b in ((first, second), (second, first), (first, first)):
            closed = float(function(*a, *b))
            numeric = self.kl_by_quadrature(a, b)
            _assert_close(np.array(closed), np.array(numeric),
                          f"KL between {self._describe(a)} and {self._describe(b)}")

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

        return Family(self.log_density.subs(substitution), self.x, new_params, self.bounds,
                      discrete=self.discrete, name=name or f"{self.name} (reparametrized)",
                      param_domains=param_domains, time_limit=self.time_limit, sampler=sampler)

    # ------------------------------------------------------------------- numpy: numbers
    @cached_property
    def _log_density_fn(self) -> Callable:
        return sp.lambdify([*self.xs, *self.params], self.log_density, MODULES)

    @cached_property
    def _score_fn(self) -> Callable:
        return sp.lambdify([*self.xs, *self.params], list(self.score()), MODULES)

    @cached_property
    def _hessian_fn(self) -> Callable:
        return sp.lambdify([*self.xs, *self.params], self.hessian(), MODULES)

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
        with np.errstate(all="ignore"):
            values = self._log_density_fn(*columns, *self.theta_tuple(theta))
        return np.broadcast_to(np.asarray(values, dtype=float), columns[0].shape).copy()

    def score_numeric(self, xs: Any, theta: Theta) -> np.ndarray:
        """Scores at the points xs: an (n, k) array."""
        columns = self._columns(xs)
        values = self._score_fn(*columns, *self.theta_tuple(theta))
        return np.stack([np.broadcast_to(np.asarray(v, dtype=float), columns[0].shape)
                         for v in values], axis=-1)

    def hessian_numeric(self, xs: Any, theta: Theta) -> np.ndarray:
        """Hessians of log p at the points xs: an (n, k, k) array."""
        columns = self._columns(xs)
        point = self.theta_tuple(theta)
        k = len(self.params)
        out = np.empty(columns[0].shape + (k, k))
        matrix = self.hessian()
        for i in range(k):
            for j in range(k):
                entry = sp.lambdify([*self.xs, *self.params], matrix[i, j], MODULES)
                out[..., i, j] = np.broadcast_to(np.asarray(entry(*columns, *point), dtype=float),
                                                 columns[0].shape)
        return out

    @cached_property
    def _fisher_fn(self) -> Callable:
        return sp.lambdify(self.params, self.fisher(), MODULES)

    @cached_property
    def _kl_fn(self) -> Callable:
        return sp.lambdify([*self.params, *self._primed], self._kl_generic(), MODULES)

    def fisher_numeric(self, theta: Theta) -> np.ndarray:
        """The closed-form Fisher information evaluated at theta: a (k, k) array."""
        return np.asarray(self._fisher_fn(*self.theta_tuple(theta)), dtype=float)

    def kl_numeric(self, theta: Theta, theta_other: Theta) -> float:
        """The closed-form KL(p_theta || p_theta_other) evaluated."""
        return float(self._kl_fn(*self.theta_tuple(theta), *self.theta_tuple(theta_other)))

    # --------------------------------------------------------- quadrature: independent numbers
    def _expect_fn(self, fn: Callable, point: tuple[float, ...],
                   other: tuple[float, ...] | None = None) -> float:
        """E_theta[fn(x...)] by quadrature or summation; fn takes the coordinates of x.

        For a 1-D integral the range is split at the mode of p_theta (and of p_other if given)."""
        def density(*coords: Any) -> Any:
            with np.errstate(all="ignore"):
                return np.exp(self._log_density_fn(*coords, *point))

        bounds = [(float(lo), float(hi)) for lo, hi in self.bounds]

        def weighted(*coords: Any) -> Any:
            p = density(*coords)
            with np.errstate(all="ignore"):
                value = np.where(p > 0, np.asarray(fn(*coords), dtype=float) * p, 0.0)
            return value if np.ndim(value) else float(value)

        if self.discrete:
            if len(bounds) != 1:
                raise DerivationError(f"{self.name}: sums over vector discrete variables are "
                                      "not supported")
            return quadrature.sum_discrete(weighted, density, bounds[0])
        if len(bounds) == 1:
            extra = () if other is None else (quadrature._centre(
                lambda t: self._log_density_fn(t, *other), *bounds[0]),)
            return quadrature.integrate_1d(
                weighted, lambda t: self._log_density_fn(t, *point), bounds[0], extra)
        return quadrature.integrate_nd(weighted, bounds)

    def expect(self, expr: sp.Expr, theta: Theta) -> float:
        """E_theta[expr] by quadrature (or summation), expr a sympy expression in x and theta."""
        point = self.theta_tuple(theta)
        function = sp.lambdify([*self.xs, *self.params], sp.sympify(expr), MODULES)
        return self._expect_fn(lambda *c: function(*c, *point), point)

    def check_normalised(self, theta: Theta) -> None:
        """Raise NormalisationError unless p(. | theta) integrates (sums) to one."""
        point = self.theta_tuple(theta)
        try:
            with np.errstate(all="ignore"):
                total = self._expect_fn(lambda *c: np.ones_like(np.asarray(c[0], dtype=float)),
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
        return np.array([self._expect_fn(lambda *c, i=i: self._score_fn(*c, *point)[i], point)
                         for i in range(len(self.params))])

    def fisher_by_quadrature(self, theta: Theta, form: str = "score") -> np.ndarray:
        """F(theta) by quadrature: E[s s^T] (form="score") or -E[Hessian] (form="hessian")."""
        point = self.theta_tuple(theta)
        k = len(self.params)
        out = np.empty((k, k))
        hessian = self.hessian()
        for i in range(k):
            for j in range(i, k):
                if form == "score":
                    def entry(*c: Any, i: int = i, j: int = j) -> Any:
                        s = self._score_fn(*c, *point)
                        return s[i] * s[j]
                elif form == "hessian":
                    if hessian[i, j].has(sp.DiracDelta):
                        raise DerivationError(
                            f"{self.name}: the Hessian of log p contains a Dirac delta (log p is "
                            "not twice differentiable in theta); quadrature cannot integrate it, "
                            "use the score form")
                    h_ij = sp.lambdify([*self.xs, *self.params], -hessian[i, j], MODULES)

                    def entry(*c: Any, h_ij: Callable = h_ij) -> Any:
                        return h_ij(*c, *point) + 0.0 * c[0]
                else:
                    raise ValueError(f"form must be 'score' or 'hessian', got {form!r}")
                out[i, j] = out[j, i] = self._expect_fn(entry, point)
        return out

    def kl_by_quadrature(self, theta: Theta, theta_other: Theta) -> float:
        """KL(p_theta || p_other) by quadrature of p_theta log(p_theta / p_other)."""
        point, other = self.theta_tuple(theta), self.theta_tuple(theta_other)
        return self._expect_fn(lambda *c: self._log_density_fn(*c, *point)
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
        from . import sampling  # local: scipy's samplers are only needed here

        if self.vector_x:
            raise FamilySpecError(f"{self.name}: no automatic sampler for a vector variable; "
                                  "pass sampler= to Family")
        if self.discrete:
            return sampling.inverse_cdf_discrete(
                lambda k: np.exp(self._log_density_fn(k, *point)),
                (float(self.bounds[0][0]), float(self.bounds[0][1])), int(n), rng)
        return sampling.numerical_inversion(
            lambda t: self._log_density_fn(t, *point),
            (float(self.bounds[0][0]), float(self.bounds[0][1])), int(n), rng)


def _assert_close(closed: np.ndarray, numeric: np.ndarray, what: str) -> None:
    scale = max(1.0, float(np.max(np.abs(numeric))))
    if not np.all(np.isfinite(closed)):
        raise DerivationError(f"closed form is not finite for the {what}")
    error = float(np.max(np.abs(closed - numeric)))
    if error > CROSS_CHECK_RTOL * scale:
        raise DerivationError(f"closed form disagrees with quadrature for the {what} "
                              f"(closed {np.array2string(closed, precision=6)}, quadrature "
                              f"{np.array2string(numeric, precision=6)})")


# Strategies run in a worker process (module-level so they can be handed to it).
def _fisher_by_form(family: Family) -> sp.Matrix | None:
    form = symbolic.exponential_form(family._work(family.log_density), family._wxs,
                                     family._wparams)
    if form is None:
        return None
    fisher = symbolic.fisher_from_form(form, family._wparams)
    return None if fisher is None else family._unwork(fisher)


def _location_shift(family: Family) -> dict:
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


def _fisher_by_integration(family: Family, shift: bool = False) -> sp.Matrix | None:
    log_density = family._work(family.log_density)
    density = sp.exp(log_density)
    score = [sp.diff(log_density, p) for p in family._wparams]
    bounds = [tuple(b) for b in family.bounds]
    substitution = _location_shift(family) if shift else {}
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


def _kl_by_form(family: Family) -> sp.Expr | None:
    form = symbolic.exponential_form(family._work(family.log_density), family._wxs,
                                     family._wparams)
    if form is None:
        return None
    primed = [family._work(p) for p in family._primed]
    kl = symbolic.kl_from_form(form, family._wparams, primed)
    return None if kl is None else family._unwork(_tidy_kl(kl))


def _tidy_kl(kl: sp.Expr) -> sp.Expr:
    """Logs split and terms expanded (valid under the working symbols' assumptions): a form that
    reads term by term and that sympy's series expansion handles quickly."""
    return sp.expand(sp.expand_log(kl))


def _kl_by_integration(family: Family) -> sp.Expr:
    log_density = family._work(family.log_density)
    swap = dict(zip(family._wparams, family._primed, strict=True))
    integrand = sp.simplify(sp.exp(log_density) * (log_density - log_density.xreplace(swap)))
    bounds = [tuple(b) for b in family.bounds]
    return family._unwork(_tidy_kl(symbolic.expectation(integrand, family._wxs, bounds,
                                                         family.discrete)))

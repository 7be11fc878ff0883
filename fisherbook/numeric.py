"""Numbers from sympy expressions that are never silently wrong.

Floats first (numpy and scipy), then mpmath at higher precision where floats fail: an entry that
comes out NaN or infinite is recomputed in mpmath, and a closed form evaluated at one parameter
point is compared with its mpmath value (catastrophic cancellation near a removable singularity
shows as a disagreement). Also here: the points where an integrand is not smooth (kinks, branch
switches) and the set where a density is positive, both located numerically.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import mpmath
import numpy as np
import sympy as sp
from scipy import optimize, special

from .errors import DerivationError

#: Modules for lambdify, scipy.special first (binomial, factorial, loggamma, polygamma, bessel).
MODULES = ["scipy", "numpy"]
#: Digits of the mpmath evaluations that check a float evaluation.
PRECISE_DIGITS = 40
#: Relative agreement asked of a float closed form with its mpmath value.
EVALUATION_RTOL = 1e-9
#: At most this many non-finite entries of one call are recomputed in mpmath.
MAX_RECOMPUTED = 20000
#: Functions whose argument marks a point where an expression is not smooth.
NONSMOOTH = (sp.Abs, sp.sign, sp.Heaviside, sp.Max, sp.Min, sp.Piecewise, sp.DiracDelta,
             sp.floor, sp.ceiling)


def _numeric_derivative(derivative: sp.Derivative) -> sp.Expr:
    """An unevaluated Derivative (of zeta, say) as a function mpmath differentiates numerically."""
    variables = sorted(derivative.expr.free_symbols, key=lambda s: s.name)
    inner = sp.lambdify(variables, derivative.expr, "mpmath")
    orders = [dict(derivative.variable_count).get(v, 0) for v in variables]

    def value(*args: Any) -> float:
        points = [mpmath.mpf(float(a)) for a in args]
        with mpmath.workdps(30):
            result = mpmath.diff(inner, points if len(points) > 1 else points[0],
                                 orders if len(orders) > 1 else orders[0])
        return float(mpmath.re(result))

    name = f"numeric_derivative_{abs(hash(sp.srepr(derivative))) % 10**8}"
    function = sp.Function(name)
    function._imp_ = staticmethod(np.vectorize(value, otypes=[float]))
    return function(*variables)


def numeric_ready(expr: sp.Expr) -> sp.Expr:
    """``expr`` with unevaluated derivatives replaced by numeric ones (lambdify cannot print them)
    and KroneckerDelta(a, b) written as a Piecewise (lambdify prints it as a Python ``if``, which
    fails on arrays)."""
    if expr.has(sp.KroneckerDelta):
        expr = expr.replace(sp.KroneckerDelta,
                            lambda a, b, *_: sp.Piecewise((1, sp.Eq(a, b)), (0, True)))
    derivatives = list(expr.atoms(sp.Derivative))
    if not derivatives:
        return expr
    return expr.xreplace({d: _numeric_derivative(d) for d in derivatives})


def _refuse_unprintable(expr: sp.Expr, what: str) -> None:
    if expr.has(sp.Integral, sp.Sum):
        raise DerivationError(f"cannot evaluate {what} numerically: it contains an unevaluated "
                              "integral or sum")
    deltas = expr.atoms(sp.DiracDelta)
    if deltas:
        raise DerivationError(f"cannot evaluate {what} numerically: it contains the Dirac delta "
                              f"{sorted(map(str, deltas))[0]} (a kink of log p)")


def lambdify_checked(args: Sequence[sp.Symbol], expr: Any, what: str,
                     modules: Any = None) -> Callable:
    """lambdify, with printer failures and unknown names turned into DerivationError naming
    ``what``."""
    expressions = expr if isinstance(expr, (list, tuple)) else [expr]
    ready = []
    for e in expressions:
        e = numeric_ready(sp.sympify(e))
        _refuse_unprintable(e, what)
        ready.append(e)
    target = ready if isinstance(expr, (list, tuple)) else ready[0]
    try:
        function = sp.lambdify(list(args), target, MODULES if modules is None else modules)
    except Exception as error:  # sympy printers raise PrintMethodNotImplementedError and others
        raise DerivationError(f"cannot evaluate {what} numerically: {type(error).__name__}: "
                              f"{str(error).splitlines()[0] if str(error) else ''}") from error

    def checked(*values: Any) -> Any:
        try:
            return function(*values)
        except (NameError, TypeError, AttributeError) as error:
            raise DerivationError(f"cannot evaluate {what} numerically: {error}") from error

    return checked


def log_space(expr: sp.Expr) -> sp.Expr:
    """``expr`` with gamma and factorial written as exp(loggamma) and exponentials combined, so
    that exp(k log(lam) - lam) / k! does not overflow as (huge) / (huge) in floats."""
    rewritten = expr.replace(sp.factorial, lambda z: sp.exp(_LOG_GAMMA(z + 1)))
    rewritten = rewritten.replace(sp.gamma, lambda z: sp.exp(_LOG_GAMMA(z)))
    return sp.powsimp(rewritten, combine="exp", deep=True)


# log Gamma that sympy does not fold back into gamma (exp(loggamma(z)) evaluates to gamma(z))
_LOG_GAMMA = sp.Function("log_gamma_stable")
_LOG_GAMMA._imp_ = staticmethod(special.gammaln)


class Evaluator:
    """A list of sympy expressions evaluated in floats on arrays; entries that come out NaN or
    infinite (overflow, 0 * inf, log of an underflowed sum) are recomputed in mpmath.

    ``keep_minus_inf`` leaves -inf alone (a log density that is -inf outside the support)."""

    def __init__(self, args: Sequence[sp.Symbol], expressions: Sequence[sp.Expr], what: str,
                 *, keep_minus_inf: bool = False) -> None:
        self.args = list(args)
        self.expressions = [sp.sympify(e) for e in expressions]
        self.what = what
        self.keep_minus_inf = keep_minus_inf
        self._fast = lambdify_checked(self.args, self.expressions, what)
        self._stable: Callable | None = None
        self._precise: Callable | None = None

    def stable(self) -> Callable:
        """The float version in log space (see ``log_space``), built on first use."""
        if self._stable is None:
            self._stable = lambdify_checked(self.args, [log_space(e) for e in self.expressions],
                                            self.what)
        return self._stable

    def precise(self) -> Callable:
        """The mpmath version (built on first use)."""
        if self._precise is None:
            self._precise = lambdify_checked(self.args, self.expressions, self.what,
                                             modules=["mpmath"])
        return self._precise

    def __call__(self, *values: Any) -> list[np.ndarray]:
        if all(isinstance(v, (float, np.floating)) for v in values):  # scalar fast path
            with np.errstate(all="ignore"):
                raw = self._fast(*(np.float64(v) for v in values))
            try:
                out = [float(r) for r in raw]
            except (TypeError, ValueError):
                out = None
            if out is not None and all(np.isfinite(r) or (self.keep_minus_inf and r == -np.inf)
                                       for r in out):
                return [np.float64(r) for r in out]
        arrays = [np.asarray(v, dtype=float) for v in values]
        shape = np.broadcast_shapes(*(a.shape for a in arrays)) if arrays else ()
        with np.errstate(all="ignore"):
            raw = self._fast(*arrays)
        out = [np.array(np.broadcast_to(np.asarray(r, dtype=float), shape)) for r in raw]
        def failed(column: np.ndarray) -> np.ndarray:
            bad = np.isnan(column) | (column == np.inf)
            return bad if self.keep_minus_inf else bad | (column == -np.inf)

        if any(failed(column).any() for column in out):
            with np.errstate(all="ignore"):
                again = self.stable()(*arrays)
            for column, redo in zip(out, again, strict=True):
                redo = np.broadcast_to(np.asarray(redo, dtype=float), shape)
                mask = failed(column) & ~failed(redo)
                column[mask] = redo[mask]
        for index, column in enumerate(out):
            positions = np.argwhere(failed(column))
            for position in positions[:MAX_RECOMPUTED]:
                point = [float(np.broadcast_to(a, shape)[tuple(position)]) for a in arrays]
                column[tuple(position)] = self.precise_entry(index, point)
        return out

    def precise_entry(self, index: int, point: Sequence[float]) -> float:
        """Entry ``index`` at ``point`` in mpmath (NaN where even mpmath has no value)."""
        value = self.precise_value(index, point)
        return np.nan if value is None else float(value)

    def precise_value(self, index: int, point: Sequence[float]) -> Any:
        """Entry ``index`` at ``point`` as an mpmath number (beyond the float range, where a
        log density of -1e400 is still not -inf), None where mpmath has no real value."""
        with mpmath.workdps(PRECISE_DIGITS):
            try:
                value = self.precise()(*[mpmath.mpf(v) for v in point])[index]
                value = mpmath.mpmathify(value)
                if isinstance(value, mpmath.mpc):
                    if abs(value.imag) > 1e-12 * abs(value):
                        return None
                    value = value.real
                return None if mpmath.isnan(value) else value
            except (ZeroDivisionError, ValueError, OverflowError, DerivationError, TypeError):
                return None


def closed_form_value(function: Callable, precise: Callable, point: Sequence[float],
                      ) -> np.ndarray | None:
    """A closed form at one point, in floats if they agree with mpmath at 40 and 80 digits, else
    the mpmath value; None when mpmath disagrees with itself or has no finite value there (a
    removable singularity hit exactly, say): then the caller falls back to quadrature."""
    with np.errstate(all="ignore"):
        fast = np.asarray(function(*point), dtype=float)

    def at(digits: int) -> np.ndarray | None:
        with mpmath.workdps(digits):
            try:
                raw = precise(*[mpmath.mpf(v) for v in point])
            except (ZeroDivisionError, ValueError, OverflowError, DerivationError, TypeError):
                return None
        try:
            values = np.array([complex(v) for v in np.ravel(np.asarray(raw, dtype=object))])
        except (TypeError, ValueError):
            return None
        if np.any(np.abs(values.imag) > 1e-12 * np.maximum(1.0, np.abs(values.real))):
            return None
        values = values.real.reshape(fast.shape)
        return values if np.all(np.isfinite(values)) else None

    medium = at(PRECISE_DIGITS)
    if medium is None:
        return None
    scale = np.maximum(np.abs(medium), 1e-300)
    if np.all(np.isfinite(fast)) and np.all(np.abs(fast - medium) <= EVALUATION_RTOL * scale
                                            + 1e-300):
        return fast
    high = at(2 * PRECISE_DIGITS)
    if high is None or np.any(np.abs(high - medium) > 1e-14 * np.maximum(np.abs(high), 1e-300)):
        return None
    return high


def switching_functions(expr: sp.Expr, xs: Sequence[sp.Symbol]) -> list[sp.Expr]:
    """The g(x, theta) whose zeros are where ``expr`` may not be smooth in x: arguments of abs,
    sign, Heaviside, a - b of max / min, lhs - rhs of every Piecewise condition."""
    out: list[sp.Expr] = []
    for atom in sp.preorder_traversal(expr):
        if isinstance(atom, (sp.Abs, sp.sign, sp.Heaviside, sp.DiracDelta)):
            out.append(atom.args[0])
        elif isinstance(atom, (sp.Max, sp.Min)):
            out.extend(a - b for a, b in zip(atom.args[:-1], atom.args[1:], strict=True))
        elif isinstance(atom, sp.Piecewise):
            for _branch, condition in atom.args:
                if isinstance(condition, sp.Basic):
                    out.extend(r.lhs - r.rhs for r in condition.atoms(sp.core.relational.Relational))
    return [g for g in out if g.has(*xs)]


def kinks_in_x(expr: sp.Expr, xs: Sequence[sp.Symbol], params: Sequence[sp.Symbol]
               ) -> list[sp.Expr]:
    """Non-smooth pieces of ``expr`` (abs, Piecewise, max, ...) whose switch depends on both x and
    theta: there the Hessian in theta has a Dirac term that pointwise derivatives miss."""
    return [g for g in switching_functions(expr, xs) if g.has(*params)]


def zeros_on_grid(functions: Sequence[Callable[[np.ndarray], np.ndarray]], grid: np.ndarray
                  ) -> list[float]:
    """Zeros of each 1-D function located on ``grid`` (sign changes refined by brentq)."""
    zeros: list[float] = []
    for g in functions:
        with np.errstate(all="ignore"):
            values = np.asarray(g(grid), dtype=float) * np.ones_like(grid)
        finite = np.isfinite(values)
        zeros.extend(grid[finite & (values == 0)].tolist())
        changes = np.nonzero(finite[:-1] & finite[1:] & (np.sign(values[:-1]) * np.sign(values[1:])
                                                        < 0))[0]
        for i in changes:
            try:
                zeros.append(float(optimize.brentq(lambda t, g=g: float(g(np.float64(t))),
                                                   grid[i], grid[i + 1], xtol=1e-14)))
            except (ValueError, RuntimeError):
                zeros.append(float(0.5 * (grid[i] + grid[i + 1])))
    return sorted(set(zeros))


def support_grid(lower: float, upper: float, discrete: bool, size: int = 801) -> np.ndarray:
    """Points spread over a support (log-spaced towards infinite ends) for numeric scans."""
    if discrete:
        start = lower if np.isfinite(lower) else -10.0**6
        stop = upper if np.isfinite(upper) else start + 10.0**7
        near = np.arange(start, min(stop, start + 400) + 1)
        far = np.unique(np.round(start + np.logspace(2.6, np.log10(max(stop - start, 400)), 60)))
        return np.unique(np.concatenate([near, far[far <= stop]]))
    offsets = np.logspace(-4, 5, size // 2)
    if np.isfinite(lower) and np.isfinite(upper):
        return lower + (upper - lower) * np.linspace(1e-4, 1 - 1e-4, size)
    if np.isfinite(lower):
        return lower + offsets
    if np.isfinite(upper):
        return upper - offsets[::-1]
    return np.concatenate([-offsets[::-1], [0.0], offsets])

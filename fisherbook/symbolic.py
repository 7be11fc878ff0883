"""Closed forms in sympy: the exponential-family route, direct integration, and time limits.

For log p = eta(theta) . T(x) - A(theta) + log h(x), the score has zero mean, so
J^T E[T] = grad A (J = d eta / d theta) gives E[T] with no integral; then
F = Hess A - sum_k E[T_k] Hess eta_k and KL(theta, theta') = (eta - eta') . E_theta[T] - A + A'.
Anything that is not of that form is integrated (or summed) directly, under a time limit.
"""

from __future__ import annotations

import multiprocessing
import pickle
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import sympy as sp

from .errors import DerivationError

#: Seconds one derivation strategy may run before it is stopped.
DEFAULT_TIME_LIMIT = 20.0


@dataclass(frozen=True)
class ExponentialForm:
    """log p = sum_k eta_k(theta) T_k(x) - A(theta) + log h(x)."""

    natural_parameters: tuple[sp.Expr, ...]
    statistics: tuple[sp.Expr, ...]
    log_partition: sp.Expr
    log_base_measure: sp.Expr


def exponential_form(log_density: sp.Expr, xs: Sequence[sp.Symbol],
                     params: Sequence[sp.Symbol]) -> ExponentialForm | None:
    """Split log p into eta(theta) . T(x) - A(theta) + log h(x), or None if a term mixes x and theta
    in a way that does not factor (like abs(x - mu) or log(1 + (x - mu)^2))."""
    expanded = sp.expand(sp.expand_log(log_density, force=True))
    by_statistic: dict[sp.Expr, sp.Expr] = {}
    log_partition, log_base = sp.Integer(0), sp.Integer(0)
    for term in sp.Add.make_args(expanded):
        has_x, has_theta = term.has(*xs), term.has(*params)
        if not has_x:
            if has_theta:
                log_partition -= term
            else:
                log_base += term
            continue
        if not has_theta:
            log_base += term
            continue
        theta_part, x_part = term.as_independent(*xs, as_Add=False)
        if x_part.has(*params) or theta_part.has(*xs):
            return None
        by_statistic[x_part] = by_statistic.get(x_part, sp.Integer(0)) + theta_part
    if not by_statistic:
        return None
    statistics = tuple(by_statistic)
    return ExponentialForm(tuple(by_statistic[t] for t in statistics), statistics,
                           log_partition, log_base)


def mean_statistics(form: ExponentialForm, params: Sequence[sp.Symbol]) -> sp.Matrix | None:
    """E[T] from E[score] = 0: solve J^T E[T] = grad A; None unless J is square and invertible."""
    eta = sp.Matrix(form.natural_parameters)
    if eta.shape[0] != len(params):
        return None
    jacobian = eta.jacobian(list(params))
    if sp.simplify(jacobian.det()) == 0:
        return None
    grad_a = sp.Matrix([sp.diff(form.log_partition, p) for p in params])
    solution = jacobian.T.LUsolve(grad_a)
    return solution.applyfunc(sp.simplify)


def fisher_from_form(form: ExponentialForm, params: Sequence[sp.Symbol]) -> sp.Matrix | None:
    """F = Hess A - sum_k E[T_k] Hess eta_k (the negative expected Hessian of log p)."""
    mean_t = mean_statistics(form, params)
    if mean_t is None:
        return None
    fisher = sp.hessian(form.log_partition, list(params))
    for eta_k, m_k in zip(form.natural_parameters, mean_t, strict=True):
        fisher -= m_k * sp.hessian(eta_k, list(params))
    return fisher.applyfunc(sp.simplify)


def kl_from_form(form: ExponentialForm, params: Sequence[sp.Symbol],
                 others: Sequence[sp.Symbol]) -> sp.Expr | None:
    """KL(theta || theta') = (eta(theta) - eta(theta')) . E_theta[T] - A(theta) + A(theta')."""
    mean_t = mean_statistics(form, params)
    if mean_t is None:
        return None
    swap = dict(zip(params, others, strict=True))
    kl = -form.log_partition + form.log_partition.xreplace(swap)
    for eta_k, m_k in zip(form.natural_parameters, mean_t, strict=True):
        kl += (eta_k - eta_k.xreplace(swap)) * m_k
    return sp.simplify(kl)


def expectation(integrand: sp.Expr, xs: Sequence[sp.Symbol],
                bounds: Sequence[tuple[sp.Expr, sp.Expr]], discrete: bool,
                allow_conditions: bool = True) -> sp.Expr:
    """Integral (or sum, if discrete) of integrand over the support; raise if it stays unevaluated.

    With ``allow_conditions=False`` a Piecewise answer (convergence conditions) is refused too."""
    result = integrand
    for x, (lower, upper) in zip(xs, bounds, strict=True):
        if discrete:
            result = sp.summation(result, (x, lower, upper))
        else:
            result = sp.integrate(result, (x, lower, upper))
    result = sp.simplify(sp.piecewise_fold(result))
    if result.has(sp.Integral, sp.Sum) and not isinstance(result, sp.Piecewise):
        raise DerivationError("sympy left the integral unevaluated")
    if isinstance(result, sp.Piecewise):
        if not allow_conditions:
            raise DerivationError("sympy's answer holds only under conditions (Piecewise)")
        result = resolve_conditions(result)
    branches = result.args if isinstance(result, sp.Piecewise) else ((result, True),)
    if any(b.has(sp.nan, sp.zoo, sp.oo, -sp.oo) for b, _c in branches if b is not sp.nan):
        raise DerivationError("sympy returned a non-finite expression")
    return result


def resolve_conditions(result: sp.Piecewise) -> sp.Expr:
    """A Piecewise answer made honest: branches whose condition is False are dropped, a branch
    whose condition is True ends it, and a branch sympy could not evaluate (an Integral or Sum
    left behind) becomes NaN, so that evaluating where its condition fails gives NaN, never a
    number from another branch. Every branch sympy did evaluate is kept: a Piecewise in the
    parameters is a per-branch answer, checked numerically in every branch by the caller.
    (Conditions that hold on the whole parameter domain are removed by the caller, which knows
    the domain.)"""
    pieces = []
    for expr, condition in result.args:
        condition = sp.simplify(condition) if isinstance(condition, sp.Basic) else condition
        if condition is sp.false or condition is False:
            continue
        if expr.has(sp.Integral, sp.Sum, sp.Piecewise) and not isinstance(expr, sp.Piecewise):
            expr = sp.nan
        pieces.append((expr, condition))
        if condition is sp.true or condition is True:
            break
    if not pieces or all(expr is sp.nan for expr, _c in pieces):
        raise DerivationError("sympy returned a conditional (Piecewise) result it could not "
                              "resolve")
    if pieces[-1][1] is not sp.true and pieces[-1][1] is not True:
        pieces.append((sp.nan, True))
    if len(pieces) == 1:
        return pieces[0][0]
    return sp.Piecewise(*pieces)


def _worker(connection: Any, func: Callable, args: tuple) -> None:
    try:
        payload = (True, func(*args))
        connection.send_bytes(pickle.dumps(payload))
    except BaseException as error:  # noqa: BLE001 - reported to the parent, never swallowed
        connection.send_bytes(pickle.dumps((False, f"{type(error).__name__}: {error}")))
    finally:
        connection.close()


def run_with_time_limit(func: Callable, *args: Any, seconds: float = DEFAULT_TIME_LIMIT) -> Any:
    """Run ``func(*args)`` in a forked worker; raise DerivationError if it takes over ``seconds``."""
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_worker, args=(sender, func, args), daemon=True)
    process.start()
    sender.close()
    try:
        if not receiver.poll(seconds):
            raise DerivationError(f"did not finish within the time limit of {seconds:g} s")
        try:
            ok, payload = pickle.loads(receiver.recv_bytes())
        except EOFError as error:
            raise DerivationError("the sympy worker process died without an answer") from error
    finally:
        if process.is_alive():
            process.kill()
        process.join()
        receiver.close()
    if not ok:
        raise DerivationError(payload)
    return payload

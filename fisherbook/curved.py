"""Curved exponential families: derive the full family once, pull its Fisher back.

log p = eta(theta) . T(x) - A(theta) + log h(x) with more statistics than parameters (m > k)
embeds theta in the full family p_eta(x) = h(x) exp(eta . T(x) - A(eta)), whose log partition
A(eta) = log int h exp(eta . T) is one integral (or sum). Then Cov[T] = Hess A and::

    F(theta) = J^T Hess A(eta(theta)) J,
    J = d eta / d theta  (m x k),
    KL(theta || theta') = A(eta') - A(eta)
                          - (eta' - eta) . grad A(eta),

the last the Bregman form.

Also here: the pull-back through a declared embedding, F(theta) = J^T F_parent(phi(theta)) J
for a family that is another family with its parameters replaced by phi(theta).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import sympy as sp

from . import symbolic

if TYPE_CHECKING:
    from .family import Family


def _natural_symbols(family: Family, eta: tuple[sp.Expr, ...]) -> list[tuple[int, sp.Symbol]]:
    """(sign, u) per natural parameter, eta_j = sign u_j with u_j > 0 where eta_j(theta) has one
    sign at every coverage point (sympy integrates exp(-u x^2) for u > 0, not for a real eta)."""
    functions = sp.lambdify(family._wparams, list(eta), "numpy")
    values = np.array([np.asarray(functions(*q), dtype=float) * np.ones(len(eta))
                       for q in family.coverage_points()])
    out = []
    for j in range(len(eta)):
        if np.all(values[:, j] > 0):
            out.append((1, sp.Symbol(f"u{j + 1}", positive=True)))
        elif np.all(values[:, j] < 0):
            out.append((-1, sp.Symbol(f"u{j + 1}", positive=True)))
        else:
            out.append((1, sp.Symbol(f"u{j + 1}", real=True)))
    return out


def _kernel(exponent: sp.Expr) -> sp.Expr:
    """exp(exponent) as a product, exp(c log g) written g^c (the form sympy integrates)."""
    out = sp.Integer(1)
    for term in sp.Add.make_args(sp.expand(exponent)):
        logs = [f for f in sp.Mul.make_args(term) if isinstance(f, sp.log)]
        out *= logs[0].args[0] ** (term / logs[0]) if len(logs) == 1 else sp.exp(term)
    return out


@dataclass(frozen=True)
class FullFamily:
    """The full family of a curved one: eta_j = sign_j u_j, log partition A in the u_j."""

    form: symbolic.ExponentialForm
    signs: tuple[int, ...]
    symbols: tuple[sp.Symbol, ...]
    log_partition: sp.Expr

    def on_curve(self, swap: dict | None = None) -> dict[sp.Symbol, sp.Expr]:
        """u_j = sign_j eta_j(theta) (theta swapped for theta' by ``swap``)."""
        return {u: sign * (eta.xreplace(swap) if swap else eta) for sign, u, eta in
                zip(self.signs, self.symbols, self.form.natural_parameters, strict=True)}


def full_family(family: Family) -> FullFamily | None:
    """The full family with A(eta) = log int h exp(eta . T) integrated (or summed) once; None
    unless log p is a curved exponential family (more statistics than parameters)."""
    form = symbolic.exponential_form(family._work(family.log_density), family._wxs,
                                     family._wparams)
    if form is None or len(form.statistics) <= len(family._wparams):
        return None
    pairs = _natural_symbols(family, form.natural_parameters)
    exponent = form.log_base_measure + sum(sign * u * t for (sign, u), t in
                                           zip(pairs, form.statistics, strict=True))
    bounds = [tuple(b) for b in family.bounds]
    normaliser = symbolic.expectation(_kernel(exponent), family._wxs, bounds, family.discrete)
    normaliser = sp.simplify(sp.unpolarify(normaliser))
    return FullFamily(form, tuple(s for s, _u in pairs), tuple(u for _s, u in pairs),
                      sp.log(normaliser))


def fisher_by_curved_form(family: Family) -> sp.Matrix | None:
    """F(theta) = J^T Hess A(eta(theta)) J for a curved exponential family (else None)."""
    full = full_family(family)
    if full is None:
        return None
    signs = sp.diag(*full.signs)  # d u / d eta
    covariance = (signs * sp.hessian(full.log_partition, full.symbols) * signs).xreplace(
        full.on_curve())
    jacobian = sp.Matrix(full.form.natural_parameters).jacobian(family._wparams)
    fisher = (jacobian.T * covariance * jacobian).applyfunc(sp.simplify)
    return family._unwork(fisher)


def kl_by_curved_form(family: Family) -> sp.Expr | None:
    """KL(theta || theta') as the Bregman divergence of the full family's A (else None)."""
    full = full_family(family)
    if full is None:
        return None
    primed = [family._work(p) for p in family._primed]
    here, there = full.on_curve(), full.on_curve(dict(zip(family._wparams, primed, strict=True)))
    a = full.log_partition
    # (eta' - eta) . grad_eta A = (u' - u) . grad_u A, since eta_j = sign_j u_j
    kl = a.xreplace(there) - a.xreplace(here) - sum(
        (there[u] - here[u]) * sp.diff(a, u).xreplace(here) for u in full.symbols)
    return family._unwork(sp.expand(sp.expand_log(sp.simplify(kl), force=True)))


def fisher_by_embedding(family: Family) -> sp.Matrix | None:
    """F(theta) = J^T F_parent(phi(theta)) J for a family declared as parent o phi (else None)."""
    if family.embedding is None:
        return None
    parent, substitution = family.embedding
    phi = [sp.sympify(substitution.get(p, p)) for p in parent.params]
    jacobian = sp.Matrix(phi).jacobian(list(family.params))
    parent_fisher = parent.fisher().xreplace(dict(zip(parent.params, phi, strict=True)))
    return (jacobian.T * parent_fisher * jacobian).applyfunc(sp.simplify)


def kl_by_embedding(family: Family) -> sp.Expr | None:
    """KL(theta || theta') = KL_parent(phi(theta) || phi(theta')) (else None)."""
    if family.embedding is None:
        return None
    parent, substitution = family.embedding
    phi = [sp.sympify(substitution.get(p, p)) for p in parent.params]
    swap = dict(zip(family.params, family._primed, strict=True))
    values = {p: e for p, e in zip(parent.params, phi, strict=True)}
    values.update({q: e.xreplace(swap) for q, e in zip(parent._primed, phi, strict=True)})
    return sp.simplify(parent._kl_generic().xreplace(values))

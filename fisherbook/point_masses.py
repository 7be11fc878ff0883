"""Point masses on a discrete support: zero-inflated (and other finitely inflated) families.

A pmf written with cases at finitely many points c (Eq(x, c) in a Piecewise, KroneckerDelta(x, c))
and one generic law g elsewhere has::

    F(theta) = sum_c s_c s_c^T p_c
               + sum_{x in support} s_g s_g^T p_g
               - sum_c (s_g s_g^T p_g at x = c),

the middle sum being that of an ordinary family (sympy sums it); each point is exact.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sympy as sp

from . import symbolic

if TYPE_CHECKING:
    from .family import Family


def special_points(log_density: sp.Expr, x: sp.Symbol) -> list[sp.Integer]:
    """The integers c that a condition Eq(x, c), Ne(x, c) or a KroneckerDelta(x, c) singles out."""
    points = set()
    for atom in log_density.atoms(sp.Eq, sp.Ne, sp.KroneckerDelta):
        left, right = atom.args
        other = right if left == x else left if right == x else None
        if other is not None and other.is_Integer:
            points.add(other)
    return sorted(points)


def generic_law(log_density: sp.Expr, x: sp.Symbol) -> sp.Expr:
    """log p with every point case switched off (x is none of the special points)."""
    off = {}
    for atom in log_density.atoms(sp.Eq, sp.Ne, sp.KroneckerDelta):
        if x in atom.args:
            off[atom] = (sp.false if isinstance(atom, sp.Eq) else sp.true if isinstance(atom, sp.Ne)
                         else sp.Integer(0))
    return sp.piecewise_fold(log_density.xreplace(off))


def _outer_score(log_density: sp.Expr, params: list[sp.Symbol]) -> sp.Matrix:
    score = sp.Matrix([sp.diff(log_density, p) for p in params])
    return score * score.T


def _split(family: Family) -> tuple[sp.Symbol, list[sp.Symbol], sp.Expr, sp.Expr, list] | None:
    """(x, params, log p, generic log p, special points in the support), or None."""
    if not family.discrete or family.vector_x:
        return None
    x, params = family._wxs[0], family._wparams
    log_density = family._work(family.log_density)
    lower, upper = family.bounds[0]
    points = [c for c in special_points(log_density, x) if bool(lower <= c) and bool(c <= upper)]
    generic = generic_law(log_density, x)
    if not points or generic.has(sp.Piecewise):
        return None
    return x, params, log_density, generic, points


def _sum_over_support(family: Family, term: sp.Expr, x: sp.Symbol) -> sp.Expr:
    return symbolic.expectation(sp.expand(term), [x], [tuple(family.bounds[0])], True)


def fisher_by_point_masses(family: Family) -> sp.Matrix | None:
    """F(theta) split into the special points and the generic law (None without point cases)."""
    split = _split(family)
    if split is None:
        return None
    x, params, log_density, generic, points = split
    k = len(params)
    fisher = sp.zeros(k, k)
    generic_outer = _outer_score(generic, params) * sp.exp(generic)
    for c in points:
        at_c = sp.simplify(log_density.xreplace({x: c}))
        fisher += _outer_score(at_c, params) * sp.exp(at_c)
        fisher -= generic_outer.xreplace({x: c})
    for i in range(k):
        for j in range(i, k):
            total = _sum_over_support(family, generic_outer[i, j], x)
            fisher[i, j] += total
            if i != j:
                fisher[j, i] += total
    return family._unwork(fisher.applyfunc(sp.simplify))


def kl_by_point_masses(family: Family) -> sp.Expr | None:
    """KL(theta || theta') split the same way: exact at each point, summed elsewhere."""
    split = _split(family)
    if split is None:
        return None
    x, params, log_density, generic, points = split
    swap = dict(zip(params, [family._work(p) for p in family._primed], strict=True))
    generic_term = sp.exp(generic) * (generic - generic.xreplace(swap))
    kl = _sum_over_support(family, generic_term, x)
    for c in points:
        at_c = sp.simplify(log_density.xreplace({x: c}))
        kl += sp.exp(at_c) * (at_c - at_c.xreplace(swap)) - generic_term.xreplace({x: c})
    return family._unwork(sp.simplify(kl))

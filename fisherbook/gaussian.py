"""Gaussian in x: a log density quadratic in x (of any dimension) on the whole space.

log p = -x^T P x / 2 + b^T x + c is N(m, S) with S = P^-1, m = S b. No integral is needed::

    F_ij = d_i m^T P d_j m + tr(S d_i P S d_j P) / 2,
    KL(theta || theta') = [tr(P' S) + (m' - m)^T P' (m' - m) - d
                           + log det S' - log det S] / 2,

and draws come from numpy's multivariate normal (the automatic sampler for a vector x).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import sympy as sp

from .errors import FamilySpecError

if TYPE_CHECKING:
    from .family import Family


def precision_and_shift(log_density: sp.Expr, xs: Sequence[sp.Symbol]
                        ) -> tuple[sp.Matrix, sp.Matrix] | None:
    """(P, b) with log p = -x^T P x / 2 + b^T x + c, or None unless log p is quadratic in x."""
    expanded = sp.expand(log_density)
    if not expanded.is_polynomial(*xs) or sp.Poly(expanded, *xs).total_degree() != 2:
        return None
    precision = -sp.hessian(expanded, list(xs))
    if precision.has(*xs):
        return None
    at_zero = {x: 0 for x in xs}
    shift = sp.Matrix([sp.diff(expanded, x).xreplace(at_zero) for x in xs])
    return precision.applyfunc(sp.simplify), shift


def gaussian_parameters(family: Family, working: bool = True
                        ) -> tuple[sp.Matrix, sp.Matrix, sp.Matrix] | None:
    """(P, S, m) of a family that is Gaussian in x on the whole space, in the working symbols
    (or the family's own with ``working=False``); None otherwise."""
    if family.discrete or any(b != (-sp.oo, sp.oo) for b in family.bounds):
        return None
    found = precision_and_shift(family._work(family.log_density), family._wxs)
    if found is None:
        return None
    precision, shift = found
    covariance = precision.inv().applyfunc(sp.simplify)
    mean = (covariance * shift).applyfunc(sp.simplify)
    if not working:
        return tuple(family._unwork(a) for a in (precision, covariance, mean))
    return precision, covariance, mean


def fisher_by_gaussian_form(family: Family) -> sp.Matrix | None:
    """F_ij = d_i m^T P d_j m + tr(S d_i P S d_j P) / 2 (None unless Gaussian in x)."""
    found = gaussian_parameters(family)
    if found is None:
        return None
    precision, covariance, mean = found
    params = family._wparams
    k = len(params)
    fisher = sp.zeros(k, k)
    for i in range(k):
        for j in range(i, k):
            dm_i, dm_j = mean.diff(params[i]), mean.diff(params[j])
            dp_i, dp_j = precision.diff(params[i]), precision.diff(params[j])
            entry = (dm_i.T * precision * dm_j)[0, 0] + (covariance * dp_i * covariance
                                                         * dp_j).trace() / 2
            fisher[i, j] = fisher[j, i] = sp.simplify(entry)
    return family._unwork(fisher)


def kl_by_gaussian_form(family: Family) -> sp.Expr | None:
    """The Gaussian KL in the mean and covariance at theta and theta' (None unless Gaussian)."""
    found = gaussian_parameters(family)
    if found is None:
        return None
    precision, covariance, mean = found
    swap = dict(zip(family._wparams, [family._work(p) for p in family._primed], strict=True))
    precision_2, covariance_2, mean_2 = (a.xreplace(swap) for a in (precision, covariance, mean))
    gap = mean_2 - mean
    kl = ((precision_2 * covariance).trace() + (gap.T * precision_2 * gap)[0, 0] - len(mean)
          + sp.log(covariance_2.det()) - sp.log(covariance.det())) / 2
    return family._unwork(sp.expand(sp.expand_log(sp.simplify(kl), force=True)))


def sample_gaussian(family: Family, point: tuple[float, ...], n: int,
                    rng: np.random.Generator) -> np.ndarray:
    """n draws of x ~ N(m(theta), S(theta)); a FamilySpecError naming why for any other family."""
    found = gaussian_parameters(family, working=False)
    if found is None:
        raise FamilySpecError(
            f"{family.name}: no automatic sampler for a vector variable unless log p is "
            "quadratic in x on the whole space (a Gaussian, sampled exactly); inversion of a "
            "CDF does not extend to several coordinates: pass sampler= to Family")
    _precision, covariance, mean = found
    values = dict(zip(family.params, point, strict=True))
    sigma = np.array(covariance.xreplace(values).evalf(), dtype=float)
    centre = np.array(mean.xreplace(values).evalf(), dtype=float).ravel()
    return rng.multivariate_normal(centre, sigma, size=n, method="cholesky")

"""Tests of fisherbook.divergence: KL Taylor terms, KL along a line, third-order terms, finite differences."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from fisherbook import families
from fisherbook.divergence import (
    expected_loss_hessian,
    kl_along_line,
    kl_quadratic,
    kl_series,
    kl_taylor_terms,
    loglog_slope,
    score_cubed_along,
)
from fisherbook.errors import DomainError


@pytest.mark.parametrize("make", [families.poisson, families.normal, families.bernoulli,
                                  families.gamma])
def test_taylor_terms_are_zero_zero_fisher(make) -> None:
    family = make()
    terms = kl_taylor_terms(family)
    k = len(family.params)
    assert terms.value == 0
    assert terms.gradient == sp.zeros(k, 1)
    assert (terms.hessian - family.fisher()).applyfunc(sp.simplify) == sp.zeros(k, k)


def test_series_of_poisson_matches_hand_expansion() -> None:
    lam = families.poisson().symbol("lam")
    forward = kl_series(families.poisson())
    backward = kl_series(families.poisson(), reverse=True)
    # lam log(lam/(lam+d)) + d = d^2/(2 lam) - d^3/(3 lam^2) + ...
    assert [sp.simplify(c) for c in forward] == [0, 0, 1 / (2 * lam), -1 / (3 * lam**2)]
    assert sp.simplify(backward[3] + 1 / (6 * lam**2)) == 0


def test_series_of_normal_mean_is_exactly_quadratic() -> None:
    family = families.normal()
    sigma = family.symbol("sigma")
    coefficients = kl_series(family, [1, 0], order=5)
    assert coefficients[2] == 1 / (2 * sigma**2)
    assert all(c == 0 for i, c in enumerate(coefficients) if i != 2)


def test_asymmetry_is_minus_one_sixth_of_score_cubed() -> None:
    family = families.normal()
    theta = {"mu": 0.3, "sigma": 1.7}
    forward = kl_series(family, [0, 1])[3]
    backward = kl_series(family, [0, 1], reverse=True)[3]
    gap = float((forward - backward).subs(family.symbol("sigma"), 1.7))
    assert gap == pytest.approx(-score_cubed_along(family, theta, [0, 1]) / 6, rel=1e-8)


def test_along_line_matches_closed_form_and_quadratic_limit() -> None:
    family = families.poisson()
    deltas = np.array([1e-3, 0.5, 1.0])
    values = kl_along_line(family, {"lam": 2.0}, deltas)
    assert values[1] == pytest.approx(family.kl_numeric([2.0], [2.5]))
    reverse = kl_along_line(family, {"lam": 2.0}, deltas, reverse=True)
    assert reverse[2] == pytest.approx(family.kl_numeric([3.0], [2.0]))
    quadratic = kl_quadratic(family, {"lam": 2.0}, deltas)
    assert quadratic[2] == pytest.approx(0.25)
    assert values[0] == pytest.approx(quadratic[0], rel=1e-3)


def test_along_line_refuses_bad_input() -> None:
    family = families.poisson()
    with pytest.raises(DomainError, match="lam"):
        kl_along_line(family, {"lam": 1.0}, np.array([-2.0, 0.5]))
    with pytest.raises(DomainError, match="direction"):
        kl_along_line(families.normal(), {"mu": 0.0, "sigma": 1.0}, np.array([0.1]))
    with pytest.raises(DomainError, match="direction"):
        kl_along_line(families.normal(), {"mu": 0.0, "sigma": 1.0}, np.array([0.1]), [1.0])
    with pytest.raises(DomainError, match="non-zero"):
        kl_quadratic(families.normal(), {"mu": 0.0, "sigma": 1.0}, np.array([0.1]), [0, 0])
    with pytest.raises(DomainError, match="finite"):
        kl_along_line(family, {"lam": 1.0}, np.array([np.nan]))
    with pytest.raises(DomainError, match="order"):
        kl_series(family, order=-1)


def test_expected_loss_hessian_is_fisher_only_at_the_data_parameter() -> None:
    family = families.poisson()
    assert expected_loss_hessian(family, {"lam": 2.0}, {"lam": 2.0})[0, 0] == pytest.approx(0.5)
    # -d^2/dlam^2 log p = x / lam^2, whose mean under lam = 5 is 5 / 4
    assert expected_loss_hessian(family, {"lam": 2.0}, {"lam": 5.0})[0, 0] == pytest.approx(1.25)


def test_loglog_slope() -> None:
    deltas = np.geomspace(1e-3, 1e-1, 10)
    assert loglog_slope(deltas, 3.0 * deltas**3) == pytest.approx(3.0)
    assert loglog_slope(-deltas, -deltas) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="non-zero"):
        loglog_slope(deltas, np.zeros_like(deltas))
    with pytest.raises(ValueError, match="equal length"):
        loglog_slope(deltas, deltas[:-1])


def test_hessian_by_differences_is_fisher_far_from_any_data() -> None:
    from fisherbook.divergence import kl_hessian_by_differences

    normal = families.normal()
    for theta in ({"mu": -3.0, "sigma": 0.2}, {"mu": 10.0, "sigma": 5.0}):
        np.testing.assert_allclose(kl_hessian_by_differences(normal, theta),
                                   normal.fisher_numeric(theta), rtol=1e-3, atol=1e-9)
    poisson = families.poisson()
    assert kl_hessian_by_differences(poisson, {"lam": 0.2})[0, 0] == pytest.approx(5.0, rel=1e-3)
    # near the upper edge p = 1 the step shrinks with the distance to it
    bernoulli = families.bernoulli()
    assert kl_hessian_by_differences(bernoulli, {"p": 0.9})[0, 0] == pytest.approx(1 / 0.09,
                                                                                 rel=1e-3)
    with pytest.raises(DomainError, match="step"):
        kl_hessian_by_differences(poisson, {"lam": 0.2}, step=0.0)

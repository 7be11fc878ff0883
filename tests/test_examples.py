"""Tests of fisherbook.examples: log-likelihood curves, and the Uniform(0, theta) counterexample."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from fisherbook import families
from fisherbook.errors import DomainError
from fisherbook.examples import (
    expected_log_likelihood,
    leibniz_terms,
    log_likelihood_curves,
    uniform_scale_expected_log_likelihood,
    uniform_scale_log_likelihood,
    uniform_scale_scores,
)


def test_log_likelihood_curves_match_the_normal_formula() -> None:
    family = families.normal_mean(sigma=2.0)
    xs = np.array([-1.0, 0.5, 3.0])
    grid = np.linspace(-2.0, 2.0, 9)
    curves = log_likelihood_curves(family, xs, {"mu": 0.0}, grid)
    exact = -(xs[:, None] - grid[None, :]) ** 2 / 8 - np.log(2.0) - 0.5 * np.log(2 * np.pi)
    assert curves.shape == (3, 9)
    np.testing.assert_allclose(curves, exact, rtol=1e-12)


def test_log_likelihood_curves_vary_one_named_parameter() -> None:
    family = families.normal()
    grid = np.array([0.5, 1.0, 2.0])
    curves = log_likelihood_curves(family, [1.0], {"mu": 1.0, "sigma": 3.0}, grid, param="sigma")
    np.testing.assert_allclose(curves[0], -np.log(grid) - 0.5 * np.log(2 * np.pi), rtol=1e-12)


def test_log_likelihood_curves_refuse_ambiguous_or_bad_grids() -> None:
    family = families.normal()
    with pytest.raises(DomainError, match="param="):
        log_likelihood_curves(family, [0.0], {"mu": 0.0, "sigma": 1.0}, [0.0, 1.0])
    with pytest.raises(DomainError, match="no parameter named"):
        log_likelihood_curves(family, [0.0], {"mu": 0.0, "sigma": 1.0}, [0.0, 1.0], param="tau")
    with pytest.raises(DomainError, match="grid"):
        log_likelihood_curves(families.normal_mean(), [0.0], {"mu": 0.0}, [0.0, np.nan])
    with pytest.raises(DomainError, match="outside its domain"):
        log_likelihood_curves(family, [0.0], {"mu": 0.0, "sigma": 1.0}, [-1.0, 1.0],
                              param="sigma")


def test_expected_log_likelihood_is_the_normal_closed_form_and_flat_at_theta_star() -> None:
    family = families.normal_mean(sigma=1.0)
    grid = np.linspace(-1.0, 2.0, 7)
    values = expected_log_likelihood(family, {"mu": 0.5}, grid)
    # E[log p(X | theta)] = -((theta - theta*)^2 + sigma^2) / (2 sigma^2) - log(2 pi) / 2
    exact = -((grid - 0.5) ** 2 + 1.0) / 2 - 0.5 * np.log(2 * np.pi)
    np.testing.assert_allclose(values, exact, rtol=1e-8, atol=1e-10)


def test_uniform_log_likelihood_has_walls_at_the_observations() -> None:
    grid = np.array([0.5, 1.0, 2.0])
    curves = uniform_scale_log_likelihood([0.7, 1.5], grid)
    assert np.isneginf(curves[0, 0]) and np.isneginf(curves[1, :2]).all()
    assert curves[0, 1] == pytest.approx(0.0) and curves[1, 2] == pytest.approx(-np.log(2.0))
    floored = uniform_scale_log_likelihood([0.7, 1.5], grid, floor=-5.0)
    assert floored[0, 0] == -5.0
    with pytest.raises(DomainError, match="theta > 0"):
        uniform_scale_log_likelihood([0.7], [0.0, 1.0])
    with pytest.raises(DomainError, match=">= 0"):
        uniform_scale_log_likelihood([-0.1], [0.5, 1.0])


def test_uniform_expected_log_likelihood_has_a_corner_at_theta_star() -> None:
    grid = np.array([1.0, 2.0, 3.0])
    values = uniform_scale_expected_log_likelihood(2.0, grid)
    assert np.isneginf(values[0])
    np.testing.assert_allclose(values[1:], -np.log(grid[1:]))
    with pytest.raises(DomainError, match="theta_star"):
        uniform_scale_expected_log_likelihood(0.0, grid)


def test_uniform_scores_are_minus_one_over_theta_inside_the_support_only() -> None:
    np.testing.assert_allclose(uniform_scale_scores([0.1, 1.9], 2.0), [-0.5, -0.5])
    with pytest.raises(DomainError, match="outside"):
        uniform_scale_scores([2.5], 2.0)
    with pytest.raises(DomainError, match="theta > 0"):
        uniform_scale_scores([0.1], -1.0)


def test_leibniz_boundary_term_restores_the_zero_for_uniform() -> None:
    x = sp.Symbol("x", real=True)
    theta = sp.Symbol("theta", positive=True)
    terms = leibniz_terms(1 / theta, x, theta, 0, theta)
    assert terms == {"interior": -1 / theta, "upper_boundary": 1 / theta,
                     "lower_boundary": 0, "total": 0}


def test_leibniz_terms_with_a_fixed_support_have_no_boundary_term() -> None:
    x = sp.Symbol("x", positive=True)
    lam = sp.Symbol("lam", positive=True)
    terms = leibniz_terms(lam * sp.exp(-lam * x), x, lam, 0, sp.oo)
    assert terms["upper_boundary"] == 0 and terms["lower_boundary"] == 0
    assert terms["interior"] == 0 and terms["total"] == 0


def test_expected_log_likelihood_of_a_discrete_family_is_flat_at_theta_star() -> None:
    family = families.poisson()
    h = 1e-4
    values = expected_log_likelihood(family, {"lam": 3.0}, [3.0 - h, 3.0, 3.0 + h])
    assert (values[2] - values[0]) / (2 * h) == pytest.approx(0.0, abs=1e-6)
    assert values[1] > values[0] and values[1] > values[2]


def test_book_latex_writes_the_trigamma_as_psi_one() -> None:
    import sympy as sp

    from fisherbook.examples import book_latex

    alpha = sp.Symbol("alpha", positive=True)
    assert book_latex(sp.polygamma(1, alpha)) == r"\psi_{1}\left(\alpha\right)"
    assert book_latex(sp.polygamma(1, alpha) ** 2) == r"\psi_{1}\left(\alpha\right)^{2}"
    matrix = sp.Matrix([[sp.polygamma(1, alpha), -1 / alpha]])
    assert "polygamma" not in book_latex(matrix) and r"\frac{1}{\alpha}" in book_latex(matrix)


def test_book_latex_writes_lam_as_lambda() -> None:
    import sympy as sp

    from fisherbook.examples import book_latex

    lam, lam_other = sp.Symbol("lam", positive=True), sp.Symbol("lam'", positive=True)
    assert book_latex(lam_other / lam - 1) == r"-1 + \frac{\lambda'}{\lambda}"
    assert book_latex(sp.Symbol("lamb")) == "lamb"

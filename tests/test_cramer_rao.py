"""Tests of fisherbook.cramer_rao: estimator variances and the Cramér–Rao simulation."""

from __future__ import annotations

import numpy as np
import pytest

from fisherbook import families
from fisherbook.cramer_rao import (
    batched_variance,
    cramer_rao_study,
    fisher_estimates,
    fisher_summands,
    inverse_fisher,
    mle_by_optimisation,
    numerical_mle,
    scaled_covariance,
    simulate_estimates,
    summand_variances,
    summand_variances_by_quadrature,
    variance_with_stderr,
)
from fisherbook.errors import DomainError

NORMAL_THETA = {"mu": 0.5, "sigma": 2.0}


def test_summands_average_to_fisher() -> None:
    family = families.normal()
    draws = family.sample(NORMAL_THETA, 200_000, np.random.default_rng(0))
    fisher = family.fisher_numeric(NORMAL_THETA)
    for method in ("score", "hessian"):
        terms = fisher_summands(family, NORMAL_THETA, draws, method)
        assert terms.shape == (200_000, 2, 2)
        stderr = terms.std(axis=0, ddof=1) / np.sqrt(len(terms))
        assert np.all(np.abs(terms.mean(axis=0) - fisher) <= 5 * stderr + 1e-12)


def test_fisher_summands_rejects_unknown_method() -> None:
    with pytest.raises(ValueError, match="method"):
        fisher_summands(families.normal(), NORMAL_THETA, np.zeros(3), "outer")


def test_variance_with_stderr_of_constant_is_exactly_zero() -> None:
    result = variance_with_stderr(np.full(10, 3.0))
    assert result.estimate == 0.0 and result.stderr == 0.0


def test_variance_with_stderr_needs_two_values() -> None:
    with pytest.raises(DomainError):
        variance_with_stderr(np.array([1.0]))


def test_normal_summand_variances_match_hand_derivation() -> None:
    # z = (x - mu) / sigma: s_mu^2 = z^2/s^2, s_mu s_sigma = (z^3 - z)/s^2, s_sigma^2 = (z^2-1)^2/s^2;
    # -H = [[1, 2z], [2z, 3z^2 - 1]] / s^2. Variances: score 2, 10, 56; Hessian 0, 4, 18 (/ s^4).
    family, sigma = families.normal(), NORMAL_THETA["sigma"]
    exact = summand_variances_by_quadrature(family, NORMAL_THETA)
    np.testing.assert_allclose(exact["score"] * sigma**4, [[2, 10], [10, 56]], atol=1e-6)
    np.testing.assert_allclose(exact["hessian"] * sigma**4, [[0, 4], [4, 18]], atol=1e-6)
    measured = summand_variances(family, NORMAL_THETA, 200_000, rng=np.random.default_rng(1))
    for method in ("score", "hessian"):
        assert getattr(measured, method).agrees_with(exact[method], sigmas=5)
    assert np.all(measured.better() == "hessian")  # all four entries of the 2 x 2 matrix


def test_bernoulli_summands_coincide() -> None:
    measured = summand_variances(families.bernoulli(), {"p": 0.3}, 10_000,
                                 rng=np.random.default_rng(2))
    np.testing.assert_allclose(measured.score.estimate, measured.hessian.estimate)
    assert measured.better()[0, 0] == "tie"


def test_scaled_covariance_of_known_normal_sample() -> None:
    rng = np.random.default_rng(3)
    values = rng.normal(1.0, 0.5, size=(40_000, 1))
    result = scaled_covariance(values, 10, [1.0])
    assert result.agrees_with(10 * 0.25)
    assert abs(result.bias[0]) <= 5 * result.bias_stderr[0]


def test_scaled_covariance_checks_shapes() -> None:
    with pytest.raises(DomainError, match="shape"):
        scaled_covariance(np.zeros((5, 3)), 10, [0.0, 0.0])


def test_exponential_mle_scaled_variance_matches_finite_n_formula() -> None:
    # lam_hat = 1 / mean: n Var = n^3 lam^2 / ((n-1)^2 (n-2)) exactly; F^-1 = lam^2.
    family, lam = families.exponential(), 2.0
    sizes = [20, 200]
    study = cramer_rao_study(family, {"lam": lam}, sizes, 20_000,
                             lambda data: 1.0 / data.mean(axis=1), rng=np.random.default_rng(4))
    for n, row in zip(sizes, study, strict=True):
        assert row.sample_size == n and row.replicates == 20_000
        assert row.agrees_with(n**3 * lam**2 / ((n - 1) ** 2 * (n - 2)))
        assert abs(row.bias[0] - lam / (n - 1)) <= 5 * row.bias_stderr[0]
    np.testing.assert_allclose(inverse_fisher(family, {"lam": lam}), [[lam**2]])


def test_simulate_estimates_rejects_nan_estimates() -> None:
    with pytest.raises(DomainError, match="NaN"):
        simulate_estimates(families.exponential(), {"lam": 1.0}, 3, 4,
                           lambda data: np.full(len(data), np.nan), rng=np.random.default_rng(0))


def test_simulate_estimates_rejects_wrong_count() -> None:
    with pytest.raises(DomainError, match="estimates"):
        simulate_estimates(families.exponential(), {"lam": 1.0}, 3, 4,
                           lambda data: data.mean(axis=1)[:2], rng=np.random.default_rng(0))


def test_simulate_estimates_rejects_bad_sizes() -> None:
    with pytest.raises(DomainError, match="replicates"):
        simulate_estimates(families.exponential(), {"lam": 1.0}, 3, 1,
                           lambda data: data.mean(axis=1), rng=np.random.default_rng(0))


def test_numerical_mle_agrees_with_closed_form() -> None:
    family = families.normal()
    data = family.sample(NORMAL_THETA, 500, np.random.default_rng(5))
    found = numerical_mle(family, data, {"mu": 0.0, "sigma": 1.0})
    np.testing.assert_allclose(found, [data.mean(), data.std()], rtol=1e-4)


def test_mle_by_optimisation_checks_start_early() -> None:
    with pytest.raises(DomainError):
        mle_by_optimisation(families.exponential(), {"lam": -1.0})


def test_fisher_estimates_share_their_draws() -> None:
    # Bernoulli: s^2 = -H for both outcomes, so on common draws the two estimates are one number
    both = fisher_estimates(families.bernoulli(), {"p": 0.3}, 5_000, rng=np.random.default_rng(4))
    assert both["score"].estimate[0, 0] == pytest.approx(both["hessian"].estimate[0, 0], rel=1e-12)
    assert both["score"].method == "score" and both["hessian"].method == "hessian"
    normal = fisher_estimates(families.normal(), NORMAL_THETA, 50_000, rng=np.random.default_rng(5))
    closed = families.normal().fisher_numeric(NORMAL_THETA)
    assert all(estimate.agrees_with(closed) for estimate in normal.values())


def test_batched_variance_of_normal_values() -> None:
    values = np.random.default_rng(6).normal(0.0, 3.0, size=(200_000, 2))
    result = batched_variance(values)
    assert result.estimate.shape == (2,) and result.batches == 400
    assert result.agrees_with(9.0) and not result.agrees_with(15.0)
    assert result.scaled(10.0).agrees_with(90.0)


def test_batched_variance_of_constant_values_is_zero() -> None:
    result = batched_variance(np.full(1_000, 2.5))
    assert result.estimate == 0.0 and result.agrees_with(0.0) and not result.agrees_with(1.0)


def test_batched_variance_checks_its_input() -> None:
    with pytest.raises(DomainError, match="per batch"):
        batched_variance(np.ones(500))
    with pytest.raises(DomainError, match="NaN"):
        batched_variance(np.r_[np.ones(1_000), np.nan])
    with pytest.raises(DomainError, match="positive"):
        batched_variance(np.arange(1_000.0)).scaled(0.0)


def test_batched_variance_interval_holds_for_skewed_values() -> None:
    # X^2 with X ~ Exp(1): Var = E X^4 - (E X^2)^2 = 24 - 4 = 20, a right-skewed, heavy summand.
    # Over 300 seeds |z| > 2 should happen about 4.55% of the time (binomial sd 1.2%).
    rng = np.random.default_rng(7)
    z = np.array([batched_variance(rng.exponential(size=20_000) ** 2).zscores(20.0)
                  for _ in range(300)])
    rate = np.mean(np.abs(z) > 2)
    assert abs(rate - 0.0455) <= 5 * np.sqrt(0.0455 * 0.9545 / 300)

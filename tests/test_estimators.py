"""Monte Carlo estimators: within 5 standard errors of the closed forms, and clear errors."""

import numpy as np
import pytest

from fisherbook import estimate_fisher, families, mc_mean
from fisherbook.errors import DomainError
from fisherbook.estimators import MeanEstimate, estimate_kl, estimate_score_mean

CASES = [
    (families.normal, {"mu": 0.3, "sigma": 1.7}),
    (families.gamma, {"alpha": 2.5, "beta": 1.5}),
    (families.poisson, {"lam": 3.0}),
    (families.beta, {"a": 2.0, "b": 3.5}),
    (families.categorical, {"p1": 0.2, "p2": 0.5}),
    (families.mvn_mean, {"mu1": 0.0, "mu2": 1.0}),
]


@pytest.mark.parametrize("method", ["score", "hessian"])
@pytest.mark.parametrize(("make", "theta"), CASES)
def test_fisher_estimate_within_five_standard_errors(make, theta, method):
    fam = make()
    result = estimate_fisher(fam, theta, 200_000, rng=np.random.default_rng(1), method=method)
    assert result.estimate.shape == result.stderr.shape == (len(fam.params),) * 2
    assert result.agrees_with(fam.fisher_numeric(theta), sigmas=5), result.zscores(fam.fisher_numeric(theta))


def test_estimate_detects_a_wrong_answer():
    fam = families.normal()
    theta = {"mu": 0.0, "sigma": 1.0}
    result = estimate_fisher(fam, theta, 100_000, rng=np.random.default_rng(2))
    assert not result.agrees_with(fam.fisher_numeric(theta) * 1.05)


def test_score_mean_and_kl_estimates():
    fam = families.exponential()
    rng = np.random.default_rng(3)
    assert estimate_score_mean(fam, {"lam": 2.0}, 100_000, rng=rng).agrees_with(0.0)
    kl = estimate_kl(fam, {"lam": 2.0}, {"lam": 3.0}, 100_000, rng=rng)
    assert kl.agrees_with(fam.kl_numeric({"lam": 2.0}, {"lam": 3.0}))


def test_mc_mean_standard_error():
    values = np.array([1.0, 2.0, 3.0, 4.0])
    result = mc_mean(values)
    assert result.estimate == pytest.approx(2.5)
    assert result.stderr == pytest.approx(np.std(values, ddof=1) / 2)
    assert MeanEstimate(np.array(1.0), np.array(0.0), 2).agrees_with(1.0)


@pytest.mark.parametrize("values", [np.array([1.0]), np.array([1.0, np.nan])])
def test_mc_mean_refuses_bad_values(values):
    with pytest.raises(DomainError):
        mc_mean(values)


def test_bad_arguments():
    fam = families.normal()
    with pytest.raises(DomainError, match="n must be"):
        estimate_fisher(fam, {"mu": 0, "sigma": 1}, 0, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="method"):
        estimate_fisher(fam, {"mu": 0, "sigma": 1}, 10, rng=np.random.default_rng(0), method="x")
    with pytest.raises(DomainError, match="outside its domain"):
        estimate_fisher(fam, {"mu": 0, "sigma": 0}, 10, rng=np.random.default_rng(0))


def test_zscores_are_finite_for_a_constant_estimator():
    exact = MeanEstimate(np.array([0.25]), np.array([0.0]), 10)
    assert np.all(np.isfinite(exact.zscores(np.array([0.25 + 1e-15]))))
    assert abs(exact.zscores(np.array([0.3]))[0]) > 1e6

"""fisherbook.laplace: Laplace posteriors, EWC penalties, Fisher merging.

The linear-Gaussian model is where everything is exact: the Laplace approximation from the
package's conditional model equals the closed-form posterior, sequential updates with one penalty
at the latest mode reproduce the joint posterior, and Fisher merging of subset posteriors gives
the pooled one.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from fisherbook import conditional as cm
from fisherbook.errors import DomainError, FisherbookError, SingularFisherError
from fisherbook.laplace import (
    GaussianPosterior,
    fisher_merge,
    laplace_posterior,
    linear_gaussian_posterior,
    quadratic_penalty,
    quadratic_penalty_gradient,
)

TEST_SEED = 20261002
NOISE_SD = 0.7
PRIOR = 0.5


def data(n: int, rng: np.random.Generator, k: int = 3):
    X = rng.normal(size=(n, k))
    return X, X @ rng.normal(size=k) + NOISE_SD * rng.normal(size=n)


def test_linear_gaussian_posterior_is_likelihood_times_prior() -> None:
    rng = np.random.default_rng(TEST_SEED)
    X, y = data(30, rng)
    prior_mean = np.array([0.3, -0.2, 1.0])
    posterior = linear_gaussian_posterior(X, y, NOISE_SD, prior_mean, PRIOR)
    prior = scipy.stats.multivariate_normal(prior_mean, np.eye(3) / PRIOR)

    def unnormalised(theta):
        return (scipy.stats.norm.logpdf(y, X @ theta, NOISE_SD).sum() + prior.logpdf(theta))

    a, b = rng.normal(size=(2, 3))
    exact_ratio = unnormalised(a) - unnormalised(b)
    assert np.isclose(posterior.log_density(a)[0] - posterior.log_density(b)[0], exact_ratio,
                      rtol=1e-10, atol=1e-10)
    reference = scipy.stats.multivariate_normal(posterior.mean, posterior.covariance)
    assert np.isclose(posterior.log_density(a)[0], reference.logpdf(a), rtol=1e-10)


def test_laplace_of_the_linear_gaussian_model_is_exact() -> None:
    rng = np.random.default_rng(TEST_SEED + 1)
    X, y = data(40, rng)
    model = cm.ConditionalModel(cm.normal_mean(NOISE_SD), cm.LinearPredictor(), X, y)
    mode = cm.fit_fisher_scoring(model, damping=PRIOR).theta
    laplace = laplace_posterior(mode, model.fisher_sum(mode), PRIOR)
    exact = linear_gaussian_posterior(X, y, NOISE_SD, 0.0, PRIOR * np.eye(3))
    assert np.abs(laplace.mean - exact.mean).max() < 1e-10 * np.abs(exact.mean).max()
    assert np.abs(laplace.precision - exact.precision).max() < 1e-10 * np.abs(exact.precision).max()


def test_one_penalty_at_the_latest_mode_is_exact_sequential_bayes() -> None:
    rng = np.random.default_rng(TEST_SEED + 2)
    tasks = [data(n, rng) for n in (15, 25, 10)]
    mean, precision = np.zeros(3), PRIOR * np.eye(3)
    for X, y in tasks:
        # minimise the task's loss plus the penalty at the latest mode: a linear system
        step = linear_gaussian_posterior(X, y, NOISE_SD, mean, precision)
        gradient = -X.T @ (y - X @ step.mean) / NOISE_SD**2 + quadratic_penalty_gradient(
            step.mean, mean, precision)
        assert np.abs(gradient).max() < 1e-9
        mean, precision = step.mean, precision + X.T @ X / NOISE_SD**2
    joint = linear_gaussian_posterior(np.vstack([t[0] for t in tasks]),
                                      np.concatenate([t[1] for t in tasks]), NOISE_SD, 0.0, PRIOR)
    assert np.allclose(mean, joint.mean, rtol=1e-10, atol=1e-12)
    assert np.allclose(precision, joint.precision, rtol=1e-10)


def test_fisher_merging_of_subset_posteriors_is_the_pooled_posterior() -> None:
    rng = np.random.default_rng(TEST_SEED + 3)
    subsets = [data(n, rng) for n in (12, 30, 20)]
    posteriors = [linear_gaussian_posterior(X, y, NOISE_SD, 0.0, PRIOR / 3) for X, y in subsets]
    merged = fisher_merge([p.mean for p in posteriors], [p.precision for p in posteriors])
    pooled = linear_gaussian_posterior(np.vstack([s[0] for s in subsets]),
                                       np.concatenate([s[1] for s in subsets]), NOISE_SD, 0.0,
                                       PRIOR)
    assert np.allclose(merged, pooled.mean, rtol=1e-10, atol=1e-12)
    # the plain average is not the pooled posterior mean
    assert np.abs(fisher_merge([p.mean for p in posteriors]) - pooled.mean).max() > 1e-3


def test_fisher_merge_known_values() -> None:
    thetas = [np.array([0.0, 4.0]), np.array([2.0, 0.0])]
    assert np.allclose(fisher_merge(thetas), [1.0, 2.0])
    assert np.allclose(fisher_merge(thetas, [np.array([3.0, 1.0]), np.array([1.0, 3.0])]),
                       [0.5, 1.0])
    assert np.allclose(fisher_merge(thetas, [np.diag([3.0, 1.0]), np.diag([1.0, 3.0])]),
                       [0.5, 1.0])
    assert np.allclose(fisher_merge(thetas, [1.0, 3.0]), [1.5, 1.0])


def test_quadratic_penalty_known_values_and_gradient() -> None:
    theta, anchor = np.array([1.0, 2.0]), np.array([0.0, 1.0])
    assert quadratic_penalty(theta, anchor, np.array([2.0, 4.0]), 3.0) == pytest.approx(9.0)
    matrix = np.array([[2.0, 1.0], [1.0, 4.0]])
    assert quadratic_penalty(theta, anchor, matrix) == pytest.approx(0.5 * (2 + 2 + 4))
    rng = np.random.default_rng(TEST_SEED + 4)
    point = rng.normal(size=2)
    h = 1e-6
    numeric = [(quadratic_penalty(point + h * e, anchor, matrix, 2.0)
                - quadratic_penalty(point - h * e, anchor, matrix, 2.0)) / (2 * h)
               for e in np.eye(2)]
    assert np.allclose(quadratic_penalty_gradient(point, anchor, matrix, 2.0), numeric, rtol=1e-7)


def test_gaussian_posterior_covariance() -> None:
    posterior = GaussianPosterior(np.zeros(2), np.diag([4.0, 0.25]))
    assert np.allclose(posterior.covariance, np.diag([0.25, 4.0]))


@pytest.mark.parametrize(
    ("call", "error", "words"),
    [
        (lambda: laplace_posterior([0.0, 1.0], np.zeros((2, 2))), SingularFisherError, "singular"),
        (lambda: laplace_posterior([0.0, 1.0], np.eye(3)), DomainError, "(2, 2)"),
        (lambda: laplace_posterior([0.0, np.nan], np.eye(2)), DomainError, "non-finite"),
        (lambda: laplace_posterior([0.0, 1.0], [[1.0, 2.0], [0.0, 1.0]]), DomainError,
         "not symmetric"),
        (lambda: laplace_posterior([0.0, 1.0], -np.eye(2)), DomainError,
         "not positive semi-definite"),
        (lambda: linear_gaussian_posterior(np.ones((3, 2)), [1.0, 2.0], 1.0, 0.0, 1.0),
         DomainError, "3 entries"),
        (lambda: linear_gaussian_posterior(np.ones((3, 2)), [1.0, 2.0, 3.0], 0.0, 0.0, 1.0),
         DomainError, "noise_sd"),
        (lambda: linear_gaussian_posterior(np.ones((3, 2)), [1.0, 2.0, 3.0], 1.0, 0.0, 0.0),
         SingularFisherError, "singular"),
        (lambda: quadratic_penalty([1.0, 2.0], [0.0], [1.0, 1.0]), DomainError, "anchor"),
        (lambda: quadratic_penalty([1.0, 2.0], [0.0, 0.0], [1.0, -1.0]), DomainError,
         "negative"),
        (lambda: quadratic_penalty([1.0, 2.0], [0.0, 0.0], [1.0, 1.0], -1.0), DomainError,
         "strength"),
        (lambda: fisher_merge([]), DomainError, "at least one"),
        (lambda: fisher_merge([[1.0, 2.0], [1.0]]), DomainError, "thetas[1]"),
        (lambda: fisher_merge([[1.0, 2.0]], [np.eye(2), np.eye(2)]), DomainError,
         "2 precisions for 1"),
        (lambda: fisher_merge([[1.0, 2.0], [0.0, 0.0]], [[1.0, 0.0], [1.0, 0.0]]),
         SingularFisherError, "coordinate 1"),
        (lambda: fisher_merge([[1.0, 2.0], [0.0, 0.0]], [np.diag([1.0, 0.0])] * 2),
         SingularFisherError, "singular"),
    ],
)
def test_bad_input_is_named(call, error, words) -> None:
    with pytest.raises(error, match=words.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[").replace("]", r"\]")):
        call()
    assert issubclass(error, FisherbookError)

"""The four matrices of chapter 6 told apart, and preconditioned descent."""

from __future__ import annotations

import numpy as np
import pytest

from fisherbook import conditional as cm
from fisherbook.empirical_fisher import (
    centred_empirical_fisher_mean,
    gradient_outer_mean,
    preconditioned_descent,
)
from fisherbook.errors import DomainError

MC_SEED = 61
DATA_SEED = 62


def two_point_regression() -> cm.ConditionalModel:
    """y ~ N(theta, 1) at x = 1, labels 0 and 3: at theta = 1 the residuals are 1 and -2."""
    return cm.ConditionalModel(cm.normal_mean(1.0), cm.LinearPredictor(), [[1.0], [1.0]], [0, 3])


def test_the_four_matrices_have_their_known_different_values() -> None:
    model = two_point_regression()
    theta = [1.0]
    # Fisher: x^2 / sigma^2 = 1; empirical: (1 + 4) / 2; mean gradient (-1 + 2) / 2 = 1/2;
    # centred: 2.5 - 0.25
    assert model.fisher_mean(theta)[0, 0] == pytest.approx(1.0, rel=1e-14)
    assert model.empirical_fisher_mean(theta)[0, 0] == pytest.approx(2.5, rel=1e-14)
    assert gradient_outer_mean(model, theta)[0, 0] == pytest.approx(0.25, rel=1e-14)
    assert centred_empirical_fisher_mean(model, theta)[0, 0] == pytest.approx(2.25, rel=1e-14)
    estimate = model.fisher_monte_carlo(theta, 4000, np.random.default_rng(MC_SEED))
    assert abs(estimate.estimate[0, 0] - 1.0) < 5 * estimate.stderr[0, 0]
    # and the Monte Carlo Fisher is told apart from the empirical Fisher (2.5) by far
    assert abs(estimate.estimate[0, 0] - 2.5) > 20 * estimate.stderr[0, 0]


def test_logistic_matrices_against_hand_formulas() -> None:
    rng = np.random.default_rng(DATA_SEED)
    X = np.column_stack([np.ones(50), rng.standard_normal((50, 2))])
    y = (rng.random(50) < 0.4).astype(float)
    model = cm.ConditionalModel(cm.bernoulli_logit(), cm.LinearPredictor(), X, y)
    theta = np.array([0.2, -0.5, 0.3])
    p = 1 / (1 + np.exp(-X @ theta))
    g = X * (y - p)[:, None]
    assert np.allclose(gradient_outer_mean(model, theta), np.outer(g.mean(0), g.mean(0)),
                       rtol=1e-12, atol=1e-15)
    assert np.allclose(centred_empirical_fisher_mean(model, theta), np.cov(g.T, bias=True),
                       rtol=1e-12, atol=1e-15)
    decomposition = centred_empirical_fisher_mean(model, theta) + gradient_outer_mean(model, theta)
    assert np.allclose(decomposition, model.empirical_fisher_mean(theta), rtol=1e-12, atol=1e-15)


def test_gradient_outer_vanishes_at_the_maximum_likelihood_estimate() -> None:
    rng = np.random.default_rng(DATA_SEED)
    X = np.column_stack([np.ones(200), rng.standard_normal(200)])
    y = (rng.random(200) < 1 / (1 + np.exp(-X @ [0.3, 1.0]))).astype(float)
    model = cm.ConditionalModel(cm.bernoulli_logit(), cm.LinearPredictor(), X, y)
    theta_hat = cm.fit_fisher_scoring(model).theta
    assert np.abs(gradient_outer_mean(model, theta_hat)).max() < 1e-20
    assert np.abs(model.empirical_fisher_mean(theta_hat)).max() > 0.01


def quadratic(A: np.ndarray, b: np.ndarray):
    return (lambda t: 0.5 * t @ A @ t - b @ t), (lambda t: A @ t - b), (lambda t: A)


def test_newton_step_one_solves_a_quadratic_in_one_step_and_gd_converges() -> None:
    A, b = np.array([[3.0, 1.0], [1.0, 2.0]]), np.array([1.0, -1.0])
    loss, gradient, hessian = quadratic(A, b)
    solution = np.linalg.solve(A, b)
    run = preconditioned_descent(loss, gradient, hessian, np.zeros(2), 1.0, iterations=1)
    assert np.allclose(run.thetas[-1], solution, rtol=1e-12) and not run.diverged
    run = preconditioned_descent(loss, gradient, None, np.zeros(2), 0.3, iterations=200)
    assert np.allclose(run.thetas[-1], solution, atol=1e-10)
    assert run.thetas.shape == (201, 2) and run.losses.shape == (201,)


def test_descent_stops_when_the_loss_exceeds_the_factor() -> None:
    A, b = np.eye(2), np.ones(2)
    loss, gradient, _ = quadratic(A, b)
    shifted = lambda t: loss(t) + 1.0  # noqa: E731  (a positive initial loss)
    run = preconditioned_descent(shifted, gradient, None, np.zeros(2), 5.0, iterations=100)
    assert run.diverged and len(run.losses) < 101
    assert run.losses[-1] > 100 * run.losses[0] and np.all(run.losses[:-1] <= 100 * run.losses[0])


@pytest.mark.parametrize("kwargs, message", [
    ({"step": 0.0}, "step"), ({"step": 1.0, "damping": -1.0}, "damping"),
    ({"step": 1.0, "iterations": 0}, "iterations"),
    ({"step": 1.0, "divergence_factor": 1.0}, "divergence_factor")])
def test_bad_input_is_named(kwargs: dict, message: str) -> None:
    loss, gradient, _ = quadratic(np.eye(2), np.ones(2))
    with pytest.raises(DomainError, match=message):
        preconditioned_descent(loss, gradient, None, np.zeros(2), **kwargs)

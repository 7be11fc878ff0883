"""Tests of fisherbook.models: gradients, Fisher matrices (sympy, Monte Carlo), errors."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from scipy.optimize import approx_fprime

from fisherbook import families
from fisherbook.errors import FisherbookError
from fisherbook.estimators import mc_mean
from fisherbook.models import (
    FamilyNLL,
    LinearGaussianRegression,
    LogisticRegression,
    ModelError,
    ill_conditioned_design,
    random_rotation,
)
from fisherbook.optim import gradient_descent, natural_gradient_descent


def logistic_problem(seed: int = 0, n: int = 200, k: int = 4, condition: float = 50.0,
                     l2: float = 0.0) -> LogisticRegression:
    rng = np.random.default_rng(seed)
    X = ill_conditioned_design(n, k, condition, rng)
    return LogisticRegression.simulate(X, rng.standard_normal(k), rng, l2=l2)


def linear_problem(seed: int = 0, n: int = 100, k: int = 3) -> LinearGaussianRegression:
    rng = np.random.default_rng(seed)
    X = ill_conditioned_design(n, k, 100.0, rng)
    return LinearGaussianRegression.simulate(X, rng.standard_normal(k), rng, noise_sd=0.7)


def test_design_has_the_requested_population_condition_number():
    rng = np.random.default_rng(3)
    X = ill_conditioned_design(200_000, 4, 1e3, rng)
    eigenvalues = np.linalg.eigvalsh(X.T @ X / X.shape[0])
    assert eigenvalues[-1] / eigenvalues[0] == pytest.approx(1e3, rel=0.05)
    assert ill_conditioned_design(10, 3, 10.0, rng, intercept=True)[:, 0].tolist() == [1.0] * 10
    # seeded: same seed, same design
    np.testing.assert_array_equal(ill_conditioned_design(5, 2, 10.0, np.random.default_rng(1)),
                                  ill_conditioned_design(5, 2, 10.0, np.random.default_rng(1)))
    Q = random_rotation(4, rng)
    np.testing.assert_allclose(Q @ Q.T, np.eye(4), atol=1e-12)


@pytest.mark.parametrize("l2", [0.0, 0.3])
def test_logistic_gradient_and_hessian_match_finite_differences(l2):
    model = logistic_problem(l2=l2)
    w = np.array([0.3, -0.5, 1.0, 0.2])
    np.testing.assert_allclose(model.grad(w), approx_fprime(w, model.loss, 1e-7), atol=1e-6)
    hessian_fd = np.array([approx_fprime(w, lambda v, i=i: model.grad(v)[i], 1e-6)
                           for i in range(model.k)])
    np.testing.assert_allclose(model.hessian(w), hessian_fd, atol=1e-5)
    np.testing.assert_allclose(model.hessian(w) - model.fisher(w), l2 * np.eye(model.k),
                               atol=1e-12)


def test_logistic_loss_is_stable_for_huge_margins():
    model = LogisticRegression(np.array([[1.0], [-1.0]]), np.array([1.0, 0.0]))
    assert model.loss([800.0]) == pytest.approx(0.0, abs=1e-300)
    assert model.loss([-800.0]) == pytest.approx(800.0)


def test_logistic_fisher_per_observation_matches_sympy():
    # one observation: log p(y | x, w) = y log s(wx) + (1-y) log(1 - s(wx)); F = E_y[(d/dw)^2]
    w, x, y = sp.symbols("w x y", real=True)
    p = 1 / (1 + sp.exp(-w * x))
    log_lik = y * sp.log(p) + (1 - y) * sp.log(1 - p)
    score = sp.diff(log_lik, w)
    fisher = sp.simplify(p * score.subs(y, 1) ** 2 + (1 - p) * score.subs(y, 0) ** 2)
    difference = (fisher - x ** 2 * p * (1 - p)).rewrite(sp.exp)
    assert sp.simplify(sp.expand(sp.simplify(difference))) == 0
    model = LogisticRegression(np.array([[1.7]]), np.array([1.0]))
    value = float(fisher.subs({w: 0.4, x: 1.7}))
    assert model.fisher([0.4])[0, 0] == pytest.approx(value, rel=1e-12)


def test_logistic_fisher_matches_monte_carlo_outer_product_of_scores():
    # F = (1/n) sum_i E_{y_i ~ model}[s_i s_i^T] with s_i = x_i (y_i - p_i)
    model = logistic_problem(n=50, k=3)
    w = np.array([0.5, -1.0, 0.3])
    p = model.probabilities(w)
    rng = np.random.default_rng(11)
    y = (rng.random((20_000, model.n)) < p).astype(float)            # (R, n) label draws
    residuals = y - p
    # per draw: (1/n) sum_i (y_i - p_i)^2 x_i x_i^T, flattened
    outer = np.einsum("ri,ij,ik->rjk", residuals ** 2, model.X, model.X) / model.n
    estimate = mc_mean(outer.reshape(len(y), -1))
    closed = model.fisher(w).reshape(-1)
    assert np.all(np.abs(estimate.estimate - closed) <= 5 * estimate.stderr)


def test_logistic_minimise_reaches_zero_gradient():
    model = logistic_problem()
    w_star = model.minimise()
    assert np.linalg.norm(model.grad(w_star)) <= 1e-12
    with pytest.raises(ModelError, match="Newton"):
        model.minimise(max_steps=1)


def test_linear_gaussian_gradient_fisher_and_one_step_newton():
    model = linear_problem()
    w = np.array([1.0, -2.0, 0.5])
    np.testing.assert_allclose(model.grad(w), approx_fprime(w, model.loss, 1e-7), atol=1e-5)
    hessian_fd = np.array([approx_fprime(w, lambda v, i=i: model.grad(v)[i], 1e-6)
                           for i in range(model.k)])
    np.testing.assert_allclose(model.fisher(w), hessian_fd, rtol=1e-5, atol=1e-6)
    result = natural_gradient_descent(model.grad, model.fisher, w, step=1.0, n_steps=1)
    np.testing.assert_allclose(result.theta, model.minimise(), atol=1e-10)
    assert np.linalg.norm(model.grad(result.theta)) < 1e-10


def test_linear_gaussian_fisher_matches_monte_carlo():
    model = linear_problem(n=30)
    w = np.array([0.2, 0.1, -0.3])
    rng = np.random.default_rng(5)
    noise = model.noise_sd * rng.standard_normal((20_000, model.n))    # y - Xw under the model
    outer = np.einsum("ri,ij,ik->rjk", noise ** 2, model.X, model.X) / (
        model.n * model.noise_sd ** 4)
    estimate = mc_mean(outer.reshape(len(noise), -1))
    assert np.all(np.abs(estimate.estimate - model.fisher(w).reshape(-1)) <= 5 * estimate.stderr)


def test_gradient_descent_on_linear_gaussian_is_slow_but_gets_there():
    model = linear_problem()
    step = 1.0 / np.linalg.eigvalsh(model.fisher())[-1]
    result = gradient_descent(model.grad, np.zeros(3), step=step, n_steps=20)
    assert np.linalg.norm(result.theta - model.minimise()) > 1e-3     # not there after 20 steps


def test_family_nll_gradient_fisher_and_domain():
    rng = np.random.default_rng(0)
    fam = families.normal()
    data = rng.normal(1.0, 2.0, size=500)
    nll = FamilyNLL(fam, data)
    theta = np.array([0.5, 1.5])
    expected_loss = -np.mean(-0.5 * ((data - 0.5) / 1.5) ** 2 - np.log(1.5 * np.sqrt(2 * np.pi)))
    assert nll.loss(theta) == pytest.approx(expected_loss)
    np.testing.assert_allclose(nll.grad(theta), approx_fprime(theta, nll.loss, 1e-7), atol=1e-5)
    np.testing.assert_allclose(nll.fisher(theta), np.diag([1 / 1.5 ** 2, 2 / 1.5 ** 2]))
    assert nll.loss([0.0, -1.0]) == float("inf")
    assert nll.kl(theta, theta) == pytest.approx(0.0, abs=1e-14)
    # NGD (Fisher scoring) reaches the maximum likelihood estimate
    result = natural_gradient_descent(nll.grad, nll.fisher, [0.0, 1.0], step=0.5, n_steps=60)
    np.testing.assert_allclose(result.theta, [data.mean(), data.std()], rtol=1e-8)


def test_family_nll_compiled_closed_forms_match_the_family():
    gamma = families.gamma()
    nll = FamilyNLL(gamma, np.array([0.5, 1.0, 2.5]))
    a, b = np.array([2.0, 1.5]), np.array([2.6, 0.9])
    np.testing.assert_allclose(nll.fisher(a), gamma.fisher_numeric(a), rtol=1e-12)
    assert nll.kl(a, b) == pytest.approx(gamma.kl_numeric(a, b), rel=1e-12)
    assert nll.kl(a, b) > 0
    with pytest.raises(FisherbookError, match="domain"):
        nll.fisher([-1.0, 1.0])


def test_models_reject_bad_input():
    X = np.ones((3, 2))
    with pytest.raises(ModelError, match="only 0 and 1"):
        LogisticRegression(X, np.array([0.0, 2.0, 1.0]))
    with pytest.raises(ModelError, match="shape"):
        LogisticRegression(X, np.array([0.0, 1.0]))
    with pytest.raises(ModelError, match="2-D"):
        LogisticRegression(np.ones(3), np.array([0.0, 1.0, 1.0]))
    with pytest.raises(ModelError, match="noise_sd"):
        LinearGaussianRegression(X, np.zeros(3), noise_sd=0.0)
    with pytest.raises(ModelError, match="weights"):
        LogisticRegression(X, np.array([0.0, 1.0, 1.0])).loss([1.0, 2.0, 3.0])
    with pytest.raises(ModelError, match="condition"):
        ill_conditioned_design(10, 2, 0.5, np.random.default_rng(0))
    with pytest.raises(ModelError, match="data"):
        FamilyNLL(families.normal(), [])
    assert issubclass(ModelError, FisherbookError)


#: Seed of the design and labels checked against statsmodels.
STATSMODELS_SEED = 11


def test_logistic_loss_gradient_and_fisher_match_statsmodels():
    """statsmodels' Logit (sums over observations) against our means: divide by n."""
    from statsmodels.discrete.discrete_model import Logit

    rng = np.random.default_rng(STATSMODELS_SEED)
    X = ill_conditioned_design(200, 3, 10.0, rng)
    model = LogisticRegression.simulate(X, [1.0, -0.5, 2.0], rng)
    reference = Logit(model.y, model.X)
    w = rng.standard_normal(3)
    np.testing.assert_allclose(model.loss(w), -reference.loglike(w) / model.n, rtol=1e-12)
    np.testing.assert_allclose(model.grad(w), -reference.score(w) / model.n, rtol=1e-10)
    np.testing.assert_allclose(model.fisher(w), -reference.hessian(w) / model.n, rtol=1e-10)
    np.testing.assert_allclose(model.minimise(), reference.fit(disp=0).params, rtol=1e-7)

"""Conditional models: closed forms against sympy, finite differences, Monte Carlo and statsmodels."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.stats
import statsmodels.api as sm
import sympy as sp

from fisherbook import DomainError, SingularFisherError
from fisherbook import conditional as cm

DATA_SEED = 11
MC_SEED = 12
N = 400
BETA = np.array([0.3, -0.8, 0.5])


def design(rng: np.random.Generator, n: int = N) -> np.ndarray:
    return np.column_stack([np.ones(n), rng.normal(size=(n, 2))])


def simulate(name: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    X = design(rng)
    eta = X @ BETA
    if name == "logistic":
        y = rng.random(N) < scipy.special.expit(eta)
    elif name == "probit":
        y = rng.random(N) < scipy.stats.norm.cdf(eta)
    elif name == "poisson":
        y = rng.poisson(np.exp(eta))
    else:
        y = eta + 1.5 * rng.standard_normal(N)
    return X, np.asarray(y, dtype=float)


CASES = {
    "logistic": (cm.bernoulli_logit, cm.IDENTITY, lambda: sm.families.Binomial(), {}),
    "probit": (cm.bernoulli_probability, cm.PROBIT,
               lambda: sm.families.Binomial(sm.families.links.Probit()), {}),
    "poisson": (cm.poisson_log, cm.IDENTITY, lambda: sm.families.Poisson(), {}),
    "normal": (lambda: cm.normal_mean(1.5), cm.IDENTITY, lambda: sm.families.Gaussian(),
               {"scale": 1.5**2}),
}


def model_for(name: str, seed: int = DATA_SEED) -> cm.ConditionalModel:
    output, link, _, _ = CASES[name]
    X, y = simulate(name, np.random.default_rng(seed))
    return cm.ConditionalModel(output(), cm.LinearPredictor(link), X, y)


@pytest.mark.parametrize("name", list(CASES))
def test_fisher_scoring_agrees_with_statsmodels_glm(name: str) -> None:
    model = model_for(name)
    fit = cm.fit_fisher_scoring(model)
    _, _, family, kwargs = CASES[name]
    reference = sm.GLM(model.y, model.X, family=family()).fit(tol=1e-14, maxiter=200, **kwargs)
    np.testing.assert_allclose(fit.theta, reference.params, rtol=0, atol=1e-8)
    np.testing.assert_allclose(fit.standard_errors, reference.bse, rtol=1e-6)
    if name != "normal":  # statsmodels' Gaussian llf profiles out the scale, even a fixed one
        assert fit.log_likelihood_sum == pytest.approx(reference.llf, rel=1e-10)


@pytest.mark.parametrize("name", list(CASES))
def test_hessian_and_gradient_against_finite_differences(name: str) -> None:
    model = model_for(name)
    theta = BETA + 0.05
    h = 1e-5
    basis = np.eye(model.k)
    grad_fd = [(model.log_likelihood_sum(theta + h * e) - model.log_likelihood_sum(theta - h * e))
               / (2 * h) for e in basis]
    np.testing.assert_allclose(model.gradient_sum(theta), grad_fd, rtol=1e-6, atol=1e-6)
    hess_fd = np.array([-(model.gradient_sum(theta + h * e) - model.gradient_sum(theta - h * e))
                        / (2 * h) for e in basis])
    hessian = model.loss_hessian_sum(theta)
    np.testing.assert_allclose(hessian, hess_fd, rtol=1e-6, atol=1e-6 * np.abs(hessian).max())
    np.testing.assert_allclose(model.gradient_mean(theta), model.gradient_sum(theta) / model.n)
    assert model.log_likelihood_mean(theta) == pytest.approx(model.log_likelihood_sum(theta) / N)


@pytest.mark.parametrize("name", ["logistic", "poisson", "normal"])
def test_canonical_link_fisher_equals_hessian_and_gauss_newton(name: str) -> None:
    model = model_for(name)
    theta = BETA - 0.2
    fisher = model.fisher_sum(theta)
    np.testing.assert_allclose(model.loss_hessian_sum(theta), fisher, rtol=1e-12)
    np.testing.assert_allclose(model.gauss_newton_sum(theta), fisher, rtol=1e-12)


def test_probit_observed_hessian_differs_from_fisher() -> None:
    model = model_for("probit")
    theta = BETA
    gap = np.abs(model.loss_hessian_sum(theta) - model.fisher_sum(theta)).max()
    assert gap > 1e-3 * np.abs(model.fisher_sum(theta)).max()
    # The Fisher is the expectation of the Hessian over labels drawn from the model.
    rng = np.random.default_rng(MC_SEED)
    draws = []
    for _ in range(400):
        relabelled = cm.ConditionalModel(model.output, model.predictor, model.X,
                                         model.sample_labels(theta, rng))
        draws.append(relabelled.loss_hessian_sum(theta))
    from fisherbook import mc_mean

    assert mc_mean(np.array(draws)).agrees_with(model.fisher_sum(theta))


@pytest.mark.parametrize("name", list(CASES))
def test_monte_carlo_fisher_with_sampled_labels(name: str) -> None:
    model = model_for(name)
    estimate = model.fisher_monte_carlo(BETA, 300, np.random.default_rng(MC_SEED))
    assert estimate.agrees_with(model.fisher_mean(BETA))


def test_fisher_matches_sympy_for_a_small_case() -> None:
    """Two observations, probit, theta in R^2: F from sympy directly equals the package's."""
    b0, b1 = sp.symbols("b0 b1", real=True)
    xs = [(1.0, 0.5), (1.0, -1.2)]
    total = sp.zeros(2, 2)
    for x0, x1 in xs:
        eta = b0 * x0 + b1 * x1
        p = (1 + sp.erf(eta / sp.sqrt(2))) / 2
        grad = sp.Matrix([sp.diff(p, b) for b in (b0, b1)])
        total += grad * grad.T / (p * (1 - p))
    point = {b0: 0.2, b1: -0.4}
    expected = np.array(total.subs(point).evalf(), dtype=float)
    model = cm.ConditionalModel(cm.bernoulli_probability(), cm.LinearPredictor(cm.PROBIT),
                                np.array(xs), [0, 1])
    np.testing.assert_allclose(model.fisher_sum([0.2, -0.4]), expected, rtol=1e-12)


def test_logit_in_probability_and_in_log_odds_give_the_same_fisher() -> None:
    model = model_for("logistic")
    other = cm.ConditionalModel(cm.bernoulli_probability(), cm.LinearPredictor(cm.LOGISTIC),
                                model.X, model.y)
    np.testing.assert_allclose(other.fisher_sum(BETA), model.fisher_sum(BETA), rtol=1e-10)
    np.testing.assert_allclose(other.loss_hessian_sum(BETA), model.loss_hessian_sum(BETA),
                               rtol=1e-10)


def test_empirical_fisher_uses_the_data_labels() -> None:
    model = model_for("logistic")
    g = np.array([model.per_example_gradients(BETA)[i] for i in range(model.n)])
    np.testing.assert_allclose(model.empirical_fisher_sum(BETA), g.T @ g)
    # At a far-off theta the empirical Fisher and the Fisher differ.
    far = BETA + 2.0
    assert not np.allclose(model.empirical_fisher_mean(far), model.fisher_mean(far), rtol=0.1)


def test_categorical_logits_fisher_and_sampling() -> None:
    output = cm.categorical_logits(3)
    rng = np.random.default_rng(DATA_SEED)
    X = design(rng, 300)
    predictor = cm.LinearPredictor(n_outputs=2)
    theta = rng.normal(0, 0.5, 6)
    y = output.sample(predictor.value(theta, X), rng)
    model = cm.ConditionalModel(output, predictor, X, y)
    # Softmax Fisher: diag(p) - p p^T over classes 1, 2.
    eta = predictor.value(theta, X)
    probs = np.exp(np.column_stack([np.zeros(300), eta]))
    probs /= probs.sum(axis=1, keepdims=True)
    lam = output.fisher(eta)
    expected = np.einsum("na,ab->nab", probs[:, 1:], np.eye(2)) - np.einsum(
        "na,nb->nab", probs[:, 1:], probs[:, 1:])
    np.testing.assert_allclose(lam, expected, rtol=1e-10, atol=1e-14)
    estimate = model.fisher_monte_carlo(theta, 300, np.random.default_rng(MC_SEED))
    assert estimate.agrees_with(model.fisher_mean(theta))
    np.testing.assert_allclose(model.loss_hessian_sum(theta), model.fisher_sum(theta), rtol=1e-10)


def test_sandwich_matches_statsmodels_hc0() -> None:
    model = model_for("poisson")
    fit = cm.fit_fisher_scoring(model)
    reference = sm.GLM(model.y, model.X, family=sm.families.Poisson()).fit(tol=1e-14,
                                                                            cov_type="HC0")
    np.testing.assert_allclose(np.sqrt(np.diag(cm.sandwich_covariance(model, fit.theta))),
                               reference.bse, rtol=1e-6)


# ----------------------------------------------------------------------------------- bad input
def test_labels_outside_the_support() -> None:
    X = design(np.random.default_rng(DATA_SEED), 5)
    with pytest.raises(DomainError, match="outside the support"):
        cm.ConditionalModel(cm.bernoulli_logit(), cm.LinearPredictor(), X, [0, 1, 2, 0, 1])
    with pytest.raises(DomainError, match="outside the support"):
        cm.ConditionalModel(cm.poisson_log(), cm.LinearPredictor(), X, [0, 1, 2.5, 0, 1])


def test_shapes_and_non_finite_inputs() -> None:
    X = design(np.random.default_rng(DATA_SEED), 5)
    with pytest.raises(DomainError, match="to match"):
        cm.ConditionalModel(cm.bernoulli_logit(), cm.LinearPredictor(), X, [0, 1, 1])
    bad = X.copy()
    bad[2, 1] = np.nan
    with pytest.raises(DomainError, match=r"non-finite entries, first X\[2, 1\]"):
        cm.ConditionalModel(cm.bernoulli_logit(), cm.LinearPredictor(), bad, [0, 1, 1, 0, 1])
    model = cm.ConditionalModel(cm.bernoulli_logit(), cm.LinearPredictor(), X, [0, 1, 1, 0, 1])
    with pytest.raises(DomainError, match="3 entries"):
        model.fisher_sum([0.0, 1.0])
    with pytest.raises(DomainError, match="non-finite"):
        model.fisher_sum([0.0, np.inf, 1.0])
    with pytest.raises(DomainError, match="output"):
        cm.ConditionalModel(cm.categorical_logits(3), cm.LinearPredictor(), X, [0, 1, 2, 0, 1])


def test_collinear_design_names_the_columns() -> None:
    model = model_for("logistic")
    X = np.column_stack([model.X, 2 * model.X[:, 1]])
    collinear = cm.ConditionalModel(cm.bernoulli_logit(), cm.LinearPredictor(), X, model.y)
    with pytest.raises(SingularFisherError, match=r"columns \[1, 3\].*damping"):
        cm.fit_fisher_scoring(collinear)
    damped = cm.fit_fisher_scoring(collinear, damping=1e-3)
    assert np.all(np.isfinite(damped.theta))


def test_perfect_separation_is_detected() -> None:
    rng = np.random.default_rng(DATA_SEED)
    X = design(rng, 60)
    y = (X[:, 1] > 0).astype(float)
    model = cm.ConditionalModel(cm.bernoulli_logit(), cm.LinearPredictor(), X, y)
    with pytest.raises(cm.SeparationError, match="separation"):
        cm.fit_fisher_scoring(model)


def test_link_leaving_the_domain() -> None:
    rng = np.random.default_rng(DATA_SEED)
    X = design(rng, 50)
    y = rng.poisson(2.0, 50).astype(float)
    model = cm.ConditionalModel(cm.poisson_rate(), cm.LinearPredictor(cm.IDENTITY), X, y)
    with pytest.raises(DomainError, match="link leaves the parameter domain"):
        model.fisher_sum([-1.0, 0.0, 0.0])
    with pytest.raises(DomainError, match="link leaves the parameter domain"):
        cm.fit_fisher_scoring(model)             # starts at theta = 0, rate 0
    fit = cm.fit_fisher_scoring(model, theta0=[2.0, 0.0, 0.0])
    assert np.abs(model.gradient_sum(fit.theta)).max() < 1e-6
    with warnings.catch_warnings():  # statsmodels warns that this link leaves the domain
        warnings.simplefilter("ignore")
        reference = sm.GLM(y, X, family=sm.families.Poisson(sm.families.links.Identity())).fit(
            tol=1e-14, start_params=[2.0, 0.0, 0.0])
    np.testing.assert_allclose(fit.theta, reference.params, atol=1e-6)


def test_iteration_cap_and_bad_options() -> None:
    model = model_for("probit")
    with pytest.raises(cm.ConvergenceError, match="did not converge in 1 iterations"):
        cm.fit_fisher_scoring(model, max_iterations=1)
    with pytest.raises(DomainError, match="tol"):
        cm.fit_fisher_scoring(model, tol=-1.0)
    with pytest.raises(DomainError, match="n_draws"):
        model.fisher_monte_carlo(BETA, 1, np.random.default_rng(MC_SEED))


def test_separating_direction() -> None:
    rng = np.random.default_rng(DATA_SEED)
    X = design(rng, 80)
    separated = (X[:, 1] > 0).astype(float)
    direction = cm.separating_direction(X, separated)
    assert direction is not None
    assert np.all((2 * separated - 1) * (X @ direction) >= -1e-9)
    # Random labels on 80 points in general position in R^3 are separable with probability
    # 2 * sum_{j<3} C(79, j) / 2^80 < 1e-20 (Cover 1965): none is found.
    assert cm.separating_direction(X, (rng.random(80) < 0.5).astype(float)) is None


def test_a_readers_own_output_family() -> None:
    """Exponential waiting times in the log-rate: Lambda = 1 from the engine, so F = X^T X; the
    default sampler (the family's own, one row at a time: slow, so used for a few rows only)
    draws inside the support, and with a vectorised sampler the Monte Carlo Fisher agrees."""
    y_w, eta_w = sp.Symbol("y", positive=True), sp.Symbol("eta", real=True)
    family = cm.Family(eta_w - sp.exp(eta_w) * y_w, y_w, [eta_w], (0, sp.oo), name="exponential")
    rng = np.random.default_rng(DATA_SEED)
    few = cm.OutputFamily(family).sample(np.array([[0.0], [1.0], [-1.0]]), rng)
    assert few.shape == (3,) and np.all(few > 0)
    output = cm.OutputFamily(family, lambda f, rng: rng.exponential(np.exp(-f[:, 0])))
    X = design(rng, 40)
    theta = np.array([0.5, -0.3, 0.2])
    model = cm.ConditionalModel(output, cm.LinearPredictor(), X, output.sample(X @ theta[:, None], rng))
    np.testing.assert_allclose(model.fisher_sum(theta), X.T @ X, rtol=1e-12)
    estimate = model.fisher_monte_carlo(theta, 300, np.random.default_rng(MC_SEED))
    assert estimate.agrees_with(model.fisher_mean(theta))

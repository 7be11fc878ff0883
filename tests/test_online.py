"""Online estimators (fisherbook.online): closed forms against the sympy engine and statsmodels,
the Gaussian-mean case exactly, the Lyapunov prediction against linear recursions."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.special
import statsmodels.api as sm

from fisherbook import families
from fisherbook import online as ol
from fisherbook.errors import DomainError, FisherbookError, SingularFisherError

SEED = 20261202
DESIGN = np.array([[1.0, a, b] for a in (-1.0, 0.0, 1.0) for b in (-1.0, 0.0, 1.0)])


def models() -> list[ol.OnlineModel]:
    return [ol.gaussian_mean(0.5, 2.0), ol.bernoulli_log_odds(1.0), ol.poisson_log_rate(1.2),
            ol.gamma_log_shape_rate(1.5, 2.0), ol.normal_mean_log_sd(-1.0, 2.0),
            ol.logistic_regression([0.5, 1.0, -1.0], DESIGN)]


def fisher_by_chain_rule(family, theta_of_eta, jacobian, eta) -> np.ndarray:
    """J^T F_theta(theta(eta)) J from the sympy-derived Fisher of the original family."""
    return jacobian.T @ family.fisher_numeric(theta_of_eta(eta)) @ jacobian


@pytest.mark.parametrize("eta", [-1.3, 0.0, 2.1])
def test_one_parameter_fishers_match_the_sympy_engine(eta: float) -> None:
    p = scipy.special.expit(eta)
    bern = fisher_by_chain_rule(families.bernoulli(), lambda e: [p], np.array([[p * (1 - p)]]),
                                eta)
    assert np.allclose(ol.bernoulli_log_odds(eta).fisher_star(), bern, rtol=1e-10)
    rate = np.exp(eta)
    pois = fisher_by_chain_rule(families.poisson(), lambda e: [rate], np.array([[rate]]), eta)
    assert np.allclose(ol.poisson_log_rate(eta).fisher_star(), pois, rtol=1e-10)
    assert np.allclose(ol.gaussian_mean(eta, 1.7).fisher_star(),
                       families.normal_mean(1.7).fisher_numeric([eta]), rtol=1e-10)


@pytest.mark.parametrize(("shape", "rate"), [(0.4, 3.0), (1.5, 1.0), (7.0, 0.2)])
def test_gamma_log_fisher_matches_the_sympy_engine(shape: float, rate: float) -> None:
    jacobian = np.diag([shape, rate])  # d(alpha, beta) / d(log alpha, log beta)
    expected = fisher_by_chain_rule(families.gamma(), lambda e: [shape, rate], jacobian, None)
    assert np.allclose(ol.gamma_log_shape_rate(shape, rate).fisher_star(), expected, rtol=1e-9)


@pytest.mark.parametrize(("mean", "sd"), [(0.0, 0.3), (2.0, 4.0)])
def test_normal_log_sd_fisher_matches_the_sympy_engine(mean: float, sd: float) -> None:
    jacobian = np.diag([1.0, sd])  # d(mu, sigma) / d(mu, log sigma)
    expected = fisher_by_chain_rule(families.normal(), lambda e: [mean, sd], jacobian, None)
    assert np.allclose(ol.normal_mean_log_sd(mean, sd).fisher_star(), expected, rtol=1e-10)


def test_logistic_fisher_matches_statsmodels_information() -> None:
    weights = np.array([0.3, -0.8, 1.1])
    model = ol.logistic_regression(weights, DESIGN)
    # statsmodels' Hessian of the log-likelihood, one observation per design row (for the logit
    # link it does not involve y, so minus it is the expected information)
    information = -sm.Logit(np.zeros(len(DESIGN)), DESIGN).hessian(weights)
    assert np.allclose(model.fisher_star(), information / len(DESIGN), rtol=1e-12)


def test_logistic_fisher_and_score_match_the_conditional_model() -> None:
    """online.logistic_regression vectorises over runs what fisherbook.conditional computes for one
    theta: its Fisher is ConditionalModel(bernoulli_logit(), LinearPredictor(), rows).fisher_mean
    at every theta of the batch, and its score is that model's per-example gradient."""
    from fisherbook import conditional as cm

    model = ol.logistic_regression([0.5, 1.0, -1.0], DESIGN)
    rng = np.random.default_rng(SEED)
    thetas = model.theta_star + rng.normal(0.0, 1.0, (7, 3))
    conditional = cm.ConditionalModel(cm.bernoulli_logit(), cm.LinearPredictor(), DESIGN,
                                      np.zeros(len(DESIGN)))
    expected = np.array([conditional.fisher_mean(theta) for theta in thetas])
    assert np.allclose(model.fisher(thetas), expected, rtol=1e-12, atol=0)
    obs = model.sample(rng, (7,))
    for theta, row in zip(thetas, obs, strict=True):
        x, y = row[None, :3], row[None, 3]
        gradient = cm.ConditionalModel(cm.bernoulli_logit(), cm.LinearPredictor(), x, y)
        assert np.allclose(model.score(row[None, :], theta[None, :]),
                           gradient.per_example_gradients(theta), rtol=1e-12, atol=1e-15)


def test_trigamma_matches_scipy() -> None:
    a = np.geomspace(1e-3, 1e4, 500)
    assert np.allclose(ol.trigamma(a), scipy.special.polygamma(1, a), rtol=1e-10, atol=0)


def test_solver_matches_numpy() -> None:
    rng = np.random.default_rng(SEED)
    for k in (1, 2, 3, 5):
        root = rng.normal(size=(50, k, k))
        matrix = root @ root.transpose(0, 2, 1) + np.eye(k)
        vector = rng.normal(size=(50, k))
        expected = np.linalg.solve(matrix, vector[:, :, None])[:, :, 0]
        assert np.allclose(ol._solve(matrix, vector), expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("model", models(), ids=lambda m: m.name)
def test_score_has_mean_zero_and_covariance_fisher(model: ol.OnlineModel) -> None:
    """E s(x; theta*) = 0 and E s s^T = F(theta*), by Monte Carlo within 5 standard errors:
    the sampler, the score and the Fisher of each model agree."""
    n = 200_000
    obs = model.sample(np.random.default_rng(SEED), (n,))
    scores = model.score(obs, np.broadcast_to(model.theta_star, (n, model.dim)))
    assert np.all(np.abs(scores.mean(axis=0)) <= 5 * scores.std(axis=0) / np.sqrt(n))
    outer = np.einsum("ri,rj->rij", scores, scores)
    error = np.abs(outer.mean(axis=0) - model.fisher_star())
    assert np.all(error <= 5 * outer.std(axis=0) / np.sqrt(n))


def test_gaussian_mean_natural_gradient_is_the_running_mean_exactly() -> None:
    model = ol.gaussian_mean(1.0, 3.0)
    times = [1, 2, 5, 50, 200]
    run = ol.online_natural_gradient(model, [-4.0], 64, times, np.random.default_rng(SEED))
    stream = model.sample(np.random.default_rng(SEED), (200, 64))[:, :, 0]  # one block
    running_mean = np.cumsum(stream, axis=0) / np.arange(1, 201)[:, None]
    assert np.allclose(run.theta[:, :, 0], running_mean[np.array(times) - 1], rtol=0,
                       atol=1e-12)


def test_sgd_with_gain_inverse_fisher_is_the_natural_gradient_for_gaussian_mean() -> None:
    model = ol.gaussian_mean(0.0, 0.5)
    times = [3, 30, 300]
    sgd = ol.online_sgd(model, [1.0], 10, times, np.random.default_rng(SEED), gain=0.25)
    ngd = ol.online_natural_gradient(model, [1.0], 10, times, np.random.default_rng(SEED))
    assert np.allclose(sgd.theta, ngd.theta, atol=1e-13)


def test_lyapunov_closed_forms() -> None:
    fisher = np.array([[2.0, -0.7], [-0.7, 0.5]])
    assert np.allclose(ol.sgd_asymptotic_covariance(fisher, np.linalg.inv(fisher)),
                       np.linalg.inv(fisher))
    for c, f in [(1.0, 4.0), (0.3, 2.0), (5.0, 0.2)]:
        expected = c**2 * f / (2 * c * f - 1)
        assert np.isclose(ol.sgd_asymptotic_covariance(np.array([[f]]), c)[0, 0], expected)
        assert np.isclose(ol.sgd_efficiency(np.array([[f]]), c), expected * f)
    # in one dimension the best gain is 1/F and attains the bound; with unequal eigenvalues no
    # scalar gain does
    gains = np.geomspace(0.51 / np.linalg.eigvalsh(fisher)[0], 50, 400)
    assert min(ol.sgd_efficiency(fisher, c) for c in gains) > 1.05


def test_lyapunov_solution_is_the_limit_of_the_exact_covariance_recursion() -> None:
    """For the linear recursion e_t = (I - G F / t) e_{t-1} + G xi_t / t with Cov xi = F, the
    covariance P_t obeys P_t = A_t P_{t-1} A_t^T + G F G^T / t^2 exactly; t P_t -> Sigma."""
    fisher = np.array([[2.0, -0.7], [-0.7, 0.5]])
    gain = np.array([[1.0, 1.5], [0.5, 6.0]])  # G F has eigenvalues 1.05 and 2.55
    sigma = ol.sgd_asymptotic_covariance(fisher, gain)
    cov = np.zeros((2, 2))
    for t in range(1, 10_001):
        step = np.eye(2) - gain @ fisher / t
        cov = step @ cov @ step.T + gain @ fisher @ gain.T / t**2
    assert np.allclose(10_000 * cov, sigma, rtol=2e-4)
    assert not np.allclose(sigma, np.linalg.inv(fisher), rtol=0.05)


def test_lyapunov_solution_against_a_simulated_linear_recursion() -> None:
    """SGD on the Gaussian mean in two dimensions (x ~ N(theta*, F^{-1}), score F (x - theta)):
    the recursion is linear, and t Cov(theta_t) at t = 2000 is within 5 standard errors of the
    Lyapunov solution, entry by entry."""
    fisher = np.array([[2.0, -0.7], [-0.7, 0.5]])
    cov_x = np.linalg.inv(fisher)
    root = np.linalg.cholesky(cov_x)
    theta_star = np.array([0.3, -1.0])
    model = ol.OnlineModel(
        name="bivariate Gaussian mean", param_names=("m1", "m2"), theta_star=theta_star,
        sample=lambda rng, shape: theta_star + rng.standard_normal(shape + (2,)) @ root.T,
        score=lambda obs, theta: (obs - theta) @ fisher,
        fisher=lambda theta: np.broadcast_to(fisher, (theta.shape[0], 2, 2)))
    gain = 6.0  # c F has eigenvalues 1.3 and 13.7; the clock offset tames the first steps
    run = ol.online_sgd(model, theta_star, 20_000, [2000], np.random.default_rng(SEED), gain=gain,
                        clock_offset=15.0)
    result = ol.scaled_covariance(run, model, rng=np.random.default_rng(SEED), n_boot=50)
    sigma = ol.sgd_asymptotic_covariance(fisher, gain)
    assert np.all(np.abs(result.matrix - sigma) <= 5 * result.stderr)


def test_efficiency_ratio_and_scaled_covariance_by_hand() -> None:
    model = ol.gaussian_mean(0.0, 2.0)  # F^{-1} = 4
    errors = np.array([[[1.0], [-3.0], [2.0], [0.0]]])  # one time, four runs
    run = ol.OnlineRun("by hand", np.array([8]), errors)
    ratio = ol.efficiency_ratio(run, model)
    scaled = 8 * np.array([1.0, 9.0, 4.0, 0.0]) / 4
    assert np.isclose(ratio.ratio[0], scaled.mean())
    assert np.isclose(ratio.stderr[0], scaled.std(ddof=1) / 2)
    result = ol.scaled_covariance(run, model, rng=np.random.default_rng(SEED), n_boot=20)
    assert np.isclose(result.matrix[0, 0], 8 * 14 / 4)
    assert np.isclose(result.eigenvalues[0], 8 * 14 / 4 / 4)


def test_scaled_covariance_eigenvalues_are_relative_to_the_bound() -> None:
    model = ol.gamma_log_shape_rate(1.5, 1.0)
    bound = model.bound()
    # errors whose second moment is exactly 2 F^{-1} / t at t = 10 (four signed copies)
    values, vectors = np.linalg.eigh(bound)
    basis = vectors * np.sqrt(values)
    errors = np.sqrt(2 * 2 / 10) * np.concatenate([basis.T, -basis.T])[None]
    run = ol.OnlineRun("by hand", np.array([10]), errors + model.theta_star)
    result = ol.scaled_covariance(run, model, rng=np.random.default_rng(SEED), n_boot=20)
    assert np.allclose(result.matrix, 2 * bound)
    assert np.allclose(result.eigenvalues, [2.0, 2.0])


def test_a_diverging_start_raises_a_clear_error() -> None:
    model = ol.bernoulli_log_odds(1.0)
    with pytest.raises(ol.RunsDivergedError, match="runs left the finite numbers") as caught:
        ol.online_natural_gradient(model, [3.0], 200, [1000], np.random.default_rng(SEED))
    assert isinstance(caught.value, DomainError)
    assert 0 < caught.value.n_diverged <= caught.value.n_runs == 200 and caught.value.t <= 1000


def test_bad_input_is_rejected() -> None:
    model = ol.poisson_log_rate(1.0)
    rng = np.random.default_rng(SEED)
    with pytest.raises(FisherbookError, match="n_runs"):
        ol.online_sgd(model, [0.0], 1, [10], rng, gain=1.0)
    with pytest.raises(FisherbookError, match="times"):
        ol.online_sgd(model, [0.0], 10, [10, 5], rng, gain=1.0)
    with pytest.raises(FisherbookError, match="power"):
        ol.online_sgd(model, [0.0], 10, [10], rng, gain=1.0, power=0.4)
    with pytest.raises(FisherbookError, match="gain"):
        ol.online_sgd(model, [0.0], 10, [10], rng, gain=np.ones(3))
    with pytest.raises(FisherbookError, match="fisher"):
        ol.online_natural_gradient(model, [0.0], 10, [10], rng, fisher="empirical")
    with pytest.raises(FisherbookError, match="damping"):
        ol.online_natural_gradient(model, [0.0], 10, [10], rng, damping=-1.0)
    with pytest.raises(DomainError, match="start"):
        ol.online_natural_gradient(model, [np.nan], 10, [10], rng)
    with pytest.raises(FisherbookError, match="1/2"):
        ol.sgd_asymptotic_covariance(np.array([[2.0]]), 0.2)
    with pytest.raises(SingularFisherError):
        ol.sgd_asymptotic_covariance(np.array([[1.0, 1.0], [1.0, 1.0]]), 1.0)
    with pytest.raises(SingularFisherError, match="span"):
        ol.logistic_regression([1.0, 2.0], np.ones((5, 2)))
    with pytest.raises(DomainError, match="sd"):
        ol.gaussian_mean(0.0, -1.0)
    with pytest.raises(DomainError, match="log_odds"):
        ol.bernoulli_log_odds(np.inf)

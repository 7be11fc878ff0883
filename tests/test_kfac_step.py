"""The jit-compiled K-FAC step of :class:`fisherbook.kfac.KFAC`: it takes the plain K-FAC step of
the chapter's formulas, keeps its factors stale between refreshes, averages them, and its adaptive
variant picks (α, μ) and the damping as Martens and Grosse (2015, §§6.5, 7) prescribe.

Every reference here is computed independently: the factors by :func:`kfac_factors`, the damped
inverse by :func:`kfac_precondition` (linear solves, no eigendecomposition), the curvature of the
quadratic model by the dense Fisher.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("jax")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from fisherbook.errors import DomainError  # noqa: E402
from fisherbook.kfac import KFAC, _statistics, kfac_block_errors, kfac_blocks, kfac_factors, kfac_precondition  # noqa: E402
from fisherbook.networks import MLP, Categorical, Gaussian, Network  # noqa: E402

DATA_SEED = 23
WEIGHT_SEED = 4
LABEL_SEED = 9

NETWORK = Network(MLP((5, 6, 3), "tanh"), Categorical())


def data(n: int = 30):
    rng = np.random.default_rng(DATA_SEED)
    return jnp.asarray(rng.normal(size=(n, 5))), jnp.asarray(rng.integers(0, 3, size=n))


@pytest.mark.parametrize("mode", ["exact", "sampled"])
def test_statistics_give_the_gradient_and_the_factors(mode: str) -> None:
    x, y = data()
    theta = jnp.asarray(NETWORK.mlp.init(WEIGHT_SEED))
    loss, grad, a_list, g_list = _statistics(NETWORK, theta, x, y, mode, jax.random.PRNGKey(LABEL_SEED))
    ref_loss, ref_grad = NETWORK.loss_and_grad(theta, x, y)
    assert np.isclose(float(loss), float(ref_loss), rtol=1e-13)
    assert np.allclose(np.asarray(grad), np.asarray(ref_grad), rtol=1e-12, atol=1e-14)
    if mode == "exact":
        for (a, g), (a_ref, g_ref) in zip(zip(a_list, g_list, strict=True), kfac_factors(NETWORK, theta, x),
                                          strict=True):
            assert np.allclose(np.asarray(a), a_ref, rtol=1e-12, atol=1e-14)
            assert np.allclose(np.asarray(g), g_ref, rtol=1e-12, atol=1e-14)


def test_plain_step_is_the_damped_kronecker_solve() -> None:
    x, y = data()
    theta = jnp.asarray(NETWORK.mlp.init(WEIGHT_SEED))
    optimiser = KFAC(0.3, 1e-2)
    state = optimiser.init(NETWORK, theta, x, y)
    theta1, state, loss0 = optimiser.step(NETWORK, theta, state, x, y)
    _, grad = NETWORK.loss_and_grad(theta, x, y)
    factors = kfac_factors(NETWORK, theta, x)
    expected = np.asarray(theta) - 0.3 * kfac_precondition(NETWORK, factors, grad, 1e-2)
    assert np.allclose(np.asarray(theta1), expected, rtol=1e-10, atol=1e-13)
    # second step: fresh factors at θ1 (update_every = 1)
    theta2, _, loss1 = optimiser.step(NETWORK, theta1, state, x, y)
    _, grad1 = NETWORK.loss_and_grad(theta1, x, y)
    factors = kfac_factors(NETWORK, theta1, x)
    expected = np.asarray(theta1) - 0.3 * kfac_precondition(NETWORK, factors, grad1, 1e-2)
    assert np.allclose(np.asarray(theta2), expected, rtol=1e-10, atol=1e-13)
    assert float(loss1) < float(loss0)


def test_stale_factors_and_running_average() -> None:
    x, y = data()
    theta = jnp.asarray(NETWORK.mlp.init(WEIGHT_SEED))
    decay = 0.8
    optimiser = KFAC(0.3, 1e-2, update_every=3, inverse_every=6, ema_decay=decay)
    state = optimiser.init(NETWORK, theta, x, y)
    points, running = [theta], [np.asarray(a) for a, _ in kfac_factors(NETWORK, theta, x)]
    for count in range(7):
        before = [np.asarray(q) for q, _, _, _ in state["eig"]]
        theta, state, _ = optimiser.step(NETWORK, theta, state, x, y)
        if count > 0 and count % 3 == 0:  # factors re-estimated at the point the step started from
            fresh = [a for a, _ in kfac_factors(NETWORK, points[-1], x)]
            running = [decay * r + (1 - decay) * f for r, f in zip(running, fresh, strict=True)]
        for a, r in zip(state["a"], running, strict=True):
            assert np.allclose(np.asarray(a), r, rtol=1e-11, atol=1e-14)
        after = [np.asarray(q) for q, _, _, _ in state["eig"]]
        unchanged = all(np.array_equal(p, q) for p, q in zip(before, after, strict=True))
        assert unchanged == (count == 0 or count % 6 != 0)
        points.append(theta)


def test_adaptive_step_minimises_the_quadratic_model_with_the_dense_fisher() -> None:
    x, y = data()
    theta = jnp.asarray(NETWORK.mlp.init(WEIGHT_SEED))
    damping = 1e-2
    optimiser = KFAC(1.0, damping, adaptive=True)
    state = optimiser.init(NETWORK, theta, x, y)
    theta1, state, _ = optimiser.step(NETWORK, theta, state, x, y)
    _, grad = NETWORK.loss_and_grad(theta, x, y)
    grad = np.asarray(grad)
    direction = -kfac_precondition(NETWORK, kfac_factors(NETWORK, theta, x), grad, damping)
    curvature = NETWORK.dense_fisher(theta, x) + damping * np.eye(NETWORK.n_params)
    alpha = -(grad @ direction) / (direction @ curvature @ direction)  # first step: no previous update
    assert np.allclose(np.asarray(theta1) - np.asarray(theta), alpha * direction, rtol=1e-9, atol=1e-13)
    model = 0.5 * alpha ** 2 * direction @ curvature @ direction + alpha * grad @ direction
    assert np.isclose(float(state["previous_model"]), model, rtol=1e-9)
    # second step: (α, μ) solve the 2 × 2 system of the model over span(Δ, δ_prev)
    previous = np.asarray(theta1) - np.asarray(theta)
    omega = optimiser.damping_decay
    loss0 = float(NETWORK.loss(theta, x, y))
    loss1 = float(NETWORK.loss(theta1, x, y))
    ratio = (loss1 - loss0) / model
    damping1 = damping * (omega if ratio > 0.75 else 1 / omega if ratio < 0.25 else 1.0)
    theta2, state, _ = optimiser.step(NETWORK, theta1, state, x, y)
    assert np.isclose(float(state["damping"]), damping1, rtol=1e-12)
    _, grad1 = NETWORK.loss_and_grad(theta1, x, y)
    grad1 = np.asarray(grad1)
    direction = -kfac_precondition(NETWORK, kfac_factors(NETWORK, theta1, x), grad1, damping1)
    basis = np.stack([direction, previous])
    curvature = NETWORK.dense_fisher(theta1, x) + damping1 * np.eye(NETWORK.n_params)
    coefficients = np.linalg.solve(basis @ curvature @ basis.T, -basis @ grad1)
    assert np.allclose(np.asarray(theta2) - np.asarray(theta1), coefficients @ basis, rtol=1e-8, atol=1e-12)


def test_adaptive_step_solves_least_squares_and_lowers_the_damping() -> None:
    # one linear layer with a Gaussian output: F = A ⊗ I is the Hessian and K-FAC is exact, so the
    # model-optimal step with a tiny damping lands on the least-squares solution, the model's
    # prediction matches the actual decrease (ρ ≈ 1 > 3/4) and the damping is lowered by ω
    rng = np.random.default_rng(DATA_SEED)
    x = jnp.asarray(rng.normal(size=(40, 4)))
    y = jnp.asarray(rng.normal(size=(40, 2)))
    network = Network(MLP((4, 2), "linear"), Gaussian())
    theta = jnp.asarray(network.mlp.init(WEIGHT_SEED))
    optimiser = KFAC(1.0, 1e-14, adaptive=True)
    state = optimiser.init(network, theta, x, y)
    theta, state, _ = optimiser.step(network, theta, state, x, y)
    design = np.hstack([np.asarray(x), np.ones((40, 1))])
    best = np.linalg.lstsq(design, np.asarray(y), rcond=None)[0]
    assert np.allclose(np.asarray(theta), best.ravel(), rtol=1e-5, atol=1e-8)
    _, state, _ = optimiser.step(network, theta, state, x, y)
    assert np.isclose(float(state["damping"]), 1e-14 * optimiser.damping_decay, rtol=1e-12)


def test_bad_settings_give_clear_errors() -> None:
    for settings, word in [(dict(update_every=0), "update_every"), (dict(inverse_every=2.5), "inverse_every"),
                           (dict(ema_decay=1.0), "ema_decay"), (dict(momentum=-0.1), "momentum"),
                           (dict(damping_decay=1.5), "damping_decay"), (dict(mode="fast"), "mode")]:
        with pytest.raises(DomainError, match=word):
            KFAC(0.1, 1e-2, **settings)
    with pytest.raises(DomainError, match="learning_rate"):
        KFAC(0.0, 1e-2)


def test_block_errors_are_the_relative_frobenius_errors_of_the_blocks() -> None:
    x, _ = data()
    theta = NETWORK.mlp.init(WEIGHT_SEED)
    dense = NETWORK.dense_fisher(theta, x)
    blocks = kfac_blocks(kfac_factors(NETWORK, theta, x))
    expected = [np.sqrt(np.sum((b - dense[s, s]) ** 2) / np.sum(dense[s, s] ** 2))
                for s, b in zip(NETWORK.mlp.slices, blocks, strict=True)]
    errors = kfac_block_errors(NETWORK, theta, x)
    assert errors.shape == (2,) and np.allclose(errors, expected, rtol=1e-12) and errors.min() > 1e-3
    assert kfac_block_errors(NETWORK, theta, x[:1]).max() < 1e-12  # exact at batch size one


def test_network_predictor_gives_conditional_models_the_networks_fisher() -> None:
    from fisherbook.conditional import ConditionalModel, categorical_logits, normal_mean
    from fisherbook.networks import NetworkPredictor

    x, y = data(12)
    theta = NETWORK.mlp.init(WEIGHT_SEED)
    model = ConditionalModel(categorical_logits(3), NetworkPredictor(NETWORK), np.asarray(x), np.asarray(y))
    assert np.allclose(model.fisher_mean(theta), NETWORK.dense_fisher(theta, x), rtol=1e-10, atol=1e-13)
    regression = Network(MLP((5, 4, 1), "tanh"), Gaussian())
    targets = np.random.default_rng(DATA_SEED).normal(size=12)
    model = ConditionalModel(normal_mean(1.0), NetworkPredictor(regression), np.asarray(x), targets)
    theta = regression.mlp.init(WEIGHT_SEED)
    assert np.allclose(model.fisher_mean(theta), regression.dense_fisher(theta, x), rtol=1e-10, atol=1e-13)
    # the Gauss-Newton of the conditional model plus the curvature term is the loss Hessian
    hessian = np.asarray(jax.hessian(regression.loss)(jnp.asarray(theta), x, jnp.asarray(targets[:, None])))
    residuals = targets - np.asarray(regression.value(theta, x))[:, 0]
    curvature = NetworkPredictor(regression).curvature(theta, np.asarray(x), -residuals[:, None])
    assert np.allclose(model.gauss_newton_mean(theta) + curvature / 12, hessian, rtol=1e-9, atol=1e-12)

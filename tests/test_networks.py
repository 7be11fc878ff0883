"""Chapter 8's networks: matrix-free Fisher products against the dense Fisher, CG, K-FAC's
exactness cases, a cross-check against kfac-jax, and the errors on bad input.

Everything runs in float64 on networks small enough to form the dense P × P Fisher.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytest.importorskip("jax")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402
import scipy.sparse.linalg  # noqa: E402

from fisherbook.errors import DomainError, FisherbookError, NonFiniteLossError  # noqa: E402
from fisherbook.kfac import KFAC, damped_factors, kfac_blocks, kfac_factors, kfac_precondition  # noqa: E402
from fisherbook.networks import (  # noqa: E402
    MLP,
    Categorical,
    CGNaturalGradient,
    Gaussian,
    Network,
    Optax,
    conjugate_gradient,
    dense_fisher_bytes,
    train,
)

DATA_SEED = 11
WEIGHT_SEED = 5
LABEL_SEED = 7


def batch(n: int, d: int, seed: int = DATA_SEED) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d))


CLASSIFIER = Network(MLP((5, 4, 3), "tanh"), Categorical())
DEEP_LINEAR = Network(MLP((4, 3, 3, 2), "linear"), Gaussian())


def relative_error(approx: np.ndarray, exact: np.ndarray) -> float:
    return float(np.linalg.norm(approx - exact) / np.linalg.norm(exact))


@pytest.mark.parametrize("network", [CLASSIFIER, DEEP_LINEAR, Network(MLP((3, 6, 6, 2), "relu"), Gaussian())],
                         ids=["tanh-categorical", "linear-gaussian", "relu-gaussian"])
def test_matrix_free_product_matches_the_dense_fisher(network: Network) -> None:
    theta = network.mlp.init(WEIGHT_SEED)
    x = batch(9, network.mlp.sizes[0])
    dense = network.dense_fisher(theta, x)
    assert dense.shape == (network.n_params,) * 2
    assert np.allclose(dense, dense.T, atol=1e-14)
    assert np.linalg.eigvalsh(dense).min() > -1e-12
    for v in np.random.default_rng(DATA_SEED + 1).normal(size=(3, network.n_params)):
        product = np.asarray(network.fisher_vector_product(theta, x, v))
        assert np.max(np.abs(product - dense @ v)) < 1e-10 * max(1.0, np.abs(dense @ v).max())


def test_dense_fisher_is_the_expected_outer_product_of_scores() -> None:
    """F = E_y[s sᵀ] with y from the model: for a categorical output, sum over the k labels."""
    theta = CLASSIFIER.mlp.init(WEIGHT_SEED)
    x = batch(4, 5)
    fisher = np.zeros((CLASSIFIER.n_params,) * 2)
    probs = np.asarray(jax.nn.softmax(CLASSIFIER.value(theta, x), axis=1))
    for i in range(4):
        for label in range(3):
            one_example = (jnp.asarray(theta), x[i : i + 1], jnp.array([label]))
            score = np.asarray(jax.grad(CLASSIFIER.loss)(*one_example))
            fisher += probs[i, label] * np.outer(score, score) / 4
    assert np.max(np.abs(fisher - CLASSIFIER.dense_fisher(theta, x))) < 1e-12


def test_predictor_jvp_and_vjp_are_adjoint() -> None:
    theta = CLASSIFIER.mlp.init(WEIGHT_SEED)
    x = batch(6, 5)
    rng = np.random.default_rng(DATA_SEED + 2)
    v, u = rng.normal(size=CLASSIFIER.n_params), rng.normal(size=(6, 3))
    lhs = float(np.sum(np.asarray(CLASSIFIER.jvp(theta, x, v)) * u))
    rhs = float(np.asarray(CLASSIFIER.vjp(theta, x, u)) @ v)
    assert abs(lhs - rhs) < 1e-12 * max(1.0, abs(lhs))


def test_conjugate_gradient_solves_the_damped_system() -> None:
    theta = CLASSIFIER.mlp.init(WEIGHT_SEED)
    x = batch(8, 5)
    b = np.random.default_rng(DATA_SEED + 3).normal(size=CLASSIFIER.n_params)
    damping = 1e-2
    system = CLASSIFIER.dense_fisher(theta, x) + damping * np.eye(CLASSIFIER.n_params)
    result = conjugate_gradient(lambda v: CLASSIFIER.fisher_vector_product(theta, x, v), b, damping, 60)
    exact = np.linalg.solve(system, b)
    assert result.products == 60 and result.residual_norms.shape == (61,)
    assert result.residual_norms[0] == pytest.approx(np.linalg.norm(b))
    assert np.linalg.norm(result.solution - exact) < 1e-8 * np.linalg.norm(exact)
    # residual norms reported by the recursion are the true residuals
    three = conjugate_gradient(lambda v: system @ v - damping * v, b, damping, 3)
    assert three.residual_norms[-1] == pytest.approx(np.linalg.norm(b - system @ three.solution), rel=1e-8)
    # the same iterates as scipy's CG after 3 iterations
    reference, _ = scipy.sparse.linalg.cg(system, b, rtol=0.0, atol=0.0, maxiter=3)
    assert np.allclose(three.solution, reference, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("n", [1, 6])
def test_kfac_is_exact_for_a_deep_linear_network_with_squared_loss(n: int) -> None:
    theta = DEEP_LINEAR.mlp.init(WEIGHT_SEED)
    x = batch(n, 4)
    dense = DEEP_LINEAR.dense_fisher(theta, x)
    blocks = kfac_blocks(kfac_factors(DEEP_LINEAR, theta, x))
    for piece, block in zip(DEEP_LINEAR.mlp.slices, blocks, strict=True):
        assert np.max(np.abs(block - dense[piece, piece])) < 1e-12 * np.abs(dense[piece, piece]).max()


def test_kfac_is_exact_at_batch_size_one_and_approximate_beyond() -> None:
    theta = CLASSIFIER.mlp.init(WEIGHT_SEED)
    x = batch(12, 5)
    one = CLASSIFIER.dense_fisher(theta, x[:1])
    blocks = kfac_blocks(kfac_factors(CLASSIFIER, theta, x[:1]))
    for piece, block in zip(CLASSIFIER.mlp.slices, blocks, strict=True):
        assert relative_error(block, one[piece, piece]) < 1e-12
    full = CLASSIFIER.dense_fisher(theta, x)
    blocks = kfac_blocks(kfac_factors(CLASSIFIER, theta, x))
    errors = [relative_error(block, full[piece, piece])
              for piece, block in zip(CLASSIFIER.mlp.slices, blocks, strict=True)]
    assert min(errors) > 1e-3  # a nonlinear network with 12 inputs: an approximation


def test_sampled_output_factor_is_unbiased_for_the_exact_one() -> None:
    """Each sampled G_l averages one label draw per input; the mean of many draws agrees with the
    exact G_l within 5 standard errors, entry by entry."""
    theta = CLASSIFIER.mlp.init(WEIGHT_SEED)
    x = batch(5, 5)
    exact = kfac_factors(CLASSIFIER, theta, x)
    draws = [kfac_factors(CLASSIFIER, theta, x, mode="sampled", seed=LABEL_SEED + r) for r in range(400)]
    for layer, (a_exact, g_exact) in enumerate(exact):
        samples = np.stack([d[layer][1] for d in draws])
        assert np.allclose(draws[0][layer][0], a_exact)  # A does not depend on labels
        se = samples.std(axis=0, ddof=1) / np.sqrt(len(samples))
        assert np.all(np.abs(samples.mean(axis=0) - g_exact) <= 5 * se + 1e-14)


def test_kfac_precondition_inverts_the_damped_kronecker_blocks() -> None:
    theta = CLASSIFIER.mlp.init(WEIGHT_SEED)
    x = batch(10, 5)
    factors = kfac_factors(CLASSIFIER, theta, x)
    g = np.random.default_rng(DATA_SEED + 4).normal(size=CLASSIFIER.n_params)
    damping = 0.05
    direction = kfac_precondition(CLASSIFIER, factors, g, damping)
    for piece, (a, gg) in zip(CLASSIFIER.mlp.slices, factors, strict=True):
        a_d, g_d = (np.asarray(m) for m in damped_factors(a, gg, damping))
        assert np.allclose(np.kron(a_d, g_d) @ direction[piece], g[piece], atol=1e-10)
        # the damped product differs from A ⊗ G + λI by the cross terms only
        pi = np.sqrt((np.trace(a) / len(a)) / (np.trace(gg) / len(gg)))
        cross = np.sqrt(damping) * (pi * np.kron(np.eye(len(a)), gg) + np.kron(a, np.eye(len(gg))) / pi)
        assert np.allclose(np.kron(a_d, g_d), np.kron(a, gg) + cross + damping * np.eye(len(a) * len(gg)))


def _kfac_jax_loss(network: Network):
    import kfac_jax

    def loss(params, data):
        inputs, labels = data
        a = inputs
        for index, layer in enumerate(params):
            s = a @ layer["w"] + layer["b"]
            a = jnp.tanh(s) if index < len(params) - 1 else s
        kfac_jax.register_softmax_cross_entropy_loss(s, labels)
        return jnp.mean(network.likelihood.nll(s, labels))

    return loss


def test_factors_and_direction_match_kfac_jax() -> None:
    """kfac-jax (estimation mode ggn_exact) on the same network and batch: the same factors A, G
    (both libraries normalise by the batch size and use the mean loss), and the same damped
    direction; kfac-jax orders a dense layer's parameters as [b; W] (bias first)."""
    kfac_jax = pytest.importorskip("kfac_jax")
    network = Network(MLP((6, 5, 4), "tanh"), Categorical())
    theta = network.mlp.init(WEIGHT_SEED)
    x = jnp.asarray(batch(9, 6))
    y = jnp.asarray(np.random.default_rng(LABEL_SEED).integers(0, 4, size=9))
    params = [{"w": m[:-1], "b": m[-1]} for m in network.mlp.unflatten(theta)]
    estimator = kfac_jax.BlockDiagonalCurvature(_kfac_jax_loss(network), default_estimation_mode="ggn_exact")
    key = jax.random.PRNGKey(0)
    state = estimator.init(key, (params, (x, y)), None, None)
    state = estimator.update_curvature_matrix_estimate(state, 0.0, 1.0, 0.0, 9, key, (params, (x, y)))
    mine = kfac_factors(network, theta, x)
    for block_state, (a, g) in zip(state.blocks_states, mine, strict=True):
        assert np.max(np.abs(np.asarray(block_state.factors[0].value) - a)) < 1e-12
        assert np.max(np.abs(np.asarray(block_state.factors[1].value) - g)) < 1e-12
    # the dense block in kfac-jax's order: bias first
    for dense, (a, g) in zip(estimator.to_diagonal_block_dense_matrix(state), mine, strict=True):
        order = np.r_[len(a) - 1, : len(a) - 1]
        assert np.allclose(np.asarray(dense), np.kron(a[np.ix_(order, order)], g), atol=1e-12)
    # preconditioned direction with factored damping
    damping = 0.1
    grad = np.asarray(jax.grad(network.loss)(jnp.asarray(theta), x, y))
    grad_tree = [{"w": m[:-1], "b": m[-1]} for m in network.mlp.unflatten(grad)]
    theirs = estimator.multiply_inverse(state, grad_tree, damping, exact_power=False, use_cached=False,
                                        pmap_axis_name=None)
    ours = network.mlp.unflatten(kfac_precondition(network, mine, grad, damping))
    for layer_theirs, layer_ours in zip(theirs, ours, strict=True):
        assert np.allclose(np.asarray(layer_theirs["w"]), np.asarray(layer_ours[:-1]), rtol=1e-9, atol=1e-12)
        assert np.allclose(np.asarray(layer_theirs["b"]), np.asarray(layer_ours[-1]), rtol=1e-9, atol=1e-12)


def test_optimisers_decrease_the_loss() -> None:
    network = Network(MLP((5, 8, 3), "tanh"), Categorical())
    x = batch(40, 5)
    y = np.random.default_rng(LABEL_SEED).integers(0, 3, size=40)
    theta = network.mlp.init(WEIGHT_SEED)
    for optimiser in (Optax(optax.adam(1e-2)), Optax(optax.sgd(0.1, momentum=0.9)),
                      KFAC(0.2, 1e-2), KFAC(0.2, 1e-2, update_every=5, mode="sampled"),
                      CGNaturalGradient(0.2, 1e-2, 5)):
        result = train(network, theta, x, y, optimiser, 15)
        assert result.losses.shape == (16,) and np.all(np.diff(result.seconds) >= 0)
        assert result.losses[-1] < result.losses[0]


def test_bad_input_gives_clear_errors() -> None:
    theta = CLASSIFIER.mlp.init(WEIGHT_SEED)
    x = batch(4, 5)
    with pytest.raises(DomainError, match="position 1"):
        MLP((5, 0, 3))
    with pytest.raises(DomainError, match=r"\(n, 5\)"):
        CLASSIFIER.dense_fisher(theta, batch(4, 6))
    with pytest.raises(DomainError, match="4 integer labels"):
        CLASSIFIER.check_batch(x, np.zeros(3, dtype=int))
    with pytest.raises(DomainError, match="labels must lie"):
        CLASSIFIER.check_batch(x, np.array([0, 1, 2, 3]))
    with pytest.raises(DomainError, match=r"need \(4, 2\)"):
        DEEP_LINEAR.check_batch(batch(4, 4), np.zeros((4, 3)))
    with pytest.raises(DomainError, match="theta has shape"):
        kfac_factors(CLASSIFIER, theta[:-1], x)
    for damping in (0.0, -1.0, float("nan")):
        with pytest.raises(DomainError, match="damping"):
            conjugate_gradient(lambda v: v, np.ones(3), damping, 2)
        with pytest.raises(DomainError, match="damping"):
            KFAC(0.1, damping)
        with pytest.raises(DomainError, match="damping"):
            CGNaturalGradient(0.1, damping)
    with pytest.raises(DomainError, match="seed"):
        kfac_factors(CLASSIFIER, theta, x, mode="sampled")


def test_a_non_finite_loss_stops_training_with_the_step() -> None:
    network = Network(MLP((5, 8, 2), "linear"), Gaussian())
    x = batch(20, 5) * 10
    y = np.random.default_rng(LABEL_SEED).normal(size=(20, 2))
    with pytest.raises(NonFiniteLossError) as caught:
        train(network, network.mlp.init(WEIGHT_SEED), x, y, Optax(optax.sgd(10.0)), 200, name="sgd")
    error = caught.value
    assert isinstance(error, FisherbookError) and error.step >= 1
    assert np.isfinite(error.last_finite_loss) and f"step {error.step}" in str(error)


def test_dense_fisher_bytes() -> None:
    assert dense_fisher_bytes(10**5) == 8 * 10**10


def test_fisherbook_imports_without_jax() -> None:
    """`import fisherbook` (and its non-network modules) must not need JAX: run it with JAX blocked."""
    code = textwrap.dedent(
        """
        import sys
        sys.modules["jax"] = None  # any `import jax` now raises ImportError
        sys.modules["optax"] = None
        import fisherbook, fisherbook.optim, fisherbook.models, fisherbook.estimators
        assert "jax" not in [m for m in sys.modules if sys.modules[m] is not None]
        try:
            import fisherbook.networks
        except ImportError:
            print("blocked")
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "blocked"

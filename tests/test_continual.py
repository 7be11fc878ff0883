"""fisherbook.continual: the network Fisher in the sum convention, per-example gradients, the EWC
precisions and penalised Adam, against dense references and known values."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("jax")

from fisherbook.continual import (  # noqa: E402
    ewc_precisions,
    network_fisher_sum,
    per_example_gradients,
    train_adam,
)
from fisherbook.errors import DomainError  # noqa: E402
from fisherbook.networks import MLP, Categorical, Gaussian, Network  # noqa: E402

TEST_SEED = 20261003


@pytest.fixture(scope="module")
def small():
    rng = np.random.default_rng(TEST_SEED)
    network = Network(MLP((4, 5, 3), "tanh"), Categorical())
    x = rng.normal(size=(24, 4))
    y = rng.integers(0, 3, size=24)
    return network, network.mlp.init(TEST_SEED), x, y


@pytest.mark.parametrize("likelihood", [Categorical(), Gaussian()])
def test_fisher_sum_is_n_times_the_dense_mean_fisher(likelihood) -> None:
    rng = np.random.default_rng(TEST_SEED + 1)
    network = Network(MLP((3, 4, 2), "tanh"), likelihood)
    theta, x = network.mlp.init(TEST_SEED), rng.normal(size=(17, 3))
    dense = network.dense_fisher(theta, x)
    assert np.allclose(network_fisher_sum(network, theta, x), 17 * dense, rtol=1e-10, atol=1e-12)


def test_per_example_gradients_sum_to_minus_n_times_the_loss_gradient(small) -> None:
    network, theta, x, y = small
    g = per_example_gradients(network, theta, x, y)
    _, grad = network.loss_and_grad(theta, x, y)
    assert g.shape == (24, network.n_params)
    assert np.allclose(g.sum(axis=0), -24 * np.asarray(grad), rtol=1e-10, atol=1e-12)


def test_ewc_precisions_relations(small) -> None:
    network, theta, x, y = small
    precisions = ewc_precisions(network, theta, x, y, 6, np.random.default_rng(TEST_SEED))
    g = per_example_gradients(network, theta, x, y)
    assert np.allclose(precisions["diagonal Fisher"], np.diag(precisions["Fisher"]))
    assert np.allclose(precisions["diagonal empirical Fisher"], np.diag(precisions["empirical Fisher"]))
    assert np.allclose(precisions["squared full-batch gradient"], 24 * g.mean(axis=0) ** 2)
    # batch size 1: the squared "batch-mean" gradient is the diagonal empirical Fisher
    one = ewc_precisions(network, theta, x, y, 1, np.random.default_rng(TEST_SEED))
    assert np.allclose(one["squared batch-mean gradient"], precisions["diagonal empirical Fisher"])


def test_train_adam_without_penalty_lowers_the_loss_and_a_strong_penalty_stays_home(small) -> None:
    network, theta, x, y = small
    runs = train_adam(network, theta, x, y, steps=100, learning_rate=0.05,
                      precision=np.ones(network.n_params), strengths=[0.0, 1e8])
    assert runs.shape == (2, network.n_params)
    assert float(network.loss(runs[0], x, y)) < 0.8 * float(network.loss(theta, x, y))
    assert np.abs(runs[1] - theta).max() < 1e-3


def test_train_adam_full_and_diagonal_precisions_agree_on_a_diagonal_matrix(small) -> None:
    network, theta, x, y = small
    d = np.linspace(1.0, 30.0, network.n_params)
    kwargs = dict(steps=30, learning_rate=0.05, strengths=[2.0])
    assert np.allclose(train_adam(network, theta, x, y, precision=d, **kwargs),
                       train_adam(network, theta, x, y, precision=np.diag(d), **kwargs), atol=1e-10)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        (dict(steps=0, learning_rate=0.1), "steps"),
        (dict(steps=5, learning_rate=-1.0), "learning_rate"),
        (dict(steps=5, learning_rate=0.1, strengths=[-1.0]), "strengths"),
        (dict(steps=5, learning_rate=0.1, precision=np.ones(3)), "precision must have shape"),
        (dict(steps=5, learning_rate=0.1, prior_precision=np.nan), "prior_precision"),
    ],
)
def test_train_adam_bad_input(small, kwargs, words) -> None:
    network, theta, x, y = small
    with pytest.raises(DomainError, match=words):
        train_adam(network, theta, x, y, **kwargs)


def test_ewc_precisions_bad_batch_size(small) -> None:
    network, theta, x, y = small
    with pytest.raises(DomainError, match="batch_size"):
        ewc_precisions(network, theta, x, y, 0, np.random.default_rng(0))

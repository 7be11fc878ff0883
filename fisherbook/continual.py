"""Elastic weight consolidation and Fisher merging for the JAX networks of ``fisherbook.networks``.

Every Fisher here is a **sum** over the n examples of a data set, F = Σ_i J_iᵀ Λ_i J_i = n F̄
(``Network.dense_fisher`` returns the mean F̄). The penalised objective that :func:`train_adam`
minimises is the mean loss of the new data plus the EWC penalty and a Gaussian prior, both
divided by the new data's size n (so that, times n, it is a negative log posterior):

    L̄(θ) + (λ / 2n) (θ - a)ᵀ P (θ - a) + (p₀ / 2n) ‖θ‖²,

with anchor a and precision P (a P × P matrix, or a vector for a diagonal precision).
:func:`ewc_precisions` builds the precisions compared in the chapter: the Fisher, its diagonal,
the empirical Fisher, its diagonal, and the squared batch-mean gradient (on batches and on the
full batch), all in the sum convention.

JAX is needed (``pip install -e ".[nn]"``).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax
from numpy.typing import ArrayLike

from .errors import DomainError
from .networks import Network

__all__ = [
    "network_fisher_sum",
    "per_example_gradients",
    "ewc_precisions",
    "train_adam",
]


@partial(jax.jit, static_argnums=0)
def _fisher_sum(network: Network, theta, x):
    def one(xi):
        return jax.jacrev(lambda t: network.value(t, xi[None])[0])(theta)

    jacobians = jax.vmap(one)(x)                                     # (n, k, P)
    roots = network.likelihood.output_fisher_sqrt(network.value(theta, x))   # B Bᵀ = Λ
    factors = jnp.einsum("nkl,nkp->nlp", roots, jacobians).reshape(-1, jacobians.shape[-1])
    return factors.T @ factors


def network_fisher_sum(network: Network, theta: ArrayLike, x: ArrayLike) -> np.ndarray:
    """F = Σ_i J_iᵀ Λ(f_i) J_i = Σ_i (B_iᵀ J_i)ᵀ (B_iᵀ J_i), B_i B_iᵀ = Λ(f_i): a dense P × P array."""
    network.mlp.check_theta(theta)
    network.check_batch(x)
    return np.asarray(_fisher_sum(network, jnp.asarray(theta), jnp.asarray(x)))


@partial(jax.jit, static_argnums=0)
def _per_example_gradients(network: Network, theta, x, y):
    def one(xi, yi):
        return -jax.grad(lambda t: network.loss(t, xi[None], yi[None]))(theta)

    return jax.vmap(one)(x, y)


def per_example_gradients(network: Network, theta: ArrayLike, x: ArrayLike, y: ArrayLike
                          ) -> np.ndarray:
    """g_i = ∇_θ log p(y_i | x_i, θ) with the data's labels: an (n, P) array."""
    network.mlp.check_theta(theta)
    network.check_batch(x, y)
    return np.asarray(_per_example_gradients(network, jnp.asarray(theta), jnp.asarray(x),
                                             jnp.asarray(y)))


def ewc_precisions(network: Network, theta: ArrayLike, x: ArrayLike, y: ArrayLike,
                   batch_size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The EWC precisions of one task at its solution θ, each summed over its n examples:

    * ``"Fisher"``: F = Σ_i J_iᵀ Λ_i J_i (P × P), and ``"diagonal Fisher"``: diag F (vector);
    * ``"empirical Fisher"``: Σ_i g_i g_iᵀ (P × P), and ``"diagonal empirical Fisher"``;
    * ``"squared batch-mean gradient"``: n × the mean over the batches of a random partition
      (``batch_size`` examples each, the remainder dropped) of ḡ_b², ḡ_b the batch-mean gradient;
    * ``"squared full-batch gradient"``: n ḡ², zero at a stationary point.
    """
    n = np.shape(x)[0]
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
            or not 1 <= batch_size <= n:
        raise DomainError(f"batch_size must be an integer in 1..{n} (the examples), "
                          f"got {batch_size!r}")
    fisher = network_fisher_sum(network, theta, x)
    g = per_example_gradients(network, theta, x, y)
    batches = rng.permutation(n)[: (n // batch_size) * batch_size].reshape(-1, batch_size)
    return {
        "Fisher": fisher,
        "diagonal Fisher": np.diag(fisher).copy(),
        "empirical Fisher": g.T @ g,
        "diagonal empirical Fisher": np.sum(g**2, axis=0),
        "squared batch-mean gradient": n * np.mean([g[b].mean(axis=0) ** 2 for b in batches],
                                                   axis=0),
        "squared full-batch gradient": n * g.mean(axis=0) ** 2,
    }


@partial(jax.jit, static_argnums=(0, 5, 6))
def _train(network: Network, theta0, x, y, penalty, steps: int, learning_rate: float):
    anchor, precision, strengths, prior = penalty
    n = x.shape[0]
    optimiser = optax.adam(learning_rate)

    def objective(theta, strength):
        d = theta - anchor
        quadratic = d @ (precision @ d) if precision.ndim == 2 else jnp.sum(precision * d * d)
        return network.loss(theta, x, y) + (strength * quadratic + prior * theta @ theta) / (2 * n)

    def run(strength):
        def body(carry, _):
            theta, state = carry
            updates, state = optimiser.update(jax.grad(objective)(theta, strength), state, theta)
            return (theta + updates, state), None

        (theta, _), _ = jax.lax.scan(body, (theta0, optimiser.init(theta0)), None, length=steps)
        return theta

    return jax.vmap(run)(strengths)


def train_adam(network: Network, theta0: ArrayLike, x: ArrayLike, y: ArrayLike, *, steps: int,
               learning_rate: float, anchor: ArrayLike | None = None,
               precision: ArrayLike | None = None, strengths: ArrayLike = (0.0,),
               prior_precision: float = 0.0) -> np.ndarray:
    """Full-batch Adam on L̄(θ) + (λ/2n)(θ - a)ᵀP(θ - a) + (p₀/2n)‖θ‖² from θ₀, once per
    strength λ in ``strengths`` (vectorised): the final θ of each run, shape (len(strengths), P).

    ``anchor`` defaults to θ₀ and ``precision`` to zero (no penalty); ``precision`` is a P × P
    matrix or a length-P diagonal, in the sum convention (see the module docstring).
    """
    network.mlp.check_theta(theta0)
    network.check_batch(x, y)
    p = network.n_params
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise DomainError(f"steps must be a positive integer, got {steps!r}")
    if not (np.isfinite(learning_rate) and learning_rate > 0):
        raise DomainError(f"learning_rate must be a positive number, got {learning_rate!r}")
    if not (np.isfinite(prior_precision) and prior_precision >= 0):
        raise DomainError(f"prior_precision must be a finite number >= 0, got {prior_precision!r}")
    strengths = np.atleast_1d(np.asarray(strengths, dtype=float))
    if strengths.ndim != 1 or not np.all(np.isfinite(strengths) & (strengths >= 0)):
        raise DomainError(f"strengths must be finite numbers >= 0, got {strengths}")
    anchor = np.asarray(theta0 if anchor is None else anchor, dtype=float)
    network.mlp.check_theta(anchor)
    precision = np.zeros(p) if precision is None else np.asarray(precision, dtype=float)
    if precision.shape not in {(p,), (p, p)}:
        raise DomainError(f"precision must have shape ({p},) or ({p}, {p}), got {precision.shape}")
    if not np.all(np.isfinite(precision)):
        raise DomainError("precision has non-finite entries")
    penalty = (jnp.asarray(anchor), jnp.asarray(precision), jnp.asarray(strengths),
               jnp.asarray(float(prior_precision)))
    thetas = _train(network, jnp.asarray(theta0, dtype=jnp.float64), jnp.asarray(x),
                    jnp.asarray(y), penalty, int(steps), float(learning_rate))
    return np.asarray(thetas)

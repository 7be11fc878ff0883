"""K-FAC: Kronecker-factored approximate curvature of a :class:`fisherbook.networks.Network`.

For layer l with homogeneous input ā_{l-1} and pre-activation s_l, the per-example Fisher block
is ā āᵀ ⊗ g gᵀ (summed over the output directions g), and K-FAC replaces the batch mean of this
Kronecker product by the Kronecker product of the means (Martens and Grosse, 2015):

    F_l ≈ A_l ⊗ G_l,   A_l = (1/n) Σ_i ā_i ā_iᵀ,   G_l = (1/n) Σ_i Σ_j g_ij g_ijᵀ.

* ``mode="exact"`` (K-FAC "type 2"): g_ij = (∂f_i/∂s_l)ᵀ B_i e_j with B_i B_iᵀ = Λ(f_i), so that
  Σ_j g_ij g_ijᵀ = (∂f_i/∂s_l)ᵀ Λ_i (∂f_i/∂s_l) exactly;
* ``mode="sampled"``: g_i = ∇_{s_l}(-log p(ỹ_i | f_i)) for labels ỹ_i drawn from the model
  (an unbiased Monte Carlo estimate of the same G_l).

Blocks act on the row-major flattening of [W_l; b_l] (see :mod:`fisherbook.networks`); for the
column-major vec of the transposed matrix the same block reads G ⊗ A. Damping is factored: with
π = sqrt((tr A / dim A) / (tr G / dim G)), (A + π√λ I) ⊗ (G + √λ/π I) replaces A ⊗ G + λI.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from numpy.typing import ArrayLike

from fisherbook.errors import DomainError
from fisherbook.networks import Network, check_damping

__all__ = [
    "kfac_factors",
    "kfac_blocks",
    "damped_factors",
    "kfac_precondition",
    "KFAC",
]

MODES = ("exact", "sampled")


def _taps(network: Network, n: int) -> list:
    return [jnp.zeros((n, cols)) for _, cols in network.mlp.shapes]


@partial(jax.jit, static_argnums=(0, 3, 4))
def _factors(network: Network, theta, x, mode: str, n_samples: int, key):
    n = x.shape[0]
    f, pullback, inputs = jax.vjp(lambda taps: network.mlp.forward_with_taps(theta, x, taps),
                                  _taps(network, n), has_aux=True)
    a_factors = [a.T @ a / n for a in inputs]
    g_factors = [jnp.zeros((cols, cols), f.dtype) for _, cols in network.mlp.shapes]
    if mode == "exact":
        roots = network.likelihood.output_fisher_sqrt(f)  # (n, k, k): columns B e_j
        for j in range(f.shape[1]):
            grads = pullback(roots[:, :, j])[0]
            g_factors = [g + s.T @ s / n for g, s in zip(g_factors, grads, strict=True)]
    else:
        def one_draw(g_sums, key_j):
            labels = network.likelihood.sample(key_j, f)
            residual = jax.grad(lambda out: jnp.sum(network.likelihood.nll(out, labels)))(f)
            grads = pullback(residual)[0]
            return [g + s.T @ s / (n * n_samples) for g, s in zip(g_sums, grads, strict=True)], None

        g_factors, _ = jax.lax.scan(one_draw, g_factors, jax.random.split(key, n_samples))
    return a_factors, g_factors


def kfac_factors(network: Network, theta: ArrayLike, x: ArrayLike, *, mode: str = "exact",
                 seed: int | None = None, n_samples: int = 1) -> list[tuple[np.ndarray, np.ndarray]]:
    """The K-FAC factors (A_l, G_l) of every layer on the batch x (labels from the model).

    ``mode="sampled"`` needs a ``seed`` and averages ``n_samples`` label draws per input.
    """
    network.mlp.check_theta(theta)
    network.check_batch(x)
    if mode not in MODES:
        raise DomainError(f"mode must be one of {MODES}, got {mode!r}")
    if mode == "sampled" and seed is None:
        raise DomainError("mode='sampled' draws labels from the model: give a seed")
    if int(n_samples) < 1:
        raise DomainError(f"n_samples must be a positive integer, got {n_samples!r}")
    key = jax.random.PRNGKey(0 if seed is None else int(seed))
    a_list, g_list = _factors(network, jnp.asarray(theta), jnp.asarray(x), mode, int(n_samples), key)
    return [(np.asarray(a), np.asarray(g)) for a, g in zip(a_list, g_list, strict=True)]


def kfac_blocks(factors: list[tuple[ArrayLike, ArrayLike]]) -> list[np.ndarray]:
    """The dense Kronecker blocks A_l ⊗ G_l (for checks on small layers)."""
    return [np.kron(a, g) for a, g in factors]


def damped_factors(a: ArrayLike, g: ArrayLike, damping: float):
    """Factored Tikhonov damping: (A + π√λ I, G + √λ/π I), π = sqrt((tr A/dim A)/(tr G/dim G))."""
    damping = check_damping(damping)
    a, g = jnp.asarray(a), jnp.asarray(g)
    pi = jnp.sqrt((jnp.trace(a) / a.shape[0]) / (jnp.trace(g) / g.shape[0]))
    pi = jnp.where(jnp.isfinite(pi) & (pi > 0), pi, 1.0)
    root = jnp.sqrt(damping)
    return a + pi * root * jnp.eye(a.shape[0]), g + root / pi * jnp.eye(g.shape[0])


def kfac_precondition(network: Network, factors: list, vector: ArrayLike, damping: float) -> np.ndarray:
    """[(A_l + π√λ I) ⊗ (G_l + √λ/π I)]⁻¹ v layer by layer, as (A_d)⁻¹ M (G_d)⁻¹ on each slice M."""
    network.mlp.check_theta(vector)
    damping = check_damping(damping)
    pieces = []
    for (a, g), block in zip(factors, network.mlp.unflatten(vector), strict=True):
        a_d, g_d = damped_factors(a, g, damping)
        pieces.append(jnp.linalg.solve(g_d, jnp.linalg.solve(a_d, block).T).T.ravel())
    return np.asarray(jnp.concatenate(pieces))


@dataclass(frozen=True)
class KFAC:
    """θ ← θ - α [(A ⊗ G) damped]⁻¹ ∇L, the factors (and their inverses) recomputed every
    ``update_every`` steps and reused in between (``update_every`` > 1: stale curvature)."""

    learning_rate: float
    damping: float
    update_every: int = 1
    mode: str = "exact"
    seed: int = 0

    def __post_init__(self) -> None:
        check_damping(self.damping)
        if int(self.update_every) < 1:
            raise DomainError(f"update_every must be a positive integer, got {self.update_every!r}")
        if self.mode not in MODES:
            raise DomainError(f"mode must be one of {MODES}, got {self.mode!r}")

    @partial(jax.jit, static_argnums=(0, 1))
    def _damped(self, network: Network, theta, x, key):
        a_list, g_list = _factors(network, theta, x, self.mode, 1, key)
        return [damped_factors(a, g, self.damping) for a, g in zip(a_list, g_list, strict=True)]

    def _inverses(self, network: Network, theta, x, key):
        # LAPACK through numpy: for these small matrices several times faster than jnp.linalg.inv
        # on the CPU (measured in benchmarks/kfac_step_cost.py's machine)
        return [(jnp.asarray(np.linalg.inv(np.asarray(a))), jnp.asarray(np.linalg.inv(np.asarray(g))))
                for a, g in self._damped(network, theta, x, key)]

    def init(self, network: Network, theta, x, y):
        """State: (step count, factor inverses, random key)."""
        key = jax.random.PRNGKey(self.seed)
        return (0, self._inverses(network, theta, x, key), key)

    def step(self, network: Network, theta, state, x, y):
        """One K-FAC step (refreshing the factor inverses when due)."""
        count, inverses, key = state
        if count > 0 and count % self.update_every == 0:
            key, sub = jax.random.split(key)
            inverses = self._inverses(network, theta, x, sub)
        theta, loss = self._apply(network, theta, inverses, x, y)
        return theta, (count + 1, inverses, key), loss

    @partial(jax.jit, static_argnums=(0, 1))
    def _apply(self, network: Network, theta, inverses, x, y):
        loss, grad = network.loss_and_grad(theta, x, y)
        pieces = [(a_inv @ block @ g_inv).ravel()
                  for (a_inv, g_inv), block in zip(inverses, network.mlp.unflatten(grad), strict=True)]
        return theta - self.learning_rate * jnp.concatenate(pieces), loss

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

:class:`KFAC` is the optimiser as implementations run it, one jit-compiled function per step:
gradient and factors from one forward pass, running-average factors, eigendecompositions cached
between refreshes, optional momentum, and optionally (α, μ) and λ from the quadratic model with
the exact Fisher (Martens and Grosse, 2015, §§6.5, 7). The functions above are the reference it
is tested against.
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
    "kfac_block_errors",
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


def kfac_block_errors(network: Network, theta: ArrayLike, x: ArrayLike, **options) -> np.ndarray:
    """‖A_l ⊗ G_l - F_ll‖_F / ‖F_ll‖_F for every layer l, against the dense Fisher's diagonal blocks
    (tiny networks only; ``options`` go to :func:`kfac_factors`)."""
    dense = network.dense_fisher(theta, x)
    blocks = kfac_blocks(kfac_factors(network, theta, x, **options))
    return np.array([np.linalg.norm(block - dense[s, s]) / np.linalg.norm(dense[s, s])
                     for s, block in zip(network.mlp.slices, blocks, strict=True)])


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


def _statistics(network: Network, theta, x, y, mode: str, key):
    """One forward and one (batched) backward pass: L(θ), ∇L(θ) and this batch's factors (A_l, G_l).

    The gradient is assembled from the same pass as the factors: ∂L/∂[W_l; b_l] = ā_{l-1}ᵀ δ_l with
    δ_l = ∂L/∂s_l, so K-FAC's extra cost over a gradient is the second back-propagation (of the
    sampled or exact output factors) and the two products āᵀā, gᵀg per layer.
    """
    n = x.shape[0]
    f, pullback, inputs = jax.vjp(lambda taps: network.mlp.forward_with_taps(theta, x, taps),
                                  _taps(network, n), has_aux=True)
    loss, loss_residual = jax.value_and_grad(lambda out: jnp.mean(network.likelihood.nll(out, y)))(f)
    deltas = pullback(loss_residual)[0]
    grad = jnp.concatenate([(a.T @ d).ravel() for a, d in zip(inputs, deltas, strict=True)])
    if mode == "exact":
        roots = network.likelihood.output_fisher_sqrt(f)  # (n, k, k), columns B e_j
        outputs = jax.vmap(pullback)(jnp.moveaxis(roots, 2, 0))[0]  # per layer (k, n, d_l)
        g_factors = [jnp.einsum("jni,jnk->ik", g, g) / n for g in outputs]
    else:  # separate pullbacks: faster than a vmap over two cotangents on the CPU (measured)
        labels = network.likelihood.sample(key, f)
        sampled = jax.grad(lambda out: jnp.sum(network.likelihood.nll(out, labels)))(f)
        g_factors = [g.T @ g / n for g in pullback(sampled)[0]]
    a_factors = [a.T @ a / n for a in inputs]
    return loss, grad, a_factors, g_factors


def _decompose(a_factors, g_factors):
    """Eigendecompositions (Q_A, e_A, Q_G, e_G) of every layer's factors (eigenvalues clipped at 0)."""
    pairs = []
    for a, g in zip(a_factors, g_factors, strict=True):
        e_a, q_a = jnp.linalg.eigh(a)
        e_g, q_g = jnp.linalg.eigh(g)
        pairs.append((q_a, jnp.maximum(e_a, 0.0), q_g, jnp.maximum(e_g, 0.0)))
    return pairs


def _precondition_eig(network: Network, eig, vector, damping):
    """[(A + π√λ I) ⊗ (G + √λ/π I)]⁻¹ v from cached eigendecompositions, slice by slice:
    Q_A [(Q_Aᵀ M Q_G) ⊘ (e_A + π√λ)(e_G + √λ/π)ᵀ] Q_Gᵀ."""
    root = jnp.sqrt(damping)
    pieces = []
    for (q_a, e_a, q_g, e_g), block in zip(eig, network.mlp.unflatten(vector), strict=True):
        pi = jnp.sqrt((jnp.sum(e_a) / e_a.shape[0]) / (jnp.sum(e_g) / e_g.shape[0]))
        pi = jnp.where(jnp.isfinite(pi) & (pi > 0), pi, 1.0)
        scale = (e_a + pi * root)[:, None] * (e_g + root / pi)[None, :]
        pieces.append((q_a @ ((q_a.T @ block @ q_g) / scale) @ q_g.T).ravel())
    return jnp.concatenate(pieces)


@dataclass(frozen=True)
class KFAC:
    """K-FAC as one jit-compiled step (Martens and Grosse, 2015, §§5-8).

    Every ``update_every`` steps the factors are re-estimated on the batch, in the same forward
    and backward pass as the gradient, and averaged into the running factors,
    A ← ρ A + (1 - ρ) A_batch with ρ = ``ema_decay`` (ρ = 0: the current batch only). Every
    ``inverse_every`` steps (default: ``update_every``) the running factors are eigendecomposed;
    in between, steps precondition through the cached decompositions (stale curvature when the
    period is > 1). The direction is Δ = -[(A + π√λ I) ⊗ (G + √λ/π I)]⁻¹ ∇L layer by layer, and

    * ``adaptive=False``: θ ← θ + δ, δ = α Δ + μ δ_prev with α = ``learning_rate`` and
      μ = ``momentum`` (μ = 0: the plain algorithm);
    * ``adaptive=True``: (α, μ) minimise the quadratic model M(δ) = ½ δᵀ(F + λI)δ + ∇Lᵀδ, with
      the exact Fisher F of the batch through two Jacobian-vector products (§7), both scaled by
      ``learning_rate`` (1: Martens and Grosse's choice), and λ follows the Levenberg-Marquardt
      rule (§6.5): with ρ = (actual change of L) / M(δ) of the previous step, λ ← ωλ if ρ > 3/4,
      λ ← λ/ω if ρ < 1/4, ω = ``damping_decay``; ``damping`` is then the initial λ.

    With the defaults this is the plain algorithm: fresh factors and inverses at every step, fixed
    learning rate and damping.
    """

    learning_rate: float
    damping: float
    update_every: int = 1
    mode: str = "exact"
    seed: int = 0
    inverse_every: int | None = None
    ema_decay: float = 0.0
    momentum: float = 0.0
    adaptive: bool = False
    damping_decay: float = 0.95

    def __post_init__(self) -> None:
        check_damping(self.damping)
        for name in ("update_every", "inverse_every"):
            value = getattr(self, name)
            if value is not None and (int(value) != value or int(value) < 1):
                raise DomainError(f"{name} must be a positive integer, got {value!r}")
        if self.mode not in MODES:
            raise DomainError(f"mode must be one of {MODES}, got {self.mode!r}")
        if not 0.0 <= float(self.ema_decay) < 1.0:
            raise DomainError(f"ema_decay must lie in [0, 1), got {self.ema_decay!r}")
        if not 0.0 <= float(self.momentum) < 1.0:
            raise DomainError(f"momentum must lie in [0, 1), got {self.momentum!r}")
        if not 0.0 < float(self.damping_decay) < 1.0:
            raise DomainError(f"damping_decay must lie in (0, 1), got {self.damping_decay!r}")
        if not np.isfinite(self.learning_rate) or self.learning_rate <= 0:
            raise DomainError(f"learning_rate must be a finite positive number, got {self.learning_rate!r}")

    @property
    def inverse_period(self) -> int:
        """Steps between eigendecompositions of the factors (``inverse_every``, else ``update_every``)."""
        return int(self.update_every if self.inverse_every is None else self.inverse_every)

    def _settings(self) -> tuple:
        # what changes the compiled program (static); the numbers below are traced, so a grid
        # over learning rates or dampings compiles once
        return (self.mode, int(self.update_every), self.inverse_period, bool(self.adaptive))

    def _rates(self, dtype) -> dict:
        return {name: jnp.asarray(float(getattr(self, name)), dtype)
                for name in ("learning_rate", "momentum", "ema_decay", "damping_decay", "damping")}

    def init(self, network: Network, theta, x, y):
        """State: step count, running factors and their eigendecompositions, previous update δ,
        damping λ, previous loss and model change, random key."""
        theta = jnp.asarray(theta)
        return _kfac_init(self.mode, network, theta, jnp.asarray(x), jnp.asarray(y),
                          jax.random.PRNGKey(self.seed), jnp.asarray(float(self.damping), theta.dtype))

    def step(self, network: Network, theta, state, x, y):
        """One K-FAC step, one call of a jit-compiled function: (θ_next, state, L(θ) before the step)."""
        theta = jnp.asarray(theta)
        return _kfac_step(self._settings(), network, theta, state, x, y, self._rates(theta.dtype))


@partial(jax.jit, static_argnums=(0, 1))
def _kfac_init(mode: str, network: Network, theta, x, y, key, damping):
    key, sub = jax.random.split(key)
    loss, _, a_list, g_list = _statistics(network, theta, x, y, mode, sub)
    return dict(count=jnp.zeros((), jnp.int32), key=key, a=a_list, g=g_list,
                eig=_decompose(a_list, g_list), update=jnp.zeros_like(theta), damping=damping,
                previous_loss=loss, previous_model=jnp.zeros((), theta.dtype))


@partial(jax.jit, static_argnums=(0, 1))
def _kfac_step(settings: tuple, network: Network, theta, state, x, y, rates: dict):
    mode, update_every, inverse_every, adaptive = settings
    count = state["count"]
    key, sub = jax.random.split(state["key"])
    rho = rates["ema_decay"]

    def fresh(_):
        loss, grad, a_list, g_list = _statistics(network, theta, x, y, mode, sub)
        return (loss, grad, [rho * a + (1 - rho) * b for a, b in zip(state["a"], a_list, strict=True)],
                [rho * g + (1 - rho) * b for g, b in zip(state["g"], g_list, strict=True)])

    def stale(_):
        loss, grad = network.loss_and_grad(theta, x, y)
        return loss, grad, state["a"], state["g"]

    due = count > 0
    loss, grad, a_list, g_list = jax.lax.cond(due & (count % update_every == 0), fresh, stale, None)
    eig = jax.lax.cond(due & (count % inverse_every == 0),
                       lambda _: _decompose(a_list, g_list), lambda _: state["eig"], None)
    damping, previous = state["damping"], state["update"]
    if adaptive:  # Levenberg-Marquardt: ρ = actual / predicted change of the previous step
        ratio = (loss - state["previous_loss"]) / state["previous_model"]
        omega = rates["damping_decay"]
        factor = jnp.where(ratio > 0.75, omega, jnp.where(ratio < 0.25, 1 / omega, 1.0))
        damping = jnp.where(due & (state["previous_model"] < 0), damping * factor, damping)
        damping = jnp.clip(damping, jnp.minimum(1e-8, rates["damping"]), jnp.maximum(1e8, rates["damping"]))
    direction = -_precondition_eig(network, eig, grad, damping)
    if adaptive:
        update, model = _model_optimal(network, theta, x, grad, direction, previous, damping,
                                       rates["learning_rate"])
    else:
        update = rates["learning_rate"] * direction + rates["momentum"] * previous
        model = jnp.zeros((), theta.dtype)
    return theta + update, dict(count=count + 1, key=key, a=a_list, g=g_list, eig=eig, update=update,
                                damping=damping, previous_loss=loss, previous_model=model), loss


def _model_optimal(network: Network, theta, x, grad, direction, previous, damping, scale):
    """(α, μ) minimising ½ δᵀ(F + λI)δ + gᵀδ over δ = α Δ + μ δ_prev (exact F by two jvps), scaled
    by ``scale``; returns δ and the model change M(δ)."""
    tangents = jnp.stack([direction, previous])
    f, forward_derivative = jax.linearize(lambda t: network.mlp.forward(t, x), theta)
    jv = jnp.stack([forward_derivative(direction), forward_derivative(previous)])  # J Δ, J δ_prev
    lam_jv = jnp.stack([network.likelihood.output_fisher_product(f, u) for u in jv])
    curvature = jnp.einsum("anj,bnj->ab", jv, lam_jv) / f.shape[0] + damping * tangents @ tangents.T
    linear = tangents @ grad
    det = curvature[0, 0] * curvature[1, 1] - curvature[0, 1] ** 2
    use_both = det > 1e-12 * curvature[0, 0] * curvature[1, 1]
    safe = jnp.where(use_both, det, 1.0)
    both = jnp.array([curvature[1, 1] * linear[0] - curvature[0, 1] * linear[1],
                      curvature[0, 0] * linear[1] - curvature[0, 1] * linear[0]]) / -safe
    alone = jnp.array([-linear[0] / curvature[0, 0], 0.0])
    coefficients = scale * jnp.where(use_both, both, alone)
    model = 0.5 * coefficients @ curvature @ coefficients + linear @ coefficients
    return coefficients @ tangents, model

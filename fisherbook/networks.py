"""Neural networks as predictors f(x, θ), their Fisher without forming it, and conjugate gradient.

A network here is a multilayer perceptron (:class:`MLP`) followed by an output distribution
p(y | f) (:class:`Categorical` for classification, :class:`Gaussian` for regression). The model
is the conditional family p(y | x, θ) = p(y | f(x, θ)), and its Fisher information (per
example, averaged over a batch of inputs, labels drawn from the model) is

    F(θ) = (1/n) Σ_i J_iᵀ Λ(f_i) J_i,   J_i = ∂f(x_i, θ)/∂θ,   Λ(f) = E_{y~p(· ∣ f)}[∇_f log p ∇_f log pᵀ].

For these output distributions Λ is also the Hessian of -log p in f, so F equals the generalised
Gauss-Newton matrix. :meth:`Network.fisher_vector_product` computes F v from one ``jax.jvp`` and
one ``jax.vjp``, without forming the P × P matrix; :func:`conjugate_gradient` solves
(F + λI) d = g with such products; :func:`train` runs any of the optimisers of chapter 8 with a
guard against a non-finite loss.

JAX is imported by this module only (``import fisherbook`` does not need it). Importing it turns
on JAX's 64-bit mode (``jax_enable_x64``): the checks of chapter 8 compare products to 1e-10.

Parameter layout: layer l maps a_{l-1} (width d_{l-1}) to s_l = a_{l-1} W_l + b_l (width d_l);
its parameters are the (d_{l-1} + 1) × d_l matrix [W_l; b_l] (the bias is the last row), and θ
is the concatenation of these matrices flattened row-major (C order). With the homogeneous input
ā = [a, 1], s = ā [W; b], and a Kronecker block A ⊗ G acts on this θ-slice as M ↦ A M G.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from numpy.typing import ArrayLike

from fisherbook.errors import DomainError, NonFiniteLossError

jax.config.update("jax_enable_x64", True)

__all__ = [
    "MLP",
    "Categorical",
    "Gaussian",
    "Network",
    "CGResult",
    "conjugate_gradient",
    "check_damping",
    "TrainResult",
    "train",
    "dense_fisher_bytes",
]

ACTIVATIONS: dict[str, Callable] = {"tanh": jnp.tanh, "linear": lambda s: s, "relu": jax.nn.relu}


def dense_fisher_bytes(n_params: int) -> int:
    """Bytes of a dense P × P Fisher in float64: 8 P²."""
    return 8 * int(n_params) ** 2


def check_damping(damping: float) -> float:
    """``damping`` as a float; :class:`~fisherbook.DomainError` unless it is finite and > 0."""
    value = float(damping)
    if not np.isfinite(value) or value <= 0:
        raise DomainError(f"damping must be a finite positive number, got {damping!r}")
    return value


@dataclass(frozen=True)
class MLP:
    """A multilayer perceptron: s_l = a_{l-1} W_l + b_l, a_l = φ(s_l) for hidden layers, f = s_L.

    ``sizes`` = (input width, hidden widths..., output width); ``activation`` is ``"tanh"``,
    ``"relu"`` or ``"linear"`` (a deep linear network).
    """

    sizes: tuple[int, ...]
    activation: str = "tanh"

    def __post_init__(self) -> None:
        sizes = tuple(self.sizes)
        if len(sizes) < 2:
            raise DomainError(f"an MLP needs an input and an output size, got sizes={sizes}")
        for position, size in enumerate(sizes):
            if not isinstance(size, (int, np.integer)) or size < 1:
                raise DomainError(
                    f"layer size at position {position} of sizes={sizes} is {size!r}; "
                    "every layer needs a positive integer width"
                )
        if self.activation not in ACTIVATIONS:
            raise DomainError(f"unknown activation {self.activation!r}; use one of {sorted(ACTIVATIONS)}")
        object.__setattr__(self, "sizes", tuple(int(s) for s in sizes))

    @property
    def shapes(self) -> list[tuple[int, int]]:
        """Shape (d_{l-1} + 1, d_l) of each layer's parameter matrix [W_l; b_l]."""
        return [(d_in + 1, d_out) for d_in, d_out in zip(self.sizes[:-1], self.sizes[1:], strict=True)]

    @property
    def n_params(self) -> int:
        """Number of parameters P = Σ_l (d_{l-1} + 1) d_l."""
        return sum(rows * cols for rows, cols in self.shapes)

    @property
    def slices(self) -> list[slice]:
        """Where each layer's parameters sit in the flat vector θ."""
        edges = np.cumsum([0] + [rows * cols for rows, cols in self.shapes])
        return [slice(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True)]

    def init(self, seed: int) -> np.ndarray:
        """A random θ: W_l with i.i.d. N(0, 1/d_{l-1}) entries, biases zero."""
        rng = np.random.default_rng(seed)
        blocks = []
        for rows, cols in self.shapes:
            weights = rng.normal(0.0, 1.0 / np.sqrt(rows - 1), size=(rows - 1, cols))
            blocks.append(np.vstack([weights, np.zeros((1, cols))]).ravel())
        return np.concatenate(blocks)

    def unflatten(self, theta: ArrayLike) -> list:
        """The layer matrices [W_l; b_l] of a flat θ."""
        theta = jnp.asarray(theta)
        return [theta[s].reshape(shape) for s, shape in zip(self.slices, self.shapes, strict=True)]

    def check_theta(self, theta: ArrayLike) -> None:
        """Raise :class:`~fisherbook.DomainError` unless θ is a vector of length P."""
        shape = np.shape(theta)
        if shape != (self.n_params,):
            raise DomainError(f"theta has shape {shape}; this network needs a vector of {self.n_params}")

    def check_inputs(self, x: ArrayLike) -> None:
        """Raise :class:`~fisherbook.DomainError` unless x is an (n, d_0) batch with n ≥ 1."""
        shape = np.shape(x)
        if len(shape) != 2 or shape[1] != self.sizes[0] or shape[0] < 1:
            raise DomainError(
                f"inputs have shape {shape}; this network needs an (n, {self.sizes[0]}) batch, n >= 1"
            )

    def forward_with_taps(self, theta: ArrayLike, x: ArrayLike, taps: Sequence[ArrayLike]):
        """f(x, θ) with ``taps[l]`` added to s_l, and the homogeneous inputs ā_{l-1} of every layer.

        Differentiating f in the (zero) taps gives ∂f/∂s_l, which K-FAC needs.
        """
        phi = ACTIVATIONS[self.activation]
        a = jnp.asarray(x)
        inputs = []
        layers = self.unflatten(theta)
        for index, (layer, tap) in enumerate(zip(layers, taps, strict=True)):
            a_bar = jnp.concatenate([a, jnp.ones((a.shape[0], 1), a.dtype)], axis=1)
            inputs.append(a_bar)
            s = a_bar @ layer + tap
            a = s if index == len(layers) - 1 else phi(s)
        return a, inputs

    def forward(self, theta: ArrayLike, x: ArrayLike):
        """The network output f(x, θ), an (n, d_L) array."""
        taps = [jnp.zeros((np.shape(x)[0], cols)) for _, cols in self.shapes]
        return self.forward_with_taps(theta, x, taps)[0]


@dataclass(frozen=True)
class Categorical:
    """p(y | f) = softmax(f)_y, y ∈ {0, ..., k-1}; Λ(f) = diag(p) - p pᵀ."""

    name: str = "categorical"

    def check_labels(self, y: ArrayLike, n: int, k: int) -> None:
        """Raise :class:`~fisherbook.DomainError` unless y is n integer labels in {0, ..., k-1}."""
        y = np.asarray(y)
        if y.shape != (n,) or not np.issubdtype(y.dtype, np.integer):
            raise DomainError(f"labels have shape {y.shape} and dtype {y.dtype}; need {n} integer labels")
        if y.min() < 0 or y.max() >= k:
            raise DomainError(f"labels must lie in 0..{k - 1}, got range {y.min()}..{y.max()}")

    def nll(self, f, y):
        """Per-example -log p(y | f) = logsumexp(f) - f_y."""
        return jax.nn.logsumexp(f, axis=1) - jnp.take_along_axis(f, y[:, None], axis=1)[:, 0]

    def sample(self, key, f):
        """Labels drawn from the model, y ~ softmax(f)."""
        return jax.random.categorical(key, f, axis=1)

    def output_fisher(self, f):
        """Λ(f) = diag(p) - p pᵀ for each row of f: an (n, k, k) array."""
        p = jax.nn.softmax(f, axis=1)
        return jax.vmap(jnp.diag)(p) - p[:, :, None] * p[:, None, :]

    def output_fisher_sqrt(self, f):
        """B with B Bᵀ = Λ(f): B = diag(√p) - p √pᵀ, an (n, k, k) array (columns are the factors)."""
        p = jax.nn.softmax(f, axis=1)
        root = jnp.sqrt(p)
        return jax.vmap(jnp.diag)(root) - p[:, :, None] * root[:, None, :]

    def output_fisher_product(self, f, u):
        """Λ(f) u row by row, without forming Λ: p ∘ u - p (pᵀu)."""
        p = jax.nn.softmax(f, axis=1)
        return p * u - p * jnp.sum(p * u, axis=1, keepdims=True)


@dataclass(frozen=True)
class Gaussian:
    """p(y | f) = N(y; f, I), so -log p = ½‖y - f‖² + const and Λ = I."""

    name: str = "gaussian"

    def check_labels(self, y: ArrayLike, n: int, k: int) -> None:
        """Raise :class:`~fisherbook.DomainError` unless y is an (n, k) array of finite targets."""
        y = np.asarray(y)
        if y.shape != (n, k):
            raise DomainError(f"targets have shape {y.shape}; need ({n}, {k})")
        if not np.all(np.isfinite(y)):
            raise DomainError("targets contain non-finite values")

    def nll(self, f, y):
        """Per-example ½‖y - f‖² (the constant (k/2) log 2π dropped)."""
        return 0.5 * jnp.sum((y - f) ** 2, axis=1)

    def sample(self, key, f):
        """Targets drawn from the model, y = f + ε with ε ~ N(0, I) (ε drawn in float32, half the
        cost of float64 draws on the CPU and ample for Monte Carlo estimates)."""
        return f + jax.random.normal(key, f.shape, jnp.float32).astype(f.dtype)

    def output_fisher(self, f):
        """Λ = I for each row: an (n, k, k) array."""
        return jnp.broadcast_to(jnp.eye(f.shape[1], dtype=f.dtype), (f.shape[0], f.shape[1], f.shape[1]))

    def output_fisher_sqrt(self, f):
        """B = I (B Bᵀ = Λ)."""
        return self.output_fisher(f)

    def output_fisher_product(self, f, u):
        """Λ u = u."""
        return u


@dataclass(frozen=True)
class Network:
    """The conditional model p(y | x, θ) = p(y | f(x, θ)) of an :class:`MLP` and an output law.

    As a predictor it exposes :meth:`value`, :meth:`jvp` and :meth:`vjp` on flat θ, which is all
    a conditional-model Fisher F = (1/n) Σ Jᵀ Λ J needs.
    """

    mlp: MLP
    likelihood: Categorical | Gaussian = field(default_factory=Categorical)

    @property
    def n_params(self) -> int:
        """Number of parameters P."""
        return self.mlp.n_params

    def check_batch(self, x: ArrayLike, y: ArrayLike | None = None) -> None:
        """Raise :class:`~fisherbook.DomainError` if inputs or labels have the wrong shape."""
        self.mlp.check_inputs(x)
        if y is not None:
            self.likelihood.check_labels(y, np.shape(x)[0], self.mlp.sizes[-1])

    # -- the predictor f(x, θ) ----------------------------------------------------------------
    def value(self, theta: ArrayLike, x: ArrayLike):
        """f(x, θ), an (n, k) array."""
        return self.mlp.forward(theta, x)

    def jvp(self, theta: ArrayLike, x: ArrayLike, v: ArrayLike):
        """J v: the change of f(x, θ) along the parameter direction v, an (n, k) array."""
        return jax.jvp(lambda t: self.mlp.forward(t, x), (jnp.asarray(theta),), (jnp.asarray(v),))[1]

    def vjp(self, theta: ArrayLike, x: ArrayLike, u: ArrayLike):
        """Jᵀ u = Σ_i J_iᵀ u_i for an (n, k) array u: a vector of length P."""
        return jax.vjp(lambda t: self.mlp.forward(t, x), jnp.asarray(theta))[1](jnp.asarray(u))[0]

    # -- loss and curvature -----------------------------------------------------------------
    @partial(jax.jit, static_argnums=0)
    def loss(self, theta: ArrayLike, x: ArrayLike, y: ArrayLike):
        """Mean negative log-likelihood L(θ) = (1/n) Σ_i -log p(y_i | f(x_i, θ))."""
        return jnp.mean(self.likelihood.nll(self.mlp.forward(theta, x), y))

    @partial(jax.jit, static_argnums=0)
    def loss_and_grad(self, theta: ArrayLike, x: ArrayLike, y: ArrayLike):
        """L(θ) and ∇L(θ) (one forward and one backward pass)."""
        return jax.value_and_grad(lambda t: jnp.mean(self.likelihood.nll(self.mlp.forward(t, x), y)))(theta)

    @partial(jax.jit, static_argnums=0)
    def fisher_vector_product(self, theta: ArrayLike, x: ArrayLike, v: ArrayLike):
        """F v = (1/n) Jᵀ Λ (J v) from one jvp and one vjp; F is never formed."""
        f, jv = jax.jvp(lambda t: self.mlp.forward(t, x), (theta,), (v,))
        _, pullback = jax.vjp(lambda t: self.mlp.forward(t, x), theta)
        return pullback(self.likelihood.output_fisher_product(f, jv))[0] / f.shape[0]

    def dense_fisher(self, theta: ArrayLike, x: ArrayLike) -> np.ndarray:
        """F = (1/n) Σ_i J_iᵀ Λ_i J_i as a dense P × P array (from the full Jacobian; tiny nets only)."""
        self.mlp.check_theta(theta)
        self.check_batch(x)
        theta = jnp.asarray(theta)
        jac = jax.jacfwd(lambda t: self.mlp.forward(t, x))(theta)  # (n, k, P)
        lam = self.likelihood.output_fisher(self.mlp.forward(theta, x))
        return np.asarray(jnp.einsum("nkp,nkl,nlq->pq", jac, lam, jac) / jac.shape[0])


@dataclass(frozen=True)
class CGResult:
    """A truncated conjugate-gradient solve of (F + λI) d = b started at d = 0.

    ``residual_norms[j]`` is ‖b - (F + λI) d_j‖ after j iterations (j = 0 is ‖b‖); ``products``
    counts the F-vector products used (one per iteration).
    """

    solution: np.ndarray
    residual_norms: np.ndarray
    products: int


def _cg(matvec: Callable, b, damping: float, iterations: int):
    """Fixed-length CG on (matvec + damping I) d = b, traceable by jit; returns (d, residual norms)."""

    def body(carry, _):
        d, r, p, rs = carry
        ap = matvec(p) + damping * p
        curvature = p @ ap
        alpha = jnp.where(curvature > 0, rs / jnp.where(curvature > 0, curvature, 1.0), 0.0)
        d = d + alpha * p
        r = r - alpha * ap
        rs_new = r @ r
        beta = jnp.where(rs > 0, rs_new / jnp.where(rs > 0, rs, 1.0), 0.0)
        return (d, r, r + beta * p, rs_new), jnp.sqrt(rs_new)

    b = jnp.asarray(b)
    start = (jnp.zeros_like(b), b, b, b @ b)
    (d, _, _, _), norms = jax.lax.scan(body, start, None, length=iterations)
    return d, jnp.concatenate([jnp.linalg.norm(b)[None], norms])


def conjugate_gradient(matvec: Callable, b: ArrayLike, damping: float, iterations: int) -> CGResult:
    """Truncated CG for (A + λI) d = b with A given only as ``matvec`` (symmetric PSD), d₀ = 0."""
    damping = check_damping(damping)
    if int(iterations) < 1:
        raise DomainError(f"iterations must be a positive integer, got {iterations!r}")
    d, norms = _cg(matvec, jnp.asarray(b), damping, int(iterations))
    return CGResult(np.asarray(d), np.asarray(norms), int(iterations))


# ---------------------------------------------------------------------------------------------
# Training


@dataclass(frozen=True)
class TrainResult:
    """Losses before each step (``losses[0]`` at the start), wall-clock seconds since the start
    at each of those points (compilation of the first step included), the final θ, and the CPU
    seconds of the process at the same points (all threads: on a shared machine it counts the
    work, where wall time also counts the waiting)."""

    losses: np.ndarray
    seconds: np.ndarray
    theta: np.ndarray
    name: str
    cpu_seconds: np.ndarray | None = None

    def steps_to(self, target: float) -> int | None:
        """The first step count at which the loss is ≤ ``target`` (None if never)."""
        hits = np.flatnonzero(self.losses <= target)
        return int(hits[0]) if hits.size else None

    def seconds_to(self, target: float) -> float | None:
        """Wall-clock seconds until the loss first is ≤ ``target`` (None if never)."""
        step = self.steps_to(target)
        return None if step is None else float(self.seconds[step])


def train(network: Network, theta0: ArrayLike, x: ArrayLike, y: ArrayLike, optimiser: Any,
          steps: int, *, name: str = "") -> TrainResult:
    """Run ``steps`` full-batch steps of ``optimiser`` (an object with ``init(theta)`` and a jitted
    ``step(theta, state, x, y) -> (theta, state, loss_before)``), timing each.

    Raises :class:`~fisherbook.errors.NonFiniteLossError` at the first non-finite loss, naming the
    step and the last finite loss.
    """
    network.mlp.check_theta(theta0)
    network.check_batch(x, y)
    if int(steps) < 1:
        raise DomainError(f"steps must be a positive integer, got {steps!r}")
    x, y = jnp.asarray(x), jnp.asarray(y)
    theta = jnp.asarray(theta0, dtype=jnp.float64)
    state = optimiser.init(network, theta, x, y)
    losses, seconds, cpu_seconds = [], [], []
    start, cpu_start = time.perf_counter(), time.process_time()
    for step in range(int(steps) + 1):
        if step < steps:
            new_theta, new_state, loss = optimiser.step(network, theta, state, x, y)
        else:
            new_theta, new_state, loss = theta, state, network.loss(theta, x, y)
        loss = float(loss)  # waits for the computation
        if not np.isfinite(loss):
            last = losses[-1] if losses else float("nan")
            raise NonFiniteLossError(
                f"{name or type(optimiser).__name__}: the loss became {loss} at step {step} "
                f"(last finite loss {last:.6g} at step {step - 1})",
                step=step,
                last_finite_loss=last,
            )
        losses.append(loss)
        seconds.append(time.perf_counter() - start)
        cpu_seconds.append(time.process_time() - cpu_start)
        theta, state = new_theta, new_state
    return TrainResult(np.array(losses), np.array(seconds), np.asarray(theta), name, np.array(cpu_seconds))


@dataclass(frozen=True)
class Optax:
    """Any optax gradient transformation (e.g. ``optax.adam(1e-3)``) as a :func:`train` optimiser."""

    transformation: Any

    def init(self, network: Network, theta, x, y):
        """The optax state."""
        return self.transformation.init(theta)

    @partial(jax.jit, static_argnums=(0, 1))
    def step(self, network: Network, theta, state, x, y):
        """One optax update on the full-batch gradient."""
        loss, grad = network.loss_and_grad(theta, x, y)
        updates, state = self.transformation.update(grad, state, theta)
        return theta + updates, state, loss


@dataclass(frozen=True)
class CGNaturalGradient:
    """θ ← θ - α d with d from ``cg_iterations`` CG steps on (F + λI) d = ∇L (Hessian-free style:
    the Fisher of the current batch, warm start at d = 0)."""

    learning_rate: float
    damping: float
    cg_iterations: int = 10

    def __post_init__(self) -> None:
        check_damping(self.damping)
        if int(self.cg_iterations) < 1:
            raise DomainError(f"cg_iterations must be positive, got {self.cg_iterations!r}")

    def init(self, network: Network, theta, x, y):
        """No state."""
        return ()

    @partial(jax.jit, static_argnums=(0, 1))
    def step(self, network: Network, theta, state, x, y):
        """One CG natural-gradient step."""
        loss, grad = network.loss_and_grad(theta, x, y)
        direction, _ = _cg(lambda v: network.fisher_vector_product(theta, x, v), grad,
                           self.damping, self.cg_iterations)
        return theta - self.learning_rate * direction, state, loss


__all__ += ["Optax", "CGNaturalGradient"]


class NetworkPredictor:
    """A :class:`Network` as a :class:`fisherbook.conditional.Predictor` (numpy in and out).

    A softmax network's k logits enter :func:`fisherbook.conditional.categorical_logits` as the
    k - 1 differences f_j - f_0 (the softmax depends on nothing else, so the Fisher is the same);
    a Gaussian network's k outputs are the means, as for :func:`fisherbook.conditional.normal_mean`
    (k = 1).
    """

    def __init__(self, network: Network) -> None:
        self.network = network
        width = network.mlp.sizes[-1]
        self.relative = isinstance(network.likelihood, Categorical)
        if self.relative and width < 2:
            raise DomainError(f"a softmax network needs at least 2 outputs, got {width}")
        self.n_outputs = width - 1 if self.relative else width

    def __repr__(self) -> str:
        return f"NetworkPredictor(sizes={self.network.mlp.sizes}, {self.network.likelihood.name})"

    def _f(self, theta, x):
        f = self.network.mlp.forward(theta, x)
        return f[:, 1:] - f[:, :1] if self.relative else f

    def n_params(self, X: np.ndarray) -> int:
        """P, whatever the inputs."""
        return self.network.n_params

    def value(self, theta: np.ndarray, X: np.ndarray) -> np.ndarray:
        """The outputs f(x_i, θ) (logit differences for a softmax network): (n, m)."""
        self.network.mlp.check_theta(theta)
        self.network.check_batch(X)
        return np.asarray(self._f(jnp.asarray(theta), jnp.asarray(X)))

    def jacobian(self, theta: np.ndarray, X: np.ndarray) -> np.ndarray:
        """J_i = ∂f(x_i, θ)/∂θ by forward-mode JAX: (n, m, P)."""
        self.network.mlp.check_theta(theta)
        self.network.check_batch(X)
        return np.asarray(jax.jacfwd(lambda t: self._f(t, jnp.asarray(X)))(jnp.asarray(theta)))

    def curvature(self, theta: np.ndarray, X: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Σ_i Σ_o w_io ∂²f_o(x_i, θ)/∂θ² by JAX: (P, P)."""
        self.network.mlp.check_theta(theta)
        self.network.check_batch(X)
        w = jnp.asarray(weights)
        return np.asarray(jax.hessian(lambda t: jnp.sum(w * self._f(t, jnp.asarray(X))))(jnp.asarray(theta)))


__all__ += ["NetworkPredictor"]

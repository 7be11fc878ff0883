"""Gradient descent and natural gradient descent, with the step-size/radius dictionary between them.

Everything here works on plain numpy vectors: a loss ``L(theta)``, its gradient ``grad(theta)``
and (for the natural gradient) the Fisher information ``fisher(theta)``, all callables. Linear
systems are solved with :func:`numpy.linalg.solve`; no matrix is ever inverted explicitly.

The two update rules, with step size ``alpha``:

* gradient descent: ``theta <- theta - alpha * grad L(theta)``;
* natural gradient descent: ``theta <- theta - alpha * (F(theta) + damping I)^{-1} grad L(theta)``.

Instead of a step size, a *radius* can fix how far each step goes: a Euclidean length
``||d|| = radius`` for gradient descent, a second-order KL divergence ``1/2 d^T F d = radius``
for natural gradient descent (see :func:`step_size_for_radius`, :func:`natural_step_for_radius`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize

from fisherbook.errors import FisherbookError, SingularFisherError

__all__ = [
    "OptimisationError",
    "OptimResult",
    "gradient_descent",
    "natural_gradient_descent",
    "natural_direction",
    "step_size_for_radius",
    "euclidean_step_for_radius",
    "natural_step_size_for_radius",
    "natural_step_for_radius",
    "step_length_along",
    "constrained_step",
    "iterations_to_reach",
]

#: Default largest condition number of the (damped) Fisher accepted by the natural gradient.
MAX_CONDITION: float = 1e12

Vector = np.ndarray
GradFn = Callable[[Vector], Vector]
LossFn = Callable[[Vector], float]
FisherFn = Callable[[Vector], np.ndarray]


class OptimisationError(FisherbookError):
    """An optimiser was given bad settings or ran into non-finite numbers.

    A singular or ill-conditioned Fisher raises :class:`fisherbook.errors.SingularFisherError`.
    """


@dataclass(frozen=True)
class OptimResult:
    """The trajectory of an optimiser.

    ``path[t]`` is the iterate after ``t`` steps (``path[0]`` is the start); ``losses[t]`` is the
    loss there when a loss was given (else ``None``); ``stopped_early`` says whether
    ``target_loss`` was reached before ``n_steps`` steps, in which case ``path`` is shorter.
    """

    path: np.ndarray
    losses: np.ndarray | None
    method: str
    stopped_early: bool = False

    @property
    def theta(self) -> np.ndarray:
        """The last iterate."""
        return self.path[-1]

    @property
    def n_steps(self) -> int:
        """Number of steps actually taken (``len(path) - 1``)."""
        return len(self.path) - 1

    @property
    def steps(self) -> np.ndarray:
        """The update vectors ``path[t+1] - path[t]``, shape ``(n_steps, k)``."""
        return np.diff(self.path, axis=0)


# ---------------------------------------------------------------------------------------------
# validation helpers


def _as_vector(theta0: Sequence[float] | np.ndarray, name: str = "theta0") -> np.ndarray:
    theta = np.array(theta0, dtype=float)
    if theta.ndim == 0:
        theta = theta.reshape(1)
    if theta.ndim != 1 or theta.size == 0:
        raise OptimisationError(f"{name} must be a non-empty 1-D vector, got shape {theta.shape}")
    if not np.all(np.isfinite(theta)):
        raise OptimisationError(f"{name} has non-finite entries: {theta}")
    return theta


def _check_positive(value: float | None, name: str) -> None:
    if value is None:
        return
    if not np.isscalar(value) or not np.isfinite(value) or value <= 0:
        raise OptimisationError(f"{name} must be a finite positive number, got {value!r}")


def _check_n_steps(n_steps: int) -> None:
    if isinstance(n_steps, bool) or not isinstance(n_steps, (int, np.integer)) or n_steps < 0:
        raise OptimisationError(f"n_steps must be a non-negative integer, got {n_steps!r}")


def _check_step_or_radius(step: float | None, radius: float | None) -> None:
    if (step is None) == (radius is None):
        raise OptimisationError("give exactly one of step (a step size) or radius (a step length)")
    _check_positive(step, "step")
    _check_positive(radius, "radius")


def _gradient(grad: GradFn, theta: np.ndarray, t: int) -> np.ndarray:
    g = np.asarray(grad(theta), dtype=float).reshape(-1)
    if g.shape != theta.shape:
        raise OptimisationError(
            f"grad returned shape {g.shape} at step {t}, expected {theta.shape}")
    if not np.all(np.isfinite(g)):
        raise OptimisationError(f"grad is not finite at step {t}, theta = {theta}: {g}")
    return g


def _fisher(fisher: FisherFn, theta: np.ndarray, damping: float, t: int,
            max_condition: float) -> np.ndarray:
    k = theta.size
    F = np.asarray(fisher(theta), dtype=float)
    if F.shape != (k, k):
        raise OptimisationError(f"fisher returned shape {F.shape} at step {t}, expected {(k, k)}")
    if not np.all(np.isfinite(F)):
        raise OptimisationError(f"fisher is not finite at step {t}, theta = {theta}")
    if not np.allclose(F, F.T, rtol=1e-8, atol=1e-12 * max(1.0, np.abs(F).max())):
        raise OptimisationError(f"fisher is not symmetric at step {t}, theta = {theta}")
    F_damped = F + damping * np.eye(k)
    eigenvalues = np.linalg.eigvalsh(F_damped)
    if eigenvalues[0] <= 0:
        raise SingularFisherError(
            f"the Fisher (+ damping {damping}) is not positive definite at step {t}, "
            f"theta = {theta}: smallest eigenvalue {eigenvalues[0]:.3g}; add damping > 0")
    condition = eigenvalues[-1] / eigenvalues[0]
    if condition > max_condition:
        raise SingularFisherError(
            f"the Fisher (+ damping {damping}) is ill-conditioned at step {t}, theta = {theta}: "
            f"condition number {condition:.3g} > max_condition {max_condition:.3g}; "
            "add damping > 0")
    return F_damped


def _finish_step(theta: np.ndarray, t: int, method: str) -> None:
    if not np.all(np.isfinite(theta)):
        raise OptimisationError(
            f"{method} produced a non-finite iterate at step {t}: {theta}; try a smaller step")


def _loss_value(loss: LossFn, theta: np.ndarray, t: int, method: str) -> float:
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        value = float(loss(theta))
    if not np.isfinite(value):
        raise OptimisationError(
            f"{method}: the loss is not finite at step {t}, theta = {theta} (value {value}); "
            "the step probably left the parameter domain: try a smaller step")
    return value


def _run(direction: Callable[[np.ndarray, int], np.ndarray], theta0, *, n_steps: int,
         loss: LossFn | None, target_loss: float | None,
         callback: Callable[[int, np.ndarray], None] | None, method: str) -> OptimResult:
    _check_n_steps(n_steps)
    if target_loss is not None and loss is None:
        raise OptimisationError("target_loss needs a loss function (loss=...)")
    theta = _as_vector(theta0)
    path = [theta.copy()]
    losses = [] if loss is None else [_loss_value(loss, theta, 0, method)]
    stopped_early = False
    if callback is not None:
        callback(0, theta)
    for t in range(1, n_steps + 1):
        if target_loss is not None and losses[-1] <= target_loss:
            stopped_early = True
            break
        with np.errstate(over="ignore", invalid="ignore"):  # non-finite values are checked
            theta = theta + direction(theta, t - 1)
        _finish_step(theta, t, method)
        path.append(theta.copy())
        if loss is not None:
            losses.append(_loss_value(loss, theta, t, method))
        if callback is not None:
            callback(t, theta)
    return OptimResult(path=np.array(path), losses=None if loss is None else np.array(losses),
                       method=method, stopped_early=stopped_early)


# ---------------------------------------------------------------------------------------------
# optimisers


def gradient_descent(grad: GradFn, theta0: Sequence[float] | np.ndarray, *,
                     step: float | None = None, radius: float | None = None, n_steps: int,
                     loss: LossFn | None = None, target_loss: float | None = None,
                     callback: Callable[[int, np.ndarray], None] | None = None) -> OptimResult:
    """Gradient descent: ``theta <- theta - step * grad(theta)`` (or a step of length ``radius``).

    Give ``step`` (fixed step size alpha) or ``radius`` (every step has Euclidean length
    ``radius``, i.e. alpha = radius / ||grad||). With ``loss`` the losses along the path are
    recorded; with ``target_loss`` the run stops at the first iterate whose loss is at most it.
    ``callback(t, theta)`` is called at every iterate.
    """
    _check_step_or_radius(step, radius)

    def direction(theta: np.ndarray, t: int) -> np.ndarray:
        g = _gradient(grad, theta, t)
        if radius is not None:
            return euclidean_step_for_radius(g, radius)
        return -step * g

    return _run(direction, theta0, n_steps=n_steps, loss=loss, target_loss=target_loss,
                callback=callback, method="gradient descent")


def natural_gradient_descent(grad: GradFn, fisher: FisherFn, theta0: Sequence[float] | np.ndarray,
                             *, step: float | None = None, radius: float | None = None,
                             n_steps: int, damping: float = 0.0, loss: LossFn | None = None,
                             target_loss: float | None = None,
                             callback: Callable[[int, np.ndarray], None] | None = None,
                             max_condition: float = MAX_CONDITION) -> OptimResult:
    """Natural gradient descent: ``theta <- theta - step * (F(theta) + damping I)^-1 grad(theta)``.

    Give ``step`` (fixed step size alpha) or ``radius`` (every step has second-order KL
    ``1/2 d^T (F + damping I) d = radius``; see :func:`natural_step_for_radius`). A Fisher that
    is not positive definite, or whose condition number exceeds ``max_condition``, raises
    :class:`~fisherbook.errors.SingularFisherError`; ``damping > 0`` is the usual cure.
    """
    _check_step_or_radius(step, radius)
    if not np.isscalar(damping) or not np.isfinite(damping) or damping < 0:
        raise OptimisationError(f"damping must be a finite number >= 0, got {damping!r}")
    _check_positive(max_condition, "max_condition")

    def direction(theta: np.ndarray, t: int) -> np.ndarray:
        g = _gradient(grad, theta, t)
        F = _fisher(fisher, theta, damping, t, max_condition)
        natural = np.linalg.solve(F, g)
        if radius is not None:
            _check_grad_vector(g)
            return -np.sqrt(2.0 * radius / float(g @ natural)) * natural
        return -step * natural

    return _run(direction, theta0, n_steps=n_steps, loss=loss, target_loss=target_loss,
                callback=callback, method="natural gradient descent")


# ---------------------------------------------------------------------------------------------
# step size <-> radius


def _check_grad_vector(g: np.ndarray) -> np.ndarray:
    g = _as_vector(g, "grad")
    if not np.any(g):
        raise OptimisationError("the gradient is zero: every direction is a minimiser, "
                                "so no step of positive radius is defined")
    return g


def _check_fisher_matrix(F: np.ndarray, k: int) -> np.ndarray:
    F = np.asarray(F, dtype=float)
    if F.shape != (k, k) or not np.all(np.isfinite(F)):
        raise OptimisationError(f"fisher must be a finite {k}x{k} matrix, got shape {F.shape}")
    return F


def _positive_definite(fisher: np.ndarray, damping: float = 0.0) -> np.ndarray:
    """The damped Fisher F + damping I, refused with SingularFisherError unless positive definite."""
    k = fisher.shape[0]
    F_damped = fisher + damping * np.eye(k)
    if not np.allclose(F_damped, F_damped.T, rtol=1e-8,
                       atol=1e-12 * max(1.0, np.abs(F_damped).max())):
        raise OptimisationError("fisher must be a symmetric matrix")
    eigenvalues = np.linalg.eigvalsh(F_damped)
    if eigenvalues[0] <= 0 or eigenvalues[-1] / eigenvalues[0] > MAX_CONDITION:
        raise SingularFisherError(
            f"the Fisher (+ damping {damping}) is singular or numerically so: eigenvalues from "
            f"{eigenvalues[0]:.3g} to {eigenvalues[-1]:.3g} (condition limit {MAX_CONDITION:.0e}); "
            "add damping > 0")
    return F_damped


def natural_direction(grad: np.ndarray, fisher: np.ndarray, damping: float = 0.0) -> np.ndarray:
    """The natural gradient ``(F + damping I)^{-1} grad``, by a linear solve.

    A Fisher (+ damping) that is not positive definite, or whose condition number exceeds
    ``MAX_CONDITION`` (1e12), raises :class:`~fisherbook.errors.SingularFisherError`.
    """
    g = _as_vector(grad, "grad")
    F = _check_fisher_matrix(fisher, g.size)
    if not np.isscalar(damping) or not np.isfinite(damping) or damping < 0:
        raise OptimisationError(f"damping must be a finite number >= 0, got {damping!r}")
    return np.linalg.solve(_positive_definite(F, damping), g)


def step_size_for_radius(grad: np.ndarray, radius: float) -> float:
    """Step size of gradient descent whose step has length ``radius``: alpha = eps / ||g||."""
    _check_positive(radius, "radius")
    g = _check_grad_vector(grad)
    return float(radius / np.linalg.norm(g))


def euclidean_step_for_radius(grad: np.ndarray, radius: float) -> np.ndarray:
    """argmin_d g.d subject to ||d|| = eps:  d = -eps g / ||g||."""
    g = _check_grad_vector(grad)
    return -step_size_for_radius(g, radius) * g


def natural_step_size_for_radius(grad: np.ndarray, fisher: np.ndarray, radius: float) -> float:
    """Natural step size with second-order KL ``radius``: alpha = sqrt(2 eps / g^T F^-1 g)."""
    _check_positive(radius, "radius")
    g = _check_grad_vector(grad)
    quad = float(g @ natural_direction(g, fisher))
    if not quad > 0:
        raise SingularFisherError(f"g^T F^-1 g = {quad:.3g} is not positive: the Fisher is not "
                                "positive definite along the gradient")
    return float(np.sqrt(2.0 * radius / quad))


def natural_step_for_radius(grad: np.ndarray, fisher: np.ndarray, radius: float) -> np.ndarray:
    """argmin_d g.d subject to 1/2 d^T F d = eps:  d = -sqrt(2 eps / g^T F^-1 g) F^-1 g."""
    g = _check_grad_vector(grad)
    return -natural_step_size_for_radius(g, fisher, radius) * natural_direction(g, fisher)


def step_length_along(divergence: Callable[[np.ndarray], float], direction: np.ndarray,
                      radius: float, *, xtol: float = 1e-13) -> float:
    """The length r > 0 with divergence(r u) = radius, u = direction / ||direction||.

    ``divergence`` must be 0 at ``d = 0`` and grow from there; a value that is not finite
    (a step outside the parameter domain) counts as beyond the radius. The root is bracketed
    by doubling r from ``1e-3 sqrt(radius)`` (the first sign change is taken) and then found
    by Brent's method, so it is found whenever the divergence crosses the radius.
    """
    _check_positive(radius, "radius")
    u = _as_vector(direction, "direction")
    norm = np.linalg.norm(u)
    if norm == 0:
        raise OptimisationError("direction must not be the zero vector")
    u = u / norm

    def excess(r: float) -> float:
        with np.errstate(all="ignore"):
            value = float(divergence(r * u))
        return value - radius if np.isfinite(value) else np.inf

    low, high = 0.0, 1e-3 * np.sqrt(radius)
    for _ in range(200):
        if excess(high) > 0:
            break
        low, high = high, 2.0 * high
    else:
        raise OptimisationError(
            f"the divergence never reaches {radius:g} along {u}: is it growing from 0?")
    if np.isinf(excess(high)):  # left the domain: shrink the bracket to a finite value
        for _ in range(200):
            middle = 0.5 * (low + high)
            value = excess(middle)
            if np.isfinite(value) and value > 0:
                high = middle
                break
            if np.isfinite(value):
                low = middle
            else:
                high = middle
        else:
            raise OptimisationError(
                f"no step along {u} reaches divergence {radius:g} inside the domain")
    if not excess(low) < 0:
        raise OptimisationError("the divergence is not below the radius near d = 0")
    return float(optimize.brentq(excess, low, high, xtol=xtol * max(high, 1e-300),
                                 rtol=4 * np.finfo(float).eps, maxiter=500))


def constrained_step(loss: LossFn, divergence: Callable[[np.ndarray], float],
                     theta: Sequence[float] | np.ndarray, radius: float, *,
                     initial_step: np.ndarray | None = None, n_directions: int = 72,
                     tol: float = 1e-10) -> np.ndarray:
    """Numerically solve argmin_d L(theta + d) subject to divergence(d) = eps (no Taylor expansion).

    ``divergence`` maps a step ``d`` to a number that grows from 0 at ``d = 0``, e.g.
    ``d -> ||d||**2 / 2`` or ``d -> KL(p_theta || p_{theta + d})``. Every step on the constraint
    is ``r(u) u`` for a unit direction ``u``, with ``r(u)`` from :func:`step_length_along`
    (a bracketing root-finder), so the problem becomes an unconstrained minimisation of
    ``L(theta + r(u) u)`` over directions: for two parameters a grid of ``n_directions``
    angles and a bounded 1-D search (angle accuracy ``tol``), for more a Nelder-Mead search
    on the sphere started at the best of the grid of the coordinate directions (and
    ``initial_step`` if given). It is used to check the closed-form steps as the radius shrinks.
    """
    _check_positive(radius, "radius")
    theta = _as_vector(theta, "theta")
    k = theta.size
    loss0 = float(loss(theta))
    if not np.isfinite(loss0):
        raise OptimisationError(f"the loss is not finite at theta = {theta}")
    scale = np.sqrt(radius)

    def step(u: np.ndarray) -> np.ndarray:
        return step_length_along(divergence, u, radius) * u / np.linalg.norm(u)

    def objective(u: np.ndarray) -> float:
        with np.errstate(all="ignore"):
            value = (float(loss(theta + step(u))) - loss0) / scale
        return value if np.isfinite(value) else np.inf

    if k == 1:
        candidates = [np.array([1.0]), np.array([-1.0])]
        return step(min(candidates, key=objective))
    if k == 2:
        if isinstance(n_directions, bool) or not isinstance(n_directions, (int, np.integer)) \
                or n_directions < 8:
            raise OptimisationError(f"n_directions must be an integer >= 8, got {n_directions!r}")
        angles = np.linspace(0.0, 2 * np.pi, n_directions, endpoint=False)
        if initial_step is not None:
            u0 = _as_vector(initial_step, "initial_step")
            angles = np.append(angles, np.arctan2(u0[1], u0[0]))

        def along(angle: float) -> float:
            return objective(np.array([np.cos(angle), np.sin(angle)]))

        values = np.array([along(a) for a in angles])
        if not np.any(np.isfinite(values)):
            raise OptimisationError("the loss is not finite anywhere on the constraint")
        best = angles[int(np.argmin(values))]
        width = 2 * np.pi / n_directions
        result = optimize.minimize_scalar(along, bounds=(best - width, best + width),
                                          method="bounded", options={"xatol": tol})
        angle = float(result.x)
        if not result.success or min(abs(angle - best + width), abs(angle - best - width)) < 10 * tol:
            raise OptimisationError(
                "the constrained minimiser did not find an interior minimum over directions: "
                "raise n_directions")
        return step(np.array([np.cos(angle), np.sin(angle)]))
    candidates = list(np.vstack([np.eye(k), -np.eye(k)]))
    if initial_step is not None:
        candidates.append(_as_vector(initial_step, "initial_step"))
    u0 = min(candidates, key=objective)
    result = optimize.minimize(objective, u0 / np.linalg.norm(u0), method="Nelder-Mead",
                               options={"xatol": tol, "fatol": 1e-14, "maxiter": 4000 * k})
    if not result.success or not np.isfinite(result.fun):
        raise OptimisationError(f"the constrained minimiser did not converge: {result.message}")
    return step(result.x)


def iterations_to_reach(values: np.ndarray, threshold: float) -> int | None:
    """The first index t with values[t] <= threshold (None if never)."""
    values = np.asarray(values, dtype=float)
    hits = np.flatnonzero(values <= threshold)
    return int(hits[0]) if hits.size else None

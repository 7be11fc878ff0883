"""The empirical Fisher and its relatives, and descent preconditioned by any of them.

For a :class:`fisherbook.conditional.ConditionalModel` with per-example gradients
g_i = grad log p(y_i | x_i, theta) (labels from the data), mean gradient g = (1/n) sum_i g_i:

* the empirical Fisher (1/n) sum_i g_i g_i^T is ``model.empirical_fisher_mean``;
* :func:`centred_empirical_fisher_mean`, the covariance of the g_i, (1/n) sum_i (g_i - g)(g_i - g)^T;
* :func:`gradient_outer_mean`, the outer product g g^T of the batch-mean gradient (zero at a
  stationary point of the likelihood).

The Fisher itself (labels from the model) is ``model.fisher_mean``. :func:`preconditioned_descent`
runs theta <- theta - step (M(theta) + damping I)^{-1} grad L(theta) for any curvature M, with the
divergence rule of Kunstner, Balles & Hennig (2019): stop when the loss exceeds a factor of the
initial loss.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .conditional import ConditionalModel
from .errors import DomainError

__all__ = [
    "gradient_outer_mean",
    "centred_empirical_fisher_mean",
    "DescentRun",
    "preconditioned_descent",
]


def gradient_outer_mean(model: ConditionalModel, theta: Any) -> np.ndarray:
    """g g^T with g = (1/n) sum_i g_i, the outer product of the batch-mean gradient."""
    g = model.gradient_mean(theta)
    return np.outer(g, g)


def centred_empirical_fisher_mean(model: ConditionalModel, theta: Any) -> np.ndarray:
    """(1/n) sum_i (g_i - g)(g_i - g)^T: the empirical Fisher minus g g^T (gradient covariance)."""
    g = model.per_example_gradients(theta)
    centred = g - g.mean(axis=0)
    return centred.T @ centred / model.n


@dataclass(frozen=True)
class DescentRun:
    """The iterates (iterations + 1, k) and losses of :func:`preconditioned_descent`, and whether
    the run diverged (stopped early: loss above the factor times the initial loss, or not finite)."""

    thetas: np.ndarray
    losses: np.ndarray
    diverged: bool


def preconditioned_descent(loss: Callable[[np.ndarray], float],
                           gradient: Callable[[np.ndarray], np.ndarray],
                           curvature: Callable[[np.ndarray], np.ndarray] | None,
                           theta0: Any, step: float, *, damping: float = 0.0,
                           iterations: int = 100, divergence_factor: float = 100.0) -> DescentRun:
    """theta_{t+1} = theta_t - step (M(theta_t) + damping I)^{-1} grad L(theta_t), M = curvature.

    ``curvature=None`` is gradient descent (M + damping I replaced by I). The run stops, marked
    diverged, as soon as the loss is not finite or exceeds ``divergence_factor`` times the initial
    loss (Kunstner et al.'s rule), or a damped curvature cannot be solved.
    """
    if not (np.isfinite(step) and step > 0):
        raise DomainError(f"step must be a positive finite number, got {step!r}")
    if not (np.isfinite(damping) and damping >= 0):
        raise DomainError(f"damping must be a finite number >= 0, got {damping!r}")
    if isinstance(iterations, bool) or not isinstance(iterations, (int, np.integer)) \
            or iterations < 1:
        raise DomainError(f"iterations must be a positive integer, got {iterations!r}")
    if not (np.isfinite(divergence_factor) and divergence_factor > 1):
        raise DomainError(f"divergence_factor must be a finite number > 1, got {divergence_factor!r}")
    theta = np.asarray(theta0, dtype=float).reshape(-1).copy()
    if not np.all(np.isfinite(theta)):
        raise DomainError(f"theta0 has non-finite entries: {theta}")
    thetas, losses = [theta.copy()], [float(loss(theta))]
    if not np.isfinite(losses[0]):
        raise DomainError(f"the loss at theta0 is not finite ({losses[0]})")
    eye = np.eye(theta.size)
    with np.errstate(all="ignore"):
        for _ in range(iterations):
            g = gradient(theta)
            if curvature is None:
                direction = g
            else:
                try:
                    direction = np.linalg.solve(curvature(theta) + damping * eye, g)
                except np.linalg.LinAlgError:
                    return DescentRun(np.array(thetas), np.array(losses), True)
            theta = theta - step * direction
            value = float(loss(theta)) if np.all(np.isfinite(theta)) else np.inf
            thetas.append(theta.copy())
            losses.append(value)
            if not np.isfinite(value) or value > divergence_factor * losses[0]:
                return DescentRun(np.array(thetas), np.array(losses), True)
    return DescentRun(np.array(thetas), np.array(losses), False)

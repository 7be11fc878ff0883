"""Laplace posteriors, quadratic (EWC) penalties and Fisher-weighted merging.

Every Fisher here is a **sum** over a data set: F = n F̄ with F̄ the Fisher per observation
(``ConditionalModel.fisher_sum``, or n times ``fisher_mean`` / ``Network.dense_fisher``).

* :func:`laplace_posterior`: N(θ̂, (F + P₀)⁻¹), the Laplace approximation at the mode θ̂ with the
  Fisher F of the data in place of the observed information and P₀ the prior precision;
* :func:`linear_gaussian_posterior`: the exact posterior of y = Xθ + ε, ε ~ N(0, σ² I), under the
  prior N(m₀, P₀⁻¹), which the Laplace approximation reproduces;
* :func:`quadratic_penalty`: ½ λ (θ - a)ᵀ P (θ - a), the penalty of elastic weight consolidation
  (EWC) with anchor a and precision P (a matrix, or a vector for a diagonal precision);
* :func:`fisher_merge`: (Σ_m P_m)⁻¹ Σ_m P_m θ_m, the mode of the product of Gaussians N(θ_m, P_m⁻¹)
  (Fisher merging; plain averaging is P_m = I).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import DomainError, SingularFisherError

__all__ = [
    "GaussianPosterior",
    "laplace_posterior",
    "linear_gaussian_posterior",
    "quadratic_penalty",
    "quadratic_penalty_gradient",
    "fisher_merge",
]

#: A precision whose smallest eigenvalue is below this fraction of its largest counts as singular.
SINGULAR_RTOL = 1e-12


def _vector(value: Any, name: str, size: int | None = None) -> np.ndarray:
    vector = np.asarray(value, dtype=float)
    if vector.ndim != 1 or vector.size == 0:
        raise DomainError(f"{name} must be a non-empty 1-D array, got shape {vector.shape}")
    if size is not None and vector.size != size:
        raise DomainError(f"{name} must have {size} entries, got {vector.size}")
    if not np.all(np.isfinite(vector)):
        raise DomainError(f"{name} has non-finite entries")
    return vector


def _precision(value: Any, name: str, size: int, *, definite: bool) -> np.ndarray:
    """A k × k symmetric positive semi-definite (or definite) matrix; a vector is its diagonal."""
    matrix = np.asarray(value, dtype=float)
    if matrix.ndim == 0:
        matrix = np.full(size, float(matrix))
    if matrix.ndim == 1:
        if matrix.size != size:
            raise DomainError(f"{name} as a diagonal must have {size} entries, got {matrix.size}")
        matrix = np.diag(matrix)
    if matrix.shape != (size, size):
        raise DomainError(f"{name} must be a ({size}, {size}) matrix, got shape {matrix.shape}")
    if not np.all(np.isfinite(matrix)):
        raise DomainError(f"{name} has non-finite entries")
    scale = max(np.abs(matrix).max(), 1e-300)
    if np.abs(matrix - matrix.T).max() > 1e-10 * scale:
        raise DomainError(f"{name} is not symmetric (largest |M - Mᵀ| = "
                          f"{np.abs(matrix - matrix.T).max():.3g})")
    matrix = (matrix + matrix.T) / 2
    values = np.linalg.eigvalsh(matrix)
    if values[0] < -1e-10 * scale:
        raise DomainError(f"{name} is not positive semi-definite (eigenvalue {values[0]:.3g})")
    if definite and not (values[-1] > 0 and values[0] > SINGULAR_RTOL * values[-1]):
        raise SingularFisherError(f"{name} is singular (eigenvalues {values[0]:.3g} to "
                                  f"{values[-1]:.3g}): the posterior has no finite covariance; "
                                  "add a prior precision")
    return matrix


@dataclass(frozen=True)
class GaussianPosterior:
    """N(mean, precision⁻¹): a posterior (exact, or a Laplace approximation)."""

    mean: np.ndarray
    precision: np.ndarray

    @property
    def covariance(self) -> np.ndarray:
        """precision⁻¹."""
        return np.linalg.inv(self.precision)

    def log_density(self, theta: Any) -> np.ndarray:
        """log N(θ; mean, precision⁻¹) for θ of shape (k,) or (m, k)."""
        theta = np.atleast_2d(np.asarray(theta, dtype=float))
        if theta.shape[-1] != self.mean.size:
            raise DomainError(f"theta must have {self.mean.size} entries, got {theta.shape[-1]}")
        centred = theta - self.mean
        _, logdet = np.linalg.slogdet(self.precision)
        quadratic = np.einsum("mi,ij,mj->m", centred, self.precision, centred)
        return 0.5 * (logdet - self.mean.size * np.log(2 * np.pi) - quadratic)


def laplace_posterior(mode: Any, fisher_sum: Any, prior_precision: Any = 0.0
                      ) -> GaussianPosterior:
    """N(θ̂, (F + P₀)⁻¹): F the Fisher summed over the data at the mode θ̂ (n F̄), P₀ the prior
    precision (a matrix, a vector for a diagonal, or a number for P₀ = p I)."""
    mode = _vector(mode, "mode")
    k = mode.size
    fisher = _precision(fisher_sum, "fisher_sum", k, definite=False)
    prior = _precision(prior_precision, "prior_precision", k, definite=False)
    return GaussianPosterior(mode, _precision(fisher + prior, "fisher_sum + prior_precision", k,
                                              definite=True))


def linear_gaussian_posterior(X: Any, y: Any, noise_sd: float, prior_mean: Any,
                              prior_precision: Any) -> GaussianPosterior:
    """The exact posterior of θ for y = Xθ + ε, ε ~ N(0, σ² I), θ ~ N(m₀, P₀⁻¹):
    precision P = P₀ + XᵀX/σ², mean P⁻¹(P₀ m₀ + Xᵀy/σ²)."""
    X = np.asarray(X, dtype=float)
    if X.ndim != 2 or X.size == 0 or not np.all(np.isfinite(X)):
        raise DomainError(f"X must be a finite non-empty (n, k) array, got shape {X.shape}")
    y = _vector(y, "y", X.shape[0])
    if not (np.isfinite(noise_sd) and noise_sd > 0):
        raise DomainError(f"noise_sd must be a positive number, got {noise_sd!r}")
    k = X.shape[1]
    prior_mean = _vector(np.broadcast_to(np.asarray(prior_mean, dtype=float), (k,)), "prior_mean")
    prior = _precision(prior_precision, "prior_precision", k, definite=False)
    precision = _precision(prior + X.T @ X / noise_sd**2, "posterior precision", k, definite=True)
    mean = np.linalg.solve(precision, prior @ prior_mean + X.T @ y / noise_sd**2)
    return GaussianPosterior(mean, precision)


def quadratic_penalty(theta: Any, anchor: Any, precision: Any, strength: float = 1.0) -> float:
    """½ λ (θ - a)ᵀ P (θ - a); P a (k, k) matrix or a length-k diagonal."""
    theta, anchor, precision = _penalty_inputs(theta, anchor, precision, strength)
    d = theta - anchor
    quadratic = d @ (precision * d if precision.ndim == 1 else precision @ d)
    return 0.5 * strength * float(quadratic)


def quadratic_penalty_gradient(theta: Any, anchor: Any, precision: Any,
                               strength: float = 1.0) -> np.ndarray:
    """λ P (θ - a), the gradient of :func:`quadratic_penalty`."""
    theta, anchor, precision = _penalty_inputs(theta, anchor, precision, strength)
    d = theta - anchor
    return strength * (precision * d if precision.ndim == 1 else precision @ d)


def _penalty_inputs(theta: Any, anchor: Any, precision: Any, strength: float):
    theta = _vector(theta, "theta")
    anchor = _vector(anchor, "anchor", theta.size)
    if not (np.isfinite(strength) and strength >= 0):
        raise DomainError(f"strength must be a finite number >= 0, got {strength!r}")
    precision = np.asarray(precision, dtype=float)
    if precision.ndim == 1:
        precision = _vector(precision, "precision (diagonal)", theta.size)
        if np.any(precision < 0):
            raise DomainError("precision (diagonal) has negative entries")
    else:
        precision = _precision(precision, "precision", theta.size, definite=False)
    return theta, anchor, precision


def fisher_merge(thetas: Sequence[Any], precisions: Sequence[Any] | None = None) -> np.ndarray:
    """(Σ_m P_m)⁻¹ Σ_m P_m θ_m: each P_m a (k, k) matrix, a length-k diagonal, or a number;
    ``precisions=None`` is the plain average (P_m = I)."""
    thetas = [_vector(t, f"thetas[{m}]") for m, t in enumerate(thetas)]
    if not thetas:
        raise DomainError("fisher_merge needs at least one model")
    k = thetas[0].size
    for m, t in enumerate(thetas):
        if t.size != k:
            raise DomainError(f"thetas[{m}] has {t.size} entries, thetas[0] has {k}")
    if precisions is None:
        return np.mean(thetas, axis=0)
    if len(precisions) != len(thetas):
        raise DomainError(f"{len(precisions)} precisions for {len(thetas)} models")
    arrays = [np.asarray(p, dtype=float) for p in precisions]
    if all(a.ndim <= 1 for a in arrays):      # diagonal precisions: coordinate by coordinate
        diagonals = [np.broadcast_to(a, (k,)) if a.ndim == 0 else _vector(a, f"precisions[{m}]", k)
                     for m, a in enumerate(arrays)]
        if any(np.any(d < 0) for d in diagonals):
            raise DomainError("a diagonal precision has negative entries")
        total = np.sum(diagonals, axis=0)
        if np.any(total <= 0):
            j = int(np.flatnonzero(total <= 0)[0])
            raise SingularFisherError(f"the summed diagonal precision is zero at coordinate {j}: "
                                      "no model determines it")
        return np.sum([d * t for d, t in zip(diagonals, thetas, strict=True)], axis=0) / total
    matrices = [_precision(a, f"precisions[{m}]", k, definite=False)
                for m, a in enumerate(arrays)]
    total = _precision(sum(matrices), "the summed precision", k, definite=True)
    return np.linalg.solve(total, sum(P @ t for P, t in zip(matrices, thetas, strict=True)))

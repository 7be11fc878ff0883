"""Small models for the optimisation experiments: losses, gradients and Fisher matrices in numpy.

* :class:`LogisticRegression`: y in {0, 1}, P(y = 1 | x) = sigmoid(x.w); mean negative
  log-likelihood, its gradient, and the Fisher ``X^T diag(p (1 - p)) X / n``.
* :class:`LinearGaussianRegression`: y = x.w + noise, noise ~ N(0, s^2) with s known; the Fisher
  ``X^T X / (n s^2)`` does not depend on w, and it equals the Hessian of the loss.
* :class:`FamilyNLL`: the mean negative log-likelihood of i.i.d. data under any
  :class:`fisherbook.Family`, with the family's closed-form Fisher (per observation).
* :func:`ill_conditioned_design`: a seeded design matrix whose covariance has a chosen
  condition number.

All losses are *means* over the n observations, so each Fisher is the Fisher of one observation
averaged over the design, and the natural gradient ``F^{-1} grad`` is the same as for the sum.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import sympy as sp
from scipy.special import expit, log_expit

from fisherbook.errors import DomainError, FisherbookError

if TYPE_CHECKING:  # pragma: no cover
    from fisherbook import Family

__all__ = [
    "ModelError",
    "LogisticRegression",
    "LinearGaussianRegression",
    "FamilyNLL",
    "ill_conditioned_design",
    "random_rotation",
]


class ModelError(FisherbookError, ValueError):
    """Bad data or parameters given to a model."""


def _check_design(X: Any, name: str = "X") -> np.ndarray:
    X = np.asarray(X, dtype=float)
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise ModelError(f"{name} must be a non-empty 2-D array (n, k), got shape {X.shape}")
    if not np.all(np.isfinite(X)):
        raise ModelError(f"{name} has non-finite entries")
    return X


def _check_weights(w: Any, k: int) -> np.ndarray:
    w = np.asarray(w, dtype=float).reshape(-1)
    if w.shape != (k,):
        raise ModelError(f"weights must have shape ({k},), got {w.shape}")
    if not np.all(np.isfinite(w)):
        raise ModelError(f"weights have non-finite entries: {w}")
    return w


def random_rotation(k: int, rng: np.random.Generator) -> np.ndarray:
    """A Haar-random k x k orthogonal matrix (QR of a Gaussian matrix with sign correction)."""
    q, r = np.linalg.qr(rng.standard_normal((k, k)))
    return q * np.sign(np.diag(r))


def ill_conditioned_design(n: int, k: int, condition: float, rng: np.random.Generator, *,
                           intercept: bool = False) -> np.ndarray:
    """Rows x_i = z_i diag(s) Q with z_i ~ N(0, I), s log-spaced so that cond(Cov x) = condition.

    The population covariance ``Q^T diag(s^2) Q`` has eigenvalues from 1 down to 1/condition,
    in randomly rotated directions. With ``intercept=True`` a first column of ones is added.
    """
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ModelError(f"n must be a positive integer, got {n!r}")
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ModelError(f"k must be a positive integer, got {k!r}")
    if not np.isfinite(condition) or condition < 1:
        raise ModelError(f"condition must be a finite number >= 1, got {condition!r}")
    k_random = k - 1 if intercept else k
    scales = np.geomspace(1.0, condition ** -0.5, k_random) if k_random > 1 else np.ones(k_random)
    X = rng.standard_normal((n, k_random)) * scales @ random_rotation(k_random, rng)
    if intercept:
        X = np.column_stack([np.ones(n), X])
    return X


def _store_data(model: object, X: np.ndarray, y: np.ndarray) -> None:
    """Set the checked design, targets and their sizes n, k on a frozen model dataclass."""
    object.__setattr__(model, "X", X)
    object.__setattr__(model, "y", y)
    object.__setattr__(model, "n", X.shape[0])
    object.__setattr__(model, "k", X.shape[1])


@dataclass(frozen=True)
class LogisticRegression:
    """Logistic regression: L(w) = -mean_i [y_i log p_i + (1 - y_i) log(1 - p_i)], p = sigmoid(Xw).

    ``l2`` adds ``l2/2 ||w||^2`` to the loss (and ``l2 I`` to the Hessian, not to the Fisher).
    """

    X: np.ndarray
    y: np.ndarray
    l2: float = 0.0
    n: int = field(init=False)
    k: int = field(init=False)

    def __post_init__(self) -> None:
        X = _check_design(self.X)
        y = np.asarray(self.y, dtype=float).reshape(-1)
        if y.shape != (X.shape[0],):
            raise ModelError(f"y must have shape ({X.shape[0]},) to match X, got {y.shape}")
        if not np.all((y == 0) | (y == 1)):
            raise ModelError("y must contain only 0 and 1")
        if not np.isfinite(self.l2) or self.l2 < 0:
            raise ModelError(f"l2 must be a finite number >= 0, got {self.l2!r}")
        _store_data(self, X, y)

    @classmethod
    def simulate(cls, X: np.ndarray, w_true: Any, rng: np.random.Generator,
                 l2: float = 0.0) -> LogisticRegression:
        """Draw labels y_i ~ Bernoulli(sigmoid(x_i . w_true)) for the rows of X."""
        X = _check_design(X)
        w_true = _check_weights(w_true, X.shape[1])
        y = (rng.random(X.shape[0]) < expit(X @ w_true)).astype(float)
        return cls(X, y, l2)

    def probabilities(self, w: Any) -> np.ndarray:
        """p_i = sigmoid(x_i . w)."""
        return expit(self.X @ _check_weights(w, self.k))

    def loss(self, w: Any) -> float:
        """Mean negative log-likelihood (+ l2/2 ||w||^2), computed stably with log_expit."""
        w = _check_weights(w, self.k)
        z = self.X @ w
        nll = -np.mean(self.y * log_expit(z) + (1.0 - self.y) * log_expit(-z))
        return float(nll + 0.5 * self.l2 * w @ w)

    def grad(self, w: Any) -> np.ndarray:
        """Gradient X^T (p - y) / n (+ l2 w)."""
        w = _check_weights(w, self.k)
        return self.X.T @ (expit(self.X @ w) - self.y) / self.n + self.l2 * w

    def fisher(self, w: Any) -> np.ndarray:
        """Fisher per observation, inputs from the data and labels from the model:
        (1/n) sum_i E_{y ~ p(y | x_i, w)}[s_i s_i^T] = X^T diag(p (1 - p)) X / n."""
        p = self.probabilities(w)
        return (self.X * (p * (1.0 - p))[:, None]).T @ self.X / self.n

    def hessian(self, w: Any) -> np.ndarray:
        """Hessian of the loss: the Fisher + l2 I (they coincide for the canonical logit link)."""
        return self.fisher(w) + self.l2 * np.eye(self.k)

    def minimise(self, w0: Any | None = None, *, tol: float = 1e-13,
                 max_steps: int = 100) -> np.ndarray:
        """Minimiser of the loss by Newton's method, to ||grad|| <= tol (not using optim)."""
        w = np.zeros(self.k) if w0 is None else _check_weights(w0, self.k)
        for _ in range(max_steps):
            g = self.grad(w)
            if np.linalg.norm(g) <= tol:
                return w
            w = w - np.linalg.solve(self.hessian(w), g)
        raise ModelError(f"Newton's method did not reach ||grad|| <= {tol} in {max_steps} steps "
                         "(separable data? add l2 > 0)")


@dataclass(frozen=True)
class LinearGaussianRegression:
    """Linear-Gaussian regression: L(w) = mean_i (y_i - x_i.w)^2 / (2 s^2) + log(s sqrt(2 pi))."""

    X: np.ndarray
    y: np.ndarray
    noise_sd: float = 1.0
    n: int = field(init=False)
    k: int = field(init=False)

    def __post_init__(self) -> None:
        X = _check_design(self.X)
        y = np.asarray(self.y, dtype=float).reshape(-1)
        if y.shape != (X.shape[0],) or not np.all(np.isfinite(y)):
            raise ModelError(f"y must be a finite vector of shape ({X.shape[0]},), got {y.shape}")
        if not np.isfinite(self.noise_sd) or self.noise_sd <= 0:
            raise ModelError(f"noise_sd must be a finite positive number, got {self.noise_sd!r}")
        _store_data(self, X, y)

    @classmethod
    def simulate(cls, X: np.ndarray, w_true: Any, rng: np.random.Generator,
                 noise_sd: float = 1.0) -> LinearGaussianRegression:
        """Draw y_i = x_i . w_true + noise_sd * N(0, 1)."""
        X = _check_design(X)
        w_true = _check_weights(w_true, X.shape[1])
        return cls(X, X @ w_true + noise_sd * rng.standard_normal(X.shape[0]), noise_sd)

    def loss(self, w: Any) -> float:
        """Mean negative log-likelihood of the Gaussian noise model."""
        r = self.y - self.X @ _check_weights(w, self.k)
        return float(np.mean(r ** 2) / (2 * self.noise_sd ** 2)
                     + np.log(self.noise_sd * np.sqrt(2 * np.pi)))

    def grad(self, w: Any) -> np.ndarray:
        """Gradient X^T (Xw - y) / (n s^2)."""
        w = _check_weights(w, self.k)
        return self.X.T @ (self.X @ w - self.y) / (self.n * self.noise_sd ** 2)

    def fisher(self, w: Any | None = None) -> np.ndarray:
        """Fisher per observation X^T X / (n s^2); it does not depend on w (w is only checked)."""
        if w is not None:
            _check_weights(w, self.k)
        return self.X.T @ self.X / (self.n * self.noise_sd ** 2)

    def minimise(self) -> np.ndarray:
        """Least squares solution (numpy.linalg.lstsq)."""
        return np.linalg.lstsq(self.X, self.y, rcond=None)[0]


class FamilyNLL:
    """Mean negative log-likelihood L(theta) = -(1/n) sum_i log p(x_i | theta) under a Family.

    ``grad`` is minus the mean score and ``fisher`` the family's closed-form Fisher of one
    observation, so that natural gradient descent on this loss is Fisher scoring. The closed
    forms are compiled once (``sympy.lambdify``) so that an optimiser can call them every step.
    """

    def __init__(self, family: Family, data: Any) -> None:
        data = np.asarray(data, dtype=float)
        if data.size == 0 or not np.all(np.isfinite(data)):
            raise ModelError("data must be a non-empty array of finite numbers")
        self.family = family
        self.data = data
        self.k = len(family.params)
        params = list(family.params)
        others = [sp.Symbol(f"{p.name}_other", **p.assumptions0) for p in params]
        self._fisher_fn = sp.lambdify(params, family.fisher(), ["scipy", "numpy"])
        self._kl_fn = sp.lambdify([*params, *others], family.kl(others), ["scipy", "numpy"])

    def _theta(self, theta: Any) -> np.ndarray:
        return _check_weights(theta, self.k)

    def loss(self, theta: Any) -> float:
        """-(1/n) sum_i log p(x_i | theta); +inf outside the parameter domain."""
        try:
            values = self.family.logpdf(self.data, self._theta(theta))
        except DomainError:
            return float("inf")
        return float(-np.mean(values))

    def grad(self, theta: Any) -> np.ndarray:
        """-(1/n) sum_i s(theta; x_i), the mean score with a minus sign."""
        return -np.mean(self.family.score_numeric(self.data, self._theta(theta)), axis=0)

    def fisher(self, theta: Any) -> np.ndarray:
        """The closed-form Fisher information of one observation at theta."""
        point = self.family.theta_tuple(self._theta(theta))    # checked: inside the domain
        return np.asarray(self._fisher_fn(*point), dtype=float)

    def kl(self, theta: Any, theta_other: Any) -> float:
        """KL(p_theta || p_theta_other) in closed form."""
        a, b = self.family.theta_tuple(self._theta(theta)), self.family.theta_tuple(
            self._theta(theta_other))
        return float(self._kl_fn(*a, *b))

"""Monte Carlo estimators with standard errors: E[f(X)] ~ mean of f(X_i), stderr = sd / sqrt(n)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import DomainError
from .family import Family, Theta

#: Floor added to a tolerance so that an exactly constant estimator (standard error 0) is not
#: failed by floating-point rounding alone.
ROUNDING_FLOOR = 1e-9


@dataclass(frozen=True)
class MeanEstimate:
    """A Monte Carlo mean and its standard error (elementwise), from n draws."""

    estimate: np.ndarray
    stderr: np.ndarray
    n: int

    def zscores(self, exact: np.ndarray | float) -> np.ndarray:
        """(estimate - exact) / stderr elementwise, the stderr floored by the rounding floor used
        in :meth:`agrees_with` (so an exactly constant estimator gives a finite z, not inf)."""
        exact = np.asarray(exact, dtype=float)
        error = np.asarray(self.estimate, dtype=float) - exact
        return error / (self.stderr + ROUNDING_FLOOR * np.maximum(1.0, np.abs(exact)))

    def agrees_with(self, exact: np.ndarray | float, sigmas: float = 5.0) -> bool:
        """True when abs(estimate - exact) <= sigmas * stderr (+ a rounding floor) everywhere."""
        exact = np.asarray(exact, dtype=float)
        tolerance = sigmas * self.stderr + ROUNDING_FLOOR * np.maximum(1.0, np.abs(exact))
        return bool(np.all(np.abs(self.estimate - exact) <= tolerance))


@dataclass(frozen=True)
class FisherEstimate(MeanEstimate):
    """A Monte Carlo estimate of the Fisher information, with the estimator used."""

    method: str = "score"


def mc_mean(values: np.ndarray) -> MeanEstimate:
    """Mean over axis 0 and its standard error sd / sqrt(n) (ddof=1)."""
    values = np.asarray(values, dtype=float)
    n = values.shape[0] if values.ndim else 0
    if n < 2:
        raise DomainError(f"need at least 2 values for a mean with a standard error, got {n}")
    if not np.all(np.isfinite(values)):
        raise DomainError("the values contain NaN or infinity (parameter outside its domain?)")
    return MeanEstimate(values.mean(axis=0), values.std(axis=0, ddof=1) / np.sqrt(n), n)


def _check_n(n: int) -> None:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
        raise DomainError(f"the number of Monte Carlo draws n must be an integer >= 2, got {n!r}")


def estimate_fisher(family: Family, theta: Theta, n: int, *, rng: np.random.Generator,
                    method: str = "score") -> FisherEstimate:
    """Monte Carlo Fisher: mean of s s^T (method="score") or of -Hessian (method="hessian")."""
    _check_n(n)
    if method not in ("score", "hessian"):
        raise ValueError(f"method must be 'score' or 'hessian', got {method!r}")
    draws = family.sample(theta, n, rng)
    if method == "score":
        scores = family.score_numeric(draws, theta)
        terms = scores[:, :, None] * scores[:, None, :]
    else:
        terms = -family.hessian_numeric(draws, theta)
    mean = mc_mean(terms)
    return FisherEstimate(mean.estimate, mean.stderr, n, method)


def estimate_score_mean(family: Family, theta: Theta, n: int, *,
                        rng: np.random.Generator) -> MeanEstimate:
    """Monte Carlo E_theta[s(theta)]: the mean score over n draws (zero in expectation)."""
    _check_n(n)
    draws = family.sample(theta, n, rng)
    return mc_mean(family.score_numeric(draws, theta))


def estimate_kl(family: Family, theta: Theta, theta_other: Theta, n: int, *,
                rng: np.random.Generator) -> MeanEstimate:
    """Monte Carlo KL(p_theta || p_other): the mean of log p_theta(X) - log p_other(X), X ~ p_theta."""
    _check_n(n)
    draws = family.sample(theta, n, rng)
    return mc_mean(family.logpdf(draws, theta) - family.logpdf(draws, theta_other))

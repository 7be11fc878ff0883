"""The Fisher information in numbers: how noisy its two Monte Carlo estimators are, and the
Cramér–Rao bound by simulation (n Cov(theta_hat) -> F(theta)^-1 for the MLE).

Two questions a reader can ask of any :class:`~fisherbook.family.Family`:

* Which Monte Carlo estimator of F is less noisy, the mean of s s^T or the mean of -Hess log p?
  Both are means of i.i.d. summands, so the answer is the per-draw variance of the summands
  (:func:`summand_variances` measures it, :func:`summand_variances_by_quadrature` computes it).
* How close does an estimator come to the bound Cov(T) >= (n F)^-1? Simulate many datasets of
  size n, apply the estimator to each and compare n Cov of the results with F^-1
  (:func:`cramer_rao_study`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize

from .errors import DerivationError, DomainError, SingularFisherError
from .estimators import MeanEstimate, mc_mean
from .family import Family, Theta

#: An estimator maps datasets, an array of shape (replicates, n) (or (replicates, n, d)), to
#: estimates of shape (replicates, k) (or (replicates,) for one parameter).
Estimator = Callable[[np.ndarray], np.ndarray]

METHODS = ("score", "hessian")


def _check_count(value: int, what: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise DomainError(f"{what} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def fisher_summands(family: Family, theta: Theta, draws: np.ndarray,
                    method: str = "score") -> np.ndarray:
    """The i.i.d. terms whose mean is F: s s^T (method="score") or -Hess log p ("hessian")."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if method == "score":
        scores = family.score_numeric(draws, theta)
        return scores[..., :, None] * scores[..., None, :]
    return -family.hessian_numeric(draws, theta)


def variance_with_stderr(values: np.ndarray) -> MeanEstimate:
    """Var[values] over axis 0 as the mean of squared deviations, with its standard error.

    The standard error is sd((v - mean)^2) / sqrt(n), i.e. sqrt((m4 - Var^2) / n); it is 0 when
    the values are constant (a zero-variance estimator)."""
    values = np.asarray(values, dtype=float)
    if values.ndim == 0 or values.shape[0] < 2:
        raise DomainError("need at least 2 values to estimate a variance")
    squared_deviations = (values - values.mean(axis=0)) ** 2
    return mc_mean(squared_deviations)


@dataclass(frozen=True)
class SummandVariances:
    """Per-draw variances Var[s_i s_j] and Var[-H_ij] measured on the same n draws."""

    score: MeanEstimate
    hessian: MeanEstimate
    n: int

    def better(self) -> np.ndarray:
        """Entrywise "score", "hessian" or "tie" (equal within 5 standard errors of the gap)."""
        gap = self.score.estimate - self.hessian.estimate
        stderr = np.hypot(self.score.stderr, self.hessian.stderr)
        tie = np.abs(gap) <= 5 * stderr + 1e-12
        return np.where(tie, "tie", np.where(gap < 0, "score", "hessian"))


def summand_variances(family: Family, theta: Theta, n: int, *,
                      rng: np.random.Generator) -> SummandVariances:
    """Measure Var[s_i s_j] and Var[-H_ij] (per draw) on n draws from p_theta.

    An estimator of F from m draws has variance (per-draw variance) / m, so the smaller
    per-draw variance is the better estimator at equal m."""
    n = _check_count(n, "the number of draws n", 2)
    draws = family.sample(theta, n, rng)
    return SummandVariances(
        score=variance_with_stderr(fisher_summands(family, theta, draws, "score")),
        hessian=variance_with_stderr(fisher_summands(family, theta, draws, "hessian")),
        n=n)


def summand_variances_by_quadrature(family: Family, theta: Theta) -> dict[str, np.ndarray]:
    """Exact per-draw variances by quadrature: E[(s_i s_j)^2] - F_ij^2 and E[H_ij^2] - F_ij^2."""
    score, hessian = family.score(), family.hessian()
    fisher = family.fisher_numeric(theta)
    k = len(family.params)
    out = {method: np.empty((k, k)) for method in METHODS}
    for i in range(k):
        for j in range(i, k):
            second_moments = {"score": family.expect((score[i] * score[j]) ** 2, theta),
                              "hessian": family.expect(hessian[i, j] ** 2, theta)}
            for method, moment in second_moments.items():
                out[method][i, j] = out[method][j, i] = moment - fisher[i, j] ** 2
    return out


@dataclass(frozen=True)
class ScaledCovariance:
    """n Cov(theta_hat) over simulated datasets of size n, with standard errors, and the bias."""

    sample_size: int
    replicates: int
    estimate: np.ndarray
    stderr: np.ndarray
    bias: np.ndarray
    bias_stderr: np.ndarray

    def _as_mean(self) -> MeanEstimate:
        return MeanEstimate(self.estimate, self.stderr, self.replicates)

    def zscores(self, target: np.ndarray | float) -> np.ndarray:
        """(n Cov - target) / stderr, entrywise."""
        return self._as_mean().zscores(target)

    def agrees_with(self, target: np.ndarray | float, sigmas: float = 5.0) -> bool:
        """True when abs(n Cov - target) <= sigmas * stderr in every entry."""
        return self._as_mean().agrees_with(target, sigmas)


def scaled_covariance(estimates: np.ndarray, sample_size: int,
                      truth: Sequence[float] | float) -> ScaledCovariance:
    """n Cov of estimates (replicates x k) with standard errors; bias = mean - truth.

    Entry (i, j) of the sample covariance is a mean of products of deviations; its standard
    error is the sd of those products over sqrt(replicates), times n."""
    sample_size = _check_count(sample_size, "the sample size", 1)
    values = np.asarray(estimates, dtype=float)
    if values.ndim == 1:
        values = values[:, None]
    truth = np.atleast_1d(np.asarray(truth, dtype=float))
    if values.ndim != 2 or values.shape[1] != truth.size:
        raise DomainError(f"estimates must have shape (replicates, {truth.size}), got "
                          f"{np.shape(estimates)}")
    deviations = values - values.mean(axis=0)
    products = mc_mean(deviations[:, :, None] * deviations[:, None, :])
    bias = mc_mean(values - truth)
    return ScaledCovariance(sample_size, values.shape[0], sample_size * products.estimate,
                            sample_size * products.stderr, bias.estimate, bias.stderr)


def simulate_estimates(family: Family, theta: Theta, sample_size: int, replicates: int,
                       estimator: Estimator, *, rng: np.random.Generator) -> np.ndarray:
    """Apply an estimator to `replicates` datasets of `sample_size` draws: (replicates, k)."""
    sample_size = _check_count(sample_size, "the sample size", 1)
    replicates = _check_count(replicates, "the number of replicates", 2)
    draws = family.sample(theta, sample_size * replicates, rng)
    datasets = draws.reshape(replicates, sample_size, *draws.shape[1:])
    values = np.asarray(estimator(datasets), dtype=float)
    if values.shape[0] != replicates:
        raise DomainError(f"the estimator returned {values.shape[0]} estimates for "
                          f"{replicates} datasets: it must map (replicates, n) to (replicates, k)")
    if not np.all(np.isfinite(values)):
        raise DomainError(f"the estimator returned NaN or infinity on some of the datasets of "
                          f"size {sample_size} (too small a sample for it?)")
    return values.reshape(replicates, -1)


def cramer_rao_study(family: Family, theta: Theta, sizes: Sequence[int], replicates: int,
                     estimator: Estimator, *, rng: np.random.Generator) -> list[ScaledCovariance]:
    """n Cov(estimator) at each sample size n, to compare with F(theta)^-1 (Cramér–Rao)."""
    truth = family.theta_tuple(theta)
    return [scaled_covariance(simulate_estimates(family, theta, n, replicates, estimator,
                                                 rng=rng), n, truth)
            for n in sizes]


def numerical_mle(family: Family, data: np.ndarray, start: Theta) -> np.ndarray:
    """argmax_theta sum_i log p(x_i | theta) by L-BFGS-B inside the parameter domains."""
    start_point = np.array(family.theta_tuple(start))
    bounds = []
    for p in family.params:
        lower, upper = (float(end) for end in family.domains[p])
        bounds.append((lower + 1e-9 if np.isfinite(lower) else None,
                       upper - 1e-9 if np.isfinite(upper) else None))

    def negative_log_likelihood(point: np.ndarray) -> tuple[float, np.ndarray]:
        value = -float(np.sum(family.logpdf(data, point)))
        gradient = -np.sum(family.score_numeric(data, point), axis=0)
        if not np.isfinite(value):
            return 1e300, np.zeros_like(point)
        return value, gradient

    result = optimize.minimize(negative_log_likelihood, start_point, jac=True,
                               method="L-BFGS-B", bounds=bounds)
    if not result.success:
        raise DerivationError(f"{family.name}: the likelihood maximisation did not converge "
                              f"({result.message})")
    return np.asarray(result.x)


def mle_by_optimisation(family: Family, start: Theta) -> Estimator:
    """An estimator for :func:`cramer_rao_study`: :func:`numerical_mle` on every dataset."""
    family.theta_tuple(start)  # fail now, not inside the simulation

    def estimator(datasets: np.ndarray) -> np.ndarray:
        return np.array([numerical_mle(family, data, start) for data in datasets])

    return estimator


def inverse_fisher(family: Family, theta: Theta) -> np.ndarray:
    """F(theta)^-1 from the closed form (the Cramér–Rao bound for n = 1)."""
    fisher = family.fisher_numeric(theta)
    if not np.all(np.isfinite(fisher)) or np.linalg.cond(fisher) > 1e12:
        raise SingularFisherError(f"{family.name}: F is singular (or not finite) at "
                                  f"{family.theta_tuple(theta)}: no Cramér–Rao bound there")
    return np.linalg.inv(fisher)


__all__ = ["fisher_summands", "variance_with_stderr", "SummandVariances", "summand_variances",
           "summand_variances_by_quadrature", "ScaledCovariance", "scaled_covariance",
           "simulate_estimates", "cramer_rao_study", "numerical_mle", "mle_by_optimisation",
           "inverse_fisher"]

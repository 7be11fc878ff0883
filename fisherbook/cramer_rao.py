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
from .estimators import ROUNDING_FLOOR, FisherEstimate, MeanEstimate, mc_mean
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


def fisher_estimates(family: Family, theta: Theta, n: int, *,
                     rng: np.random.Generator) -> dict[str, FisherEstimate]:
    """Both Monte Carlo estimators of F (mean of s s^T, mean of -Hess log p) on the SAME n draws."""
    n = _check_count(n, "the number of draws n", 2)
    draws = family.sample(theta, n, rng)
    out = {}
    for method in METHODS:
        mean = mc_mean(fisher_summands(family, theta, draws, method))
        out[method] = FisherEstimate(mean.estimate, mean.stderr, n, method)
    return out


#: Batches for :func:`batched_variance`: enough for a tight interval, few enough that each
#: batch mean averages many values and is close to normal.
DEFAULT_BATCHES = 400


@dataclass(frozen=True)
class VarianceEstimate(MeanEstimate):
    """Var[v] per value from B batch means, m Var(batch means), with a log-scale interval.

    log(estimate) has standard deviation ``log_sd`` = sqrt(2 / (B - 1) + kurt / B), kurt the excess
    kurtosis of the batch means (0 if negative): an interval that stays honest for skewed,
    heavy-tailed values, where sd((v - mean)^2) / sqrt(n) does not. ``stderr`` is
    estimate * log_sd, the matching standard error on the original scale."""

    batches: int = DEFAULT_BATCHES
    log_sd: np.ndarray | float = 0.0

    def zscores(self, exact: np.ndarray | float) -> np.ndarray:
        """(log estimate - log exact) / log_sd, entrywise; 0 where both are 0 (to rounding)."""
        exact = np.asarray(exact, dtype=float)
        estimate = np.asarray(self.estimate, dtype=float)
        floor = ROUNDING_FLOOR * np.maximum(1.0, np.abs(exact))
        tied = np.abs(estimate - exact) <= floor
        with np.errstate(divide="ignore", invalid="ignore"):
            z = (np.log(np.maximum(estimate, 0.0)) - np.log(exact)) / np.asarray(self.log_sd)
        z = np.where(exact > floor, z, np.inf)
        return np.where(tied, 0.0, np.nan_to_num(z, nan=np.inf, posinf=np.inf, neginf=-np.inf))

    def agrees_with(self, exact: np.ndarray | float, sigmas: float = 5.0) -> bool:
        """True when abs(log estimate - log exact) <= sigmas * log_sd in every entry."""
        return bool(np.all(np.abs(self.zscores(exact)) <= sigmas))

    def scaled(self, factor: float) -> VarianceEstimate:
        """The same estimate times a positive constant (e.g. n, for n Var)."""
        if not factor > 0:
            raise DomainError(f"the scale factor must be positive, got {factor!r}")
        return VarianceEstimate(self.estimate * factor, self.stderr * factor, self.n,
                                self.batches, self.log_sd)


def batched_variance(values: np.ndarray, batches: int = DEFAULT_BATCHES) -> VarianceEstimate:
    """Var[values] over axis 0 from batch means: (n / B) * sample variance of the B batch means.

    The values are split in order into B equal batches (a remainder is dropped); for i.i.d.
    values it estimates the per-value variance, with an interval on the log scale."""
    values = np.asarray(values, dtype=float)
    batches = _check_count(batches, "the number of batches", 3)
    if values.ndim == 0 or values.shape[0] < 2 * batches:
        raise DomainError(f"need at least 2 values per batch: {2 * batches} values for "
                          f"{batches} batches, got {values.shape[0] if values.ndim else 0}")
    if not np.all(np.isfinite(values)):
        raise DomainError("the values contain NaN or infinity")
    per_batch = values.shape[0] // batches
    kept = values[: per_batch * batches]
    means = kept.reshape(batches, per_batch, *values.shape[1:]).mean(axis=1)
    estimate = per_batch * means.var(axis=0, ddof=1)
    centred = means - means.mean(axis=0)
    second, fourth = (centred**2).mean(axis=0), (centred**4).mean(axis=0)
    spread = second > 0
    kurtosis = np.where(spread, fourth / np.where(spread, second, 1.0) ** 2 - 3.0, 0.0)
    log_sd = np.sqrt(2.0 / (batches - 1) + np.maximum(kurtosis, 0.0) / batches)
    return VarianceEstimate(estimate, estimate * log_sd, kept.shape[0], batches, log_sd)


@dataclass(frozen=True)
class SummandVariances:
    """Per-draw variances Var[s_i s_j] and Var[-H_ij] measured on the same n draws (batch means)."""

    score: VarianceEstimate
    hessian: VarianceEstimate
    n: int

    def better(self, sigmas: float = 5.0) -> np.ndarray:
        """Entrywise "score", "hessian" or "tie": the estimator with the smaller per-draw variance,
        when the log-scale gap exceeds sigmas standard errors (a zero variance beats any other)."""
        score, hessian = self.score.estimate, self.hessian.estimate
        floor = 1e-12 * np.maximum(1.0, np.maximum(score, hessian))
        with np.errstate(divide="ignore", invalid="ignore"):
            gap = (np.log(score) - np.log(hessian)) / np.hypot(self.score.log_sd,
                                                               self.hessian.log_sd)
        gap = np.where((score <= floor) & (hessian > floor), -np.inf, gap)
        gap = np.where((hessian <= floor) & (score > floor), np.inf, gap)
        gap = np.where((score <= floor) & (hessian <= floor), 0.0, gap)
        return np.where(gap < -sigmas, "score", np.where(gap > sigmas, "hessian", "tie"))


def summand_variances(family: Family, theta: Theta, n: int, *,
                      rng: np.random.Generator) -> SummandVariances:
    """Measure Var[s_i s_j] and Var[-H_ij] (per draw) on the same n draws from p_theta.

    An estimator of F from m draws has variance (per-draw variance) / m, so the smaller
    per-draw variance is the better estimator at equal m. The summands are often heavy-tailed
    (s_sigma^2 of the normal is a polynomial of degree 4 in x), so the variances come from
    :func:`batched_variance`, whose chi-square interval stays honest there."""
    n = _check_count(n, "the number of draws n", 2 * DEFAULT_BATCHES)
    draws = family.sample(theta, n, rng)
    return SummandVariances(
        score=batched_variance(fisher_summands(family, theta, draws, "score")),
        hessian=batched_variance(fisher_summands(family, theta, draws, "hessian")),
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


__all__ = ["fisher_summands", "fisher_estimates", "variance_with_stderr", "VarianceEstimate",
           "batched_variance", "SummandVariances", "summand_variances",
           "summand_variances_by_quadrature", "ScaledCovariance", "scaled_covariance",
           "simulate_estimates", "cramer_rao_study", "numerical_mle", "mle_by_optimisation",
           "inverse_fisher"]

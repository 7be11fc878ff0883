"""Learning one observation at a time: online natural gradient, SGD and Polyak–Ruppert averaging.

Every simulation runs ``n_runs`` independent copies of an estimator at once (arrays of shape
``(n_runs, k)``), each fed its own stream of observations drawn at the true parameter. After ``t``
observations the estimators are

* online natural gradient descent (Amari):
  ``theta_t = theta_{t-1} + 1/(t0 + t) * F_t^{-1} s(x_t; theta_{t-1})``, where ``F_t`` is the
  Fisher at ``theta_{t-1}`` (optionally damped), or a running average of the scores' outer products;
* stochastic gradient descent: ``theta_t = theta_{t-1} + c/(t0 + t)**power * s(x_t; theta_{t-1})``;
* its Polyak–Ruppert average ``(theta_1 + ... + theta_t) / t``.

:func:`sgd_asymptotic_covariance` is the limit of ``t Cov(theta_t)`` for a gain ``G/t``, from its
Lyapunov equation (scipy). :func:`efficiency_ratio` measures ``t E|theta_t - theta*|^2 / tr F^{-1}``
with its standard error: 1 is the Cramér–Rao bound.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.special

from .errors import DomainError, FisherbookError, SingularFisherError


class RunsDivergedError(DomainError):
    """Some runs of an online estimator left the finite numbers (``n_diverged`` of ``n_runs``,
    first seen after ``t`` observations)."""

    def __init__(self, message: str, n_diverged: int, n_runs: int, t: int) -> None:
        super().__init__(message)
        self.n_diverged, self.n_runs, self.t = n_diverged, n_runs, t


# observations per block: the draws of one block are made at once, (block, n_runs, d)
_BLOCK = 256


@dataclass(frozen=True)
class OnlineModel:
    """A model to learn online: its true parameter, a sampler, the score and the Fisher.

    ``sample(rng, shape)`` returns observations at ``theta_star`` of shape ``shape + (d,)``;
    ``score(obs, theta)`` maps ``(R, d)`` observations and ``(R, k)`` parameters to ``(R, k)``;
    ``fisher(theta)`` maps ``(R, k)`` parameters to ``(R, k, k)`` Fisher matrices.
    """

    name: str
    param_names: tuple[str, ...]
    theta_star: np.ndarray
    sample: Callable[[np.random.Generator, tuple[int, ...]], np.ndarray]
    score: Callable[[np.ndarray, np.ndarray], np.ndarray]
    fisher: Callable[[np.ndarray], np.ndarray]

    @property
    def dim(self) -> int:
        """Number of parameters k."""
        return self.theta_star.size

    def fisher_star(self) -> np.ndarray:
        """The Fisher matrix F(theta*) at the true parameter, shape (k, k)."""
        return self.fisher(self.theta_star[None, :])[0]

    def bound(self) -> np.ndarray:
        """The Cramér–Rao bound per observation, F(theta*)^{-1}, shape (k, k)."""
        return np.linalg.inv(self.fisher_star())


def _finite(value: float, what: str) -> float:
    value = float(value)
    if not np.isfinite(value):
        raise DomainError(f"{what} must be a finite number, got {value}")
    return value


def gaussian_mean(mean: float = 0.0, sd: float = 1.0) -> OnlineModel:
    """N(mu, sd^2) with sd known, parameter mu: s = (x - mu)/sd^2, F = 1/sd^2."""
    mean, sd = _finite(mean, "mean"), _finite(sd, "sd")
    if sd <= 0:
        raise DomainError(f"sd must be positive, got {sd}")
    return OnlineModel(
        name=f"Gaussian mean (sd {sd:g})", param_names=("mu",), theta_star=np.array([mean]),
        sample=lambda rng, shape: rng.normal(mean, sd, size=shape + (1,)),
        score=lambda obs, theta: (obs - theta) / sd**2,
        fisher=lambda theta: np.full((theta.shape[0], 1, 1), 1.0 / sd**2))


def bernoulli_log_odds(log_odds: float) -> OnlineModel:
    """Bernoulli with p = sigmoid(eta), parameter eta: s = x - p, F = p (1 - p)."""
    log_odds = _finite(log_odds, "log_odds")
    p_star = scipy.special.expit(log_odds)

    def fisher(theta: np.ndarray) -> np.ndarray:
        p = scipy.special.expit(theta)
        return (p * (1 - p))[:, :, None]

    return OnlineModel(
        name="Bernoulli log-odds", param_names=("eta",), theta_star=np.array([log_odds]),
        sample=lambda rng, shape: (rng.random(shape + (1,)) < p_star).astype(float),
        score=lambda obs, theta: obs - scipy.special.expit(theta), fisher=fisher)


def poisson_log_rate(log_rate: float) -> OnlineModel:
    """Poisson with rate exp(eta), parameter eta: s = x - exp(eta), F = exp(eta)."""
    log_rate = _finite(log_rate, "log_rate")
    rate = np.exp(log_rate)
    return OnlineModel(
        name="Poisson log-rate", param_names=("eta",), theta_star=np.array([log_rate]),
        sample=lambda rng, shape: rng.poisson(rate, size=shape + (1,)).astype(float),
        score=lambda obs, theta: obs - np.exp(theta),
        fisher=lambda theta: np.exp(theta)[:, :, None])


def normal_mean_log_sd(mean: float, sd: float) -> OnlineModel:
    """N(mu, sigma^2) in (mu, log sigma): s = ((x - mu)/sigma^2, (x - mu)^2/sigma^2 - 1),
    F = diag(1/sigma^2, 2)."""
    mean, sd = _finite(mean, "mean"), _finite(sd, "sd")
    if sd <= 0:
        raise DomainError(f"sd must be positive, got {sd}")

    def score(obs: np.ndarray, theta: np.ndarray) -> np.ndarray:
        z = (obs[:, 0] - theta[:, 0]) * np.exp(-theta[:, 1])
        return np.column_stack([z * np.exp(-theta[:, 1]), z * z - 1.0])

    def fisher(theta: np.ndarray) -> np.ndarray:
        out = np.zeros((theta.shape[0], 2, 2))
        out[:, 0, 0] = np.exp(-2 * theta[:, 1])
        out[:, 1, 1] = 2.0
        return out

    return OnlineModel(
        name="normal (mean, log sd)", param_names=("mu", "log_sd"),
        theta_star=np.array([mean, np.log(sd)]),
        sample=lambda rng, shape: rng.normal(mean, sd, size=shape + (1,)),
        score=score, fisher=fisher)


def trigamma(a: np.ndarray) -> np.ndarray:
    """psi'(a) for a > 0: psi'(a) = sum_{j<6} 1/(a+j)^2 + psi'(a+6), the last by its asymptotic
    series (error below 1e-11; ten times faster than scipy.special.polygamma, which tests compare)."""
    a = np.asarray(a, dtype=float)
    head = sum(1.0 / (a + j) ** 2 for j in range(6))
    z = a + 6.0
    w = 1.0 / (z * z)
    tail = (1.0 + (0.5 + (1 / 6 - w * (1 / 30 - w * (1 / 42 - w / 30))) / z) / z) / z
    return head + tail


def gamma_log_shape_rate(shape: float, rate: float) -> OnlineModel:
    """Gamma(shape a, rate b) in (log a, log b): s = (a (log b - psi(a) + log x), a - b x),
    F = [[a^2 psi'(a), -a], [-a, a]]."""
    shape, rate = _finite(shape, "shape"), _finite(rate, "rate")
    if shape <= 0 or rate <= 0:
        raise DomainError(f"shape and rate must be positive, got shape={shape}, rate={rate}")

    def score(obs: np.ndarray, theta: np.ndarray) -> np.ndarray:
        a, b = np.exp(theta[:, 0]), np.exp(theta[:, 1])
        x = obs[:, 0]
        return np.column_stack([a * (theta[:, 1] - scipy.special.digamma(a) + np.log(x)),
                                a - b * x])

    def fisher(theta: np.ndarray) -> np.ndarray:
        a = np.exp(theta[:, 0])
        out = np.empty((theta.shape[0], 2, 2))
        out[:, 0, 0] = a**2 * trigamma(a)
        out[:, 0, 1] = out[:, 1, 0] = -a
        out[:, 1, 1] = a
        return out

    return OnlineModel(
        name="gamma (log shape, log rate)", param_names=("log_shape", "log_rate"),
        theta_star=np.log([shape, rate]),
        sample=lambda rng, size: rng.gamma(shape, 1.0 / rate, size=size + (1,)),
        score=score, fisher=fisher)


def logistic_regression(weights: Sequence[float], inputs: np.ndarray) -> OnlineModel:
    """Logistic regression y ~ Bernoulli(sigmoid(x.w)) with x drawn uniformly from the rows of
    ``inputs`` (M, k): s = (y - p) x, F = mean over rows of p (1 - p) x x^T (exact).

    This is ``ConditionalModel(bernoulli_logit(), LinearPredictor(), inputs, y).fisher_mean`` of
    :mod:`fisherbook.conditional` (the tests check it), computed for all runs at once: the online
    estimators evaluate it at every step for every run, where a loop over runs is about 1000
    times slower."""
    weights = np.asarray(weights, dtype=float)
    inputs = np.asarray(inputs, dtype=float)
    if inputs.ndim != 2 or weights.shape != (inputs.shape[1],):
        raise FisherbookError(f"inputs must be an (M, k) array and weights have k entries, got "
                              f"shapes {inputs.shape} and {weights.shape}")
    if not (np.all(np.isfinite(inputs)) and np.all(np.isfinite(weights))):
        raise DomainError("inputs and weights must be finite")
    if np.linalg.matrix_rank(inputs) < inputs.shape[1]:
        raise SingularFisherError(f"the {inputs.shape[0]} input rows span fewer than "
                                  f"{inputs.shape[1]} dimensions: the Fisher is singular")
    k = inputs.shape[1]
    p_rows = scipy.special.expit(inputs @ weights)
    outer = np.einsum("mi,mj->mij", inputs, inputs).reshape(inputs.shape[0], k * k)

    def sample(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        rows = rng.integers(0, inputs.shape[0], size=shape)
        out = np.empty(shape + (k + 1,))
        out[..., :k] = inputs[rows]
        out[..., k] = rng.random(shape) < p_rows[rows]
        return out

    def score(obs: np.ndarray, theta: np.ndarray) -> np.ndarray:
        x, y = obs[:, :k], obs[:, k]
        residual = y - scipy.special.expit(np.einsum("ri,ri->r", x, theta))
        return residual[:, None] * x

    def fisher(theta: np.ndarray) -> np.ndarray:
        p = scipy.special.expit(theta @ inputs.T)  # (R, M)
        return ((p * (1 - p)) @ outer).reshape(-1, k, k) / inputs.shape[0]

    return OnlineModel(
        name=f"logistic regression ({k} weights)",
        param_names=tuple(f"w{i}" for i in range(k)), theta_star=weights.copy(),
        sample=sample, score=score, fisher=fisher)


@dataclass(frozen=True)
class OnlineRun:
    """Estimates of ``n_runs`` independent runs at the recorded times.

    ``theta[i]`` (shape ``(n_runs, k)``) are the estimates after ``times[i]`` observations."""

    name: str
    times: np.ndarray
    theta: np.ndarray

    def errors(self, model: OnlineModel) -> np.ndarray:
        """theta_t - theta*, shape (len(times), n_runs, k)."""
        return self.theta - model.theta_star


def _check_setup(model: OnlineModel, theta0: Sequence[float] | np.ndarray, n_runs: int,
                 times: Sequence[int], clock_offset: float | np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    if int(n_runs) != n_runs or n_runs < 2:
        raise FisherbookError(f"n_runs must be an integer >= 2, got {n_runs}")
    theta = np.array(np.broadcast_to(np.asarray(theta0, dtype=float), (int(n_runs), model.dim)))
    if not np.all(np.isfinite(theta)):
        raise DomainError("the start theta0 must be finite")
    record = np.asarray(times)
    if (record.ndim != 1 or record.size == 0 or np.any(record < 1)
            or np.any(np.diff(record) <= 0) or not np.all(record == np.round(record))):
        raise FisherbookError(f"times must be increasing positive integers, got {times}")
    offset = np.asarray(clock_offset, dtype=float)
    if offset.ndim > 1 or (offset.ndim == 1 and offset.size != theta.shape[0]):
        raise FisherbookError(f"clock_offset must be a number or one per run ({theta.shape[0]}), "
                              f"got shape {offset.shape}")
    if not np.all(np.isfinite(offset)) or np.any(offset < 0):
        raise FisherbookError(f"clock_offset must be finite and >= 0, got {clock_offset}")
    return theta, record.astype(int)


def _simulate(model: OnlineModel, theta: np.ndarray, times: np.ndarray,
              rng: np.random.Generator, step: Callable[[int, np.ndarray, np.ndarray], np.ndarray],
              name: str, average: bool = False) -> OnlineRun:
    """Run ``theta <- step(t, obs_t, theta)`` for t = 1..times[-1], recording at ``times``."""
    n_runs = theta.shape[0]
    recorded = np.empty((times.size, n_runs, model.dim))
    mean = np.zeros_like(theta)
    next_record = 0
    t = 0
    while t < times[-1]:
        block = model.sample(rng, (min(_BLOCK, times[-1] - t), n_runs))
        with np.errstate(all="ignore"):  # a run that leaves the finite numbers is reported below
            for obs in block:
                t += 1
                theta = step(t, obs, theta)
                if average:
                    mean += (theta - mean) / t
                if t == times[next_record]:
                    recorded[next_record] = mean if average else theta
                    next_record += 1
        if not np.all(np.isfinite(theta)):
            bad = int(np.sum(~np.all(np.isfinite(theta), axis=1)))
            raise RunsDivergedError(f"{name}: {bad} of {n_runs} runs left the finite numbers by "
                                    f"t = {t}; the first steps are too large for this start "
                                    f"(try a clock offset, damping or a warm start)",
                                    bad, n_runs, t)
    return OnlineRun(name, times, recorded)


def _solve(matrix: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """matrix[r]^{-1} vector[r] for each run r, by Gaussian elimination vectorised over the runs
    (the matrices are positive definite, so no pivoting; for k = 3 and 1000 runs about twice as
    fast as numpy.linalg.solve on the stack, which pays a fixed cost per matrix)."""
    if vector.shape[1] == 1:
        return vector / matrix[:, :, 0]
    a, b = matrix.copy(), vector.copy()
    k = b.shape[1]
    for i in range(k):
        for j in range(i + 1, k):
            factor = a[:, j, i] / a[:, i, i]
            a[:, j, i:] -= factor[:, None] * a[:, i, i:]
            b[:, j] -= factor * b[:, i]
    x = np.empty_like(b)
    for i in reversed(range(k)):
        x[:, i] = (b[:, i] - np.sum(a[:, i, i + 1:] * x[:, i + 1:], axis=1)) / a[:, i, i]
    return x


def online_natural_gradient(model: OnlineModel, theta0: Sequence[float] | np.ndarray,
                            n_runs: int, times: Sequence[int], rng: np.random.Generator, *,
                            clock_offset: float = 0.0, damping: float = 0.0,
                            fisher: str = "exact") -> OnlineRun:
    """Online natural gradient: theta_t = theta_{t-1} + (F_t + lambda_t I)^{-1} s / (t0 + t).

    ``fisher="exact"``: F_t = F(theta_{t-1}); ``"running"``: F_t = (F(theta_0) + sum of s s^T
    over the first t scores) / (t + 1). The damping lambda_t = damping / (t0 + t) vanishes, so
    it leaves the limit untouched."""
    theta, record = _check_setup(model, theta0, n_runs, times, clock_offset)
    if np.ndim(clock_offset) != 0:
        raise FisherbookError("online_natural_gradient takes one clock_offset for all runs")
    if fisher not in ("exact", "running"):
        raise FisherbookError(f"fisher must be 'exact' or 'running', got {fisher!r}")
    if not np.isfinite(damping) or damping < 0:
        raise FisherbookError(f"damping must be a finite number >= 0, got {damping}")
    eye = np.eye(model.dim)
    running = model.fisher(theta).copy()

    def step(t: int, obs: np.ndarray, theta: np.ndarray) -> np.ndarray:
        nonlocal running
        s = model.score(obs, theta)
        clock = clock_offset + t
        if fisher == "exact":
            matrix = model.fisher(theta)
        else:
            running = running + (np.einsum("ri,rj->rij", s, s) - running) / (t + 1)
            matrix = running
        if damping:
            matrix = matrix + (damping / clock) * eye
        return theta + _solve(matrix, s) / clock

    label = "online NGD" if fisher == "exact" else "online NGD (running-average Fisher)"
    return _simulate(model, theta, record, rng, step, label)


def online_sgd(model: OnlineModel, theta0: Sequence[float] | np.ndarray, n_runs: int,
               times: Sequence[int], rng: np.random.Generator, *, gain: float | np.ndarray,
               power: float = 1.0, clock_offset: float | np.ndarray = 0.0,
               average: bool = False) -> OnlineRun:
    """SGD theta_t = theta_{t-1} + c s / (t0 + t)^power, or (``average``) the running mean of
    its iterates (Polyak–Ruppert). ``gain`` c and ``clock_offset`` t0 are numbers or one per
    run (shape (n_runs,))."""
    theta, record = _check_setup(model, theta0, n_runs, times, clock_offset)
    gains = np.asarray(gain, dtype=float)
    if gains.ndim > 1 or (gains.ndim == 1 and gains.size != theta.shape[0]):
        raise FisherbookError(f"gain must be a number or one per run ({theta.shape[0]}), "
                              f"got shape {gains.shape}")
    if not np.all(np.isfinite(gains)) or np.any(gains <= 0):
        raise FisherbookError("gain must be positive and finite")
    if not 0.5 < power <= 1.0:
        raise FisherbookError(f"power must lie in (1/2, 1] for SGD to converge, got {power}")
    gains = gains.reshape(-1, 1) if gains.ndim == 1 else gains
    offsets = np.asarray(clock_offset, dtype=float)
    offsets = offsets.reshape(-1, 1) if offsets.ndim == 1 else offsets

    def step(t: int, obs: np.ndarray, theta: np.ndarray) -> np.ndarray:
        return theta + gains * model.score(obs, theta) / (offsets + t) ** power

    name = "SGD, averaged" if average else "SGD"
    return _simulate(model, theta, record, rng, step, name, average=average)


def sgd_asymptotic_covariance(fisher: np.ndarray, gain: float | np.ndarray) -> np.ndarray:
    """lim t Cov(theta_t) for theta_t = theta_{t-1} + (G/t) s: the solution Sigma of
    (G F - I/2) Sigma + Sigma (G F - I/2)^T = G F G^T (scalar gain c: G = c I)."""
    fisher = np.atleast_2d(np.asarray(fisher, dtype=float))
    k = fisher.shape[0]
    if fisher.shape != (k, k) or not np.allclose(fisher, fisher.T):
        raise FisherbookError(f"fisher must be a symmetric (k, k) matrix, got {fisher.shape}")
    if np.linalg.eigvalsh(fisher)[0] <= 0:
        raise SingularFisherError("the Fisher matrix must be positive definite")
    g = np.asarray(gain, dtype=float)
    g = g * np.eye(k) if g.ndim == 0 else np.atleast_2d(g)
    if g.shape != (k, k):
        raise FisherbookError(f"gain must be a number or a ({k}, {k}) matrix, got {g.shape}")
    drift = g @ fisher
    slowest = np.linalg.eigvals(drift).real.min()
    if slowest <= 0.5:
        raise FisherbookError(
            f"with this gain the error shrinks slower than 1/sqrt(t): every eigenvalue of G F "
            f"must exceed 1/2, the smallest is {slowest:.4g}; t Cov(theta_t) has no finite limit")
    return scipy.linalg.solve_continuous_lyapunov(drift - 0.5 * np.eye(k), g @ fisher @ g.T)


def sgd_efficiency(fisher: np.ndarray, gain: float | np.ndarray) -> float:
    """Predicted limit of t E|theta_t - theta*|^2 / tr F^{-1} for SGD with gain G/t."""
    return float(np.trace(sgd_asymptotic_covariance(fisher, gain))
                 / np.trace(np.linalg.inv(np.atleast_2d(fisher))))


@dataclass(frozen=True)
class EfficiencyRatio:
    """t E|theta_t - theta*|^2 / tr F^{-1} at each recorded time, with its standard error
    over the ``n_runs`` independent runs (1 is the Cramér–Rao bound)."""

    times: np.ndarray
    ratio: np.ndarray
    stderr: np.ndarray
    n_runs: int


def efficiency_ratio(run: OnlineRun, model: OnlineModel) -> EfficiencyRatio:
    """Measured ``t MSE(t) / tr F^{-1}``, where MSE is the mean over runs of
    ``|theta_t - theta*|^2``."""
    scaled = (run.times[:, None] * np.sum(run.errors(model) ** 2, axis=2)
              / np.trace(model.bound()))
    n_runs = scaled.shape[1]
    return EfficiencyRatio(run.times, scaled.mean(axis=1),
                           scaled.std(axis=1, ddof=1) / np.sqrt(n_runs), n_runs)


@dataclass(frozen=True)
class ScaledCovariance:
    """t E[(theta_t - theta*)(theta_t - theta*)^T] at one time t, entrywise standard errors,
    and the eigenvalues of F^{1/2} (that matrix) F^{1/2} with bootstrap standard errors (all 1 at
    the bound)."""

    t: int
    matrix: np.ndarray
    stderr: np.ndarray
    eigenvalues: np.ndarray
    eigenvalue_stderr: np.ndarray


def _relative_eigenvalues(matrix: np.ndarray, root: np.ndarray) -> np.ndarray:
    return np.linalg.eigvalsh(root @ matrix @ root)


def scaled_covariance(run: OnlineRun, model: OnlineModel, index: int = -1, *,
                      rng: np.random.Generator, n_boot: int = 400) -> ScaledCovariance:
    """t times the error second-moment matrix at ``run.times[index]``, to compare with F^{-1}."""
    t = int(run.times[index])
    err = run.errors(model)[index]
    outer = t * np.einsum("ri,rj->rij", err, err)
    n_runs = err.shape[0]
    matrix = outer.mean(axis=0)
    stderr = outer.std(axis=0, ddof=1) / np.sqrt(n_runs)
    values, vectors = np.linalg.eigh(model.fisher_star())
    root = vectors @ np.diag(np.sqrt(values)) @ vectors.T
    boot = np.array([_relative_eigenvalues(outer[rng.integers(0, n_runs, n_runs)].mean(axis=0),
                                           root) for _ in range(n_boot)])
    return ScaledCovariance(t, matrix, stderr, _relative_eigenvalues(matrix, root),
                            boot.std(axis=0, ddof=1))

"""Conditional models p(y | x, theta) = p_out(y | f(x, theta)): Fisher, Gauss-Newton, Fisher scoring.

An :class:`OutputFamily` is a :class:`fisherbook.Family` whose parameters are the outputs f of a
predictor (log-odds, a probability, a log-rate, a mean, logits); its closed forms come from the
sympy engine, compiled once for arrays. A predictor maps inputs and parameters to outputs and
gives their Jacobian J_i = df(x_i, theta)/dtheta (:class:`LinearPredictor`: a GLM's linear
predictor under any inverse link; a network plugs in with the same three methods). A
:class:`ConditionalModel` joins the two with data (X, y) and gives

* the log-likelihood as a sum and as a mean, and their gradients sum_i J_i^T s(y_i | f_i);
* the Fisher F = sum_i J_i^T Lambda(f_i) J_i, Lambda the output family's Fisher, and its mean;
* the Hessian of the loss -sum_i log p(y_i | x_i, theta), the generalised Gauss-Newton matrix
  sum_i J_i^T (-d^2 log p / df^2) J_i, and the empirical Fisher sum_i g_i g_i^T;
* a Monte Carlo Fisher with labels sampled from the model, with standard errors.

:func:`fit_fisher_scoring` maximises the likelihood by Fisher scoring (natural gradient ascent
with step 1); :func:`sandwich_covariance` is White's robust covariance.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any, Protocol

import numpy as np
import sympy as sp

from . import families
from .errors import DomainError, FisherbookError, SingularFisherError
from .estimators import MeanEstimate, mc_mean
from .family import MODULES, Family

__all__ = [
    "ConvergenceError",
    "SeparationError",
    "OutputFamily",
    "Predictor",
    "LinearPredictor",
    "ConditionalModel",
    "FisherScoringFit",
    "fit_fisher_scoring",
    "sandwich_covariance",
    "separating_direction",
    "bernoulli_logit",
    "bernoulli_probability",
    "poisson_log",
    "poisson_rate",
    "normal_mean",
    "categorical_logits",
    "ETA",
    "IDENTITY",
    "LOGISTIC",
    "PROBIT",
    "EXP",
    "CLOGLOG",
]

#: The symbol of the linear predictor eta = x . theta in inverse links.
ETA = sp.Symbol("eta", real=True)
#: The inverse link h(eta) = eta, for f = h(x . theta) with f a natural parameter, or least squares.
IDENTITY = ETA
#: The inverse link h(eta) = 1 / (1 + e^-eta), logistic regression with a Bernoulli in probability.
LOGISTIC = 1 / (1 + sp.exp(-ETA))
#: The inverse link h(eta) = Phi(eta), the standard normal distribution function (probit).
PROBIT = sp.erfc(-ETA / sp.sqrt(2)) / 2
#: The inverse link h(eta) = e^eta, the log link of a rate or a mean.
EXP = sp.exp(ETA)
#: The inverse link h(eta) = 1 - exp(-e^eta), the complementary log-log link.
CLOGLOG = 1 - sp.exp(-sp.exp(ETA))

#: An eigenvalue of the Fisher below this fraction of the largest counts as zero (singular).
SINGULAR_RTOL = 1e-12
#: How often a Fisher-scoring step may be halved before the fit gives up.
MAX_HALVINGS = 200
#: A discrete model whose every label has probability above 1 - this is taken as separated.
SEPARATION_TOL = 1e-8


class ConvergenceError(FisherbookError):
    """Fisher scoring did not converge within its iteration cap."""


class SeparationError(FisherbookError):
    """The labels are perfectly predicted (separated data): the maximum likelihood estimate does
    not exist and the coefficients diverge."""


def _array_function(args: list[sp.Symbol], expr: sp.Expr) -> Callable[..., np.ndarray]:
    """expr compiled by lambdify, returning a float array broadcast to its arguments' shape."""
    function = sp.lambdify(args, expr, MODULES)

    def evaluate(*values: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            out = np.asarray(function(*values), dtype=float)
        return np.broadcast_to(out, np.broadcast(*values).shape)

    return evaluate


class OutputFamily:
    """The output distribution p_out(y | f) of a conditional model, in its parameters f.

    Parameters
    ----------
    family
        A :class:`fisherbook.Family` in a scalar label y whose parameters are the outputs
        f_1..f_m; its log density, score, Hessian and closed-form Fisher are compiled for arrays.
    sampler
        ``sampler(f, rng)`` draws one label per row of the (n, m) outputs f; by default each
        label is drawn by the family's own sampler, one row at a time (general but slow: a
        continuous family builds a numerical-inversion sampler per row; pass a vectorised
        sampler for Monte Carlo).
    """

    def __init__(self, family: Family,
                 sampler: Callable[[np.ndarray, np.random.Generator], np.ndarray] | None = None
                 ) -> None:
        if family.vector_x:
            raise DomainError(f"{family.name}: an output family needs a scalar label")
        self.family = family
        self.name = family.name
        self.m = len(family.params)
        self._sampler = sampler
        args = [family.xs[0], *family.params]
        self._log_density = _array_function(args, family.log_density)
        self._score = [_array_function(args, e) for e in family.score()]
        hessian, fisher = family.hessian(), family.fisher()
        self._hessian = [[_array_function(args, hessian[a, b]) for b in range(self.m)]
                         for a in range(self.m)]
        self._fisher = [[_array_function(list(family.params), fisher[a, b])
                         for b in range(self.m)] for a in range(self.m)]
        self.lower, self.upper = (float(v) for v in family.bounds[0])

    def __repr__(self) -> str:
        return f"OutputFamily({self.name!r}, m={self.m})"

    def check_labels(self, y: Any) -> np.ndarray:
        """y as a float vector, checked: finite, inside the support (integers if discrete)."""
        y = np.asarray(y, dtype=float)
        if y.ndim != 1 or y.size == 0:
            raise DomainError(f"{self.name}: labels y must be a non-empty 1-D array, got shape "
                              f"{y.shape}")
        bad = ~np.isfinite(y) | (y < self.lower) | (y > self.upper)
        if self.family.discrete:
            bad |= y != np.round(y)
        if bad.any():
            where = np.flatnonzero(bad)
            raise DomainError(
                f"{self.name}: {where.size} label(s) outside the support "
                f"{'integers in ' if self.family.discrete else ''}[{self.lower:g}, {self.upper:g}]"
                f", first y[{where[0]}] = {y[where[0]]:g}")
        return y

    def check_outputs(self, f: Any) -> np.ndarray:
        """Outputs f as an (n, m) array, checked: finite and inside the parameter domains (a link
        that leaves the domain, e.g. a negative Poisson rate, is named here)."""
        f = np.asarray(f, dtype=float)
        if f.ndim == 1 and self.m == 1:
            f = f[:, None]
        if f.ndim != 2 or f.shape[1] != self.m:
            raise DomainError(f"{self.name}: outputs must have shape (n, {self.m}), got {f.shape}")
        for j, p in enumerate(self.family.params):
            lower, upper = (float(v) for v in self.family.domains[p])
            bad = ~(np.isfinite(f[:, j]) & (f[:, j] > lower) & (f[:, j] < upper))
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise DomainError(
                    f"{self.name}: output {p} = {f[i, j]:g} of observation {i} is outside its "
                    f"domain ({lower:g}, {upper:g}) ({int(bad.sum())} observation(s)): the link "
                    "leaves the parameter domain here; use another link or a start inside it")
        return f

    def log_density(self, y: np.ndarray, f: np.ndarray) -> np.ndarray:
        """log p_out(y_i | f_i) for each observation: shape (n,)."""
        return _finite(self._log_density(y, *f.T), self.name, "log density")

    def score(self, y: np.ndarray, f: np.ndarray) -> np.ndarray:
        """d log p_out(y_i | f) / df at f_i: shape (n, m)."""
        return _finite(np.stack([s(y, *f.T) for s in self._score], axis=-1), self.name, "score")

    def hessian(self, y: np.ndarray, f: np.ndarray) -> np.ndarray:
        """d^2 log p_out(y_i | f) / df^2 at f_i: shape (n, m, m)."""
        rows = [np.stack([h(y, *f.T) for h in row], axis=-1) for row in self._hessian]
        return _finite(np.stack(rows, axis=-2), self.name, "Hessian")

    def fisher(self, f: np.ndarray) -> np.ndarray:
        """Lambda(f_i), the closed-form Fisher of one label at f_i: shape (n, m, m)."""
        n = f.shape[0]
        rows = [np.stack([np.broadcast_to(e(*f.T), (n,)) for e in row], axis=-1)
                for row in self._fisher]
        return _finite(np.stack(rows, axis=-2), self.name, "Fisher")

    def sample(self, f: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One label y_i ~ p_out(. | f_i) per row of f: shape (n,)."""
        if self._sampler is not None:
            return np.asarray(self._sampler(f, rng), dtype=float)
        return np.array([self.family.sample(tuple(row), 1, rng)[0] for row in f], dtype=float)


def _finite(values: np.ndarray, name: str, what: str) -> np.ndarray:
    if not np.all(np.isfinite(values)):
        raise DomainError(f"{name}: the {what} is not finite at some outputs (overflow: outputs "
                          "too large in magnitude, e.g. separated data)")
    return values


# ------------------------------------------------------------------------- ready output families
_y = sp.Symbol("x", real=True)
_eta = sp.Symbol("eta", real=True)


@cache
def bernoulli_logit() -> OutputFamily:
    """Bernoulli in its log-odds eta: log p = y eta - log(1 + e^eta), y in {0, 1}."""
    family = Family(_y * _eta - sp.log(1 + sp.exp(_eta)), _y, [_eta], (0, 1), discrete=True,
                    name="bernoulli (log-odds)")
    return OutputFamily(family, lambda f, rng: (rng.random(f.shape[0]) < 1 / (1 + np.exp(-f[:, 0])))
                        .astype(float))


@cache
def bernoulli_probability() -> OutputFamily:
    """Bernoulli in its probability p (``families.bernoulli``)."""
    return OutputFamily(families.bernoulli(),
                        lambda f, rng: (rng.random(f.shape[0]) < f[:, 0]).astype(float))


@cache
def poisson_log() -> OutputFamily:
    """Poisson in its log-rate eta: log p = y eta - e^eta - log y!."""
    family = Family(_y * _eta - sp.exp(_eta) - sp.loggamma(_y + 1), _y, [_eta], (0, sp.oo),
                    discrete=True, name="poisson (log-rate)")
    return OutputFamily(family, lambda f, rng: rng.poisson(np.exp(f[:, 0])).astype(float))


@cache
def poisson_rate() -> OutputFamily:
    """Poisson in its rate lam (``families.poisson``)."""
    return OutputFamily(families.poisson(), lambda f, rng: rng.poisson(f[:, 0]).astype(float))


@cache
def normal_mean(sigma: float = 1.0) -> OutputFamily:
    """Normal in its mean mu with known standard deviation sigma (``families.normal_mean``)."""
    return OutputFamily(families.normal_mean(sigma),
                        lambda f, rng: rng.normal(f[:, 0], sigma))


@cache
def categorical_logits(k: int = 3) -> OutputFamily:
    """Categorical on {0, ..., k-1} in the logits eta_1..eta_{k-1} of classes 1..k-1 against 0:
    log p(y) = eta_y - log(1 + sum_j e^{eta_j}) (eta_0 = 0)."""
    if k < 2:
        raise DomainError(f"a categorical output needs k >= 2 classes, got {k}")
    logits = [sp.Symbol(f"eta{j}", real=True) for j in range(1, k)]
    log_density = -sp.log(1 + sum(sp.exp(e) for e in logits))
    for j, logit in enumerate(logits, start=1):
        indicator = sp.Mul(*[sp.Rational(1, j - m) * (_y - m) for m in range(k) if m != j])
        log_density += indicator * logit
    points = [tuple(0.1 * (j + 1) for j in range(k - 1)), tuple(-0.3 * j for j in range(k - 1))]
    family = Family(log_density, _y, logits, (0, k - 1), discrete=True,
                    name=f"categorical (logits, k={k})", test_points=points)

    def sampler(f: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        scores = np.column_stack([np.zeros(f.shape[0]), f])
        return np.argmax(scores + rng.gumbel(size=scores.shape), axis=1).astype(float)

    return OutputFamily(family, sampler)


# ------------------------------------------------------------------------------------ predictors
class Predictor(Protocol):
    """What a conditional model needs of a predictor f(x, theta) with m outputs."""

    n_outputs: int

    def n_params(self, X: np.ndarray) -> int:
        """The number k of parameters for inputs X."""

    def value(self, theta: np.ndarray, X: np.ndarray) -> np.ndarray:
        """Outputs f(x_i, theta): shape (n, m)."""

    def jacobian(self, theta: np.ndarray, X: np.ndarray) -> np.ndarray:
        """J_i = df(x_i, theta)/dtheta: shape (n, m, k)."""

    def curvature(self, theta: np.ndarray, X: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """sum_i sum_o weights_io d^2 f_o(x_i, theta)/dtheta^2: shape (k, k)."""


class LinearPredictor:
    """f_o(x, theta) = h(x . B_o): a GLM's linear predictor under the inverse link h.

    ``inverse_link`` is a sympy expression in :data:`ETA` (e.g. :data:`LOGISTIC`, :data:`PROBIT`);
    with m = ``n_outputs`` > 1, theta = vec(B) row-major: B has shape (k_inputs, m).
    """

    def __init__(self, inverse_link: sp.Expr = IDENTITY, n_outputs: int = 1,
                 name: str | None = None) -> None:
        inverse_link = sp.sympify(inverse_link)
        if inverse_link.free_symbols - {ETA}:
            raise DomainError(f"inverse link {inverse_link} must be an expression in ETA only")
        if n_outputs < 1:
            raise DomainError(f"n_outputs must be >= 1, got {n_outputs}")
        self.inverse_link = inverse_link
        self.n_outputs = int(n_outputs)
        self.name = name or f"h(eta) = {inverse_link}"
        self.linear = inverse_link == ETA
        self._h = _array_function([ETA], inverse_link)
        self._dh = _array_function([ETA], sp.diff(inverse_link, ETA))
        self._d2h = _array_function([ETA], sp.diff(inverse_link, ETA, 2))

    def __repr__(self) -> str:
        return f"LinearPredictor({self.name!r}, n_outputs={self.n_outputs})"

    def n_params(self, X: np.ndarray) -> int:
        """k = (columns of X) * m."""
        return X.shape[1] * self.n_outputs

    def _eta(self, theta: np.ndarray, X: np.ndarray) -> np.ndarray:
        return X @ theta.reshape(X.shape[1], self.n_outputs)

    def value(self, theta: np.ndarray, X: np.ndarray) -> np.ndarray:
        """h(X B): shape (n, m)."""
        return self._h(self._eta(theta, X))

    def jacobian(self, theta: np.ndarray, X: np.ndarray) -> np.ndarray:
        """J_i[o, (j, o)] = h'(eta_io) x_ij: shape (n, m, k)."""
        slope = self._dh(self._eta(theta, X))
        n, d, m = X.shape[0], X.shape[1], self.n_outputs
        out = np.zeros((n, m, d, m))
        for o in range(m):
            out[:, o, :, o] = X * slope[:, o:o + 1]
        return out.reshape(n, m, d * m)

    def curvature(self, theta: np.ndarray, X: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """sum_i sum_o w_io h''(eta_io) x_i x_i^T in block (o, o): shape (k, k)."""
        d, m = X.shape[1], self.n_outputs
        out = np.zeros((d, m, d, m))
        if not self.linear:
            second = self._d2h(self._eta(theta, X)) * weights
            for o in range(m):
                out[:, o, :, o] = (X * second[:, o:o + 1]).T @ X
        return out.reshape(d * m, d * m)


# ------------------------------------------------------------------------------------- the model
def _sandwich(J: np.ndarray, middle: np.ndarray) -> np.ndarray:
    """sum_i J_i^T M_i J_i for J (n, m, k) and M (n, m, m)."""
    n, m, k = J.shape
    MJ = np.matmul(middle, J)
    return J.reshape(n * m, k).T @ MJ.reshape(n * m, k)


class ConditionalModel:
    """p(y | x, theta) = p_out(y | f(x, theta)) with data X (n, d) and labels y (n,)."""

    def __init__(self, output: OutputFamily, predictor: Predictor, X: Any, y: Any) -> None:
        X = np.asarray(X, dtype=float)
        if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
            raise DomainError(f"X must be a non-empty 2-D array (n, d), got shape {X.shape}")
        if not np.all(np.isfinite(X)):
            i, j = np.argwhere(~np.isfinite(X))[0]
            raise DomainError(f"X has non-finite entries, first X[{i}, {j}] = {X[i, j]}")
        y_array = np.asarray(y, dtype=float)
        if y_array.shape != (X.shape[0],):
            raise DomainError(f"y must have shape ({X.shape[0]},) to match the {X.shape[0]} rows "
                              f"of X, got {y_array.shape}")
        if predictor.n_outputs != output.m:
            raise DomainError(f"the predictor has {predictor.n_outputs} output(s), the output "
                              f"family {output.name} needs {output.m}")
        self.output, self.predictor = output, predictor
        self.X, self.y = X, output.check_labels(y_array)
        self.n, self.k = X.shape[0], predictor.n_params(X)

    def __repr__(self) -> str:
        return f"ConditionalModel({self.output.name!r}, {self.predictor!r}, n={self.n}, k={self.k})"

    def theta(self, theta: Any) -> np.ndarray:
        """theta as a checked float vector of length k."""
        theta = np.asarray(theta, dtype=float).reshape(-1)
        if theta.shape != (self.k,):
            raise DomainError(f"theta must have {self.k} entries, got {theta.shape[0]}")
        if not np.all(np.isfinite(theta)):
            raise DomainError(f"theta has non-finite entries: {theta}")
        return theta

    def outputs(self, theta: Any) -> np.ndarray:
        """f(x_i, theta), checked to lie in the output family's domain: shape (n, m)."""
        return self.output.check_outputs(self.predictor.value(self.theta(theta), self.X))

    def jacobian(self, theta: Any) -> np.ndarray:
        """J_i = df(x_i, theta)/dtheta: shape (n, m, k)."""
        return self.predictor.jacobian(self.theta(theta), self.X)

    # ------------------------------------------------------------------ likelihood and gradient
    def log_likelihoods(self, theta: Any) -> np.ndarray:
        """log p(y_i | x_i, theta) for each observation: shape (n,)."""
        return self.output.log_density(self.y, self.outputs(theta))

    def log_likelihood_sum(self, theta: Any) -> float:
        """sum_i log p(y_i | x_i, theta)."""
        return float(np.sum(self.log_likelihoods(theta)))

    def log_likelihood_mean(self, theta: Any) -> float:
        """(1/n) sum_i log p(y_i | x_i, theta)."""
        return self.log_likelihood_sum(theta) / self.n

    def per_example_gradients(self, theta: Any, y: np.ndarray | None = None) -> np.ndarray:
        """g_i = J_i^T s(y_i | f_i), the gradient of log p(y_i | x_i, theta): shape (n, k)."""
        y = self.y if y is None else y
        scores = self.output.score(y, self.outputs(theta))
        return np.einsum("nm,nmk->nk", scores, self.jacobian(theta))

    def gradient_sum(self, theta: Any) -> np.ndarray:
        """sum_i J_i^T s(y_i | f_i), the gradient of the log-likelihood sum."""
        scores = self.output.score(self.y, self.outputs(theta))
        J = self.jacobian(theta)
        return J.reshape(-1, self.k).T @ scores.reshape(-1)

    def gradient_mean(self, theta: Any) -> np.ndarray:
        """The gradient of the mean log-likelihood: gradient_sum / n."""
        return self.gradient_sum(theta) / self.n

    # --------------------------------------------------------------------------- curvatures
    def fisher_sum(self, theta: Any) -> np.ndarray:
        """F(theta) = sum_i J_i^T Lambda(f_i) J_i, inputs from the data, labels from the model."""
        return _sandwich(self.jacobian(theta), self.output.fisher(self.outputs(theta)))

    def fisher_mean(self, theta: Any) -> np.ndarray:
        """F(theta) / n, the Fisher per observation."""
        return self.fisher_sum(theta) / self.n

    def gauss_newton_sum(self, theta: Any) -> np.ndarray:
        """G = sum_i J_i^T (-d^2 log p(y_i | f)/df^2) J_i: the loss Hessian in f, sandwiched."""
        return _sandwich(self.jacobian(theta), -self.output.hessian(self.y, self.outputs(theta)))

    def gauss_newton_mean(self, theta: Any) -> np.ndarray:
        """G / n."""
        return self.gauss_newton_sum(theta) / self.n

    def loss_hessian_sum(self, theta: Any) -> np.ndarray:
        """Hessian of -sum_i log p(y_i | x_i, theta) (the observed information): the Gauss-Newton
        matrix minus sum_i sum_o s_o(y_i | f_i) d^2 f_o(x_i)/dtheta^2."""
        theta = self.theta(theta)
        scores = self.output.score(self.y, self.outputs(theta))
        return self.gauss_newton_sum(theta) - self.predictor.curvature(theta, self.X, scores)

    def loss_hessian_mean(self, theta: Any) -> np.ndarray:
        """Hessian of the mean loss: loss_hessian_sum / n."""
        return self.loss_hessian_sum(theta) / self.n

    def empirical_fisher_sum(self, theta: Any) -> np.ndarray:
        """sum_i g_i g_i^T with the labels of the data (not the Fisher in general)."""
        g = self.per_example_gradients(theta)
        return g.T @ g

    def empirical_fisher_mean(self, theta: Any) -> np.ndarray:
        """empirical_fisher_sum / n."""
        return self.empirical_fisher_sum(theta) / self.n

    def sample_labels(self, theta: Any, rng: np.random.Generator) -> np.ndarray:
        """One label per input drawn from the model, y_i ~ p(. | x_i, theta)."""
        return self.output.sample(self.outputs(theta), rng)

    def fisher_monte_carlo(self, theta: Any, n_draws: int, rng: np.random.Generator
                           ) -> MeanEstimate:
        """The Fisher per observation by Monte Carlo: for each of n_draws label sets drawn from
        the model, (1/n) sum_i g_i g_i^T; their mean, with its standard error over the draws."""
        if isinstance(n_draws, bool) or not isinstance(n_draws, (int, np.integer)) or n_draws < 2:
            raise DomainError(f"n_draws must be an integer >= 2, got {n_draws!r}")
        theta = self.theta(theta)
        f, J = self.outputs(theta), self.jacobian(theta)
        draws = np.empty((n_draws, self.k, self.k))
        for r in range(n_draws):
            scores = self.output.score(self.output.sample(f, rng), f)
            g = np.einsum("nm,nmk->nk", scores, J)
            draws[r] = g.T @ g / self.n
        return mc_mean(draws)


# ---------------------------------------------------------------------------------- fitting
def _null_direction_message(fisher: np.ndarray) -> str:
    values, vectors = np.linalg.eigh(fisher)
    direction = vectors[:, 0] / np.max(np.abs(vectors[:, 0]))
    involved = np.flatnonzero(np.abs(direction) > 1e-6)
    combination = " + ".join(f"{direction[j]:.3g}*theta[{j}]" for j in involved)
    ratio = values[0] / values[-1] if values[-1] > 0 else 0.0
    return (f"the Fisher is singular (smallest/largest eigenvalue {ratio:.2g}): the data do not "
            f"determine the direction {combination}, e.g. collinear design columns "
            f"{involved.tolist()}; drop one of these columns or pass damping > 0")


def _solve(fisher: np.ndarray, gradient: np.ndarray) -> np.ndarray:
    values = np.linalg.eigvalsh(fisher)
    if not values[-1] > 0 or values[0] <= SINGULAR_RTOL * values[-1]:
        raise SingularFisherError(_null_direction_message(fisher))
    return np.linalg.solve(fisher, gradient)


@dataclass(frozen=True)
class FisherScoringFit:
    """The result of :func:`fit_fisher_scoring`: the estimate, its total Fisher and standard
    errors sqrt(diag F^{-1}) (expected information), the iteration count."""

    theta: np.ndarray
    fisher_sum: np.ndarray
    standard_errors: np.ndarray
    log_likelihood_sum: float
    iterations: int
    newton_decrement: float


def fit_fisher_scoring(model: ConditionalModel, theta0: Any | None = None, *, tol: float = 1e-18,
                       max_iterations: int = 100, damping: float = 0.0) -> FisherScoringFit:
    """Maximise the log-likelihood by Fisher scoring: theta += (F + damping I)^{-1} grad.

    This is natural gradient ascent with step 1 (and IRLS for a GLM). A step that lowers the
    log-likelihood is halved until it does not. Stops when the predicted gain
    grad^T (F + damping I)^{-1} grad / 2 is at most ``tol`` (in log-likelihood units); raises
    :class:`ConvergenceError` after ``max_iterations`` steps, :class:`SeparationError` when every
    label of a discrete model is fitted with probability 1, and SingularFisherError when the
    Fisher is singular (naming the undetermined direction).
    """
    if not (np.isfinite(tol) and tol > 0):
        raise DomainError(f"tol must be a positive number, got {tol!r}")
    if not (isinstance(max_iterations, (int, np.integer)) and max_iterations >= 1):
        raise DomainError(f"max_iterations must be a positive integer, got {max_iterations!r}")
    if not (np.isfinite(damping) and damping >= 0):
        raise DomainError(f"damping must be a finite number >= 0, got {damping!r}")
    theta = np.zeros(model.k) if theta0 is None else model.theta(theta0)

    def objective(point: np.ndarray) -> float:
        return model.log_likelihood_sum(point) - damping * float(point @ point) / 2

    value = objective(theta)
    eye = damping * np.eye(model.k)
    for iteration in range(1, max_iterations + 1):
        gradient = model.gradient_sum(theta) - damping * theta
        step = _solve(model.fisher_sum(theta) + eye, gradient)
        decrement = float(gradient @ step) / 2
        for _halving in range(MAX_HALVINGS):
            try:
                new_value = objective(theta + step)
            except DomainError:
                new_value = -np.inf
            if new_value >= value - 1e-12 * abs(value):
                break
            step = step / 2
        else:
            raise ConvergenceError(f"Fisher scoring step {iteration}: no step along the natural "
                                   f"gradient, halved {MAX_HALVINGS} times, keeps the "
                                   "log-likelihood finite and from falling")
        theta, value = theta + step, new_value
        if model.output.family.discrete and damping == 0:
            if np.all(model.log_likelihoods(theta) > np.log1p(-SEPARATION_TOL)):
                raise SeparationError(
                    f"perfect separation: after {iteration} Fisher-scoring steps every label has "
                    f"fitted probability above 1 - {SEPARATION_TOL:g}; the maximum likelihood "
                    "estimate does not exist (the coefficients grow without bound). Remove the "
                    "separating covariate, or pass damping > 0 (an L2 penalty)")
        if decrement <= tol:
            fisher = model.fisher_sum(theta)
            covariance = np.linalg.inv(fisher + eye)
            return FisherScoringFit(theta, fisher, np.sqrt(np.diag(covariance)),
                                    model.log_likelihood_sum(theta),
                                    iteration, decrement)
    binary = model.output.lower == 0 and model.output.upper == 1 and model.output.family.discrete
    if binary and isinstance(model.predictor, LinearPredictor) and model.predictor.n_outputs == 1:
        direction = separating_direction(model.X, model.y)
        if direction is not None:
            raise SeparationError(
                f"(quasi-)separation: after {max_iterations} Fisher-scoring steps the coefficients "
                "still grow; the labels are separated by the direction theta = "
                f"{np.array2string(direction, precision=3)} (sign(2y - 1) x . theta >= 0 for every "
                "observation), so the maximum likelihood estimate does not exist. Remove the "
                "separating covariate, or pass damping > 0 (an L2 penalty)")
    raise ConvergenceError(
        f"Fisher scoring did not converge in {max_iterations} iterations (last predicted gain "
        f"{decrement:.3g} > tol {tol:g}); raise max_iterations, or pass damping > 0")


def separating_direction(X: np.ndarray, y: np.ndarray) -> np.ndarray | None:
    """A direction d with (2 y_i - 1) x_i . d >= 0 for all i and > 0 for some (so the binary MLE
    does not exist; Konis 2007), found by a linear program, or None when there is none."""
    from scipy.optimize import linprog

    signed = (2 * np.asarray(y, dtype=float) - 1)[:, None] * np.asarray(X, dtype=float)
    scale = np.abs(signed).max()
    result = linprog(-signed.sum(axis=0) / scale, A_ub=-signed / scale, b_ub=np.zeros(len(signed)),
                     bounds=[(-1, 1)] * signed.shape[1], method="highs")
    if result.status != 0 or -result.fun <= 1e-7:
        return None
    return result.x


def sandwich_covariance(model: ConditionalModel, theta: Any) -> np.ndarray:
    """White's covariance A^{-1} B A^{-1}: A the loss Hessian, B = sum_i g_i g_i^T (empirical)."""
    A_inv = np.linalg.inv(model.loss_hessian_sum(theta))
    return A_inv @ model.empirical_fisher_sum(theta) @ A_inv

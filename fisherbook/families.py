"""Ready families, each written as its log density and derived by the same engine.

No Fisher matrix or KL divergence is typed in here: ``Family`` derives them. Each function is
cached, so the same object (and its cached derivations) comes back on every call.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import numpy as np
import sympy as sp

from .family import Family

x = sp.Symbol("x", real=True)
mu = sp.Symbol("mu", real=True)
sigma = sp.Symbol("sigma", positive=True)
p = sp.Symbol("p", positive=True)
lam = sp.Symbol("lam", positive=True)
alpha = sp.Symbol("alpha", positive=True)
beta_ = sp.Symbol("beta", positive=True)
a = sp.Symbol("a", positive=True)
b = sp.Symbol("b", positive=True)

UNIT_INTERVAL = (sp.Integer(0), sp.Integer(1))


def _gaussian_log_density(center: sp.Expr, scale: sp.Expr) -> sp.Expr:
    return -(x - center) ** 2 / (2 * scale**2) - sp.log(scale) - sp.log(2 * sp.pi) / 2


@cache
def normal_mean(sigma: float = 1.0) -> Family:
    """N(mu, sigma^2) with sigma fixed: parameter mu."""
    scale = sp.nsimplify(sigma)
    return Family(_gaussian_log_density(mu, scale), x, [mu], (-sp.oo, sp.oo),
                  name=f"normal (mean; sigma={sigma:g})",
                  sampler=lambda t, n, rng: rng.normal(t[0], float(scale), n))


@cache
def normal() -> Family:
    """N(mu, sigma^2): parameters mu (location) and sigma (scale)."""
    return Family(_gaussian_log_density(mu, sigma), x, [mu, sigma], (-sp.oo, sp.oo),
                  name="normal (mean, scale)", sampler=lambda t, n, rng: rng.normal(t[0], t[1], n))


@cache
def bernoulli() -> Family:
    """Bernoulli(p) on {0, 1}."""
    return Family(x * sp.log(p) + (1 - x) * sp.log(1 - p), x, [p], UNIT_INTERVAL,
                  discrete=True, name="bernoulli", param_domains={p: UNIT_INTERVAL})


@cache
def binomial(n: int = 10) -> Family:
    """Binomial(n, p) with n fixed, on {0, ..., n}."""
    log_density = sp.log(sp.binomial(n, x)) + x * sp.log(p) + (n - x) * sp.log(1 - p)
    return Family(log_density, x, [p], (0, n), discrete=True, name=f"binomial (n={n})",
                  param_domains={p: UNIT_INTERVAL})


@cache
def poisson() -> Family:
    """Poisson(lam) on {0, 1, 2, ...}."""
    return Family(x * sp.log(lam) - lam - sp.log(sp.factorial(x)), x, [lam], (0, sp.oo),
                  discrete=True, name="poisson")


@cache
def geometric() -> Family:
    """Geometric(p): failures before the first success, on {0, 1, 2, ...}."""
    return Family(x * sp.log(1 - p) + sp.log(p), x, [p], (0, sp.oo), discrete=True,
                  name="geometric", param_domains={p: UNIT_INTERVAL})


@cache
def exponential() -> Family:
    """Exponential with rate lam on (0, oo)."""
    return Family(sp.log(lam) - lam * x, x, [lam], (0, sp.oo), name="exponential")


@cache
def gamma() -> Family:
    """Gamma with shape alpha and rate beta on (0, oo)."""
    log_density = (alpha * sp.log(beta_) + (alpha - 1) * sp.log(x) - beta_ * x
                   - sp.loggamma(alpha))
    return Family(log_density, x, [alpha, beta_], (0, sp.oo), name="gamma (shape, rate)")


@cache
def beta() -> Family:
    """Beta(a, b) on (0, 1)."""
    log_density = ((a - 1) * sp.log(x) + (b - 1) * sp.log(1 - x)
                   + sp.loggamma(a + b) - sp.loggamma(a) - sp.loggamma(b))
    return Family(log_density, x, [a, b], UNIT_INTERVAL, name="beta")


@cache
def categorical(k: int = 3) -> Family:
    """Categorical on {0, ..., k-1} with probabilities p1..p_{k-1} (p0 = 1 - their sum).

    log p(x) = sum_j l_j(x) log p_j, with l_j the Lagrange polynomial that is 1 at j, 0 elsewhere."""
    if k < 2:
        raise ValueError(f"a categorical family needs k >= 2 categories, got {k}")
    probs = [sp.Symbol(f"p{j}", positive=True) for j in range(1, k)]
    all_probs = [1 - sum(probs), *probs]
    log_density = sp.Integer(0)
    for j, prob in enumerate(all_probs):
        indicator = sp.Mul(*[sp.Rational(1, j - m) * (x - m) for m in range(k) if m != j])
        log_density += indicator * sp.log(prob)
    points = [{q: 1.0 / (k + 1) for q in probs},
              {q: (i + 1) / (k * k) for i, q in enumerate(probs)}]
    return Family(log_density, x, probs, (0, k - 1), discrete=True, name=f"categorical (k={k})",
                  param_domains={q: UNIT_INTERVAL for q in probs}, test_points=points)


@cache
def _mvn_mean(cov: tuple[tuple[float, ...], ...]) -> Family:
    covariance = sp.Matrix(cov).applyfunc(sp.nsimplify)
    d = covariance.shape[0]
    xs = [sp.Symbol(f"x{i + 1}", real=True) for i in range(d)]
    means = [sp.Symbol(f"mu{i + 1}", real=True) for i in range(d)]
    centred = sp.Matrix(xs) - sp.Matrix(means)
    log_density = (-(centred.T * covariance.inv() * centred)[0, 0] / 2
                   - sp.log((2 * sp.pi) ** d * covariance.det()) / 2)
    cov_array = np.array(cov, dtype=float)

    def sampler(theta: tuple[float, ...], n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.multivariate_normal(np.array(theta), cov_array, size=n)

    return Family(log_density, xs, means, (-sp.oo, sp.oo), name=f"multivariate normal (mean, d={d})",
                  sampler=sampler)


def mvn_mean(cov: Sequence[Sequence[float]] = ((2.0, 0.6), (0.6, 1.0))) -> Family:
    """N(mu, Sigma) in d dimensions with Sigma fixed: parameters mu1..mud."""
    return _mvn_mean(tuple(tuple(float(v) for v in row) for row in cov))


def catalogue() -> dict[str, Family]:
    """Every ready family, by name."""
    families = [normal_mean(), normal(), bernoulli(), binomial(), poisson(), geometric(),
                exponential(), gamma(), beta(), categorical(), mvn_mean()]
    return {family.name: family for family in families}

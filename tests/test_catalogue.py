"""Every ready family passes verify, and its Fisher and KL match an independent computation:
scipy.stats log densities, finite-difference scores and scipy quadrature (no sympy involved)."""

import numpy as np
import pytest
from scipy import integrate, stats

from fisherbook import families, verify

# Each entry: family, scipy log density logpdf(x, *theta), whether discrete, support, two points.
INDEPENDENT = {
    "normal_mean": (families.normal_mean, lambda x, m: stats.norm.logpdf(x, m, 1.0), False,
                    (-np.inf, np.inf), [(0.3,), (-1.2,)]),
    "normal": (families.normal, lambda x, m, s: stats.norm.logpdf(x, m, s), False,
               (-np.inf, np.inf), [(0.3, 1.5), (-1.0, 0.7)]),
    "bernoulli": (families.bernoulli, lambda x, p: stats.bernoulli.logpmf(x, p), True, (0, 1),
                  [(0.3,), (0.8,)]),
    "binomial": (families.binomial, lambda x, p: stats.binom.logpmf(x, 10, p), True, (0, 10),
                 [(0.3,), (0.75,)]),
    "poisson": (families.poisson, lambda x, lam: stats.poisson.logpmf(x, lam), True, (0, 200),
                [(2.5,), (7.0,)]),
    "geometric": (families.geometric, lambda x, p: stats.geom.logpmf(x + 1, p), True, (0, 3000),
                  [(0.2,), (0.55,)]),
    "exponential": (families.exponential, lambda x, lam: stats.expon.logpdf(x, scale=1 / lam),
                    False, (0, np.inf), [(0.5,), (2.0,)]),
    "gamma": (families.gamma, lambda x, a, b: stats.gamma.logpdf(x, a, scale=1 / b), False,
              (0, np.inf), [(2.5, 1.5), (4.0, 0.5)]),
    "beta": (families.beta, lambda x, a, b: stats.beta.logpdf(x, a, b), False, (0, 1),
             [(2.0, 3.5), (1.5, 1.2)]),
    "categorical": (families.categorical,
                    lambda x, p1, p2: np.log(np.array([1 - p1 - p2, p1, p2])[np.asarray(x, int)]),
                    True, (0, 2), [(0.2, 0.5), (0.6, 0.1)]),
}


def _expect(fn, logpdf, discrete, support, theta):
    if discrete:
        ks = np.arange(support[0], support[1] + 1)
        return float(np.sum(fn(ks) * np.exp(logpdf(ks, *theta))))
    return integrate.quad(lambda t: fn(t) * np.exp(logpdf(t, *theta)), *support, limit=200,
                          epsabs=1e-12)[0]


def _independent_fisher(logpdf, discrete, support, theta):
    """E[s s^T] with s from central differences of the scipy log density."""
    k, h = len(theta), 1e-5

    def score(t):
        out = []
        for i in range(k):
            up, down = list(theta), list(theta)
            up[i] += h
            down[i] -= h
            out.append((logpdf(t, *up) - logpdf(t, *down)) / (2 * h))
        return out

    return np.array([[_expect(lambda t, i=i, j=j: score(t)[i] * score(t)[j], logpdf, discrete,
                              support, theta) for j in range(k)] for i in range(k)])


@pytest.mark.parametrize("key", sorted(INDEPENDENT))
def test_fisher_and_kl_match_independent_quadrature(key):
    make, logpdf, discrete, support, points = INDEPENDENT[key]
    fam = make()
    for theta in points:
        independent = _independent_fisher(logpdf, discrete, support, theta)
        np.testing.assert_allclose(fam.fisher_numeric(theta), independent, rtol=1e-5, atol=1e-7)
    first, second = points
    independent_kl = _expect(lambda t: logpdf(t, *first) - logpdf(t, *second), logpdf, discrete,
                             support, first)
    assert fam.kl_numeric(first, second) == pytest.approx(independent_kl, rel=1e-7, abs=1e-10)


def test_mvn_fisher_is_the_precision_matrix():
    cov = np.array([[2.0, 0.6], [0.6, 1.0]])
    fam = families.mvn_mean(cov.tolist())
    np.testing.assert_allclose(fam.fisher_numeric((0.0, 0.0)), np.linalg.inv(cov), rtol=1e-12)
    delta = np.array([0.4, -0.3])
    expected_kl = 0.5 * delta @ np.linalg.solve(cov, delta)
    assert fam.kl_numeric((0.0, 0.0), tuple(delta)) == pytest.approx(expected_kl, rel=1e-12)


@pytest.mark.parametrize("name", sorted(families.catalogue()))
def test_every_catalogue_family_passes_verify(name):
    report = verify(families.catalogue()[name], symbolic_seconds=5.0)
    assert report.ok, str(report)
    assert [row.identity.split(" ")[0] for row in report.rows] == ["E[s]", "E[s", "Hess_theta'"]

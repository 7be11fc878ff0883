"""Derived samplers: the sample mean and variance agree with quadrature within 5 standard errors."""

import numpy as np
import pytest
import sympy as sp

from fisherbook import Family, families, mc_mean

x = sp.Symbol("x", real=True)


@pytest.mark.parametrize(
    ("make", "theta"),
    [
        (families.gamma, {"alpha": 0.7, "beta": 2.0}),
        (families.beta, {"a": 0.8, "b": 2.5}),
        (families.exponential, {"lam": 0.5}),
        (families.poisson, {"lam": 40.0}),
        (families.geometric, {"p": 0.05}),
        (families.binomial, {"p": 0.3}),
        (families.categorical, {"p1": 0.1, "p2": 0.6}),
    ],
)
def test_derived_sampler_moments(make, theta):
    fam = make()
    draws = fam.sample(theta, 100_000, np.random.default_rng(7))
    mean = fam.expect(x, theta)
    variance = fam.expect((x - mean) ** 2, theta)
    assert mc_mean(draws).agrees_with(mean)
    assert mc_mean((draws - mean) ** 2).agrees_with(variance)


def test_reader_family_without_sampler_far_from_origin():
    mu = sp.Symbol("mu", real=True)
    laplace = Family(-sp.Abs(x - mu) - sp.log(2), x, [mu], (-sp.oo, sp.oo), name="laplace")
    draws = laplace.sample({"mu": 250.0}, 50_000, np.random.default_rng(0))
    assert mc_mean(draws).agrees_with(250.0)
    assert mc_mean((draws - 250.0) ** 2).agrees_with(2.0)


def test_sampling_is_reproducible():
    fam = families.gamma()
    first = fam.sample({"alpha": 2, "beta": 1}, 10, np.random.default_rng(5))
    second = fam.sample({"alpha": 2, "beta": 1}, 10, np.random.default_rng(5))
    np.testing.assert_array_equal(first, second)


SAMPLER_SEED = 11


def test_levy_sampler_works_despite_the_pole_at_zero():
    # Levy(0, c): p(x) ~ x^(-3/2) exp(-c / 2x); its median is c / (2 erfcinv(1/2)^2)
    from scipy.special import erfcinv

    xp, c = sp.Symbol("x", positive=True), sp.Symbol("c", positive=True)
    levy = Family(sp.log(c) / 2 - sp.log(2 * sp.pi) / 2 - sp.Rational(3, 2) * sp.log(xp)
                  - c / (2 * xp), xp, [c], (0, sp.oo), name="levy")
    draws = levy.sample((0.5,), 20_000, np.random.default_rng(SAMPLER_SEED))
    median = 0.5 / (2 * erfcinv(0.5) ** 2)
    assert np.all(draws > 0)
    assert mc_mean((draws < median).astype(float)).agrees_with(0.5)


def test_heavy_tailed_mass_function_is_not_sampled_from_a_truncated_law():
    from fisherbook.errors import DerivationError

    k, s = sp.Symbol("x", integer=True, nonnegative=True), sp.Symbol("s", real=True)
    zipf = Family(-s * sp.log(k) - sp.log(sp.zeta(s)), k, [s], (1, sp.oo), discrete=True,
                  param_domains={s: (1, sp.oo)}, name="zipf")
    with pytest.raises(DerivationError, match="heavy tail"):
        zipf.sample((1.2,), 1000, np.random.default_rng(SAMPLER_SEED))

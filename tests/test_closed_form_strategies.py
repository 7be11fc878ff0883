"""The closed-form strategies of issue 8: location-scale standardisation, curved exponential
families (and the pull-back through an embedding), point masses on a discrete support, and a
Gaussian in a vector x. Each strategy is tested on its textbook case and on a second instance,
against the textbook formula and an independent oracle (mpmath or scipy quadrature / sums of our
own sympy scores), and each strategy is called directly, so that a test fails if the portfolio
closes a family by another route and the strategy itself breaks.
"""

import mpmath
import numpy as np
import pytest
import sympy as sp
from scipy import integrate

from fisherbook import Family, curved, derivation, families, gaussian, location_scale, numeric, point_masses
from fisherbook.errors import FamilySpecError

SAMPLE_SEED = 8
x = sp.Symbol("x", real=True)
y = sp.Symbol("y", real=True)
xp = sp.Symbol("x", positive=True)
n = sp.Symbol("n", integer=True, nonnegative=True)
k = sp.Symbol("k", positive=True)
lam = sp.Symbol("lam", positive=True)
theta = sp.Symbol("theta", positive=True)
mu = sp.Symbol("mu", real=True)
beta = sp.Symbol("beta", positive=True)
rho = sp.Symbol("rho", real=True)
pi_ = sp.Symbol("pi", positive=True)
GAMMA = float(mpmath.euler)


def _mpmath_fisher(fam: Family, point: tuple[float, ...], lower, upper) -> np.ndarray:
    """E[s s^T] by mpmath quadrature of the family's own sympy score (an independent oracle)."""
    values = dict(zip(fam.params, point, strict=True))
    score = [sp.lambdify(fam.x, e.xreplace(values), "mpmath") for e in fam.score()]
    density = sp.lambdify(fam.x, sp.exp(fam.log_density.xreplace(values)), "mpmath")
    k_ = len(score)
    out = np.empty((k_, k_))
    with mpmath.workdps(30):
        for i in range(k_):
            for j in range(k_):
                out[i, j] = float(mpmath.quad(lambda t, i=i, j=j: score[i](t) * score[j](t)
                                              * density(t), [lower, 1, upper]))
    return out


# ------------------------------------------------------------- (a) location-scale standardisation
def weibull_shape() -> Family:
    return Family(sp.log(k) + (k - 1) * sp.log(xp) - xp**k, xp, [k], (0, sp.oo))


def test_weibull_shape_is_the_textbook_closed_form():
    fam = weibull_shape()
    textbook = (sp.pi**2 / 6 + (1 - sp.EulerGamma) ** 2) / k**2
    assert sp.simplify(fam.fisher()[0, 0] - textbook) == 0
    assert derivation.route(fam) == "location-scale standardisation"
    for value in (0.6, 1.7, 4.0):
        oracle = _mpmath_fisher(fam, (value,), 0, mpmath.inf)
        assert fam.fisher_numeric((value,))[0, 0] == pytest.approx(oracle[0, 0], rel=1e-10)


def test_weibull_is_location_scale_in_log_x():
    standard = location_scale.standardise(weibull_shape())
    assert standard is not None and standard.log_variable
    z = standard.z
    assert sp.simplify(standard.standard_log_density - (z - sp.exp(z))) == 0  # Gumbel (min)
    assert sp.simplify(standard.scale - 1 / sp.Symbol("k_w", positive=True)) == 0


def test_gumbel_location_and_scale_second_instance():
    fam = Family(-sp.log(beta) - (x - mu) / beta - sp.exp(-(x - mu) / beta), x, [mu, beta],
                 (-sp.oo, sp.oo))
    direct = location_scale.fisher_by_standardisation(fam)
    g = sp.EulerGamma
    textbook = sp.Matrix([[1, g - 1], [g - 1, (1 - g) ** 2 + sp.pi**2 / 6]]) / beta**2
    assert (direct - textbook).applyfunc(sp.simplify) == sp.zeros(2, 2)
    oracle = _mpmath_fisher(fam, (0.3, 1.8), -40, 150)  # beyond: below e^-80 of the mass
    assert fam.fisher_numeric((0.3, 1.8)) == pytest.approx(oracle, rel=1e-9)


def test_weibull_scale_and_shape_together():
    log_density = sp.log(k / lam) + (k - 1) * sp.log(xp / lam) - (xp / lam) ** k
    fam = Family(log_density, xp, [lam, k], (0, sp.oo))
    point = (2.5, 1.4)
    textbook = np.array([[1.4**2 / 2.5**2, -(1 - GAMMA) / 2.5],
                         [-(1 - GAMMA) / 2.5, ((1 - GAMMA) ** 2 + np.pi**2 / 6) / 1.4**2]])
    assert fam.fisher_numeric(point) == pytest.approx(textbook, rel=1e-12)
    assert location_scale.fisher_by_standardisation(fam) is not None


def test_n_theta_theta_squared_by_standardisation():
    fam = Family(-(x - theta) ** 2 / (2 * theta**2) - sp.log(theta) - sp.log(2 * sp.pi) / 2, x,
                 [theta], (-sp.oo, sp.oo))
    assert sp.simplify(location_scale.fisher_by_standardisation(fam)[0, 0] - 3 / theta**2) == 0


def test_a_shape_parameter_is_not_location_scale():
    a = sp.Symbol("a", positive=True)  # gamma shape: no m(a), s(a) standardises it
    fam = Family((a - 1) * sp.log(xp) - xp - sp.loggamma(a), xp, [a], (0, sp.oo))
    assert location_scale.standardise(fam) is None
    assert location_scale.fisher_by_standardisation(fam) is None


def test_gamma_moment_integral_matches_sympy_and_refuses_other_terms():
    w = sp.Symbol("w", positive=True)
    integrand = (w**2 * sp.log(w) ** 2 - 3 * sp.sqrt(w)) * sp.exp(-2 * w)
    value = location_scale.gamma_moment_integral(integrand, w)
    reference = mpmath.quad(lambda t: (t**2 * mpmath.log(t) ** 2 - 3 * mpmath.sqrt(t))
                            * mpmath.exp(-2 * t), [0, 1, mpmath.inf])
    assert float(value) == pytest.approx(float(reference), rel=1e-12)
    assert location_scale.gamma_moment_integral(sp.exp(-w) / (1 + w), w) is None
    assert location_scale.gamma_moment_integral(sp.exp(w), w) is None  # no decay: refused


# -------------------------------------------------- (b) curved exponential families, embeddings
def test_n_theta_theta_squared_is_three_over_theta_squared_by_the_curved_route():
    fam = Family(-(x - theta) ** 2 / (2 * theta**2) - sp.log(theta) - sp.log(2 * sp.pi) / 2, x,
                 [theta], (-sp.oo, sp.oo))
    assert len(curved.full_family(fam).symbols) == 2  # T = (x, x^2): curved in R^2
    assert sp.simplify(curved.fisher_by_curved_form(fam)[0, 0] - 3 / theta**2) == 0
    assert sp.simplify(fam.fisher()[0, 0] - 3 / theta**2) == 0
    # the portfolio closes it sooner as a Gaussian in x (no integral at all); both are exact
    assert derivation.route(fam) == "Gaussian in x"
    oracle = _mpmath_fisher(fam, (1.3,), -mpmath.inf, mpmath.inf)
    assert fam.fisher_numeric((1.3,))[0, 0] == pytest.approx(oracle[0, 0], rel=1e-10)


def test_gamma_with_shape_equal_to_rate_second_instance():
    log_density = theta * sp.log(theta) + (theta - 1) * sp.log(xp) - theta * xp - sp.loggamma(theta)
    fam = Family(log_density, xp, [theta], (0, sp.oo))
    expected = sp.polygamma(1, theta) - 1 / theta  # trigamma(a) + a / b^2 - 2 / b at a = b
    assert sp.simplify(curved.fisher_by_curved_form(fam)[0, 0] - expected) == 0
    oracle = _mpmath_fisher(fam, (2.2,), 0, mpmath.inf)
    assert fam.fisher_numeric((2.2,))[0, 0] == pytest.approx(oracle[0, 0], rel=1e-10)
    kl = curved.kl_by_curved_form(fam)
    value = float(kl.xreplace({theta: 2.2, fam._primed[0]: 0.9}))
    assert value == pytest.approx(fam.kl_by_quadrature((2.2,), (0.9,)), rel=1e-9)


def test_a_full_exponential_family_is_not_curved():
    assert curved.full_family(families.poisson()) is None
    assert curved.fisher_by_curved_form(families.poisson()) is None


def test_reparametrize_declares_the_embedding_and_the_pull_back_is_exact():
    normal = families.normal()
    fam = normal.reparametrize({families.mu: theta, families.sigma: sp.sqrt(theta)}, [theta])
    assert fam.embedding is not None and fam.embedding[0] is normal
    expected = 1 / theta + 1 / (2 * theta**2)  # N(theta, theta): mean and variance theta
    assert sp.simplify(curved.fisher_by_embedding(fam)[0, 0] - expected) == 0
    assert sp.simplify(fam.fisher()[0, 0] - expected) == 0
    other = sp.Rational(3, 2)
    kl = curved.kl_by_embedding(fam).xreplace({theta: 2, fam._primed[0]: other})
    assert float(kl) == pytest.approx(fam.kl_by_quadrature((2.0,), (1.5,)), rel=1e-10)


def test_the_pull_back_closes_a_reparametrised_family_no_direct_route_closes():
    gumbel = Family(-sp.log(beta) - (x - mu) / beta - sp.exp(-(x - mu) / beta), x, [mu, beta],
                    (-sp.oo, sp.oo))
    tau = sp.Symbol("tau", real=True)  # log scale: no exponential form, no candidate scale
    fam = gumbel.reparametrize({beta: sp.exp(tau)}, [mu, tau])
    g = sp.EulerGamma
    expected = sp.Matrix([[sp.exp(-2 * tau), (g - 1) * sp.exp(-tau)],
                          [(g - 1) * sp.exp(-tau), (1 - g) ** 2 + sp.pi**2 / 6]])
    assert (fam.fisher() - expected).applyfunc(sp.simplify) == sp.zeros(2, 2)
    assert derivation.route(fam) == "pull-back through the declared embedding"
    oracle = _mpmath_fisher(fam, (0.3, 0.4), -40, 150)  # beyond: below e^-50 of the mass
    assert fam.fisher_numeric((0.3, 0.4)) == pytest.approx(oracle, rel=1e-9)


def test_a_declared_embedding_that_is_not_the_same_density_is_refused():
    normal = families.normal()
    wrong = -(x - theta) ** 2 / 2 - sp.log(2 * sp.pi) / 2  # N(theta, 1), declared as N(theta, theta)
    with pytest.raises(FamilySpecError, match="not the parent"):
        Family(wrong, x, [theta], (-sp.oo, sp.oo),
               embedding=(normal, {families.mu: theta, families.sigma: sp.sqrt(theta)}))
    with pytest.raises(FamilySpecError, match="not a parameter"):
        Family(wrong, x, [theta], (-sp.oo, sp.oo), embedding=(normal, {lam: theta}))


# ------------------------------------------------------------ (c) point masses, discrete support
def zero_inflated_poisson() -> Family:
    generic = (1 - pi_) * sp.exp(-lam) * lam**n / sp.factorial(n)
    log_density = sp.log(sp.Piecewise((pi_ + (1 - pi_) * sp.exp(-lam), sp.Eq(n, 0)),
                                      (generic, True)))
    return Family(log_density, n, [pi_, lam], (0, sp.oo), discrete=True,
                  param_domains={pi_: (0, 1)}, time_limit=90)


def _zip_textbook(p: float, rate: float) -> np.ndarray:
    p0 = p + (1 - p) * np.exp(-rate)
    return np.array([[(1 - np.exp(-rate)) / ((1 - p) * p0), -np.exp(-rate) / p0],
                     [-np.exp(-rate) / p0, (1 - p) / rate - p * (1 - p) * np.exp(-rate) / p0]])


def _mpmath_sum_fisher(fam: Family, point: tuple[float, ...]) -> np.ndarray:
    values = dict(zip(fam.params, point, strict=True))
    score = [sp.lambdify(fam.x, e.xreplace(values), "mpmath") for e in fam.score()]
    log_p = sp.lambdify(fam.x, fam.log_density.xreplace(values), "mpmath")
    k_ = len(score)
    with mpmath.workdps(30):
        return np.array([[float(mpmath.nsum(lambda j, a=a, b=b: score[a](j) * score[b](j)
                                            * mpmath.exp(log_p(j)), [0, mpmath.inf]))
                          for b in range(k_)] for a in range(k_)])


def test_zero_inflated_poisson_is_the_textbook_two_by_two():
    fam = zero_inflated_poisson()
    fam.fisher()
    assert derivation.route(fam) == "point masses on the discrete support"
    for point in ((0.3, 2.0), (0.75, 0.4)):
        assert fam.fisher_numeric(point) == pytest.approx(_zip_textbook(*point), rel=1e-10)
        assert fam.fisher_numeric(point) == pytest.approx(_mpmath_sum_fisher(fam, point),
                                                          rel=1e-10)


def test_zero_inflated_poisson_kl_against_the_sum():
    fam = zero_inflated_poisson()
    assert fam.kl_numeric((0.3, 2.0), (0.6, 1.1)) == pytest.approx(
        fam.kl_by_quadrature((0.3, 2.0), (0.6, 1.1)), rel=1e-9)


def test_one_inflated_geometric_with_a_kronecker_delta_second_instance():
    q = sp.Symbol("q", positive=True)  # geometric on {0, 1, ...} with extra mass w at n = 1
    w = sp.Symbol("w", positive=True)
    log_density = sp.log(w * sp.KroneckerDelta(n, 1) + (1 - w) * q * (1 - q) ** n)
    fam = Family(log_density, n, [w, q], (0, sp.oo), discrete=True,
                 param_domains={w: (0, 1), q: (0, 1)}, time_limit=90)
    assert point_masses.special_points(fam.log_density, n) == [1]
    direct = point_masses.fisher_by_point_masses(fam)
    assert direct is not None
    point = (0.2, 0.45)
    closed = np.array(direct.xreplace(dict(zip(fam.params, point, strict=True))).evalf(),
                      dtype=float)
    assert closed == pytest.approx(_mpmath_sum_fisher(fam, point), rel=1e-10)


def test_a_kronecker_delta_evaluates_on_arrays():
    evaluator = numeric.Evaluator([n], [sp.KroneckerDelta(n, 1) * 2 + 1], "a test")
    assert evaluator(np.arange(4.0))[0] == pytest.approx([1.0, 3.0, 1.0, 1.0])


def test_no_point_cases_means_not_applicable():
    assert point_masses.fisher_by_point_masses(families.poisson()) is None


# --------------------------------------------------------------------- (d) a Gaussian in vector x
def bivariate_correlation(mean: sp.Expr = 0) -> Family:
    u, v = x - mean, y - mean
    log_density = (-(u**2 - 2 * rho * u * v + v**2) / (2 * (1 - rho**2)) - sp.log(2 * sp.pi)
                   - sp.log(1 - rho**2) / 2)
    params = [rho] if mean == 0 else [mu, rho]
    return Family(log_density, [x, y], params, [(-sp.oo, sp.oo)] * 2,
                  param_domains={rho: (-1, 1)})


def _scipy_fisher_2d(fam: Family, point: tuple[float, ...]) -> np.ndarray:
    values = dict(zip(fam.params, point, strict=True))
    score = [sp.lambdify(fam.xs, e.xreplace(values), "numpy") for e in fam.score()]
    density = sp.lambdify(fam.xs, sp.exp(fam.log_density.xreplace(values)), "numpy")
    k_ = len(score)
    out = np.empty((k_, k_))
    for i in range(k_):
        for j in range(i, k_):  # beyond |x|, |y| = 12 the mass is below e^-70
            out[i, j] = out[j, i] = integrate.dblquad(
                lambda b_, a_, i=i, j=j: score[i](a_, b_) * score[j](a_, b_) * density(a_, b_),
                -12, 12, -12, 12, epsabs=1e-11, epsrel=1e-11)[0]
    return out


def test_bivariate_normal_correlation_is_the_textbook_form():
    fam = bivariate_correlation()
    assert sp.simplify(fam.fisher()[0, 0] - (1 + rho**2) / (1 - rho**2) ** 2) == 0
    assert derivation.route(fam) == "Gaussian in x"
    assert fam.fisher_numeric((0.6,)) == pytest.approx(_scipy_fisher_2d(fam, (0.6,)), rel=1e-8)


def test_bivariate_normal_kl_is_the_gaussian_kl():
    fam = bivariate_correlation()
    s1, s2 = np.array([[1, 0.6], [0.6, 1]]), np.array([[1, -0.2], [-0.2, 1]])
    textbook = 0.5 * (np.trace(np.linalg.solve(s2, s1)) - 2
                      + np.log(np.linalg.det(s2) / np.linalg.det(s1)))
    assert fam.kl_numeric((0.6,), (-0.2,)) == pytest.approx(textbook, rel=1e-12)


def test_common_mean_and_correlation_second_instance():
    fam = bivariate_correlation(mean=mu)
    direct = gaussian.fisher_by_gaussian_form(fam)
    expected = sp.Matrix([[2 / (1 + rho), 0], [0, (1 + rho**2) / (1 - rho**2) ** 2]])
    assert (direct - expected).applyfunc(sp.simplify) == sp.zeros(2, 2)
    assert fam.fisher_numeric((0.4, -0.3)) == pytest.approx(_scipy_fisher_2d(fam, (0.4, -0.3)),
                                                            rel=1e-8)


def test_the_automatic_vector_sampler_draws_the_gaussian():
    fam = bivariate_correlation(mean=mu)
    draws = fam.sample((0.4, -0.5), 40_000, np.random.default_rng(SAMPLE_SEED))
    assert draws.shape == (40_000, 2)
    size = draws.shape[0]
    # each mean has variance 1 / n; the sample correlation's standard error is (1 - rho^2)/sqrt(n)
    assert np.all(np.abs(draws.mean(axis=0) - 0.4) < 5 / np.sqrt(size))
    correlation = np.corrcoef(draws.T)[0, 1]
    assert abs(correlation + 0.5) < 5 * (1 - 0.25) / np.sqrt(size)


def test_a_vector_family_that_is_not_gaussian_has_no_automatic_sampler():
    a, b = sp.Symbol("a", positive=True), sp.Symbol("b", positive=True)
    log_density = sp.log(theta) - theta * a + sp.log(theta) - theta * b  # two exponentials
    fam = Family(log_density, [a, b], [theta], [(0, sp.oo)] * 2)
    assert gaussian.gaussian_parameters(fam) is None
    with pytest.raises(FamilySpecError, match="quadratic in x"):
        fam.sample((1.0,), 10, np.random.default_rng(SAMPLE_SEED))

"""Classes of wrong answers the engine must never give (issue 8), each tested as a class.

Each test would catch a new instance of its class, not only the reproducer it started from:
a derivation input missing from the cache key, a Piecewise branch never checked, a support that
moves with theta however it is written, an ill-conditioned closed form evaluated in floats, a
score made worse by simplification, a NaN passing verify, a kink hidden from the Hessian form.
"""

import copy
import inspect

import mpmath
import numpy as np
import pytest
import sympy as sp

from fisherbook import Family, estimate_fisher, families, numeric, quadrature, symbolic, verify
from fisherbook import family as family_module
from fisherbook.errors import DerivationError, RegularityError
from fisherbook.verify import FAILED

MC_SEED = 20
x = sp.Symbol("x", real=True)
xp = sp.Symbol("x", positive=True)
t = sp.Symbol("t", real=True)
theta = sp.Symbol("theta", positive=True)
m = sp.Symbol("m", real=True)

# ------------------------------------------------------------------ 1. the derivation cache key
#: Constructor arguments that cannot change a closed form (they name it, sample it, bound its
#: time, add check points, or offer a strategy, the embedding, that is checked at construction to
#: describe the same density); every other argument must be a derivation input of the key.
NOT_DERIVATION_INPUTS = {"self", "name", "test_points", "sampler", "time_limit", "x", "support",
                         "param_domains", "embedding"}
#: The constructor arguments above that are stored, normalised, under another attribute name.
STORED_AS = {"x": "xs", "support": "bounds", "param_domains": "domains"}


def test_every_constructor_argument_is_named_by_the_key_or_declared_irrelevant():
    arguments = set(inspect.signature(Family.__init__).parameters)
    inputs = set(family_module.DERIVATION_INPUTS)
    for argument in arguments - NOT_DERIVATION_INPUTS:
        assert argument in inputs, f"Family({argument}=...) is not part of the derivation key"
    for argument, attribute in STORED_AS.items():
        assert attribute in inputs, f"{argument} (stored as {attribute}) is not in the key"


def _exponential_rate_family() -> Family:
    rate = sp.sqrt(t**2) + 2 * t + 1
    return Family(sp.log(rate) - rate * xp, xp, [t], (0, sp.oo), param_domains={t: (0, sp.oo)})


@pytest.mark.parametrize(
    ("attribute", "change"),
    [
        ("log_density", lambda f: f.log_density + 0 * sp.Symbol("t", real=True) + sp.Integer(1)),
        ("xs", lambda f: (sp.Symbol("x", real=True),)),
        ("params", lambda f: (sp.Symbol("t", positive=True),)),
        ("bounds", lambda f: [(sp.Integer(0), sp.Integer(5))]),
        ("discrete", lambda f: not f.discrete),
        ("domains", lambda f: {f.params[0]: (sp.Integer(-1), sp.Integer(0))}),
    ],
)
def test_changing_any_derivation_input_changes_the_key(attribute, change):
    base = _exponential_rate_family()
    changed = copy.copy(base)
    changed.__dict__.pop("_key", None)
    setattr(changed, attribute, change(base))
    assert changed._key != base._key, f"the cache key ignores {attribute}"


def test_same_log_density_with_another_domain_gets_its_own_fisher():
    # sqrt(t^2) + 2t + 1 is 3t + 1 for t > 0 and 1 + t for -1 < t < 0: F = 1 / rate^2
    rate = sp.sqrt(t**2) + 2 * t + 1
    log_density = sp.log(rate) - rate * xp
    first = Family(log_density, xp, [t], (0, sp.oo), param_domains={t: (0, sp.oo)})
    first.fisher()
    second = Family(log_density, xp, [t], (0, sp.oo), param_domains={t: (-1, 0)})
    assert second.fisher_numeric((-0.5,))[0, 0] == pytest.approx(4.0, rel=1e-12)
    assert first.fisher_numeric((0.5,))[0, 0] == pytest.approx(9 / 2.5**2, rel=1e-12)


# ------------------------------------------------------------------ 2. Piecewise answers
@pytest.mark.parametrize("threshold", [0.2, 1.2, 2.0, 3.3, 10.0, 40.0])
def test_cross_check_points_cover_every_branch_in_theta(threshold):
    scale = sp.Piecewise((theta + 1 - threshold, theta >= threshold), (theta, True))
    fam = Family(-sp.log(scale) - xp / scale, xp, [theta], (0, sp.oo))  # exponential, mean scale
    sides = {p[0] >= threshold for p in fam.coverage_points()}
    assert sides == {True, False}


def test_an_unevaluated_fallback_branch_becomes_nan_never_another_branch():
    a = sp.Symbol("a", positive=True)
    unevaluated = sp.Integral(sp.exp(-a * x**4), (x, 0, sp.oo))
    resolved = symbolic.resolve_conditions(sp.Piecewise((1 / a, a > 2), (unevaluated, True)))
    assert resolved.subs(a, 3) == sp.Rational(1, 3)
    assert resolved.subs(a, 1) is sp.nan


def test_piecewise_scale_is_right_in_both_branches():
    scale = sp.Piecewise(((theta**2 + 1) / 2, theta >= 1), (theta, True))  # C^1 Cauchy scale
    fam = Family(sp.log(scale) - sp.log(sp.pi) - sp.log(scale**2 + x**2), x, [theta],
                 (-sp.oo, sp.oo), time_limit=40)
    # Cauchy scale s: F = s'^2 / (2 s^2)
    assert fam.fisher_numeric((0.5,))[0, 0] == pytest.approx(2.0, rel=1e-10)
    assert fam.fisher_numeric((2.0,))[0, 0] == pytest.approx(2 * 4 / 25, rel=1e-10)


# ------------------------------------------------------------------ 3. a support that moves
@pytest.mark.parametrize(
    "log_density",
    [
        sp.Piecewise((0, (x > t) & (x < t + 1)), (-sp.oo, True)),  # uniform(t, t + 1)
        sp.Piecewise((-(x - t), x > t), (-sp.oo, True)),  # shifted exponential
        sp.log(sp.Heaviside(x - t)) - (x - t),  # the same, as an indicator
        sp.log(sp.Max(0, 1 - sp.Abs(x - t))),  # triangle on (t - 1, t + 1)
    ],
    ids=["piecewise-interval", "piecewise-half-line", "heaviside", "max"],
)
def test_a_support_moving_with_theta_is_refused_however_written(log_density):
    with pytest.raises(RegularityError, match="moves with theta"):
        Family(log_density, x, [t], (-sp.oo, sp.oo))


def test_pareto_written_with_a_condition_is_refused():
    xm = sp.Symbol("xm", positive=True)
    log_density = sp.Piecewise((sp.log(2) + 2 * sp.log(xm) - 3 * sp.log(xp), xp > xm),
                               (-sp.oo, True))
    with pytest.raises(RegularityError, match="moves with theta"):
        Family(log_density, xp, [xm], (0, sp.oo))


# ------------------------------------------------------------------ 4. ill-conditioned forms
u = sp.Symbol("u", real=True)


def _precise(compute):
    with mpmath.workdps(60):
        return float(compute())


@pytest.mark.parametrize(
    ("expr", "truth"),
    [
        ((-2 * u - sp.log(1 - u) + sp.log(1 + u)) / (2 * u**3), lambda v: 1 / 3 + v**2 / 5),
        ((1 - sp.cos(u)) / u**2, lambda v: float(mpmath.mpf(2) * mpmath.sin(v / 2) ** 2 / v**2)
         if v else 0.5),
        ((sp.exp(u) - 1 - u) / u**2, lambda v: _precise(lambda: (mpmath.expm1(v) - v) / v**2)
         if v else 0.5),
        (sp.log(1 + u) / u, lambda v: float(mpmath.log1p(v) / v) if v else 1.0),
    ],
)
@pytest.mark.parametrize("value", [1e-3, 1e-6, 1e-9, 0.0, -1e-7])
def test_closed_form_values_are_accurate_or_refused(expr, truth, value):
    fast = sp.lambdify([u], expr, numeric.MODULES)
    precise = sp.lambdify([u], expr, "mpmath")
    result = numeric.closed_form_value(fast, precise, (value,))
    if result is None:
        assert value == 0.0  # only at the removable singularity itself: the caller falls back
    else:
        assert float(result) == pytest.approx(truth(value), rel=1e-9)


def test_fisher_numeric_near_a_removable_singularity():
    fam = Family(sp.log((1 + t * x) / 2), x, [t], (-1, 1), param_domains={t: (-1, 1)})
    for value in (1e-4, 1e-5, 1e-6, 0.0):
        assert fam.fisher_numeric((value,))[0, 0] == pytest.approx(1 / 3 + value**2 / 5, rel=1e-9)


# ------------------------------------------------------------------ 5. the numeric score
alpha, beta = sp.symbols("alpha beta", positive=True)
LOG_LOGISTIC = (sp.log(beta) - sp.log(alpha) + (beta - 1) * (sp.log(xp) - sp.log(alpha))
                - 2 * sp.log(1 + (xp / alpha) ** beta))


@pytest.mark.parametrize(
    ("make", "theta_values", "points"),
    [
        (lambda: Family(LOG_LOGISTIC, xp, [alpha, beta], (0, sp.oo), time_limit=1), (1.3, 2.5),
         [0.01, 1.0, 10.0, 300.0, 1e5]),
        (families.gamma, (2.5, 1.5), [0.01, 1.0, 30.0, 700.0]),
        (families.beta, (0.7, 3.0), [1e-6, 0.3, 0.999]),
    ],
)
def test_score_numeric_is_finite_and_matches_differences_of_logpdf(make, theta_values, points):
    fam = make()
    scores = fam.score_numeric(np.array(points), theta_values)
    assert np.all(np.isfinite(scores))
    for i in range(len(theta_values)):
        step = 1e-6 * theta_values[i]
        up, down = list(theta_values), list(theta_values)
        up[i] += step
        down[i] -= step
        difference = (fam.logpdf(points, up) - fam.logpdf(points, down)) / (2 * step)
        np.testing.assert_allclose(scores[:, i], difference, rtol=1e-5, atol=1e-6)


def test_log_logistic_fisher_by_quadrature_is_finite():
    fam = Family(LOG_LOGISTIC, xp, [alpha, beta], (0, sp.oo), time_limit=1)
    fisher = fam.fisher_by_quadrature((1.7, 1.85))
    # log-logistic: F_alpha,alpha = beta^2 / (3 alpha^2), F_beta,beta = (3 + pi^2) / (9 beta^2)
    np.testing.assert_allclose(np.diag(fisher), [1.85**2 / (3 * 1.7**2),
                                                 (3 + np.pi**2) / (9 * 1.85**2)], rtol=1e-8)


# ------------------------------------------------------------------ 6. NaN never passes verify
class _NaNQuadrature(Family):
    def fisher_by_quadrature(self, theta, form="score"):
        return super().fisher_by_quadrature(theta, form) * np.nan


class _NaNScoreMean(Family):
    def score_mean_by_quadrature(self, theta):
        return np.array([0.0, np.nan])[: len(self.params)] + np.nan


@pytest.mark.parametrize(("cls", "rows"), [(_NaNQuadrature, (0, 1)), (_NaNScoreMean, (0,))])
def test_a_nan_in_any_numeric_check_is_a_failure(cls, rows):
    fam = cls(-((x - m) ** 2) / 2 - sp.log(2 * sp.pi) / 2, x, [m], (-sp.oo, sp.oo),
              name="nan", time_limit=1)
    report = verify(fam, symbolic_seconds=0.01)
    for row in rows:
        assert report.rows[row].status == FAILED, str(report)
    assert not report.ok


# ------------------------------------------------------------------ 7. kinks and the Hessian
c = sp.Symbol("c", real=True)
KINKED = [
    (lambda: Family(-sp.Abs(x - m) - sp.log(2), x, [m], (-sp.oo, sp.oo), name="laplace"),
     (0.3,), "x - m", 1.0),
    (lambda: Family(sp.Piecewise((sp.log(2 * xp / c), xp < c),
                                 (sp.log(2 * (1 - xp) / (1 - c)), True)), xp, [c], (0, 1),
                    param_domains={c: (0, 1)}, name="triangular"),
     (0.3,), "x - c", 1 / (0.3 * 0.7)),
]


@pytest.mark.parametrize(("make", "point", "kink", "fisher"), KINKED, ids=["abs", "piecewise"])
def test_hessian_form_is_refused_at_a_moving_kink_and_the_score_form_is_right(make, point, kink,
                                                                                fisher):
    fam = make()
    kink = sp.sympify(kink, locals={"x": xp if "triangular" in fam.name else x, "m": m, "c": c})
    assert any(sp.simplify(g - kink) == 0 or sp.simplify(g + kink) == 0 for g in fam.kinks())
    with pytest.raises(DerivationError, match="kink"):
        estimate_fisher(fam, point, 100, rng=np.random.default_rng(MC_SEED), method="hessian")
    with pytest.raises(DerivationError, match="score form"):
        fam.fisher_by_quadrature(point, form="hessian")
    # the quadrature splits at the kink: accurate to 1e-9, not 1e-4
    assert fam.fisher_by_quadrature(point)[0, 0] == pytest.approx(fisher, rel=1e-9)


def test_triangular_mode_closed_form_is_accepted():
    fam = KINKED[1][0]()
    assert sp.simplify(fam.fisher()[0, 0] - 1 / (c * (1 - c))) == 0


def test_a_kink_only_outside_the_parameter_domain_is_no_kink():
    # N(t, (|t| + 1)^2) for t < 0: |t| = -t there, log p is smooth, the Hessian form is fine
    log_density = (-((x - t) ** 2) / (2 * (sp.Abs(t) + 1) ** 2) - sp.log(sp.Abs(t) + 1)
                   - sp.log(2 * sp.pi) / 2)
    fam = Family(log_density, x, [t], (-sp.oo, sp.oo), param_domains={t: (-sp.oo, 0)})
    assert not fam.hessian().has(sp.DiracDelta, sp.Abs)
    rng = np.random.default_rng(MC_SEED)
    by_hessian = estimate_fisher(fam, (-0.5,), 4000, rng=rng, method="hessian")
    assert by_hessian.agrees_with(fam.fisher_by_quadrature((-0.5,)))


# ------------------------------------------------------------------ false refusals: sums
def test_sum_reaches_a_far_mode():
    from scipy import stats

    pmf = lambda k: stats.poisson.pmf(k, 3000.0)  # noqa: E731
    assert quadrature.sum_discrete(pmf, pmf, (0.0, np.inf)) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("s", [1.2, 1.5, 2.5])
def test_heavy_tailed_sum_is_bounded_not_truncated(s):
    zeta = float(mpmath.zeta(s))
    pmf = lambda k: np.where(k >= 1, np.maximum(k, 1.0) ** -s / zeta, 0.0)  # noqa: E731
    total = quadrature.sum_discrete(pmf, pmf, (1.0, np.inf))
    assert total == pytest.approx(1.0, abs=1e-9)
    mean_log = float(-mpmath.diff(mpmath.zeta, s) / mpmath.zeta(s))
    terms = lambda k: np.log(np.maximum(k, 1.0)) * pmf(k)  # noqa: E731
    assert quadrature.sum_discrete(terms, pmf, (1.0, np.inf)) == pytest.approx(mean_log, rel=1e-8)


def test_a_tail_that_cannot_be_bounded_is_refused():
    pmf = lambda k: (1.5 + np.sin(k)) * np.maximum(k, 1.0) ** -1.1  # noqa: E731  (not monotone)
    with pytest.raises(DerivationError, match="could not"):
        quadrature.sum_discrete(pmf, pmf, (1.0, np.inf))


def test_normalised_mixture_with_a_far_mode_is_accepted():
    k, w = sp.Symbol("x", integer=True, nonnegative=True), sp.Symbol("w", real=True)

    def poisson(lam):
        return sp.exp(-lam + k * sp.log(lam) - sp.loggamma(k + 1))

    fam = Family(sp.log(w * poisson(2) + (1 - w) * poisson(3000)), k, [w], (0, sp.oo),
                 discrete=True, param_domains={w: (0, 1)})
    # the two components do not overlap: F = 1 / (w (1 - w))
    assert fam.fisher_by_quadrature((0.3,))[0, 0] == pytest.approx(1 / 0.21, rel=1e-8)


# ------------------------------------------------------------------ library errors become ours
def test_unevaluated_derivatives_are_evaluated_numerically():
    s = sp.Symbol("s", real=True)
    expr = sp.diff(sp.log(sp.zeta(s)), s, 2)  # sympy leaves Derivative(zeta(s), s) unevaluated
    assert expr.has(sp.Derivative)
    function = numeric.lambdify_checked([s], expr, "a test expression")
    with mpmath.workdps(30):
        truth = float(mpmath.diff(lambda v: mpmath.log(mpmath.zeta(v)), 2, 2))
    assert float(function(2.0)) == pytest.approx(truth, rel=1e-10)


def test_zipf_score_is_evaluated_not_a_printer_traceback():
    k, s = sp.Symbol("x", integer=True, nonnegative=True), sp.Symbol("s", real=True)
    zipf = Family(-s * sp.log(k) - sp.log(sp.zeta(s)), k, [s], (1, sp.oo), discrete=True,
                  param_domains={s: (1, sp.oo)}, name="zipf")
    with mpmath.workdps(30):
        mean_log = float(-mpmath.diff(mpmath.zeta, 2.5) / mpmath.zeta(2.5))
    np.testing.assert_allclose(zipf.score_numeric(np.array([1.0, 7.0]), (2.5,))[:, 0],
                               -np.log([1.0, 7.0]) + mean_log, rtol=1e-9)


def test_a_dirac_delta_is_refused_by_name_not_a_name_error():
    with pytest.raises(DerivationError, match="Dirac delta"):
        numeric.lambdify_checked([x, m], sp.DiracDelta(x - m), "a test Hessian")


@pytest.mark.parametrize("limit", [float("inf"), float("nan"), -1.0, 0.0])
def test_a_non_finite_time_limit_is_refused_clearly(limit):
    from fisherbook.errors import FamilySpecError

    with pytest.raises(FamilySpecError, match="time limit"):
        Family(-((x - m) ** 2) / 2 - sp.log(2 * sp.pi) / 2, x, [m], (-sp.oo, sp.oo),
               time_limit=limit)

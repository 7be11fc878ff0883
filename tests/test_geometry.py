"""Fisher–Rao geometry: symbolic facts, closed forms against the geodesic solver, geomstats as an
independent reference, and the errors on bad input."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from fisherbook import DomainError, Family, FisherbookError, SingularFisherError, families
from fisherbook.geometry import (
    CLOSED_FORM,
    NUMERIC,
    GeodesicError,
    christoffel_symbols,
    distance,
    family_volume,
    fisher_rao,
    gaussian_curvature,
    geodesic,
    jeffreys_prior,
    path_length,
)

# geomstats 2.8 imports numpy.trapz, which numpy 2.4 removed; the shim lives here, never in the
# package (see /work/shared/notes/part-two-facts.md).
if not hasattr(np, "trapz"):
    np.trapz = np.trapezoid

#: Relative agreement required between the package and geomstats. geomstats' own numeric
#: geodesics (Beta, gamma) are solved to about 1e-7, its closed forms to rounding.
GEOMSTATS_CLOSED_RTOL = 1e-9
GEOMSTATS_NUMERIC_RTOL = 1e-5

NORMAL_PAIRS = [((0, 1), (1, 1)), ((0, 1), (0, 2)), ((-2, 0.5), (3, 2)), ((1, 0.2), (1.5, 4))]
POISSON_PAIRS = [((1.0,), (4.0,)), ((0.1,), (9.0,)), ((3.0,), (3.5,))]
BINOMIAL_PAIRS = [((0.2,), (0.7,)), ((0.01,), (0.99,)), ((0.4,), (0.45,))]
BETA_PAIRS = [((2, 3), (4, 1.5)), ((1, 1), (2, 1)), ((20, 20), (22, 20)), ((0.8, 3), (3, 6))]
GAMMA_PAIRS = [((2, 1.5), (4, 3)), ((1, 1), (3, 0.5)), ((1.5, 2), (5, 5))]  # (shape, rate)
#: Pairs near the edge (a parameter below 1) where geomstats' reported distance falls below the
#: length of its own geodesic path.
EDGE_PAIRS = [("beta", (0.5, 5), (5, 0.5)), ("gamma", (0.5, 2), (5, 5))]


# ---------------------------------------------------------------------------- symbolic facts
def test_normal_christoffel_symbols_are_the_half_plane_ones() -> None:
    normal = families.normal()
    sigma = normal.symbol("sigma")
    gamma = christoffel_symbols(normal)
    assert gamma[0][0][1] == gamma[0][1][0] == -1 / sigma
    assert gamma[1][0][0] == 1 / (2 * sigma)
    assert gamma[1][1][1] == -1 / sigma
    assert gamma[0][0][0] == gamma[0][1][1] == gamma[1][0][1] == 0


def test_curvature_normal_is_minus_half_and_sphere_is_a_quarter() -> None:
    assert gaussian_curvature(families.normal()) == sp.Rational(-1, 2)
    # the three-category simplex is a piece of the sphere of radius 2
    assert gaussian_curvature(families.categorical(3)) == sp.Rational(1, 4)


def test_gamma_and_beta_curvature_negative_on_a_grid() -> None:
    for family in (families.gamma(), families.beta()):
        curvature = sp.lambdify(family.params, gaussian_curvature(family), "scipy")
        grid = np.geomspace(0.2, 40, 25)
        values = curvature(*np.meshgrid(grid, grid))
        assert np.all(values < 0), family.name


def test_curvature_needs_two_parameters() -> None:
    with pytest.raises(FisherbookError, match="two parameters"):
        gaussian_curvature(families.poisson())


def test_jeffreys_prior_and_volume_of_a_coin() -> None:
    bernoulli = families.bernoulli()
    p = bernoulli.symbol("p")
    assert sp.simplify(jeffreys_prior(bernoulli) ** 2 * p * (1 - p)) == 1
    assert family_volume(bernoulli) == sp.pi
    assert family_volume(families.binomial(10)) == sp.sqrt(10) * sp.pi
    assert family_volume(families.poisson()) == sp.oo


def test_jeffreys_prior_is_invariant_under_logit() -> None:
    bernoulli = families.bernoulli()
    p, z = bernoulli.symbol("p"), sp.Symbol("z", real=True)
    change = 1 / (1 + sp.exp(-z))
    moved = bernoulli.reparametrize({p: change}, [z])
    carried = jeffreys_prior(bernoulli).subs(p, change) * sp.diff(change, z)
    assert sp.simplify((jeffreys_prior(moved) - carried).rewrite(sp.exp)) == 0


def test_geometry_is_cached() -> None:
    assert fisher_rao(families.beta()) is fisher_rao(families.beta())


# ------------------------------------------------------------- closed forms against numerics
@pytest.mark.parametrize(("a", "b"), NORMAL_PAIRS)
def test_normal_half_plane_formula_against_geodesic(a, b) -> None:
    closed = distance(families.normal(), a, b)
    numeric = distance(families.normal(), a, b, method=NUMERIC)
    assert closed.method == CLOSED_FORM and numeric.method == NUMERIC
    assert numeric.value == pytest.approx(closed.value, rel=1e-8)


def test_normal_textbook_value() -> None:
    for b in ((1, 1), (0, 2)):
        assert distance(families.normal(), (0, 1), b).value == pytest.approx(
            np.sqrt(2) * np.log(2), rel=1e-12)


def test_categorical_sphere_against_geodesic() -> None:
    family = families.categorical(3)
    for a, b in [((0.2, 0.3), (0.5, 0.1)), ((0.05, 0.9), (0.45, 0.1))]:
        arc = distance(family, a, b)
        assert arc.method == CLOSED_FORM
        p, q = np.array([1 - sum(a), *a]), np.array([1 - sum(b), *b])
        assert arc.value == pytest.approx(2 * np.arccos(np.sum(np.sqrt(p * q))), rel=1e-12)
        assert distance(family, a, b, method=NUMERIC).value == pytest.approx(arc.value,
                                                                             rel=1e-8)


@pytest.mark.parametrize("family", [families.poisson(), families.bernoulli(),
                                    families.binomial(10), families.geometric(),
                                    families.exponential(), families.normal_mean(2.0)],
                         ids=lambda f: f.name)
def test_one_parameter_closed_form_against_quadrature(family) -> None:
    a, b = family.test_points[0], family.test_points[-1]
    closed = distance(family, a, b)
    assert closed.method == CLOSED_FORM
    assert distance(family, a, b, method=NUMERIC).value == pytest.approx(closed.value, rel=1e-9)


def test_poisson_formula() -> None:
    for a, b in POISSON_PAIRS:
        expected = 2 * abs(np.sqrt(a[0]) - np.sqrt(b[0]))
        assert distance(families.poisson(), a, b).value == pytest.approx(expected, rel=1e-12)


def test_numeric_distance_is_symmetric_and_below_the_straight_line() -> None:
    beta = families.beta()
    a, b = (0.5, 5), (5, 0.5)
    there, back = distance(beta, a, b), distance(beta, b, a)
    assert there.method == NUMERIC and there.geodesic is not None
    assert back.value == pytest.approx(there.value, rel=1e-8)
    line = np.linspace(a, b, 2001)
    assert there.value < path_length(beta, line)
    # the solved path starts and ends where asked
    ends = there.geodesic(np.array([0.0, 1.0]))
    np.testing.assert_allclose(ends, [a, b], rtol=1e-9)


def test_equal_points_have_distance_zero() -> None:
    assert distance(families.beta(), (2, 3), (2, 3)).value == 0.0
    assert distance(families.normal(), (0, 1), (0, 1)).value == 0.0


# ----------------------------------------------------------------------------- geomstats
@pytest.fixture(scope="module")
def gs():
    geomstats = pytest.importorskip("geomstats")
    del geomstats
    from geomstats.information_geometry import beta, binomial, gamma, normal, poisson

    return {"normal": normal.UnivariateNormalDistributions(),
            "poisson": poisson.PoissonDistributions(),
            "binomial": binomial.BinomialDistributions(10),
            "beta": beta.BetaDistributions(), "gamma": gamma.GammaDistributions()}


def _to_shape_mean(point):
    """geomstats' gamma coordinates: (shape, mean = shape / rate)."""
    return np.array([point[0], point[0] / point[1]], dtype=float)


@pytest.mark.parametrize(("name", "pairs", "rtol"), [
    ("normal", NORMAL_PAIRS, GEOMSTATS_CLOSED_RTOL),
    ("poisson", POISSON_PAIRS, GEOMSTATS_CLOSED_RTOL),
    ("binomial", BINOMIAL_PAIRS, GEOMSTATS_CLOSED_RTOL),
    ("beta", BETA_PAIRS, GEOMSTATS_NUMERIC_RTOL),
    ("gamma", GAMMA_PAIRS, GEOMSTATS_NUMERIC_RTOL),
])
def test_distances_agree_with_geomstats(gs, name, pairs, rtol) -> None:
    family = {"normal": families.normal(), "poisson": families.poisson(),
              "binomial": families.binomial(10), "beta": families.beta(),
              "gamma": families.gamma()}[name]
    convert = _to_shape_mean if name == "gamma" else (lambda q: np.array(q, dtype=float))
    for a, b in pairs:
        ours = distance(family, a, b).value
        theirs = float(gs[name].metric.dist(convert(a), convert(b)))
        assert ours == pytest.approx(theirs, rel=rtol), (name, a, b)


@pytest.mark.parametrize(("name", "a", "b"), EDGE_PAIRS)
def test_near_the_edge_the_package_geodesic_is_no_longer_than_geomstats_path(gs, name, a,
                                                                            b) -> None:
    """Measured with the same metric, the package's geodesic is no longer than geomstats' path
    (to the 1e-6 accuracy of the finite-difference length), while geomstats' reported distance
    is shorter than its own path by more than 1e-4: its number is the inaccurate one there."""
    family = families.beta() if name == "beta" else families.gamma()
    geometry = fisher_rao(family)
    ts = np.linspace(0.0, 1.0, 2001)
    convert = _to_shape_mean if name == "gamma" else (lambda q: np.array(q, dtype=float))
    their_path = np.asarray(gs[name].metric.geodesic(initial_point=convert(a),
                                                     end_point=convert(b))(ts)).reshape(-1, 2)
    if name == "gamma":  # back from (shape, mean) to (shape, rate)
        their_path = np.column_stack([their_path[:, 0], their_path[:, 0] / their_path[:, 1]])
    their_length = geometry.path_length(their_path, ts)
    assert geometry.geodesic(a, b).length <= their_length * (1 + 1e-6)
    assert float(gs[name].metric.dist(convert(a), convert(b))) < their_length * (1 - 1e-4)


@pytest.mark.parametrize(("name", "point"), [
    ("normal", (0.5, 1.7)), ("poisson", (2.5,)), ("binomial", (0.3,)), ("beta", (2.0, 3.0)),
])
def test_metric_agrees_with_geomstats(gs, name, point) -> None:
    family = {"normal": families.normal(), "poisson": families.poisson(),
              "binomial": families.binomial(10), "beta": families.beta()}[name]
    theirs = np.asarray(gs[name].metric.metric_matrix(np.array(point, dtype=float)))
    np.testing.assert_allclose(fisher_rao(family).metric_at(point), theirs.reshape(
        len(point), len(point)), rtol=1e-10)


def test_gamma_metric_agrees_with_geomstats_after_the_change_of_coordinates(gs) -> None:
    """F in (shape, rate) is J^T G J with G geomstats' metric in (shape, mean) and J the
    Jacobian of (shape, rate) -> (shape, shape / rate)."""
    shape, rate = 2.0, 1.5
    theirs = np.asarray(gs["gamma"].metric.metric_matrix(_to_shape_mean((shape, rate))))
    jacobian = np.array([[1.0, 0.0], [1 / rate, -shape / rate**2]])
    np.testing.assert_allclose(fisher_rao(families.gamma()).metric_at((shape, rate)),
                               jacobian.T @ theirs @ jacobian, rtol=1e-10)


# ----------------------------------------------------------------------------- bad input
def test_point_outside_the_domain() -> None:
    with pytest.raises(DomainError, match="sigma"):
        distance(families.normal(), (0, 1), (0, -1))
    with pytest.raises(DomainError, match="outside its domain"):
        distance(families.beta(), (0, 1), (1, 1))


def test_singular_metric_at_a_point() -> None:
    x, m = sp.Symbol("x", real=True), sp.Symbol("m", real=True)
    cubic_mean = Family(-(x - m**3) ** 2 / 2 - sp.log(2 * sp.pi) / 2, x, [m], (-sp.oo, sp.oo),
                        name="normal with mean m^3")
    with pytest.raises(SingularFisherError, match="singular at m=0"):
        distance(cubic_mean, (0.0,), (1.0,))


def test_singular_metric_everywhere() -> None:
    x = sp.Symbol("x", real=True)
    a, b = sp.Symbol("a", real=True), sp.Symbol("b", real=True)
    sum_mean = Family(-(x - a - b) ** 2 / 2 - sp.log(2 * sp.pi) / 2, x, [a, b],
                      (-sp.oo, sp.oo), name="normal with mean a + b")
    with pytest.raises(SingularFisherError, match="singular"):
        geodesic(sum_mean, (0.0, 0.0), (1.0, 1.0))


def test_solver_that_does_not_converge_says_so() -> None:
    with pytest.raises(GeodesicError, match="did not converge"):
        distance(families.beta(), (0.5, 5), (5, 0.5), max_nodes=25)


def test_no_closed_form_when_asked_for_one() -> None:
    with pytest.raises(FisherbookError, match="no closed-form distance"):
        distance(families.beta(), (2, 3), (4, 1.5), method=CLOSED_FORM)
    with pytest.raises(FisherbookError, match="method must be"):
        distance(families.beta(), (2, 3), (4, 1.5), method="fast")

"""verify: each identity proved, checked numerically, or failed, and a report that says which."""

import numpy as np
import sympy as sp

from fisherbook import Family, families, verify
from fisherbook.verify import CHECKED, FAILED, PROVED

x = sp.Symbol("x", real=True)
m = sp.Symbol("m", real=True)
b = sp.Symbol("b", positive=True)


def test_normal_is_proved_symbolically():
    report = verify(families.normal())
    assert report.ok
    assert [row.status for row in report.rows] == [PROVED, PROVED, PROVED]
    assert "verification of normal (mean, scale): ok" in str(report)
    assert "<table>" in report._repr_html_()


def test_laplace_kl_curvature_is_checked_numerically():
    # KL between Laplace laws has no closed form sympy finds; the curvature row falls back to
    # extrapolated finite differences of quadrature KL.
    laplace = Family(-sp.Abs(x - m) / b - sp.log(2 * b), x, [m, b], (-sp.oo, sp.oo),
                     name="laplace", time_limit=5.0)
    report = verify(laplace, symbolic_seconds=5.0)
    assert report.ok, str(report)
    assert report.rows[2].status == CHECKED
    assert "finite differences" in report.rows[2].detail


class _BiasedScore(Family):
    """A family whose numeric score mean is sabotaged: verify must notice."""

    def score_mean_by_quadrature(self, theta):
        return super().score_mean_by_quadrature(theta) + 1e-3


def test_a_broken_identity_is_reported_as_failed():
    sabotaged = _BiasedScore(-(x - m) ** 2 / 2 - sp.log(2 * sp.pi) / 2, x, [m], (-sp.oo, sp.oo),
                             name="biased")
    report = verify(sabotaged, symbolic_seconds=0.01)
    assert report.rows[0].status == FAILED
    assert not report.ok
    assert "FAILED" in str(report)
    assert np.isfinite(float(report.rows[0].detail.split("max |E[s]| = ")[1].split(" ")[0]))


def test_dirac_delta_hessian_is_named_when_sympy_cannot_prove():
    laplace = Family(-sp.Abs(x - m) - sp.log(2), x, [m], (-sp.oo, sp.oo), name="laplace-loc")
    report = verify(laplace, symbolic_seconds=0.01)
    assert report.rows[1].status == FAILED
    assert "Dirac delta" in report.rows[1].detail


def test_rows_can_be_selected():
    report = verify(families.bernoulli(), identities=("score_mean",))
    assert [row.identity for row in report.rows] == ["E[s] = 0"]
    import pytest

    with pytest.raises(ValueError, match="identities"):
        verify(families.bernoulli(), identities=("score",))

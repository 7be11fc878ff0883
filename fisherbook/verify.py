"""Check the three Fisher identities for a family, symbolically where sympy can, else numerically.

1. E[s] = 0;  2. E[s s^T] = -E[grad^2 log p];  3. grad^2_{theta'} KL(p_theta || p_theta') at
theta' = theta equals F(theta). Each row says: proved symbolically, checked numerically, or failed.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field

import numpy as np
import sympy as sp

from . import symbolic
from .derivation import fisher_by_integration
from .divergence import kl_hessian_by_differences, kl_taylor_terms
from .errors import DerivationError
from .family import Family

PROVED = "proved symbolically"
CHECKED = "checked numerically"
FAILED = "failed"

#: Tolerance of the numeric checks, relative to max(1, size of the compared quantity).
NUMERIC_RTOL = 1e-6
#: Finite differences of a quadrature KL are less accurate (O(h^2) plus quadrature noise / h^2).
FINITE_DIFFERENCE_RTOL = 1e-4


@dataclass(frozen=True)
class Row:
    """One identity: its status and what was measured."""

    identity: str
    status: str
    detail: str


@dataclass
class VerificationReport:
    """The three identities for one family; ``ok`` is true when none failed."""

    family: str
    rows: list[Row] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(row.status != FAILED for row in self.rows)

    def __str__(self) -> str:
        width = max(len(r.identity) for r in self.rows)
        status_width = max(len(r.status) for r in self.rows)
        lines = [f"verification of {self.family}: {'ok' if self.ok else 'FAILED'}"]
        for r in self.rows:
            lines.append(f"  {r.identity:<{width}}  {r.status:<{status_width}}  {r.detail}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        cells = "".join(f"<tr><td>{html.escape(r.identity)}</td><td>{html.escape(r.status)}</td>"
                        f"<td>{html.escape(r.detail)}</td></tr>" for r in self.rows)
        return (f"<p>Verification of <b>{html.escape(self.family)}</b>: "
                f"{'ok' if self.ok else 'FAILED'}</p><table><thead><tr><th>identity</th>"
                f"<th>status</th><th>detail</th></tr></thead><tbody>{cells}</tbody></table>")


def _largest(values: list[float]) -> float:
    """The largest of absolute differences, NaN if any is NaN (Python's max drops a NaN that is
    not first: max(0.0, nan) == 0.0), so that a NaN can never pass as within tolerance."""
    array = np.abs(np.asarray(values, dtype=float))
    if array.size == 0:
        return 0.0
    if np.any(np.isnan(array)):
        return float("nan")
    return float(np.max(array))


def _at_least_one(size: float) -> float:
    """max(1, size), NaN for a NaN size (Python's max(1.0, nan) is 1.0)."""
    return size if not size <= 1.0 else 1.0


def _status(worst: float, tolerance: float) -> str:
    """CHECKED only for a finite difference within tolerance: NaN and inf fail."""
    return CHECKED if np.isfinite(worst) and worst <= tolerance else FAILED


def _score_mean_symbolic(family: Family) -> sp.Matrix:
    log_density = family._work(family.log_density)
    density = sp.exp(log_density)
    bounds = [tuple(b) for b in family.bounds]
    means = [symbolic.expectation(sp.simplify(sp.diff(log_density, p) * density), family._wxs,
                                  bounds, family.discrete, allow_conditions=False)
             for p in family._wparams]
    return sp.Matrix(means).applyfunc(sp.simplify)


def _negative_hessian_symbolic(family: Family) -> sp.Matrix:
    log_density = family._work(family.log_density)
    density = sp.exp(log_density)
    bounds = [tuple(b) for b in family.bounds]
    hessian = sp.hessian(log_density, family._wparams)
    k = hessian.shape[0]
    out = sp.zeros(k, k)
    for i in range(k):
        for j in range(i, k):
            out[i, j] = out[j, i] = symbolic.expectation(
                sp.simplify(-hessian[i, j] * density), family._wxs, bounds, family.discrete,
                allow_conditions=False)
    return family._unwork(out.applyfunc(sp.simplify))


def _row_score_mean(family: Family, seconds: float) -> Row:
    name = "E[s] = 0"
    note = ""
    try:
        means = symbolic.run_with_time_limit(_score_mean_symbolic, family, seconds=seconds)
        if all(m == 0 for m in means):
            return Row(name, PROVED, "sympy integrates s p over the support to 0")
        note = "sympy's integral did not simplify to 0; "
    except DerivationError as error:
        note = f"sympy: {error}; "
    try:
        means = [family.score_mean_by_quadrature(point) for point in family.test_points]
        fishers = [family.fisher_by_quadrature(point) for point in family.test_points]
    except (ArithmeticError, DerivationError) as error:
        return Row(name, FAILED, f"{note}quadrature failed: {error}")
    worst = _largest([float(v) for m in means for v in np.ravel(m)])
    tolerance = NUMERIC_RTOL * _at_least_one(_largest([float(v) for f in fishers
                                                       for v in np.ravel(f)])) ** 0.5
    return Row(name, _status(worst, tolerance),
               f"{note}quadrature at {len(family.test_points)} points: "
               f"max |E[s]| = {worst:.2e} (tolerance {tolerance:.1e})")


def _row_information_equality(family: Family, seconds: float) -> Row:
    name = "E[s s^T] = -E[Hess log p]"
    note = ""
    try:
        outer = symbolic.run_with_time_limit(fisher_by_integration, family, seconds=seconds)
        negative_hessian = symbolic.run_with_time_limit(_negative_hessian_symbolic, family,
                                                        seconds=seconds)
        if (outer - negative_hessian).applyfunc(sp.simplify) == sp.zeros(*outer.shape):
            return Row(name, PROVED, "both expectations integrated in closed form and equal")
        note = "sympy's two integrals did not simplify to the same matrix; "
    except DerivationError as error:
        note = f"sympy: {error}; "
    differences, sizes = [], []
    for point in family.test_points:
        try:
            outer_num = family.fisher_by_quadrature(point, form="score")
            hessian_num = family.fisher_by_quadrature(point, form="hessian")
        except (ArithmeticError, DerivationError) as error:
            return Row(name, FAILED, f"{note}{error}")
        differences += list(np.ravel(outer_num - hessian_num))
        sizes += list(np.ravel(outer_num))
    worst = _largest(differences)
    tolerance = NUMERIC_RTOL * _at_least_one(_largest(sizes))
    return Row(name, _status(worst, tolerance),
               f"{note}quadrature at {len(family.test_points)} points: max "
               f"difference {worst:.2e} (tolerance {tolerance:.1e})")


def _row_kl_curvature(family: Family) -> Row:
    name = "Hess_theta' KL(theta||theta') at theta'=theta = F"
    note = ""
    try:
        hessian = kl_taylor_terms(family).hessian
        difference = (hessian - family.fisher()).applyfunc(sp.simplify)
        if difference == sp.zeros(*difference.shape):
            return Row(name, PROVED, "differentiated the closed-form KL twice; equals F")
        note = "the difference did not simplify to 0; "
    except DerivationError as error:
        note = f"no closed-form KL or Fisher ({error}); "
    differences, sizes = [], []
    for point in family.test_points:
        try:
            curvature = kl_hessian_by_differences(family, point)
            fisher = family.fisher_by_quadrature(point)
        except (ArithmeticError, DerivationError) as error:
            return Row(name, FAILED, f"{note}quadrature failed: {error}")
        differences += list(np.ravel(curvature - fisher))
        sizes += list(np.ravel(fisher))
    worst = _largest(differences)
    tolerance = FINITE_DIFFERENCE_RTOL * _at_least_one(_largest(sizes))
    return Row(name, _status(worst, tolerance),
               f"{note}finite differences of quadrature KL: max difference "
               f"{worst:.2e} (tolerance {tolerance:.1e})")


#: The identities verify can check, by name.
IDENTITIES = ("score_mean", "information_equality", "kl_curvature")


def verify(family: Family, *, symbolic_seconds: float = 10.0,
           identities: tuple[str, ...] = IDENTITIES) -> VerificationReport:
    """Check E[s] = 0, E[s s^T] = -E[Hess], Hess KL = F for ``family`` and report how each held.

    Symbolic attempts run under ``symbolic_seconds`` each; numeric checks use quadrature at the
    family's test points. ``identities`` selects rows by name (see ``IDENTITIES``)."""
    unknown = [name for name in identities if name not in IDENTITIES]
    if unknown or not identities:
        raise ValueError(f"identities must be a non-empty selection of {IDENTITIES}, got "
                         f"{identities!r}")
    report = VerificationReport(family.name)
    if "score_mean" in identities:
        report.rows.append(_row_score_mean(family, symbolic_seconds))
    if "information_equality" in identities:
        report.rows.append(_row_information_equality(family, symbolic_seconds))
    if "kl_curvature" in identities:
        report.rows.append(_row_kl_curvature(family))
    return report

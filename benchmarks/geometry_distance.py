"""Fisher–Rao distances: the package against geomstats on the same pairs, and the time they take.

For the Beta and gamma families (no closed form: both libraries solve a geodesic numerically)
and for the normal family (both use the half-plane closed form), it prints, per family, the
time of the first numeric distance (sympy geometry derived, then cached), of a second call on
another pair (geometry cached), the package's and geomstats' mean time per pair, and the
largest relative difference between the two libraries over the pairs.

Usage, from the repository root: ``python benchmarks/geometry_distance.py``. geomstats 2.8
needs ``numpy.trapz``, which numpy 2 removed; the shim below is local to this script.
"""

from __future__ import annotations

import time

import numpy as np

if not hasattr(np, "trapz"):
    np.trapz = np.trapezoid

from geomstats.information_geometry.beta import BetaDistributions  # noqa: E402
from geomstats.information_geometry.gamma import GammaDistributions  # noqa: E402
from geomstats.information_geometry.normal import UnivariateNormalDistributions  # noqa: E402

from fisherbook import families  # noqa: E402
from fisherbook.geometry import distance, fisher_rao  # noqa: E402

PAIRS = {
    "beta": [((2, 3), (4, 1.5)), ((1, 1), (2, 1)), ((20, 20), (22, 20)), ((0.8, 3), (3, 6)),
             ((1.5, 1.5), (6, 2))],
    "gamma": [((2, 1.5), (4, 3)), ((1, 1), (3, 0.5)), ((1.5, 2), (5, 5)), ((3, 1), (1.2, 2))],
    "normal": [((0, 1), (1, 1)), ((0, 1), (0, 2)), ((-2, 0.5), (3, 2)), ((1, 0.2), (1.5, 4))],
}


def _to_shape_mean(point):
    """geomstats' gamma coordinates (shape, mean) from (shape, rate)."""
    return np.array([point[0], point[0] / point[1]], dtype=float)


def main() -> None:
    setups = {"beta": (families.beta(), BetaDistributions(), np.asarray),
              "gamma": (families.gamma(), GammaDistributions(), _to_shape_mean),
              "normal": (families.normal(), UnivariateNormalDistributions(), np.asarray)}
    header = (f"{'family':7s} {'method':12s} {'1st call s':>10s} {'2nd call s':>10s} "
              f"{'ours s/pair':>11s} {'geomstats s/pair':>16s} {'max rel diff':>12s}")
    print(header)
    for name, (family, theirs, convert) in setups.items():
        pairs = PAIRS[name]
        started = time.perf_counter()
        first = distance(family, *pairs[0])
        first_time = time.perf_counter() - started
        started = time.perf_counter()
        distance(family, *pairs[1])
        second_time = time.perf_counter() - started
        started = time.perf_counter()
        ours = [distance(family, a, b).value for a, b in pairs]
        our_time = (time.perf_counter() - started) / len(pairs)
        started = time.perf_counter()
        reference = [float(theirs.metric.dist(convert(np.array(a, dtype=float)),
                                              convert(np.array(b, dtype=float))))
                     for a, b in pairs]
        their_time = (time.perf_counter() - started) / len(pairs)
        gap = max(abs(o - r) / r for o, r in zip(ours, reference, strict=True))
        print(f"{name:7s} {first.method:12s} {first_time:10.2f} {second_time:10.2f} "
              f"{our_time:11.3f} {their_time:16.3f} {gap:12.1e}")
    assert fisher_rao(families.beta()) is fisher_rao(families.beta())


if __name__ == "__main__":
    main()

"""Parameter domains: the open interval of each parameter, and points inside it for checks.

A parameter's domain is read off its sympy assumptions unless given; the numeric cross-checks
use two generic test points, three points spread towards the ends, and scans of the domain.
"""

from __future__ import annotations

import numpy as np
import sympy as sp

Interval = tuple[sp.Expr, sp.Expr]


def default_domain(symbol: sp.Symbol) -> Interval:
    """The open interval a parameter lives in, read off its sympy assumptions."""
    if symbol.is_positive or symbol.is_nonnegative:
        return (sp.Integer(0), sp.oo)
    if symbol.is_negative or symbol.is_nonpositive:
        return (-sp.oo, sp.Integer(0))
    return (-sp.oo, sp.oo)


def generic_values(domain: Interval, index: int) -> tuple[float, float]:
    """Two generic points inside a domain (shifted by parameter index to avoid symmetries)."""
    lower, upper = float(domain[0]), float(domain[1])
    shift = 0.15 * (index % 3)
    if np.isfinite(lower) and np.isfinite(upper):
        return (lower + (upper - lower) * (0.3 + 0.1 * shift),
                lower + (upper - lower) * (0.45 - 0.1 * shift))
    if np.isfinite(lower):
        return (lower + 1.7 + shift, lower + 2.6 - shift)
    if np.isfinite(upper):
        return (upper - 1.7 - shift, upper - 2.6 + shift)
    return (0.4 + shift, -1.1 + shift)


def spread_values(domain: Interval, index: int) -> tuple[float, float, float]:
    """Three points spread over a domain (near its ends and in between), for cross-checks that
    cover the whole domain, not only the region of the two test points."""
    lower, upper = float(domain[0]), float(domain[1])
    shift = 0.03 * (index % 3)
    if np.isfinite(lower) and np.isfinite(upper):
        return tuple(lower + (upper - lower) * f for f in (0.07 + shift, 0.55 - shift, 0.9 - shift))
    if np.isfinite(lower):
        return (lower + 0.35 + shift, lower + 1.0 - shift, lower + 6.0 + shift)
    if np.isfinite(upper):
        return (upper - 0.35 - shift, upper - 1.0 + shift, upper - 6.0 - shift)
    return (-3.0 + shift, 0.2 + shift, 4.0 - shift)


def point_at_fraction(domain: Interval, fraction: float, index: int) -> float:
    """The point a fraction 0 < f < 1 of the way through a domain (infinite ends mapped by
    f / (1 - f)), for scans of the parameter domain."""
    lower, upper = float(domain[0]), float(domain[1])
    f = min(max(fraction + 0.003 * (index % 3), 1e-3), 1 - 1e-3)
    if np.isfinite(lower) and np.isfinite(upper):
        return lower + (upper - lower) * f
    if np.isfinite(lower):
        return lower + 2.0 * f / (1 - f)
    if np.isfinite(upper):
        return upper - 2.0 * (1 - f) / f
    return 3.0 * float(np.tan((f - 0.5) * np.pi))


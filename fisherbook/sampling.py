"""Samplers derived from a density: numerical inversion (continuous), inverse CDF (discrete)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.stats import sampling

from .errors import DerivationError
from .quadrature import _CHUNK, _MAX_TERMS, _centre


class _Density:
    """The minimal distribution object scipy's NumericalInversePolynomial expects."""

    def __init__(self, log_density: Callable[[float], float]) -> None:
        self._log_density = log_density

    def pdf(self, x: float) -> float:
        with np.errstate(all="ignore"):
            value = float(np.exp(self._log_density(x)))
        return value if np.isfinite(value) else 0.0


def numerical_inversion(log_density: Callable[[float], float], bounds: tuple[float, float],
                        n: int, rng: np.random.Generator) -> np.ndarray:
    """n draws by numerical inversion of the CDF (scipy's PINV method, u-error below 1e-10)."""
    centre = _centre(log_density, *bounds)
    try:
        generator = sampling.NumericalInversePolynomial(
            _Density(log_density), domain=bounds, center=centre, u_resolution=1e-10,
            random_state=rng)
    except Exception as error:  # scipy raises UNURANError and friends
        raise DerivationError(f"could not build a sampler from the density: {error}") from error
    return np.asarray(generator.rvs(n, random_state=rng), dtype=float)


def inverse_cdf_discrete(pmf: Callable[[np.ndarray], np.ndarray], bounds: tuple[float, float],
                         n: int, rng: np.random.Generator) -> np.ndarray:
    """n draws by inverting the CDF tabulated on the support (until its tail is below 1e-16)."""
    lower, upper = bounds
    if not np.isfinite(lower):
        raise DerivationError("inverse-CDF sampling needs a support bounded below")
    if np.isfinite(upper):
        support = np.arange(int(lower), int(upper) + 1, dtype=float)
    else:
        support = np.arange(int(lower), int(lower) + _CHUNK, dtype=float)
        while 1.0 - np.sum(np.nan_to_num(pmf(support))) > 1e-16 and support.size < _MAX_TERMS:
            support = np.arange(int(lower), int(lower) + 2 * support.size, dtype=float)
    with np.errstate(all="ignore"):
        probabilities = np.nan_to_num(np.asarray(pmf(support), dtype=float))
    cdf = np.cumsum(probabilities)
    cdf /= cdf[-1]
    index = np.searchsorted(cdf, rng.random(n), side="right")
    return support[np.minimum(index, support.size - 1)]

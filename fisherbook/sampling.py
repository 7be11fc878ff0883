"""Samplers derived from a density: numerical inversion (continuous), inverse CDF (discrete)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
from scipy.stats import sampling

from .errors import DerivationError
from .gaussian import sample_gaussian
from .quadrature import _CHUNK, _MAX_TERMS, _centre

if TYPE_CHECKING:
    from .family import Family


class _Density:
    """The minimal distribution object scipy's NumericalInversePolynomial expects.

    ``transform`` samples y with x = transform(y) instead, the density times |dx/dy|: a heavy
    tail on (a, oo) becomes a light one in y = log(x - a)."""

    def __init__(self, log_density: Callable[[float], float],
                 transform: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None
                 ) -> None:
        self._log_density = log_density
        self._transform = transform

    def logpdf(self, y: float) -> float:
        point = np.float64(y)
        with np.errstate(all="ignore"):
            if self._transform is None:
                value = float(np.asarray(self._log_density(point), dtype=float))
            else:
                x, log_jacobian = self._transform(point)
                value = float(np.asarray(self._log_density(x), dtype=float)) + float(log_jacobian)
        return value if np.isfinite(value) else -np.inf

    def pdf(self, y: float) -> float:
        value = float(np.exp(self.logpdf(y)))
        return value if np.isfinite(value) else 0.0


def _transforms(bounds: tuple[float, float]) -> list:
    """Ways to sample: directly, then in a variable where heavy tails become light."""
    lower, upper = bounds
    if np.isfinite(lower) and np.isfinite(upper):
        return [None]
    if np.isfinite(lower):
        return [None, lambda y: (lower + np.exp(y), y)]
    if np.isfinite(upper):
        return [None, lambda y: (upper - np.exp(y), y)]
    return [None, lambda y: (np.sinh(y), np.log(np.cosh(y)))]


def numerical_inversion(log_density: Callable[[float], float], bounds: tuple[float, float],
                        n: int, rng: np.random.Generator) -> np.ndarray:
    """n draws by numerical inversion of the CDF (scipy's PINV method, u-error below 1e-10);
    where PINV fails on the support itself (a heavy tail, a pole at an end), it samples
    y = log(x - a) (or y = asinh(x) on the whole line) and maps back."""
    errors = []
    for transform in _transforms(bounds):
        if transform is None:
            domain, centre = bounds, _centre(log_density, *bounds)
            density = _Density(log_density)
        else:
            density = _Density(log_density, transform)
            domain = (-np.inf, np.inf)
            centre = _centre(density.logpdf, *domain)
        try:
            with np.errstate(all="ignore"):
                generator = sampling.NumericalInversePolynomial(
                    density, domain=domain, center=centre, u_resolution=1e-10, random_state=rng)
        except Exception as error:  # scipy raises UNURANError and friends
            errors.append(f"{type(error).__name__}: {error}")
            continue
        draws = np.asarray(generator.rvs(n, random_state=rng), dtype=float)
        if transform is not None:
            draws = np.asarray(transform(draws)[0], dtype=float)
        return draws
    raise DerivationError("the automatic sampler (scipy's NumericalInversePolynomial, on the "
                          "support and after a log / asinh change of variable) could not be "
                          f"built from this density ({'; '.join(errors)}); pass sampler= to "
                          "Family")


#: Largest probability mass the discrete sampler may leave beyond its table.
UNTABULATED_MASS = 1e-12


def inverse_cdf_discrete(pmf: Callable[[np.ndarray], np.ndarray], bounds: tuple[float, float],
                         n: int, rng: np.random.Generator) -> np.ndarray:
    """n draws by inverting the CDF tabulated on the support (until the mass left beyond the
    table is below 1e-12); refused, naming the mass left, when a heavy tail needs more than
    2,000,000 terms (never sampled from a silently truncated law)."""
    lower, upper = bounds
    if not np.isfinite(lower):
        raise DerivationError("inverse-CDF sampling needs a support bounded below")
    if np.isfinite(upper):
        support = np.arange(int(lower), int(upper) + 1, dtype=float)
    else:
        support = np.arange(int(lower), int(lower) + _CHUNK, dtype=float)
        with np.errstate(all="ignore"):
            while (1.0 - np.sum(np.nan_to_num(pmf(support))) > UNTABULATED_MASS
                   and support.size < _MAX_TERMS):
                support = np.arange(int(lower), int(lower) + 2 * support.size, dtype=float)
    with np.errstate(all="ignore"):
        probabilities = np.nan_to_num(np.asarray(pmf(support), dtype=float))
    cdf = np.cumsum(probabilities)
    missing = 1.0 - cdf[-1]
    if not np.isfinite(upper) and missing > UNTABULATED_MASS:
        raise DerivationError(
            f"the inverse-CDF sampler tabulated {support.size} terms and still leaves "
            f"{missing:.3g} of the probability beyond k = {int(support[-1])} (a heavy tail); it "
            "will not sample a truncated law: pass sampler= to Family")
    cdf /= cdf[-1]
    index = np.searchsorted(cdf, rng.random(n), side="right")
    return support[np.minimum(index, support.size - 1)]


def sample_family(family: Family, point: tuple[float, ...], n: int,
                  rng: np.random.Generator) -> np.ndarray:
    """n draws from p(. | point) by the automatic sampler that fits the family."""
    if family.vector_x:
        return sample_gaussian(family, point, n, rng)
    if family.discrete:
        return inverse_cdf_discrete(
            lambda k: np.exp(family._log_density_fn(k, *point)),
            (float(family.bounds[0][0]), float(family.bounds[0][1])), int(n), rng)
    return numerical_inversion(
        lambda t: family._log_density_fn(t, *point),
        (float(family.bounds[0][0]), float(family.bounds[0][1])), int(n), rng)

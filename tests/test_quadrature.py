"""``integrate_1d`` judges scipy's error estimate itself: no raw scipy warning reaches a reader
(it printed the build's file paths on chapter pages), and an integral whose estimated error is
too large says so with a ``QuadratureWarning``."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import integrate, stats

from fisherbook.errors import QuadratureWarning
from fisherbook.quadrature import integrate_1d


def _weibull_log_moment(shape: float, power: int):
    """E[(log X)^power] for X ~ Weibull(shape, scale 1), as (integrand, log density, exact)."""
    exact = [1.0, -np.euler_gamma / shape, (np.euler_gamma**2 + np.pi**2 / 6) / shape**2][power]
    return (lambda x: stats.weibull_min.pdf(x, shape) * np.log(x) ** power,
            lambda x: stats.weibull_min.logpdf(x, shape), exact)


def _scipy_warnings(monkeypatch, integrand, log_density) -> list:
    """The IntegrationWarnings scipy raises inside integrate_1d when nothing filters them."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        monkeypatch.setattr(warnings, "simplefilter", lambda *args, **kwargs: None)
        integrate_1d(integrand, log_density, (0.0, np.inf))
        monkeypatch.undo()
    return [w for w in caught if issubclass(w.category, integrate.IntegrationWarning)]


def test_accurate_integral_is_silent():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = integrate_1d(lambda x: np.exp(-0.5 * x * x), lambda x: -0.5 * x * x,
                             (-np.inf, np.inf))
    assert value == pytest.approx(np.sqrt(2 * np.pi), rel=1e-12)


def test_scipy_warning_is_not_passed_on_when_the_error_is_small(monkeypatch):
    integrand, log_density, exact = _weibull_log_moment(0.3, 1)
    assert _scipy_warnings(monkeypatch, integrand, log_density)  # scipy does warn here
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = integrate_1d(integrand, log_density, (0.0, np.inf))
    assert value == pytest.approx(exact, rel=1e-9)


def test_inaccurate_integral_warns_with_its_error():
    # The second log-moment of a Weibull with shape 0.2: quad's estimate of its own error is
    # larger than our threshold (and the value is indeed off in the seventh digit).
    integrand, log_density, exact = _weibull_log_moment(0.2, 2)
    with pytest.warns(QuadratureWarning, match="estimated error"):
        value = integrate_1d(integrand, log_density, (0.0, np.inf))
    assert value == pytest.approx(exact, rel=1e-5)

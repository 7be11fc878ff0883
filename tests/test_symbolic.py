"""The symbolic engine: exponential-family split, time limits."""

import time

import pytest
import sympy as sp

from fisherbook import symbolic
from fisherbook.errors import DerivationError

x, mu = sp.symbols("x mu", real=True)
sigma = sp.Symbol("sigma", positive=True)


def test_gaussian_split():
    form = symbolic.exponential_form(-(x - mu) ** 2 / (2 * sigma**2) - sp.log(sigma), [x],
                                     [mu, sigma])
    assert set(form.statistics) == {x, x**2}
    assert sp.simplify(form.log_partition - (mu**2 / (2 * sigma**2) + sp.log(sigma))) == 0
    mean_t = symbolic.mean_statistics(form, [mu, sigma])
    by_stat = dict(zip(form.statistics, mean_t, strict=True))
    assert sp.simplify(by_stat[x] - mu) == 0
    assert sp.simplify(by_stat[x**2] - (mu**2 + sigma**2)) == 0


@pytest.mark.parametrize("log_density", [-sp.Abs(x - mu), -sp.log(1 + (x - mu) ** 2)])
def test_non_factorable_terms_have_no_form(log_density):
    assert symbolic.exponential_form(log_density, [x], [mu]) is None


def _sleep_forever():
    time.sleep(60)


def test_time_limit_stops_a_runaway_computation():
    start = time.perf_counter()
    with pytest.raises(DerivationError, match="time limit of 0.5 s"):
        symbolic.run_with_time_limit(_sleep_forever, seconds=0.5)
    assert time.perf_counter() - start < 5


def _fail():
    raise RuntimeError("boom")


def test_worker_errors_are_reported():
    with pytest.raises(DerivationError, match="RuntimeError: boom"):
        symbolic.run_with_time_limit(_fail, seconds=5)

"""The command line derives a reader's own density and refuses anything but mathematics."""

import subprocess
import sys

import pytest
import sympy as sp

from fisherbook.cli import ExpressionError, main, parse_expression


def test_derive_a_density_not_in_the_catalogue(capsys):
    # Rayleigh with scale lam (Weibull with k = 2): F = 4 / lam^2.
    code = main(["derive", "log(2) + log(x) - 2*log(lam) - (x/lam)**2", "--params", "lam",
                 "--positive", "lam", "--support=0,oo", "--name", "rayleigh"])
    out = capsys.readouterr().out
    assert code == 0
    assert "Fisher information" in out and "4" in out and "proved symbolically" in out
    assert "verification of rayleigh: ok" in out


def test_derive_discrete_with_domain(capsys):
    code = main(["derive", "x*log(q) + (1-x)*log(1-q)", "--params", "q", "--domain", "q=0,1",
                 "--support=0,1", "--discrete"])
    assert code == 0
    assert "verification" in capsys.readouterr().out


def test_code_injection_is_refused_and_never_run(tmp_path):
    marker = tmp_path / "pwned"
    payload = f"__import__('os').system('touch {marker}')"
    result = subprocess.run([sys.executable, "-m", "fisherbook", "derive", payload, "--params", "mu"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "refused" in result.stderr
    assert not marker.exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x.__class__", "Attribute"),
        ("lambda: 1", "Lambda"),
        ("foo(x)", "only the listed functions"),
        ("x + y", "unknown name 'y'"),
        ("'a' + x", "not a number"),
        ("x +", "cannot parse"),
    ],
)
def test_parser_refusals(text, message):
    with pytest.raises(ExpressionError, match=message):
        parse_expression(text, {"x": sp.Symbol("x")})


def test_parser_accepts_caret_power():
    x = sp.Symbol("x")
    assert parse_expression("x^2 + log(x)", {"x": x}) == x**2 + sp.log(x)


def test_unnormalised_density_exits_with_message(capsys):
    assert main(["derive", "--params", "mu", "--", "-(x-mu)**2/2"]) == 2
    assert "integrates to" in capsys.readouterr().err


# Inputs that ran past 60 s before the size of numbers and of the expression was bounded.
HOSTILE = [
    (["x**10**10**10", "--params", "mu"], "exponent"),
    (["10**10**10 + x*mu", "--params", "mu"], "exponent"),
    (["factorial(10**10) + x*mu", "--params", "mu"], "factorial of a number"),
    (["gamma(10**10)*x*mu", "--params", "mu"], "gamma of a number"),
    (["binomial(10**10, 5*10**9)*x*mu", "--params", "mu"], "binomial of a number"),
    (["Rational(10**(10**10), 3)*x*mu", "--params", "mu"], "exponent"),
    (["Rational(10**300, 10**-300)*x*mu", "--params", "mu"], "exceeds"),
    (["x^9^9^9*mu", "--params", "mu"], "exponent"),
    (["--support=0,10**10**10", "--params", "mu", "--", "-(x-mu)**2/2"], "exponent"),
    (["99999999999999999999999" * 20 + "*x*mu", "--params", "mu"], "too large"),
    (["x+" * 1500 + "mu", "--params", "mu"], "characters"),
    (["(" * 600 + "x*mu" + ")" * 600, "--params", "mu"], "nested"),
    (["--params", "mu", "--", "-" * 1900 + "x*mu"], "nested"),
    (["Log(x)*mu", "--params", "mu"], "only the listed functions"),
    (["gamma(x)*mu", "--params", "gamma"], "cannot be called"),
    (["log + x*mu", "--params", "mu"], "is a function"),
    (["x*pi", "--params", "pi"], "constant"),
    (["x*mu", "--params", "mu,1a"], "not a valid name"),
]


@pytest.mark.parametrize(("arguments", "message"), HOSTILE)
def test_hostile_inputs_end_fast_with_a_clear_message(arguments, message, capsys):
    import time

    start = time.perf_counter()
    code = main(["derive", *arguments])
    assert time.perf_counter() - start < 10
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize("limit", ["inf", "nan", "-1", "0", "abc"])
def test_time_limit_must_be_finite_and_positive(limit, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["derive", "log(lam) - lam*x", "--params", "lam", "--time-limit", limit])
    assert exit_info.value.code == 2
    assert "--time-limit" in capsys.readouterr().err


def test_a_parameter_may_share_a_function_name_when_not_called(capsys):
    code = main(["derive", "log(beta) - beta*x", "--params", "beta", "--positive", "beta",
                 "--support=0,oo", "--time-limit", "5"])
    assert code == 0, capsys.readouterr().err
    assert "verification" in capsys.readouterr().out


def test_total_time_limit_stops_the_worker(capsys):
    import time

    start = time.perf_counter()
    code = main(["derive", "log(lam) - lam*x", "--params", "lam", "--positive", "lam",
                 "--support=0,oo", "--total-time-limit", "0.01"])
    assert time.perf_counter() - start < 10
    assert code == 1
    assert "total time limit" in capsys.readouterr().err

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

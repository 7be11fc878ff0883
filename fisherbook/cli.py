"""``python -m fisherbook derive "<log density>" --x x --params mu,sigma --support=-oo,oo``.

Prints the score, the Fisher information, the KL divergence and the verification report for a
reader's own density. The expression is parsed without executing code: only arithmetic, numbers,
the declared symbols and a fixed list of mathematical functions are accepted.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Sequence

import sympy as sp
from sympy.parsing.sympy_parser import convert_xor, parse_expr, standard_transformations

from .errors import FisherbookError
from .family import Family
from .verify import verify

#: Functions and constants an expression may use.
ALLOWED_FUNCTIONS: dict[str, object] = {
    name: getattr(sp, name)
    for name in ("log", "exp", "sqrt", "sin", "cos", "tan", "atan", "sinh", "cosh", "tanh",
                 "gamma", "loggamma", "digamma", "polygamma", "beta", "factorial", "binomial",
                 "Abs", "erf", "erfc", "besseli", "besselj", "pi", "E", "oo", "Rational")
}
_ALLOWED_NODES = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Call, ast.Name, ast.Load,
                  ast.Constant, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow, ast.BitXor,
                  ast.USub, ast.UAdd)


class ExpressionError(FisherbookError):
    """The expression uses something other than arithmetic, numbers, symbols and math functions."""


def parse_expression(text: str, symbols: dict[str, sp.Symbol]) -> sp.Expr:
    """Parse ``text`` into sympy after checking its syntax tree: nothing in it is executed."""
    try:
        tree = ast.parse(text.replace("^", "**"), mode="eval")
    except SyntaxError as error:
        raise ExpressionError(f"cannot parse {text!r}: {error.msg}") from error
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED_NODES):
            raise ExpressionError(f"refused {text!r}: {type(node).__name__} is not allowed in an "
                                  "expression (only arithmetic, numbers, symbols and functions)")
        if isinstance(node, ast.Name) and node.id not in symbols and node.id not in ALLOWED_FUNCTIONS:
            raise ExpressionError(f"refused {text!r}: unknown name {node.id!r}; declare it with "
                                  "--x or --params, or use one of "
                                  f"{', '.join(sorted(ALLOWED_FUNCTIONS))}")
        if isinstance(node, ast.Call) and not (isinstance(node.func, ast.Name)
                                               and node.func.id in ALLOWED_FUNCTIONS):
            raise ExpressionError(f"refused {text!r}: only the listed functions may be called")
        if isinstance(node, ast.Constant) and not isinstance(node.value, (int, float)):
            raise ExpressionError(f"refused {text!r}: constant {node.value!r} is not a number")
    namespace = {**ALLOWED_FUNCTIONS, **symbols}
    return parse_expr(text, local_dict=namespace, global_dict={"Integer": sp.Integer,
                      "Float": sp.Float, "Symbol": sp.Symbol, "Rational": sp.Rational},
                      transformations=standard_transformations + (convert_xor,))


def _interval(text: str, what: str, symbols: dict[str, sp.Symbol]) -> tuple[sp.Expr, sp.Expr]:
    parts = text.split(",")
    if len(parts) != 2:
        raise ExpressionError(f"{what} must be two values 'lower,upper', got {text!r}")
    return parse_expression(parts[0], symbols), parse_expression(parts[1], symbols)


def build_family(args: argparse.Namespace) -> Family:
    """The Family described by the command-line arguments."""
    names = [n.strip() for n in args.params.split(",") if n.strip()]
    domains: dict[str, tuple[sp.Expr, sp.Expr]] = {}
    for item in args.domain or []:
        name, _, interval = item.partition("=")
        domains[name.strip()] = _interval(interval, f"--domain {name}", {})
    positive = {n.strip() for n in (args.positive or "").split(",") if n.strip()}
    params = []
    for name in names:
        lower = domains.get(name, (None,))[0]
        is_positive = name in positive or (lower is not None and bool(lower >= 0))
        params.append(sp.Symbol(name, positive=True) if is_positive else sp.Symbol(name, real=True))
    x = sp.Symbol(args.x, real=True)
    symbols = {args.x: x, **{p.name: p for p in params}}
    unknown = (set(domains) | positive) - set(names)
    if unknown:
        raise ExpressionError(f"--domain/--positive name(s) {sorted(unknown)} not among --params")
    log_density = parse_expression(args.log_density, symbols)
    support = _interval(args.support, "--support", symbols)
    return Family(log_density, x, params, support, discrete=args.discrete, name=args.name,
                  param_domains={symbols[n]: d for n, d in domains.items()},
                  time_limit=args.time_limit)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m fisherbook``."""
    parser = argparse.ArgumentParser(prog="python -m fisherbook", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    derive = commands.add_parser("derive", help="derive score, Fisher, KL and verify a density")
    derive.add_argument("log_density", help="log p(x | theta), e.g. \"log(lam) - lam*x\"; put -- before an "
                        "expression that starts with a minus sign")
    derive.add_argument("--x", default="x", help="name of the variable (default x)")
    derive.add_argument("--params", required=True, help="comma-separated parameter names")
    derive.add_argument("--support", default="-oo,oo", help="lower,upper (default -oo,oo)")
    derive.add_argument("--discrete", action="store_true", help="a mass function on the integers")
    derive.add_argument("--positive", help="comma-separated parameters that are positive")
    derive.add_argument("--domain", action="append", help="name=lower,upper (repeatable)")
    derive.add_argument("--name", default=None, help="a name for the report")
    derive.add_argument("--time-limit", type=float, default=20.0,
                        help="seconds per sympy strategy (default 20)")
    args = parser.parse_args(argv)
    try:
        family = build_family(args)
    except FisherbookError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    primed = family._primed
    print(f"family: {family.name}\nlog p = {family.log_density}\n")
    print("score s(theta):")
    sp.pprint(family.score(), use_unicode=False)
    failed = False
    sections = [("Fisher information F(theta)", family.fisher),
                (f"KL(p_theta || p_theta') with theta' = ({', '.join(map(str, primed))})",
                 lambda: family.kl(primed))]
    for title, derive_closed_form in sections:
        print(f"\n{title}:")
        try:
            sp.pprint(derive_closed_form(), use_unicode=False)
        except FisherbookError as error:
            print(f"error: {error}", file=sys.stderr)
            failed = True
    print()
    report = verify(family, symbolic_seconds=min(args.time_limit, 10.0))
    print(report)
    if failed or not report.ok:
        return 1
    return 0

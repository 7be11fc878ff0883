"""``python -m fisherbook derive "<log density>" --x x --params mu,sigma --support=-oo,oo``.

Prints the score, the Fisher information, the KL divergence and the verification report for a
reader's own density. The expression is parsed without executing code: only arithmetic, numbers,
the declared symbols and a fixed list of mathematical functions are accepted, and its size is
bounded before sympy sees it (length, nesting depth, the size of every number, exponent and
factorial-like argument). Everything after the command line is read (parsing, simplification,
each derivation, the verification) runs in a worker process that is killed at a total time limit.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import io
import keyword
import math
import multiprocessing
import multiprocessing.connection
import pickle
import sys
from collections.abc import Sequence

import sympy as sp
from sympy.parsing.sympy_parser import convert_xor, parse_expr, standard_transformations

from . import symbolic
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


_CONSTANTS = {"pi": math.log10(math.pi), "E": math.log10(math.e)}
#: Functions whose value at a big number is a huge exact computation (factorial(10**10)).
_COMBINATORIAL = {"factorial", "gamma", "binomial", "beta", "loggamma", "digamma", "polygamma",
                  "besseli", "besselj"}

#: Longest expression accepted, in characters.
MAX_LENGTH = 2000
#: Deepest nesting of parentheses / operations accepted.
MAX_DEPTH = 40
#: Largest number (in absolute value) a constant part of an expression may reach.
MAX_NUMBER = 1e300
#: Largest constant exponent accepted.
MAX_EXPONENT = 1000
#: Largest constant argument of factorial, gamma, binomial, ...
MAX_COMBINATORIAL_ARGUMENT = 10**4
#: Seconds the whole derivation may take, by default (a multiple of the per-step limit).
DEFAULT_TOTAL_SECONDS = 300.0


class ExpressionError(FisherbookError):
    """The expression uses something other than arithmetic, numbers, symbols and math functions,
    or is too big to be handled in bounded time."""


def _magnitude(node: ast.AST, text: str) -> float | None:
    """An upper bound on log10 |value| of a constant subexpression (None if it has a symbol);
    raises ExpressionError when a number, exponent or factorial argument is too large."""
    if isinstance(node, ast.Constant):
        value = abs(node.value)
        if value > 10**300 if isinstance(value, int) else (not math.isfinite(value)
                                                            or value > MAX_NUMBER):
            raise ExpressionError(f"refused {text!r}: the number {str(node.value)[:30]} is too "
                                  f"large (at most {MAX_NUMBER:g})")
        return math.log10(value) if value > 0 else -math.inf
    if isinstance(node, ast.Name):
        return _CONSTANTS.get(node.id)
    if isinstance(node, ast.UnaryOp):
        return _magnitude(node.operand, text)
    if isinstance(node, ast.Call):
        bounds = [_magnitude(a, text) for a in node.args]
        name = node.func.id if isinstance(node.func, ast.Name) else ""
        if name in _COMBINATORIAL:
            for bound in bounds:
                if bound is not None and bound > math.log10(MAX_COMBINATORIAL_ARGUMENT):
                    raise ExpressionError(
                        f"refused {text!r}: {name} of a number above "
                        f"{MAX_COMBINATORIAL_ARGUMENT} is too large to compute exactly")
        if name == "Rational":
            return None if None in bounds else max(bounds, default=0.0)
        return None
    if isinstance(node, ast.BinOp):
        left, right = _magnitude(node.left, text), _magnitude(node.right, text)
        if isinstance(node.op, (ast.Pow, ast.BitXor)):
            if right is not None and right > math.log10(MAX_EXPONENT):
                raise ExpressionError(f"refused {text!r}: an exponent above {MAX_EXPONENT} is "
                                      "too large")
            if left is None or right is None:
                return None
            bound = left * 10**right if left > 0 else 0.0
        elif left is None or right is None:
            return None
        elif isinstance(node.op, (ast.Mult, ast.Div)):
            bound = left + right if isinstance(node.op, ast.Mult) else left + max(right, 0.0)
        else:
            bound = max(left, right) + math.log10(2)
        if bound > math.log10(MAX_NUMBER):
            raise ExpressionError(f"refused {text!r}: a constant in it exceeds {MAX_NUMBER:g}")
        return bound
    return None


def _depth(node: ast.AST) -> int:
    """Depth of a syntax tree, iteratively (a recursive walk could overflow the stack)."""
    deepest, stack = 0, [(node, 1)]
    while stack:
        current, level = stack.pop()
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in ast.iter_child_nodes(current))
    return deepest


def _paren_depth(text: str) -> int:
    depth = deepest = 0
    for char in text:
        depth += (char in "([") - (char in ")]")
        deepest = max(deepest, depth)
    return deepest


def parse_expression(text: str, symbols: dict[str, sp.Symbol]) -> sp.Expr:
    """Parse ``text`` into sympy after checking its syntax tree: nothing in it is executed, and
    its length, depth and numbers are bounded first."""
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError("the expression is empty")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"refused an expression of {len(text)} characters (at most "
                              f"{MAX_LENGTH})")
    if _paren_depth(text) > MAX_DEPTH:
        raise ExpressionError(f"refused {text[:40]!r}...: parentheses nested deeper than "
                              f"{MAX_DEPTH}")
    try:
        tree = ast.parse(text.replace("^", "**"), mode="eval")
    except SyntaxError as error:
        raise ExpressionError(f"cannot parse {text!r}: {error.msg}") from error
    except (RecursionError, MemoryError) as error:
        raise ExpressionError(f"refused {text[:40]!r}...: too deeply nested to parse") from error
    if _depth(tree) > 2 * MAX_DEPTH:
        raise ExpressionError(f"refused {text[:40]!r}...: nested deeper than {MAX_DEPTH}")
    called = {id(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED_NODES):
            raise ExpressionError(f"refused {text!r}: {type(node).__name__} is not allowed in an "
                                  "expression (only arithmetic, numbers, symbols and functions)")
        if isinstance(node, ast.Name) and node.id not in symbols and node.id not in ALLOWED_FUNCTIONS:
            raise ExpressionError(f"refused {text!r}: unknown name {node.id!r}; declare it with "
                                  "--x or --params, or use one of "
                                  f"{', '.join(sorted(ALLOWED_FUNCTIONS))}")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in symbols:
            raise ExpressionError(f"refused {text!r}: {node.func.id!r} is declared as a variable "
                                  "or parameter, so it cannot be called as a function here")
        if isinstance(node, ast.Call) and not (isinstance(node.func, ast.Name)
                                               and node.func.id in ALLOWED_FUNCTIONS):
            raise ExpressionError(f"refused {text!r}: only the listed functions may be called")
        if isinstance(node, ast.Call) and node.keywords:
            raise ExpressionError(f"refused {text!r}: keyword arguments are not allowed")
        if (isinstance(node, ast.Name) and node.id in ALLOWED_FUNCTIONS
                and callable(ALLOWED_FUNCTIONS[node.id]) and node.id not in symbols
                and not isinstance(ALLOWED_FUNCTIONS[node.id], sp.Basic)):
            if id(node) not in called:
                raise ExpressionError(f"refused {text!r}: {node.id!r} is a function; call it "
                                      f"with an argument, as in {node.id}(x)")
        if isinstance(node, ast.Constant) and (isinstance(node.value, bool)
                                               or not isinstance(node.value, (int, float))):
            raise ExpressionError(f"refused {text!r}: constant {node.value!r} is not a number")
    _magnitude(tree.body, text)
    namespace = {**ALLOWED_FUNCTIONS, **symbols}
    try:
        expr = parse_expr(text, local_dict=namespace, global_dict={
            "Integer": sp.Integer, "Float": sp.Float, "Symbol": sp.Symbol,
            "Rational": sp.Rational}, transformations=standard_transformations + (convert_xor,))
    except (TypeError, ValueError, AttributeError, NameError, SyntaxError, ZeroDivisionError,
            RecursionError, MemoryError, OverflowError) as error:
        raise ExpressionError(f"cannot read {text!r} as mathematics: {type(error).__name__}: "
                              f"{error}") from error
    if not isinstance(expr, sp.Expr):
        raise ExpressionError(f"{text!r} is not a mathematical expression")
    return expr


def _interval(text: str, what: str, symbols: dict[str, sp.Symbol]) -> tuple[sp.Expr, sp.Expr]:
    parts = text.split(",")
    if len(parts) != 2:
        raise ExpressionError(f"{what} must be two values 'lower,upper', got {text!r}")
    return parse_expression(parts[0], symbols), parse_expression(parts[1], symbols)


def _names(text: str | None, what: str) -> list[str]:
    names = [n.strip() for n in (text or "").split(",") if n.strip()]
    for name in names:
        if not name.isidentifier() or keyword.iskeyword(name) or name.startswith("_"):
            raise ExpressionError(f"{what}: {name!r} is not a valid name (letters, digits and _, "
                                  "not starting with a digit or _)")
        if name in ALLOWED_FUNCTIONS and isinstance(ALLOWED_FUNCTIONS[name], sp.Basic):
            raise ExpressionError(f"{what}: {name!r} is the constant {ALLOWED_FUNCTIONS[name]}; "
                                  "choose another name")
    return names


def build_family(args: argparse.Namespace) -> Family:
    """The Family described by the command-line arguments."""
    names = _names(args.params, "--params")
    if not names:
        raise ExpressionError("--params needs at least one parameter name")
    (x_name,) = _names(args.x, "--x") or [""]
    if not x_name:
        raise ExpressionError("--x needs a variable name")
    if x_name in names:
        raise ExpressionError(f"--x {x_name!r} is also listed in --params")
    domains: dict[str, tuple[sp.Expr, sp.Expr]] = {}
    for item in args.domain or []:
        name, _, interval = item.partition("=")
        domains[name.strip()] = _interval(interval, f"--domain {name}", {})
    positive = set(_names(args.positive, "--positive"))
    params = []
    for name in names:
        lower = domains.get(name, (None,))[0]
        is_positive = name in positive or (lower is not None and bool(lower >= 0))
        params.append(sp.Symbol(name, positive=True) if is_positive else sp.Symbol(name, real=True))
    x = sp.Symbol(x_name, real=True)
    symbols = {x_name: x, **{p.name: p for p in params}}
    unknown = (set(domains) | positive) - set(names)
    if unknown:
        raise ExpressionError(f"--domain/--positive name(s) {sorted(unknown)} not among --params")
    log_density = parse_expression(args.log_density, symbols)
    support = _interval(args.support, "--support", symbols)
    return Family(log_density, x, params, support, discrete=args.discrete, name=args.name,
                  param_domains={symbols[n]: d for n, d in domains.items()},
                  time_limit=args.time_limit)


def _positive_seconds(text: str) -> float:
    """argparse type: a finite number of seconds above zero."""
    try:
        value = float(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from error
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"the time limit must be finite and positive, got {text}")
    return value


def _derive(args: argparse.Namespace) -> int:
    """Build the family, print its score, Fisher information, KL and verification report."""
    try:
        family = build_family(args)
    except FisherbookError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    primed = family._primed
    print(f"family: {family.name}\nlog p = {family.log_density}\n")
    print("score s(theta):")
    try:
        sp.pprint(symbolic.run_with_time_limit(family.score, seconds=family.time_limit),
                  use_unicode=False)
    except FisherbookError as error:
        print(f"error: simplifying the score: {error}", file=sys.stderr)
        return 1
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
    try:
        report = verify(family, symbolic_seconds=min(args.time_limit, 10.0))
    except FisherbookError as error:
        print(f"error: verification: {error}", file=sys.stderr)
        return 1
    print(report)
    if failed or not report.ok:
        return 1
    return 0


def _worker(connection: multiprocessing.connection.Connection, args: argparse.Namespace) -> None:
    out, err = io.StringIO(), io.StringIO()
    code = 1
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = _derive(args)
            except (RecursionError, MemoryError) as error:
                print(f"error: the expression is too large to handle ({type(error).__name__})",
                      file=sys.stderr)
                code = 2
            except Exception as error:  # noqa: BLE001 - reported as one line, never a traceback
                print(f"error: unexpected failure ({type(error).__name__}: {error}); please "
                      "report it with the command line", file=sys.stderr)
                code = 1
    finally:
        connection.send_bytes(pickle.dumps((code, out.getvalue(), err.getvalue())))
        connection.close()


def run_derive(args: argparse.Namespace) -> int:
    """``_derive`` in a worker process, killed after ``args.total_time_limit`` seconds."""
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_worker, args=(sender, args))
    process.start()
    sender.close()
    try:
        if not receiver.poll(args.total_time_limit):
            print(f"error: the derivation did not finish within the total time limit of "
                  f"{args.total_time_limit:g} s (stopped); raise --total-time-limit, or simplify "
                  "the density", file=sys.stderr)
            return 1
        try:
            code, out, err = pickle.loads(receiver.recv_bytes())
        except EOFError:
            print("error: the derivation worker died without an answer (out of memory?)",
                  file=sys.stderr)
            return 1
    finally:
        if process.is_alive():
            process.kill()
        process.join()
        receiver.close()
    sys.stdout.write(out)
    sys.stderr.write(err)
    return code


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
    derive.add_argument("--time-limit", type=_positive_seconds, default=20.0,
                        help="seconds per sympy strategy (default 20)")
    derive.add_argument("--total-time-limit", type=_positive_seconds,
                        default=DEFAULT_TOTAL_SECONDS,
                        help=f"seconds for everything (default {DEFAULT_TOTAL_SECONDS:g})")
    args = parser.parse_args(argv)
    return run_derive(args)

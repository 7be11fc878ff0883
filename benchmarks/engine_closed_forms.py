"""Families that issue 8 closed: derivation time of F(theta) and of KL, and the strategy that won.

For each family the engine refused before the new strategies (Weibull shape, N(theta, theta^2),
zero-inflated Poisson, bivariate normal correlation) and for a second instance of each strategy,
it prints the wall time of ``fisher()`` and of the generic KL (each includes the quadrature
cross-checks that come with every closed form), the strategy that gave the answer, and the largest
relative difference between the closed form and the textbook formula at one point. Each family is
derived in a fresh process, so no derivation is cached from another.

Usage, from the repository root: ``python benchmarks/engine_closed_forms.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import sympy as sp

GAMMA = float(sp.EulerGamma)

CASES = ["weibull shape k", "N(theta, theta^2)", "zero-inflated Poisson", "bivariate normal rho",
         "Gumbel (mu, beta)", "gamma, shape = rate", "Gumbel (mu, log beta) by reparametrize",
         "bivariate normal (mu, rho)"]


def build(name: str):
    """The family, a point, and the textbook Fisher there."""
    from fisherbook import Family

    x, y = sp.Symbol("x", real=True), sp.Symbol("y", real=True)
    xp = sp.Symbol("x", positive=True)
    theta, k = sp.Symbol("theta", positive=True), sp.Symbol("k", positive=True)
    rho, mu = sp.Symbol("rho", real=True), sp.Symbol("mu", real=True)
    if name == "weibull shape k":
        fam = Family(sp.log(k) + (k - 1) * sp.log(xp) - xp**k, xp, [k], (0, sp.oo))
        return fam, (1.7,), [[(np.pi**2 / 6 + (1 - GAMMA) ** 2) / 1.7**2]]
    if name == "N(theta, theta^2)":
        fam = Family(-(x - theta) ** 2 / (2 * theta**2) - sp.log(theta) - sp.log(2 * sp.pi) / 2, x,
                     [theta], (-sp.oo, sp.oo))
        return fam, (1.3,), [[3 / 1.3**2]]
    if name == "zero-inflated Poisson":
        n = sp.Symbol("n", integer=True, nonnegative=True)
        p, lam = sp.Symbol("pi", positive=True), sp.Symbol("lam", positive=True)
        generic = (1 - p) * sp.exp(-lam) * lam**n / sp.factorial(n)
        log_density = sp.log(sp.Piecewise((p + (1 - p) * sp.exp(-lam), sp.Eq(n, 0)),
                                          (generic, True)))
        fam = Family(log_density, n, [p, lam], (0, sp.oo), discrete=True,
                     param_domains={p: (0, 1)}, time_limit=120)
        w, r = 0.3, 2.0
        p0 = w + (1 - w) * np.exp(-r)
        return fam, (w, r), [[(1 - np.exp(-r)) / ((1 - w) * p0), -np.exp(-r) / p0],
                             [-np.exp(-r) / p0, (1 - w) / r - w * (1 - w) * np.exp(-r) / p0]]
    if name in ("bivariate normal rho", "bivariate normal (mu, rho)"):
        centre = 0 if name == "bivariate normal rho" else mu
        u, v = x - centre, y - centre
        log_density = (-(u**2 - 2 * rho * u * v + v**2) / (2 * (1 - rho**2))
                       - sp.log(2 * sp.pi) - sp.log(1 - rho**2) / 2)
        params = [rho] if centre == 0 else [mu, rho]
        fam = Family(log_density, [x, y], params, [(-sp.oo, sp.oo)] * 2,
                     param_domains={rho: (-1, 1)})
        r = 0.6
        info = (1 + r**2) / (1 - r**2) ** 2
        if centre == 0:
            return fam, (r,), [[info]]
        return fam, (0.4, r), [[2 / (1 + r), 0.0], [0.0, info]]
    if name == "Gumbel (mu, beta)":
        beta = sp.Symbol("beta", positive=True)
        fam = Family(-sp.log(beta) - (x - mu) / beta - sp.exp(-(x - mu) / beta), x, [mu, beta],
                     (-sp.oo, sp.oo))
        b = 1.8
        return fam, (0.3, b), (np.array([[1, GAMMA - 1], [GAMMA - 1, (1 - GAMMA) ** 2
                                                          + np.pi**2 / 6]]) / b**2).tolist()
    if name == "gamma, shape = rate":
        fam = Family(theta * sp.log(theta) + (theta - 1) * sp.log(xp) - theta * xp
                     - sp.loggamma(theta), xp, [theta], (0, sp.oo))
        return fam, (2.2,), [[float(sp.polygamma(1, 2.2)) - 1 / 2.2]]
    if name == "Gumbel (mu, log beta) by reparametrize":
        beta, tau = sp.Symbol("beta", positive=True), sp.Symbol("tau", real=True)
        gumbel = Family(-sp.log(beta) - (x - mu) / beta - sp.exp(-(x - mu) / beta), x,
                        [mu, beta], (-sp.oo, sp.oo))
        fam = gumbel.reparametrize({beta: sp.exp(tau)}, [mu, tau])
        t = 0.4
        return fam, (0.3, t), [[np.exp(-2 * t), (GAMMA - 1) * np.exp(-t)],
                               [(GAMMA - 1) * np.exp(-t), (1 - GAMMA) ** 2 + np.pi**2 / 6]]
    raise ValueError(name)


def measure(name: str) -> dict:
    from fisherbook import derivation
    from fisherbook.errors import DerivationError

    fam, point, textbook = build(name)
    start = time.perf_counter()
    fam.fisher()
    fisher_seconds = time.perf_counter() - start
    error = float(np.max(np.abs(fam.fisher_numeric(point) - np.array(textbook))
                         / np.maximum(np.abs(textbook), 1e-300)))
    start = time.perf_counter()
    try:
        fam._kl_generic()
        kl = f"{time.perf_counter() - start:.1f} s ({derivation.route(fam, 'kl')})"
    except DerivationError:
        kl = f"refused after {time.perf_counter() - start:.1f} s"
    return {"fisher_seconds": fisher_seconds, "route": derivation.route(fam), "kl": kl,
            "error": error}


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--one":
        print(json.dumps(measure(sys.argv[2])))
        return
    print(f"{'family':34} {'F(theta)':>9}  {'textbook rel. diff':>18}  strategy; KL")
    for name in CASES:
        result = subprocess.run([sys.executable, __file__, "--one", name], capture_output=True,
                                text=True)
        if result.returncode != 0:
            print(f"{name:34} failed: {result.stderr.strip().splitlines()[-1]}")
            continue
        row = json.loads(result.stdout.strip().splitlines()[-1])
        print(f"{name:34} {row['fisher_seconds']:8.1f}s  {row['error']:18.1e}  {row['route']}; "
              f"KL {row['kl']}")


if __name__ == "__main__":
    main()

"""Kunstner, Balles & Hennig (2019), Figure 3 on the full grid: GD, NGD and empirical-Fisher descent.

241 step sizes in [1e-20, 1e10] x 41 dampings in [1e-10, 1e10], 100 iterations from theta0 = 0, a
run diverged once its loss exceeds 100 x the initial loss. BreastCancer (logistic regression) and
Wine (least squares on the class label), raw features plus an intercept column, as the authors'
code loads them. Prints, per data set and method, the best setting (smallest mean loss over the
last 10 iterations among runs that did not diverge), that loss, the number of diverged runs and the
CPU time. Not run in CI: about 40 000 runs, measured at 5 CPU minutes (BreastCancer NGD and EF
123 s each) on a shared 2-core machine.

Run: ``python benchmarks/empirical_fisher_grid.py`` (``--coarse`` for the chapter's sub-grid).
"""

from __future__ import annotations

import sys
import time

import numpy as np
from sklearn.datasets import load_breast_cancer, load_wine

from fisherbook.empirical_fisher import preconditioned_descent

STEPS = np.logspace(-20, 10, 241)
DAMPINGS = np.logspace(-10, 10, 41)
ITERATIONS = 100


def logistic(X: np.ndarray, y: np.ndarray):
    """Mean logistic loss, its gradient, Fisher and empirical Fisher (per observation)."""
    def prob(t):
        return 0.5 * (1 + np.tanh(X @ t / 2))

    return ((lambda t: np.mean(np.logaddexp(0.0, X @ t) - y * (X @ t))),
            (lambda t: X.T @ (prob(t) - y) / len(y)),
            (lambda t: (X * (prob(t) * (1 - prob(t)))[:, None]).T @ X / len(y)),
            (lambda t: (X * ((prob(t) - y) ** 2)[:, None]).T @ X / len(y)))


def least_squares(X: np.ndarray, y: np.ndarray):
    """Loss (1/2n) sum r^2, its gradient, Fisher X^T X / n and empirical Fisher."""
    fisher = X.T @ X / len(y)
    return ((lambda t: 0.5 * np.mean((y - X @ t) ** 2)),
            (lambda t: -X.T @ (y - X @ t) / len(y)),
            (lambda t: fisher),
            (lambda t: (X * ((y - X @ t) ** 2)[:, None]).T @ X / len(y)))


def main(coarse: bool = False) -> None:
    steps, dampings = (STEPS[::16], DAMPINGS[::8]) if coarse else (STEPS, DAMPINGS)
    X_bc, y_bc = load_breast_cancer(return_X_y=True)
    X_wine, y_wine = load_wine(return_X_y=True)
    problems = {"BreastCancer": (logistic, X_bc, y_bc.astype(float)),
                "Wine": (least_squares, X_wine, y_wine.astype(float))}
    print(f"grid: {len(steps)} step sizes x {len(dampings)} dampings, {ITERATIONS} iterations")
    print(f"{'data':13s} {'method':6s} {'best step':>10s} {'damping':>9s} {'loss (last 10)':>15s} "
          f"{'diverged':>9s} {'runs':>6s} {'CPU s':>7s}")
    for name, (build, X, y) in problems.items():
        X = np.column_stack([X, np.ones(len(X))])
        loss, grad, fisher, ef = build(X, y)
        for method, curvature, grid in [("GD", None, [0.0]), ("NGD", fisher, dampings),
                                        ("EF", ef, dampings)]:
            started = time.process_time()
            best, diverged, runs = (np.inf, None, None), 0, 0
            for step in steps:
                for damping in grid:
                    run = preconditioned_descent(loss, grad, curvature, np.zeros(X.shape[1]), step,
                                                 damping=damping, iterations=ITERATIONS)
                    runs += 1
                    diverged += run.diverged
                    score = run.losses[-10:].mean()
                    if not run.diverged and score < best[0]:
                        best = (score, step, damping)
            print(f"{name:13s} {method:6s} {best[1]:10.1e} {best[2]:9.0e} {best[0]:15.6g} "
                  f"{diverged:9d} {runs:6d} {time.process_time() - started:7.1f}", flush=True)


if __name__ == "__main__":
    main(coarse="--coarse" in sys.argv[1:])

"""Efficiency of online estimators: t MSE(t) / tr F^{-1} at t = 10^3 and 10^4 (1 is the
Cramér–Rao bound), for five families and three estimators, with the settings of the chapter
book/07_online.ipynb; and the time to simulate R runs of 10^4 steps per family and estimator.

Usage: python benchmarks/online_efficiency.py [--runs 1000] [--steps 10000]
Prints a table: family, estimator, ratio +- standard error at 10^3 and 10^4, the Lyapunov
prediction for SGD, and the CPU and wall time of the simulation.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from fisherbook import online

STREAM_SEED = 2026
START_SHIFT, NGD_OFFSET = 0.25, 5.0
DESIGN = np.array([[1.0, u1, u2] for u1 in (-1, 0, 1) for u2 in (-1, 0, 1)])


def families() -> dict[str, online.OnlineModel]:
    return {"Gaussian mean": online.gaussian_mean(0.0, 2.0),
            "Bernoulli log-odds": online.bernoulli_log_odds(1.0),
            "Poisson log-rate": online.poisson_log_rate(np.log(4.0)),
            "normal (mean, log sd)": online.normal_mean_log_sd(0.0, 0.25),
            "logistic regression": online.logistic_regression([0.5, 1.0, -1.0], DESIGN)}


def estimators(model: online.OnlineModel, n_runs: int, times: list[int]):
    """(name, thunk, predicted limit) for the chapter's three estimators."""
    fisher = model.fisher_star()
    low, high = np.linalg.eigvalsh(fisher)[[0, -1]]
    start = model.theta_star + START_SHIFT
    gain = 2 / low

    def rng() -> np.random.Generator:
        return np.random.default_rng(STREAM_SEED)

    return [
        ("natural gradient", lambda: online.online_natural_gradient(
            model, start, n_runs, times, rng(), clock_offset=NGD_OFFSET), 1.0),
        ("SGD", lambda: online.online_sgd(
            model, start, n_runs, times, rng(), gain=gain,
            clock_offset=max(10.0, np.ceil(gain * high))), online.sgd_efficiency(fisher, gain)),
        ("averaged SGD", lambda: online.online_sgd(
            model, start, n_runs, times, rng(), gain=1 / np.sqrt(low * high), power=2 / 3,
            average=True, clock_offset=10.0), 1.0),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=10_000)
    args = parser.parse_args()
    times = [args.steps // 10, args.steps]
    print(f"R = {args.runs} runs, t up to {args.steps}; ratio = t MSE(t) / tr F^-1 "
          f"(+- one standard error over runs)\n")
    columns = [f"rho({t})" for t in times]
    header = (f"{'family':<22} {'estimator':<17} {columns[0]:>17} {columns[1]:>17} "
              f"{'limit':>7} {'CPU s':>7} {'wall s':>7}")
    print(header)
    print("-" * len(header))
    for name, model in families().items():
        for est, simulate, limit in estimators(model, args.runs, times):
            wall, cpu = time.perf_counter(), time.process_time()
            ratio = online.efficiency_ratio(simulate(), model)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            cells = [f"{r:.3f} +- {s:.3f}" for r, s in zip(ratio.ratio, ratio.stderr, strict=True)]
            print(f"{name:<22} {est:<17} {cells[0]:>17} {cells[1]:>17} {limit:>7.3f} "
                  f"{cpu:>7.2f} {wall:>7.2f}")
    print("\nCPU s / wall s: one simulation of all R runs to the last t (vectorised over runs).")


if __name__ == "__main__":
    main()

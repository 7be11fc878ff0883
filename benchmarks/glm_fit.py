"""Fisher scoring (fisherbook.conditional) against statsmodels' GLM (IRLS) on one logistic regression.

n = 100 000 observations, k = 50 coefficients (an intercept and 49 standard normal covariates,
true coefficients drawn once from N(0, 0.2^2)). Each fit runs from its own default start to its
own default tolerance, in REPEATS pairs (ours, then statsmodels') so that the two fits of a pair
see about the same load; the table gives iterations, wall time and process CPU time (each the best
of REPEATS; CPU time is the steadier number on a shared machine), their ratios, the spread of the
ratio over the pairs and the largest coefficient difference.

One run prints the result and saves it (Markdown, with the date, the machine, its load and the
command) to benchmarks/results/glm_fit.md, which chapter 5 includes as it is.
Run: ``python benchmarks/glm_fit.py`` from the repository root.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import statsmodels
import statsmodels.api as sm

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fisherbook import conditional  # noqa: E402

DATA_SEED = 2026
N, K, REPEATS = 100_000, 50, 5
RESULTS = ROOT / "benchmarks" / "results" / "glm_fit.md"
COMMAND = "python benchmarks/glm_fit.py"


def timed(fit) -> tuple[float, float, object]:
    """Wall time, process CPU time (all threads) and the result of one fit."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fit()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def paired_times(ours, theirs) -> tuple[np.ndarray, np.ndarray, object, object]:
    """REPEATS pairs of fits, ours then theirs in each pair, so that the two fits of a pair see
    about the same load from other jobs: wall and CPU times, shape (REPEATS, 2), and the results."""
    walls, cpus = np.empty((REPEATS, 2)), np.empty((REPEATS, 2))
    for r in range(REPEATS):
        walls[r, 0], cpus[r, 0], our_fit = timed(ours)
        walls[r, 1], cpus[r, 1], their_fit = timed(theirs)
    return walls, cpus, our_fit, their_fit


def machine_line(load_before: float, load_after: float) -> str:
    """When, where and how the numbers were measured: date, CPU, cores, load, versions, command."""
    cpu = platform.processor() or platform.machine()
    return (f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `{COMMAND}` on {cpu}, "
            f"{os.cpu_count()} CPU cores, load average {load_before:.1f} before and "
            f"{load_after:.1f} after the run (other jobs share the machine: wall times are "
            "inflated by them, CPU times are the steadier numbers); Python "
            f"{platform.python_version()}, numpy {np.__version__}, statsmodels "
            f"{statsmodels.__version__}.")


def main() -> None:
    load_before = os.getloadavg()[0]
    rng = np.random.default_rng(DATA_SEED)
    X = np.column_stack([np.ones(N), rng.standard_normal((N, K - 1))])
    beta = rng.normal(0.0, 0.2, K)
    y = (rng.random(N) < 1 / (1 + np.exp(-X @ beta))).astype(float)
    model = conditional.ConditionalModel(conditional.bernoulli_logit(),
                                         conditional.LinearPredictor(), X, y)
    walls, cpus, ours, theirs = paired_times(
        lambda: conditional.fit_fisher_scoring(model),
        lambda: sm.GLM(y, X, family=sm.families.Binomial()).fit())
    (ours_time, sm_time), (ours_cpu, sm_cpu) = walls.min(axis=0), cpus.min(axis=0)
    cpu_ratios = cpus[:, 0] / cpus[:, 1]
    difference = np.max(np.abs(ours.theta - theirs.params))
    se_difference = np.max(np.abs(ours.standard_errors / theirs.bse - 1))
    n_text = f"{N:,}".replace(",", r"\,")  # 100\,000 in TeX
    lines = [
        machine_line(load_before, os.getloadavg()[0]),
        "",
        f"Logistic regression, $n = {n_text}$, $k = {K}$, best of {REPEATS} fits each "
        "(taken in pairs, one of each), fisherbook's `fit_fisher_scoring` against statsmodels' "
        "`GLM.fit` (IRLS):",
        "",
        "| | fisherbook | statsmodels |",
        "| --- | ---: | ---: |",
        f"| iterations | {ours.iterations} | {theirs.fit_history['iteration']} |",
        f"| wall time (s) | {ours_time:.2f} | {sm_time:.2f} |",
        f"| CPU time (s) | {ours_cpu:.2f} | {sm_cpu:.2f} |",
        "",
        f"Time ratio (fisherbook over statsmodels) of the best times: {ours_time / sm_time:.2f} in "
        f"wall time, {ours_cpu / sm_cpu:.2f} in CPU time; CPU-time ratio within each of the "
        f"{REPEATS} pairs of fits: median {np.median(cpu_ratios):.2f}, from "
        f"{cpu_ratios.min():.2f} to {cpu_ratios.max():.2f}. Largest coefficient difference "
        f"{difference:.1e}; largest relative standard-error difference {se_difference:.1e}.",
    ]
    text = "\n".join(lines) + "\n"
    print(text, end="")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text, encoding="utf-8")
    print(f"saved to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

"""Fisher scoring (fisherbook.conditional) against statsmodels' GLM (IRLS) on one logistic regression.

n = 100 000 observations, k = 50 coefficients (an intercept and 49 standard normal covariates,
true coefficients drawn once from N(0, 0.2^2)). Each fit runs from its own default start to its
own default tolerance; the table gives iterations, wall time and process CPU time (each the best
of REPEATS; CPU time is the steadier number on a shared machine), their ratios and the largest
coefficient difference. Run: ``python benchmarks/glm_fit.py``.
"""

from __future__ import annotations

import time

import numpy as np
import statsmodels.api as sm

from fisherbook import conditional

DATA_SEED = 2026
N, K, REPEATS = 100_000, 50, 3


def best_time(fit) -> tuple[float, float, object]:
    """Best wall time, best process CPU time (all threads) and the last result of REPEATS fits."""
    walls, cpus, result = [], [], None
    for _ in range(REPEATS):
        wall, cpu = time.perf_counter(), time.process_time()
        result = fit()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return min(walls), min(cpus), result


def main() -> None:
    rng = np.random.default_rng(DATA_SEED)
    X = np.column_stack([np.ones(N), rng.standard_normal((N, K - 1))])
    beta = rng.normal(0.0, 0.2, K)
    y = (rng.random(N) < 1 / (1 + np.exp(-X @ beta))).astype(float)
    model = conditional.ConditionalModel(conditional.bernoulli_logit(),
                                         conditional.LinearPredictor(), X, y)
    ours_time, ours_cpu, ours = best_time(lambda: conditional.fit_fisher_scoring(model))
    sm_time, sm_cpu, theirs = best_time(lambda: sm.GLM(y, X, family=sm.families.Binomial()).fit())
    difference = np.max(np.abs(ours.theta - theirs.params))
    se_difference = np.max(np.abs(ours.standard_errors / theirs.bse - 1))
    print(f"logistic regression, n = {N}, k = {K}, best of {REPEATS}")
    print(f"{'fit':<32}{'iterations':>12}{'wall (s)':>10}{'CPU (s)':>10}")
    print(f"{'fisherbook fit_fisher_scoring':<32}{ours.iterations:>12d}{ours_time:>10.3f}{ours_cpu:>10.3f}")
    print(f"{'statsmodels GLM (IRLS)':<32}{theirs.fit_history['iteration']:>12d}{sm_time:>10.3f}"
          f"{sm_cpu:>10.3f}")
    print(f"time ratio fisherbook / statsmodels: wall {ours_time / sm_time:.2f}, CPU {ours_cpu / sm_cpu:.2f}")
    print(f"largest coefficient difference: {difference:.2e}")
    print(f"largest relative standard-error difference: {se_difference:.2e}")


if __name__ == "__main__":
    main()

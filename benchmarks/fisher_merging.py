"""Chapter 10 benchmark: Fisher merging against the plain average and the pooled fit, more replicates.

1. Logistic regressions (intercept and three features, labels from the model; parts of 25, 50,
   100 and 200 examples; prior precision 1, a quarter per part): distance of each merge to the
   pooled fit in the pooled posterior's standard deviations, and held-out loss (20 000 points).
2. The 64-16-10 tanh network on the digits: three equal parts of the training images, each network
   trained from the same random start for 300 full-batch Adam steps (learning rate 0.01) with the
   prior precision 1/3, merged with P_m = F_m + P_0/3 (F_m summed over part m), against the network
   trained on all the images with P_0 = 1.

Mean ± standard error over the replicates. Saves the tables (Markdown) to
benchmarks/results/fisher_merging.md, which the chapter's closing note includes.

Usage: ``python benchmarks/fisher_merging.py [--replicates 10] [--logistic-replicates 200]``.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import jax
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fisherbook import conditional as cm  # noqa: E402
from fisherbook.continual import network_fisher_sum, train_adam  # noqa: E402
from fisherbook.estimators import mc_mean  # noqa: E402
from fisherbook.laplace import fisher_merge  # noqa: E402
from fisherbook.networks import MLP, Categorical, Network  # noqa: E402

BENCH_SEED = 20261106      # replicate r uses BENCH_SEED + r
RESULTS = ROOT / "benchmarks" / "results" / "fisher_merging.md"
NETWORK = Network(MLP((64, 16, 10), "tanh"), Categorical())
STEPS, LEARNING_RATE, PRIOR, PARTS = 300, 0.01, 1.0, 3
NAMES = ["plain average", "diagonal Fisher", "full Fisher", "pooled fit (all data)"]


def merges(thetas, fishers, prior):
    precisions = [F + prior * np.eye(len(t)) for F, t in zip(fishers, thetas, strict=True)]
    return [fisher_merge(thetas), fisher_merge(thetas, [np.diag(P) for P in precisions]),
            fisher_merge(thetas, precisions)]


def logistic(seed: int, sizes=(25, 50, 100, 200), prior: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    truth = np.array([-0.5, 1.0, -1.0, 0.5])

    def draw(n):
        X = np.column_stack([np.ones(n), rng.normal(size=(n, 3))])
        y = (rng.random(n) < 1 / (1 + np.exp(-X @ truth))).astype(float)
        return cm.ConditionalModel(cm.bernoulli_logit(), cm.LinearPredictor(), X, y)

    models, test = [draw(n) for n in sizes], draw(20000)
    thetas = [cm.fit_fisher_scoring(m, damping=prior / len(sizes)).theta for m in models]
    merged = merges(thetas, [m.fisher_sum(t) for m, t in zip(models, thetas, strict=True)],
                    prior / len(sizes))
    everything = cm.ConditionalModel(models[0].output, models[0].predictor,
                                     np.vstack([m.X for m in models]),
                                     np.concatenate([m.y for m in models]))
    pooled = cm.fit_fisher_scoring(everything, damping=prior)
    metric = pooled.fisher_sum + prior * np.eye(4)
    return np.array([[np.sqrt((t - pooled.theta) @ metric @ (t - pooled.theta)),
                      -test.log_likelihood_mean(t)] for t in [*merged, pooled.theta]])


def network(seed: int, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x_train, x_test, y_train, y_test = train_test_split(
        images / 16.0, labels, test_size=0.3, stratify=labels, random_state=seed % 2**32)
    centre = x_train.mean(axis=0)
    x_train, x_test = x_train - centre, x_test - centre
    start = NETWORK.mlp.init(seed)

    def fit(x, y, prior):
        return train_adam(NETWORK, start, x, y, steps=STEPS, learning_rate=LEARNING_RATE,
                          prior_precision=prior)[0]

    chunks = np.array_split(rng.permutation(len(x_train)), PARTS)
    thetas = [fit(x_train[c], y_train[c], PRIOR / PARTS) for c in chunks]
    fishers = [network_fisher_sum(NETWORK, t, x_train[c]) for t, c in zip(thetas, chunks, strict=True)]
    candidates = [*merges(thetas, fishers, PRIOR / PARTS), fit(x_train, y_train, PRIOR)]

    def score(t):
        return [float(NETWORK.loss(t, x_test, y_test)),
                np.mean(np.argmax(NETWORK.value(t, x_test), 1) == y_test)]

    return np.array([*(score(t) for t in candidates), np.mean([score(t) for t in thetas], 0)])


def pm(values: np.ndarray, digits: int = 3) -> str:
    mean = mc_mean(values)
    return f"{mean.estimate:.{digits}f} ± {mean.stderr:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=10)
    parser.add_argument("--logistic-replicates", type=int, default=200)
    args = parser.parse_args()
    images, labels = load_digits(return_X_y=True)
    tic = time.perf_counter()
    logit = np.array([logistic(BENCH_SEED + r) for r in range(args.logistic_replicates)])
    nets = np.array([network(BENCH_SEED + r, images, labels) for r in range(args.replicates)])
    seconds = time.perf_counter() - tic
    lines = [f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, "
             f"{len(jax.devices())} JAX {jax.devices()[0].platform.upper()} device, float64; "
             f"{args.logistic_replicates} logistic and {args.replicates} network replicates "
             f"(seeds {BENCH_SEED} + r), {seconds:.0f} s on a shared machine.", "",
             "**Fisher merging** (mean ± standard error; the 'beats plain' columns count the "
             "replicates in which the merge is closer to the pooled fit / has a lower test loss "
             "than the plain average)", "",
             "| model | logistic: distance to pooled (sd) | logistic: held-out loss "
             "| logistic: beats plain | network: test loss | network: test accuracy "
             "| network: beats plain |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for i, name in enumerate([*NAMES, "one part alone (mean)"]):
        if i < 4:
            beats = (f"{int(np.sum(logit[:, i, 0] < logit[:, 0, 0]))} / {len(logit)}"
                     if 0 < i < 3 else "–")
            logistic_cells = f"{pm(logit[:, i, 0], 2)} | {pm(logit[:, i, 1], 4)} | {beats}"
        else:
            logistic_cells = "– | – | –"
        net_beats = (f"{int(np.sum(nets[:, i, 0] < nets[:, 0, 0]))} / {len(nets)}"
                     if i > 0 else "–")
        lines.append(f"| {name} | {logistic_cells} | {pm(nets[:, i, 0])} | {pm(nets[:, i, 1])} "
                     f"| {net_beats} |")
    text = "\n".join(lines) + "\n"
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()

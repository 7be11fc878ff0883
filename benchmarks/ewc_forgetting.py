"""Chapter 10 benchmark: EWC on permuted digits with six penalty matrices, more replicates.

The chapter's experiment (64-16-10 tanh network; task A: half of the digits' training images,
task B: the other half with the pixels permuted; 300 full-batch Adam steps, learning rate 0.01,
for A from a random start, then for B from theta_A with the penalty (lambda/2)(theta -
theta_A)^T M (theta - theta_A), every M summed over task A's examples) repeated over more
replicates. Forgetting is the increase of task A's held-out loss; mean ± standard error over the
replicates. Saves the tables (Markdown) to benchmarks/results/ewc_forgetting.md, which the
chapter's closing note includes.

Usage: ``python benchmarks/ewc_forgetting.py [--replicates 10]`` from the repository root.
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

from fisherbook.continual import ewc_precisions, train_adam  # noqa: E402
from fisherbook.estimators import mc_mean  # noqa: E402
from fisherbook.networks import MLP, Categorical, Network  # noqa: E402

BENCH_SEED = 20261105      # replicate r uses BENCH_SEED + r
RESULTS = ROOT / "benchmarks" / "results" / "ewc_forgetting.md"
STEPS, LEARNING_RATE, BATCH = 300, 0.01, 32
LAMBDAS = np.array([0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0])
PENALTIES = ["Fisher", "diagonal Fisher", "empirical Fisher", "diagonal empirical Fisher",
             "squared batch-mean gradient", "squared full-batch gradient", "no penalty"]
NETWORK = Network(MLP((64, 16, 10), "tanh"), Categorical())


def replicate(seed: int, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(penalty, lambda, [forgetting, new-task loss, old-task accuracy, new-task accuracy])."""
    rng = np.random.default_rng(seed)
    x_train, x_test, y_train, y_test = train_test_split(
        images / 16.0, labels, test_size=0.3, stratify=labels, random_state=seed % 2**32)
    centre = x_train.mean(axis=0)
    x_train, x_test = x_train - centre, x_test - centre
    pixels, order = rng.permutation(64), rng.permutation(len(x_train))
    a, b = np.array_split(order, 2)
    xa, ya, xb, yb = x_train[a], y_train[a], x_train[b][:, pixels], y_train[b]
    xb_test = x_test[:, pixels]
    theta_a = train_adam(NETWORK, NETWORK.mlp.init(seed), xa, ya, steps=STEPS,
                         learning_rate=LEARNING_RATE)[0]
    precisions = ewc_precisions(NETWORK, theta_a, xa, ya, BATCH, rng)
    precisions["no penalty"] = np.zeros(NETWORK.n_params)
    old = float(NETWORK.loss(theta_a, x_test, y_test))
    out = np.empty((len(PENALTIES), len(LAMBDAS), 4))
    for i, name in enumerate(PENALTIES):
        thetas = train_adam(NETWORK, theta_a, xb, yb, steps=STEPS, learning_rate=LEARNING_RATE,
                            precision=precisions[name], strengths=LAMBDAS)
        for j, theta in enumerate(thetas):
            out[i, j] = [float(NETWORK.loss(theta, x_test, y_test)) - old,
                         float(NETWORK.loss(theta, xb_test, y_test)),
                         np.mean(np.argmax(NETWORK.value(theta, x_test), 1) == y_test),
                         np.mean(np.argmax(NETWORK.value(theta, xb_test), 1) == y_test)]
    return out


def pm(values: np.ndarray, digits: int = 3) -> str:
    mean = mc_mean(values)
    return f"{mean.estimate:.{digits}f} ± {mean.stderr:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=10)
    args = parser.parse_args()
    images, labels = load_digits(return_X_y=True)
    tic = time.perf_counter()
    runs = np.array([replicate(BENCH_SEED + r, images, labels) for r in range(args.replicates)])
    seconds = time.perf_counter() - tic
    one = int(np.flatnonzero(LAMBDAS == 1.0)[0])
    fisher = runs[:, 0, one, 0]
    lines = [f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, "
             f"{len(jax.devices())} JAX {jax.devices()[0].platform.upper()} device, float64; "
             f"{args.replicates} replicates (seeds {BENCH_SEED} + r), {seconds:.0f} s on a "
             "shared machine.", "",
             f"**EWC on permuted digits, λ = 1** (mean ± standard error over {args.replicates} "
             "replicates; forgetting = increase of task A's test loss; the last column counts the "
             "replicates in which the Fisher forgot less than this penalty)", "",
             "| penalty | forgetting | accuracy on A | loss on B | accuracy on B "
             "| Fisher forgot less |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for i, name in enumerate(PENALTIES):
        r = runs[:, i, one]
        wins = "–" if i == 0 else f"{int(np.sum(fisher < r[:, 0]))} / {args.replicates}"
        lines.append(f"| {name} | {pm(r[:, 0])} | {pm(r[:, 2])} | {pm(r[:, 1])} | {pm(r[:, 3])} "
                     f"| {wins} |")
    lines += ["", "**The strength swept**: mean forgetting / mean loss on B for each λ", "",
              "| penalty | " + " | ".join(f"λ = {lam:g}" for lam in LAMBDAS) + " |",
              "| --- |" + " ---: |" * len(LAMBDAS)]
    for i, name in enumerate(PENALTIES):
        cells = [f"{runs[:, i, j, 0].mean():.2f} / {runs[:, i, j, 1].mean():.3f}"
                 for j in range(len(LAMBDAS))]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()

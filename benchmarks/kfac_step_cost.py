"""Chapter 8 benchmark: the cost of K-FAC and CG-NGD steps, time to a target loss, memory at P ≥ 1e5.

One run prints three tables and saves them (Markdown) to benchmarks/results/kfac_step_cost.md,
which the chapter's closing note displays:

1. the wall time of one full-batch step of each optimiser on the digits autoencoder and
   classifier, as a ratio to one plain gradient step (median of repeated steps, compilation
   excluded);
2. for the autoencoder (and the classifier), each optimiser at its best learning rate from a
   grid: steps and wall time (after the first, compiling step) to reach the target training
   loss, 1.05 times the final loss of the best Adam run;
3. the peak resident memory of a fresh process that runs CG natural gradient on a
   64-300-300-10 network (P = 112,810), against the 8P² bytes of a dense Fisher.

Usage: ``python benchmarks/kfac_step_cost.py [--steps 200]`` from the repository root.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fisherbook.errors import NonFiniteLossError  # noqa: E402
from fisherbook.kfac import KFAC  # noqa: E402
from fisherbook.networks import MLP, Categorical, CGNaturalGradient, Gaussian, Network, Optax, train  # noqa: E402

SPLIT_SEED = 0
WEIGHT_SEED = 0
LABEL_SEED = 1
RESULTS = ROOT / "benchmarks" / "results" / "kfac_step_cost.md"


def digits():
    images, labels = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        images / 16.0, labels, test_size=0.3, stratify=labels, random_state=SPLIT_SEED)
    mean = x_train.mean(axis=0)
    return x_train - mean, x_test - mean, y_train, y_test


def median_step_seconds(network, optimiser, x, y, repeats: int) -> float:
    theta = jnp.asarray(network.mlp.init(WEIGHT_SEED))
    state = optimiser.init(network, theta, jnp.asarray(x), jnp.asarray(y))
    x, y = jnp.asarray(x), jnp.asarray(y)
    for _ in range(3):  # compile, and run past any first refresh
        theta_next, state, loss = optimiser.step(network, theta, state, x, y)
        jax.block_until_ready(theta_next)
    samples = []
    for _ in range(repeats):
        tic = time.perf_counter()
        theta_next, state, loss = optimiser.step(network, theta, state, x, y)
        jax.block_until_ready((theta_next, loss))
        samples.append(time.perf_counter() - tic)
    return float(np.median(samples))


def step_cost_table(problems, repeats: int) -> list[str]:
    optimisers = {
        "gradient step (SGD)": Optax(optax.sgd(0.1)),
        "Adam": Optax(optax.adam(1e-3)),
        "K-FAC, sampled G, refresh every step": KFAC(0.1, 1e-3, update_every=1, mode="sampled"),
        "K-FAC, sampled G, refresh every 10 steps": KFAC(0.1, 1e-2, update_every=10, mode="sampled"),
        "K-FAC, exact G, refresh every step": KFAC(0.1, 1e-2, update_every=1, mode="exact"),
        "CG-NGD, 10 CG iterations": CGNaturalGradient(0.1, 1e-2, 10),
    }
    lines = ["| step | " + " | ".join(f"{p} (ms) | {p} (× gradient)" for p in problems) + " |",
             "| --- |" + " ---: | ---: |" * len(problems)]
    times = {name: {} for name in optimisers}
    for problem, (network, x, y) in problems.items():
        for name, optimiser in optimisers.items():
            # a K-FAC step refreshing every 10 steps: average over a whole cycle
            reps = 10 * max(1, repeats // 10) if "every 10" in name else repeats
            if "every 10" in name:
                theta = jnp.asarray(network.mlp.init(WEIGHT_SEED))
                xs, ys = jnp.asarray(x), jnp.asarray(y)
                state = optimiser.init(network, theta, xs, ys)
                for _ in range(12):
                    theta_next, state, _ = optimiser.step(network, theta, state, xs, ys)
                jax.block_until_ready(theta_next)
                tic = time.perf_counter()
                for _ in range(reps):
                    theta_next, state, loss = optimiser.step(network, theta, state, xs, ys)
                jax.block_until_ready((theta_next, loss))
                times[name][problem] = (time.perf_counter() - tic) / reps
            else:
                times[name][problem] = median_step_seconds(network, optimiser, x, y, reps)
    base = times["gradient step (SGD)"]
    for name in optimisers:
        cells = [f"{1e3 * times[name][p]:.2f} | {times[name][p] / base[p]:.2f}" for p in problems]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def race(network, x, y, steps: int, grids) -> tuple[list[str], dict]:
    theta0 = network.mlp.init(WEIGHT_SEED)
    best = {}
    for name, grid in grids.items():
        runs = {}
        for lr, optimiser in grid:
            try:
                runs[lr] = train(network, theta0, x, y, optimiser, steps)
            except NonFiniteLossError:
                continue
        lr = min(runs, key=lambda k: runs[k].losses[-1])
        best[name] = (lr, runs[lr], sorted(runs))
    target = 1.05 * best["Adam"][1].losses[-1]
    lines = [f"target training loss {target:.4g} (1.05 × best Adam after {steps} steps)", "",
             "| optimiser | grid (not diverged) | best lr | final loss | steps to target "
             "| seconds to target | first step (compiles), s |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    summary = {}
    for name, (lr, run, tried) in best.items():
        step = run.steps_to(target)
        secs = None if step is None else float(run.seconds[step] - run.seconds[1])
        summary[name] = (step, secs)
        lines.append(f"| {name} | {', '.join(f'{v:g}' for v in tried)} | {lr:g} | {run.losses[-1]:.4g} "
                     f"| {'never' if step is None else step} | {'–' if secs is None else f'{secs:.2f}'} "
                     f"| {run.seconds[1]:.2f} |")
    return lines, summary


MEMORY_SCRIPT = """
import json, resource, sys
sys.path.insert(0, {root!r})
import numpy as np
from sklearn.datasets import load_digits
from fisherbook.networks import MLP, Categorical, CGNaturalGradient, Network, train
images, labels = load_digits(return_X_y=True)
x = images / 16.0 - (images / 16.0).mean(axis=0)
net = Network(MLP((64, 300, 300, 10), "tanh"), Categorical())
baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
if {run}:
    run = train(net, net.mlp.init(0), x, labels, CGNaturalGradient(1.0, 1e-3, 10), 5)
    losses = [float(run.losses[0]), float(run.losses[-1])]
else:
    losses = []
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps(dict(P=net.n_params, baseline=baseline, peak=peak, losses=losses)))
"""


def memory_table() -> list[str]:
    out = {}
    for run in (False, True):
        done = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT.format(root=str(ROOT), run=run)],
                              capture_output=True, text=True, check=True)
        out[run] = json.loads(done.stdout.strip().splitlines()[-1])
    p = out[True]["P"]
    dense = 8 * p ** 2
    peak, idle = out[True]["peak"], out[False]["peak"]
    loss0, loss1 = out[True]["losses"]
    return [f"P = {p:,}; 5 CG-NGD steps (10 CG iterations each) on all 1797 digits, "
            f"loss {loss0:.3f} → {loss1:.3f}", "",
            "| quantity | bytes |", "| --- | ---: |",
            f"| dense Fisher, 8P² | {dense / 1e9:.1f} GB |",
            f"| peak memory of the process (fresh, imports + data + run) | {peak / 1e6:.0f} MB |",
            f"| peak of the same process without the run (imports + data) | {idle / 1e6:.0f} MB |",
            f"| dense Fisher / peak | {dense / peak:.0f} × |"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--skip-classifier", action="store_true")
    args = parser.parse_args()
    jax.config.update("jax_enable_x64", True)
    x_train, _, y_train, _ = digits()
    autoencoder = Network(MLP((64, 32, 16, 32, 64), "tanh"), Gaussian())
    classifier = Network(MLP((64, 64, 10), "tanh"), Categorical())
    problems = {"autoencoder": (autoencoder, x_train, x_train),
                "classifier": (classifier, x_train, y_train)}
    started = time.perf_counter()
    machine = platform.processor() or platform.machine()
    report = [f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {machine}, "
              f"{jax.device_count()} JAX CPU device, float64, full batch ({len(x_train)} images); "
              "a shared machine, so times are noisy.", "",
              "**Cost of one step** (median; K-FAC refreshing every 10 steps: mean over whole cycles)", ""]
    report += step_cost_table(problems, args.repeats)
    grids = {
        "SGD + momentum": [(lr, Optax(optax.sgd(lr, momentum=0.9))) for lr in (0.03, 0.1, 0.3, 1.0)],
        "Adam": [(lr, Optax(optax.adam(lr))) for lr in (1e-3, 3e-3, 1e-2, 3e-2)],
        "K-FAC (sampled, every step, λ = 1e-3)": [
            (lr, KFAC(lr, 1e-3, update_every=1, mode="sampled", seed=LABEL_SEED))
            for lr in (0.03, 0.1, 0.3)],
        "K-FAC (sampled, every 10 steps, λ = 1e-2)": [
            (lr, KFAC(lr, 1e-2, update_every=10, mode="sampled", seed=LABEL_SEED))
            for lr in (0.03, 0.1, 0.3)],
        "CG-NGD (10 iterations, λ = 1e-3)": [
            (lr, CGNaturalGradient(lr, 1e-3, 10)) for lr in (0.1, 0.3, 1.0)],
    }
    races = {}
    for problem in (["autoencoder"] if args.skip_classifier else ["autoencoder", "classifier"]):
        network, x, y = problems[problem]
        lines, summary = race(network, x, y, args.steps, grids)
        races[problem] = summary
        report += ["", f"**Time to target, {problem}** ({args.steps} full-batch steps)", ""] + lines
    adam_s = races["autoencoder"]["Adam"][1]
    for kfac_name in (k for k in grids if k.startswith("K-FAC")):
        kfac_s = races["autoencoder"][kfac_name][1]
        verdict = (f"{kfac_name} never reached the target on the autoencoder" if kfac_s is None else
                   f"{kfac_name} / Adam wall time to target on the autoencoder: {kfac_s / adam_s:.2f} "
                   f"(goal ≤ {1 / 1.5:.2f}, i.e. K-FAC ≥ 1.5× faster): "
                   f"{'met' if kfac_s * 1.5 <= adam_s else 'not met'}")
        report += ["", verdict]
    report += ["", "**Memory of the P ≥ 1e5 run**", ""] + memory_table()
    report += ["", f"Benchmark wall time {time.perf_counter() - started:.0f} s."]
    text = "\n".join(report) + "\n"
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)
    print(text)


if __name__ == "__main__":
    main()

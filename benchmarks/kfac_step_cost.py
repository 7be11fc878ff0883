"""Chapter 8 benchmark: the cost of K-FAC and CG-NGD steps, time to a target loss, memory at P ≥ 1e5.

One run prints four tables and saves them (Markdown) to benchmarks/results/kfac_step_cost.md,
which the chapter's closing note displays:

1. the cost of one full-batch step of each optimiser on the digits autoencoder and classifier,
   as a ratio to one jit-compiled gradient (SGD) step of the same network: steps of all
   optimisers are timed in interleaved rounds (so that the load of a shared machine hits them
   alike), each round a cycle of 10 consecutive steps; for K-FAC with periodic refreshes the
   refresh steps, the steps in between, and the mean over whole cycles (amortised) separately;
2. for the autoencoder and the classifier, every optimiser over a stated grid of its settings;
   the target training loss is 1.05 times the lowest final loss of the Adam grid, and each
   optimiser's best setting is the one that reaches it in the fewest steps (ties: lower final
   loss). Steps are deterministic (full batch, fixed seeds); wall and CPU time to the target
   (after the first, compiling step) are the medians of ``--repeats`` interleaved reruns of the
   best settings;
3. the verdict on the goal (K-FAC at least 1.5 times faster than the best Adam in wall time);
4. the peak resident memory of a fresh process that runs CG natural gradient on a
   64-300-300-10 network (P = 112,810), against the 8P² bytes of a dense Fisher.

Rows "K-FAC (legacy)" run the first version of fisherbook.kfac.KFAC (kept below as
:class:`LegacyKFAC`: factors inverted with numpy, refresh decided in Python) for the old-vs-new
comparison under the same load.

Usage: ``python benchmarks/kfac_step_cost.py [--steps 200] [--repeats 5]`` from the repository root.
"""

from __future__ import annotations

import os

# LAPACK (numpy's and the one JAX calls for eigh) on one thread: on a loaded 2-core machine its
# thread pool fights XLA's for the cores and made a K-FAC refresh several times slower (measured)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import json
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
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
from fisherbook.kfac import KFAC, _factors, damped_factors  # noqa: E402
from fisherbook.networks import MLP, Categorical, CGNaturalGradient, Gaussian, Network, Optax, train  # noqa: E402

SPLIT_SEED = 0
WEIGHT_SEED = 0
LABEL_SEED = 1
CYCLE = 10
RESULTS = ROOT / "benchmarks" / "results" / "kfac_step_cost.md"


@dataclass(frozen=True)
class LegacyKFAC:
    """The first fisherbook K-FAC (commit 85e91be): fresh factors, inverted with numpy on the host,
    every ``update_every`` steps; a Python-level refresh and a separate jitted apply."""

    learning_rate: float
    damping: float
    update_every: int = 1
    mode: str = "sampled"
    seed: int = 0

    @partial(jax.jit, static_argnums=(0, 1))
    def _damped(self, network, theta, x, key):
        a_list, g_list = _factors(network, theta, x, self.mode, 1, key)
        return [damped_factors(a, g, self.damping) for a, g in zip(a_list, g_list, strict=True)]

    def _inverses(self, network, theta, x, key):
        return [(jnp.asarray(np.linalg.inv(np.asarray(a))), jnp.asarray(np.linalg.inv(np.asarray(g))))
                for a, g in self._damped(network, theta, x, key)]

    def init(self, network, theta, x, y):
        key = jax.random.PRNGKey(self.seed)
        return (0, self._inverses(network, theta, x, key), key)

    def step(self, network, theta, state, x, y):
        count, inverses, key = state
        if count > 0 and count % self.update_every == 0:
            key, sub = jax.random.split(key)
            inverses = self._inverses(network, theta, x, sub)
        theta, loss = self._apply(network, theta, inverses, x, y)
        return theta, (count + 1, inverses, key), loss

    @partial(jax.jit, static_argnums=(0, 1))
    def _apply(self, network, theta, inverses, x, y):
        loss, grad = network.loss_and_grad(theta, x, y)
        pieces = [(a_inv @ block @ g_inv).ravel()
                  for (a_inv, g_inv), block in zip(inverses, network.mlp.unflatten(grad), strict=True)]
        return theta - self.learning_rate * jnp.concatenate(pieces), loss


def digits():
    images, labels = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        images / 16.0, labels, test_size=0.3, stratify=labels, random_state=SPLIT_SEED)
    mean = x_train.mean(axis=0)
    return x_train - mean, x_test - mean, y_train, y_test


def periods(optimiser) -> tuple[int, int]:
    """(factor period, inverse period) of a K-FAC optimiser; (1, 1) for the others."""
    if isinstance(optimiser, KFAC):
        return optimiser.update_every, optimiser.inverse_period
    if isinstance(optimiser, LegacyKFAC):
        return optimiser.update_every, optimiser.update_every
    return 1, 1


def step_costs(network, optimisers: dict, x, y, rounds: int) -> dict:
    """Interleaved rounds of CYCLE consecutive steps per optimiser: per-step wall and CPU seconds
    and whether the step refreshed anything."""
    x, y = jnp.asarray(x), jnp.asarray(y)
    theta0 = jnp.asarray(network.mlp.init(WEIGHT_SEED))
    live = {}
    for name, optimiser in optimisers.items():
        state, theta = optimiser.init(network, theta0, x, y), theta0
        for _ in range(2 * CYCLE):  # compile, and run into the periodic pattern
            theta, state, loss = optimiser.step(network, theta, state, x, y)
        jax.block_until_ready((theta, loss))
        live[name] = [theta, state, 2 * CYCLE]
    samples = {name: [] for name in optimisers}
    for _ in range(rounds):
        for name, optimiser in optimisers.items():
            theta, state, count = live[name]
            cov, inv = periods(optimiser)
            cycle = []
            for _ in range(CYCLE):
                refresh = (cov > 1 and count % cov == 0) or (inv > 1 and count % inv == 0)
                tic, cpu = time.perf_counter(), time.process_time()
                theta_next, state, loss = optimiser.step(network, theta, state, x, y)
                jax.block_until_ready((theta_next, loss))
                cycle.append((time.perf_counter() - tic, time.process_time() - cpu, refresh))
                count += 1
            live[name] = [theta, state, count]  # θ is not advanced: every round times the same point
            samples[name].append(cycle)
    return samples


def cost_rows(samples: dict) -> list[str]:
    def median(values):
        return float(np.median(values)) if values else float("nan")

    base = median([w for cycle in samples["gradient step (SGD)"] for w, _, _ in cycle])
    base_cpu = median([c for cycle in samples["gradient step (SGD)"] for _, c, _ in cycle])
    rows = []
    for name, cycles in samples.items():
        walls = [w for cycle in cycles for w, _, _ in cycle]
        fresh = [w for cycle in cycles for w, _, r in cycle if r]
        between = [w for cycle in cycles for w, _, r in cycle if not r]
        amortised = median([np.mean([w for w, _, _ in cycle]) for cycle in cycles])
        amortised_cpu = median([np.mean([c for _, c, _ in cycle]) for cycle in cycles])
        periodic = bool(fresh)
        rows.append(f"| {name} | {1e3 * median(walls):.2f} | "
                    f"{(median(fresh) / base if periodic else median(walls) / base):.2f} | "
                    f"{(f'{median(between) / base:.2f}' if periodic else '–')} | "
                    f"{amortised / base:.2f} | {amortised_cpu / base_cpu:.2f} |")
    return rows


def step_cost_table(problems, rounds: int) -> list[str]:
    optimisers = {
        "gradient step (SGD)": Optax(optax.sgd(0.1)),
        "Adam": Optax(optax.adam(1e-3)),
        "K-FAC (legacy), sampled G, refresh every step": LegacyKFAC(0.1, 1e-3, 1),
        "K-FAC, sampled G, refresh every step": KFAC(0.1, 1e-3, mode="sampled"),
        "K-FAC, sampled G, factors every step, inverses every 10": KFAC(
            0.1, 1e-2, mode="sampled", inverse_every=10, ema_decay=0.95),
        "K-FAC, sampled G, factors and inverses every 10": KFAC(
            0.1, 1e-2, update_every=10, mode="sampled", ema_decay=0.95),
        "K-FAC adaptive (α, μ, λ), refresh every step": KFAC(1.0, 1e-2, mode="sampled", adaptive=True),
        "K-FAC adaptive (α, μ, λ), refresh every 5": KFAC(
            1.0, 1e-2, update_every=5, mode="sampled", ema_decay=0.95, adaptive=True),
        "K-FAC, exact G, refresh every step": KFAC(0.1, 1e-2, mode="exact"),
        "CG-NGD, 10 CG iterations": CGNaturalGradient(0.1, 1e-2, 10),
    }
    lines = []
    for problem, (network, x, y) in problems.items():
        samples = step_costs(network, optimisers, x, y, rounds)
        lines += [f"*{problem}* (P = {network.n_params:,})", "",
                  "| step | median wall, ms | × gradient (refresh step) | × gradient (between refreshes) "
                  "| × gradient, amortised (wall) | × gradient, amortised (CPU) |",
                  "| --- | ---: | ---: | ---: | ---: | ---: |"] + cost_rows(samples) + [""]
    return lines


def grids() -> dict:
    kfac = partial(KFAC, mode="sampled", seed=LABEL_SEED)
    return {
        "SGD + momentum": {f"lr {lr:g}": Optax(optax.sgd(lr, momentum=0.9)) for lr in (0.03, 0.1, 0.3, 1.0)},
        "Adam": {f"lr {lr:g}": Optax(optax.adam(lr)) for lr in (1e-3, 3e-3, 1e-2, 3e-2, 1e-1)},
        "K-FAC (legacy)": {f"lr {lr:g}, λ {lam:g}": LegacyKFAC(lr, lam, 1, "sampled", LABEL_SEED)
                           for lr in (0.1, 0.3, 1.0) for lam in (1e-3, 1e-2)},
        "K-FAC, refresh every step": {f"lr {lr:g}, λ {lam:g}": kfac(lr, lam)
                                      for lr in (0.1, 0.3, 1.0) for lam in (1e-3, 1e-2)},
        "K-FAC + momentum, inverses every 10": {
            f"lr {lr:g}, μ {mu:g}, λ {lam:g}": kfac(lr, lam, inverse_every=10, ema_decay=0.95, momentum=mu)
            for lr in (0.1, 0.3) for mu in (0.0, 0.5, 0.9) for lam in (1e-2, 1e-1)},
        "K-FAC adaptive, refresh every step": {f"λ₀ {lam:g}": kfac(1.0, lam, adaptive=True)
                                               for lam in (1e-3, 1e-2, 1e-1, 1.0)},
        "K-FAC adaptive, refresh every 5": {
            f"λ₀ {lam:g}": kfac(1.0, lam, update_every=5, ema_decay=0.95, adaptive=True)
            for lam in (1e-3, 1e-2, 1e-1, 1.0)},
        "CG-NGD (10 iterations)": {f"lr {lr:g}, λ {lam:g}": CGNaturalGradient(lr, lam, 10)
                                   for lr in (0.3, 1.0) for lam in (1e-3, 1e-2)},
    }


def race(network, x, y, steps: int, repeats: int) -> tuple[list[str], dict]:
    theta0 = network.mlp.init(WEIGHT_SEED)
    runs = {}
    for name, grid in grids().items():
        for setting, optimiser in grid.items():
            try:
                runs[(name, setting)] = train(network, theta0, x, y, optimiser, steps)
            except NonFiniteLossError:
                runs[(name, setting)] = None
    target = 1.05 * min(run.losses[-1] for (name, _), run in runs.items() if name == "Adam" and run)
    best = {}
    for name, grid in grids().items():
        def rank(setting, name=name):
            run = runs[(name, setting)]
            if run is None:
                return (np.inf, np.inf)
            step = run.steps_to(target)
            return (np.inf if step is None else step, run.losses[-1])

        setting = min(grid, key=rank)
        best[name] = (setting, grid[setting], runs[(name, setting)])
    timings = {name: ([], []) for name in best}
    for _ in range(repeats):  # interleaved reruns of the best settings
        for name, (_, optimiser, run) in best.items():
            if run is None or run.steps_to(target) is None:
                continue
            rerun = train(network, theta0, x, y, optimiser, run.steps_to(target))
            step = rerun.steps_to(target)
            timings[name][0].append(rerun.seconds[step] - rerun.seconds[1])
            timings[name][1].append(rerun.cpu_seconds[step] - rerun.cpu_seconds[1])
    lines = [f"target training loss {target:.4g} (1.05 × the best final loss of the Adam grid after "
             f"{steps} steps); times: medians of {repeats} interleaved reruns, after the first "
             "(compiling) step. First step: JAX compiles there, unless an earlier setting of the same "
             "grid compiled the same program (K-FAC's learning rate and damping are traced, so its "
             "grid compiles once; every optax learning rate and CG setting compiles anew).", "",
             "| optimiser | settings tried (diverged) | best setting | final loss | steps to target "
             "| wall s to target | CPU s to target | first step (compiles), s |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    summary = {}
    for name, (setting, _, run) in best.items():
        grid = grids()[name]
        diverged = sum(runs[(name, s)] is None for s in grid)
        step = None if run is None else run.steps_to(target)
        wall = float(np.median(timings[name][0])) if timings[name][0] else None
        cpu = float(np.median(timings[name][1])) if timings[name][1] else None
        summary[name] = (step, wall, cpu)
        final = "–" if run is None else f"{run.losses[-1]:.4g}"
        lines.append(f"| {name} | {len(grid)} ({diverged}) | {setting} | {final} | "
                     f"{'never' if step is None else step} | "
                     f"{'–' if wall is None else f'{wall:.3f}'} | {'–' if cpu is None else f'{cpu:.3f}'} | "
                     f"{'–' if run is None else f'{run.seconds[1]:.2f}'} |")
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
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--skip-classifier", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args()
    jax.config.update("jax_enable_x64", True)
    x_train, _, y_train, _ = digits()
    autoencoder = Network(MLP((64, 32, 16, 32, 64), "tanh"), Gaussian())
    classifier = Network(MLP((64, 64, 10), "tanh"), Categorical())
    problems = {"autoencoder": (autoencoder, x_train, x_train),
                "classifier": (classifier, x_train, y_train)}
    if args.skip_classifier:
        del problems["classifier"]
    started, cpu_started, load_start = time.perf_counter(), time.process_time(), os.getloadavg()
    machine = platform.processor() or platform.machine()
    report = [f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {machine}, {os.cpu_count()} cores, "
              f"{jax.device_count()} JAX CPU device, float64, full batch ({len(x_train)} images), "
              f"OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}.", "",
              "**Cost of one step**, as a multiple of one jit-compiled gradient (SGD) step of the same "
              f"network: medians over {args.rounds} interleaved rounds of {CYCLE} consecutive steps; "
              "amortised = median over rounds of the mean step of a round.", ""]
    report += step_cost_table(problems, args.rounds)
    races = {}
    for problem, (network, x, y) in problems.items():
        lines, summary = race(network, x, y, args.steps, args.repeats)
        races[problem] = summary
        report += ["", f"**Time to target, {problem}** ({args.steps} full-batch steps)", ""] + lines
    _, adam_wall, adam_cpu = races["autoencoder"]["Adam"]
    report.append("")
    for name in (k for k in grids() if k.startswith("K-FAC")):
        _, wall, cpu = races["autoencoder"][name]
        report.append(f"* {name}: never reached the autoencoder's target" if wall is None else
                      f"* {name}: Adam / K-FAC time to the autoencoder's target {adam_wall / wall:.2f} "
                      f"(wall), {adam_cpu / cpu:.2f} (CPU); goal ≥ 1.5: "
                      f"{'met' if adam_wall / wall >= 1.5 else 'not met'}")
    if not args.skip_memory:
        report += ["", "**Memory of the P ≥ 1e5 run**", ""] + memory_table()
    load_end = os.getloadavg()
    report += ["", f"Benchmark wall time {time.perf_counter() - started:.0f} s, CPU time of this process "
               f"{time.process_time() - cpu_started:.0f} s; load average (1 min) {load_start[0]:.1f} at the "
               f"start, {load_end[0]:.1f} at the end, on {os.cpu_count()} cores (a shared machine: other "
               "jobs ran too)."]
    text = "\n".join(report) + "\n"
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)
    print(text)


if __name__ == "__main__":
    main()

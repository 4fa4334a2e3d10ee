#!/usr/bin/env python
"""Calibrate the built-in proxy tasks: do their defaults tell optimizers apart?

For each task, five reference optimizers (written as optevo programs ``(w, g, m, v, lr) ->
(update, m, v)`` over the parameter pytree) are trained in the engines' training loop
(``optevo.proxy_tasks.engine.TrainLoop``, all seeds of a grid point in one call), which
follows the semantics of ``optevo.proxy_tasks.tasks.base``:

    k_init, k_data = split(PRNGKey(seed)); params = init_params(k_init); m = v = 0
    inst = instance(k_init)   # the seed's problem (synthetic tasks), () for the others
    for t: batch = train_batch(fold_in(k_data, t)); g = grad(loss)(params, batch, inst)
           update, m, v = program(params, g, m, v, lr_schedule(t, steps) * lr_scale)
           params = params - update
    fitness = val_loss(params, inst)

Every optimizer's ``lr_scale`` is tuned on the same log grid (2^k) over the same seeds
(0..S-1); the table gives the best scale, the mean final validation loss over seeds and its
standard error, and whether the best scale sits at the edge of the grid. A run whose final
loss is not finite or whose weights exceed the task's ``max_abs_weight`` is diverged (the
engines' rule, ``optevo.proxy_tasks.fitness.diverged``), and a grid point with any diverged
seed scores inf. Then it prints the separation ``|mean_a - mean_b| / sqrt(se_a^2 + se_b^2)``
of the AdamW start, SGD and the poor program, and the time of one seed-run of the loop
(jitted, one seed) on this machine.

    python scripts/experiments/calibrate_tasks.py                       # all tasks, default settings
    python scripts/experiments/calibrate_tasks.py --tasks digits_mlp --set steps=600 --set hidden=64
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from optevo.proxy_tasks import fitness, get_task, task_names  # noqa: E402
from optevo.proxy_tasks.engine import TrainLoop  # noqa: E402

tmap = jax.tree_util.tree_map


# --- the reference programs ------------------------------------------------------------------
def adamw_start(w, g, m, v, lr):
    m = tmap(lambda g, m: 0.1 * g + 0.9 * m, g, m)
    v = tmap(lambda g, v: 0.001 * g * g + 0.999 * v, g, v)
    u = tmap(lambda m, v, w: (m / (jnp.sqrt(jnp.abs(v)) + 1e-8) + 0.01 * w) * lr * 0.001, m, v, w)
    return u, m, v


def lion(w, g, m, v, lr):
    c = tmap(lambda g, m: 0.1 * g + 0.9 * m, g, m)
    u = tmap(lambda c, w: (jnp.sign(c) + 0.01 * w) * lr * 1e-4, c, w)
    m = tmap(lambda g, m: 0.01 * g + 0.99 * m, g, m)
    return u, m, v


def signum(w, g, m, v, lr):
    m = tmap(lambda g, m: 0.1 * g + 0.9 * m, g, m)
    return tmap(lambda m: jnp.sign(m) * lr * 1e-3, m), m, v


def sgd(w, g, m, v, lr):
    return tmap(lambda g: g * lr * 0.1, g), m, v


def poor_sin(w, g, m, v, lr):
    # sin(g) ~ g for small g: on tasks with small gradients this is SGD with a 100x smaller
    # step, i.e. poor mostly because the lr grid is bounded.
    return tmap(lambda g: jnp.sin(g) * lr * 0.001, g), m, v


def poor_l2(w, g, m, v, lr):
    # gradient plus weight decay of strength 1: poor at every lr (it minimises loss + |w|^2/2).
    return tmap(lambda g, w: (g + w) * lr * 0.01, g, w), m, v


OPTIMIZERS = {"adamw_start": adamw_start, "lion": lion, "signum": signum, "sgd": sgd,
              "poor_sin": poor_sin, "poor_l2": poor_l2}


# A search trains thousands of programs: the default digits_mlp seed-run must stay cheap.
TIME_TARGET_MS = {"digits_mlp": 40.0}


# --- the training loop: the engines' --------------------------------------------------------
def make_train(task, program, steps):
    """train(seeds, lr_scales) -> (final val losses, diverged flags), jitted; the engines'
    loop with ``program`` on the task's pytrees."""
    loop = TrainLoop(task, steps)
    opt = loop.tree_optimizer(program)
    return jax.jit(lambda seeds, scales: loop.train(opt, seeds, scales)[:2])


def time_one_seed(train, repeats=5):
    """(compile+first run seconds, median seconds of one jitted single-seed run)."""
    one = jnp.ones(1, jnp.float32)
    t0 = time.perf_counter()
    jax.block_until_ready(train(jnp.zeros(1, jnp.uint32), one))
    first = time.perf_counter() - t0
    ts = []
    for i in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(train(jnp.full(1, i + 1, jnp.uint32), one))
        ts.append(time.perf_counter() - t0)
    return first, float(np.median(ts))


def parse_value(s):
    for cast in (int, float):
        try:
            return cast(s)
        except ValueError:
            pass
    return s


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", nargs="*", default=None, help="default: all registered tasks")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="constructor override for every task given (repeatable)")
    ap.add_argument("--seeds", type=int, default=None, help="default: the task's seeds")
    ap.add_argument("--kmin", type=int, default=-10, help="grid 2^kmin .. 2^kmax")
    ap.add_argument("--kmax", type=int, default=10)
    ap.add_argument("--optimizers", nargs="*", default=list(OPTIMIZERS))
    ap.add_argument("--no-timing", action="store_true")
    args = ap.parse_args(argv)

    overrides = dict(kv.split("=", 1) for kv in args.set)
    overrides = {k: parse_value(v) for k, v in overrides.items()}
    grid = np.array([2.0 ** k for k in range(args.kmin, args.kmax + 1)], np.float32)
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}, {os.cpu_count()} cpu cores;"
          f" lr_scale grid 2^{args.kmin}..2^{args.kmax}")
    for name in args.tasks or task_names():
        task = get_task(name, **overrides)
        steps, n_seeds = task.steps, args.seeds or task.seeds
        seeds = jnp.arange(n_seeds, dtype=jnp.uint32)
        print(f"\n== {task.describe()}")
        print(f"{'optimizer':12s} {'best_lr':>8s} {'mean_loss':>10s} {'stderr':>9s} "
              f"{'se/mean':>7s} {'edge':>5s} {'div@best':>8s} {'ms/seed-run':>11s}")
        results, times = {}, []
        for oname in args.optimizers:
            train = make_train(task, OPTIMIZERS[oname], steps)
            runs = [train(seeds, jnp.full(n_seeds, s, jnp.float32)) for s in grid]
            aggs = [fitness.aggregate(*jax.device_get(r)) for r in runs]
            best = int(np.argmin([a.mean for a in aggs]))
            a = aggs[best]
            edge = best in (0, len(grid) - 1)
            ms = float("nan")
            if not args.no_timing:
                _, sec = time_one_seed(train)
                ms = 1e3 * sec
                times.append(ms)
            results[oname] = a
            print(f"{oname:12s} {grid[best]:8.4g} {a.mean:10.4g} {a.stderr:9.2g} "
                  f"{a.stderr / a.mean if np.isfinite(a.mean) else float('nan'):7.1%} "
                  f"{'EDGE' if edge else 'no':>5s} {a.n_diverged:8d} {ms:11.1f}")
        trio = [o for o in ("adamw_start", "sgd", "poor_sin", "poor_l2") if o in results]
        seps = []
        for i, x in enumerate(trio):
            for y in trio[i + 1:]:
                if x.startswith("poor") and y.startswith("poor"):
                    continue
                ax, ay = results[x], results[y]
                z = abs(ax.mean - ay.mean) / max(np.hypot(ax.stderr, ay.stderr), 1e-12)
                seps.append(f"{x} vs {y}: {z:.1f} SE")
        if seps:
            print("separation (gap / combined stderr): " + "; ".join(seps))
        if times:
            budget = TIME_TARGET_MS.get(name)
            verdict = "" if budget is None else (
                f" (target <= {budget:.0f} ms: {'OK' if max(times) <= budget else 'OVER'})")
            print(f"one {steps}-step seed-run, engines' loop, one seed, 1 core: "
                  f"{min(times):.1f}-{max(times):.1f} ms{verdict}")
        if "adamw_start" in results:
            base = results["adamw_start"].mean
            print("normalized to adamw_start: " + ", ".join(
                f"{o} {fitness.normalize(r.mean, base):.3f}" for o, r in results.items()))


if __name__ == "__main__":
    main()

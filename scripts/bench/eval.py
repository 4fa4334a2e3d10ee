"""Benchmark: programs per second of the fast interpreter against per-program ``jax.jit``,
and the fast path running the AdamW start program against AdamW written by hand in optax.

One run, the same programs (the library plus random programs) on the same task and seeds:

* fast path: one compiled training loop per length bucket, programs passed as arrays
  (its one-time compile is reported separately and excluded from the rate);
* per-program ``jax.jit`` (the reference path): trace and compile every program, then run;
  compile included, since that is what a search would pay per candidate;
* floor: the AdamW start program written by hand as an optax transformation, compiled once
  and run (compile excluded), against the fast path running the same program;
* the finite check (a run whose program computes a non-finite value diverged) against the
  same engine without it, for the AdamW start and for all programs (where the check also
  ends overflowing programs early, once every seed has diverged).

    python scripts/bench/eval.py                # 64 programs, digits_mlp defaults, 2 seeds
    python scripts/bench/eval.py --jit-programs 16   # time the slow path on a subset
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from optevo.dsl.library import library, start_program
from optevo.dsl.liveness import strip_dead
from optevo.dsl.random import random_program
from optevo.proxy_tasks import get_task
from optevo.proxy_tasks.engine import FastEngine, seed_keys
from optevo.proxy_tasks.jit_engine import JitEngine


def bench_programs(n, seed, max_live):
    progs = list(library().values())
    rng = np.random.default_rng(seed)
    while len(progs) < n:
        p = random_program(rng, int(rng.integers(4, 24)))
        if 1 <= len(strip_dead(p).stmts) <= max_live:
            progs.append(p)
    return progs[:n]


def adamw_start_by_hand() -> optax.GradientTransformation:
    """The start program written directly: m = 0.1 g + 0.9 m; v = 0.001 g^2 + 0.999 v;
    update = (m / (sqrt|v| + 1e-8) + 0.01 w) * 0.001 * lr."""

    def init(params):
        z = jax.tree.map(jnp.zeros_like, params)
        return (z, z)

    def update(g, state, params):
        m, v = state
        m = jax.tree.map(lambda g, m: (1.0 - 0.9) * g + 0.9 * m, g, m)
        v = jax.tree.map(lambda g, v: (1.0 - 0.999) * g * g + 0.999 * v, g, v)
        u = jax.tree.map(lambda m, v, w: -(m / (jnp.sqrt(jnp.abs(v)) + 1e-8) + 0.01 * w) * 0.001,
                         m, v, params)
        return u, (m, v)

    return optax.GradientTransformation(init, update)


def hand_loop(task, steps, opt):
    def train(seeds):
        k_init, k_data = seed_keys(seeds)

        def one(ki, kd):
            p = task.init_params(ki)
            s = opt.init(p)

            def body(t, c):
                p, s = c
                g = jax.grad(task.loss)(p, task.train_batch(jax.random.fold_in(kd, t)))
                u, s = opt.update(g, s, p)
                lr = task.lr_schedule(t, steps)  # the program's lr input, as the engines feed it
                return optax.apply_updates(p, jax.tree.map(lambda x: x * lr, u)), s

            p, _ = lax.fori_loop(0, steps, body, (p, s))
            return task.val_loss(p)

        return jax.vmap(one)(k_init, k_data)

    return jax.jit(train)


def best_of(fn, reps):
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times)


def interleaved(runs, reps):
    """Each callable of ``runs`` (a dict) called twice (compile, then warm), then once per
    round for ``reps`` rounds, in turn, so that all see the same machine load: the seconds
    of every timed call, by name."""
    for f in runs.values():
        f(), f()
    times = {k: [] for k in runs}
    for _ in range(reps):
        for k, f in runs.items():
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
    return times


def check_cost(task, fast, programs, adamw, seeds, reps):
    """The divergence rule's finite check (every statement's value, each step) against the
    same engine without it, interleaved: the AdamW start alone, and all programs."""
    bare = FastEngine(task, buckets=fast.buckets, check_finite=False)
    bare.warmup(sorted({fast.bucket(p) for p in programs}), len(seeds))
    for name, items in (("AdamW start", [adamw]), (f"{len(programs)} programs", programs)):
        pairs = [(best_of(lambda: fast.run(items, seeds), 1)[0],
                  best_of(lambda: bare.run(items, seeds), 1)[0]) for _ in range(reps * 4)]
        ratios = sorted(a / b for a, b in pairs)
        print(f"finite check, {name}: {min(a for a, _ in pairs) * 1e3:.1f} ms with, "
              f"{min(b for _, b in pairs) * 1e3:.1f} ms without; median of the pairwise "
              f"ratios {ratios[len(ratios) // 2]:.3f}x")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--task", default="digits_mlp")
    ap.add_argument("--programs", type=int, default=64)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--jit-programs", type=int, default=None,
                    help="time the per-program jit path on the first N programs (default all)")
    ap.add_argument("--reps", type=int, default=5, help="repetitions of the timed fast runs")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    task = get_task(args.task)
    seeds = np.arange(args.seeds, dtype=np.uint32)
    fast = FastEngine(task)
    programs = bench_programs(args.programs, args.seed, max(fast.buckets))
    buckets = sorted({fast.bucket(p) for p in programs})
    print(f"task {task.describe()}; {len(programs)} programs "
          f"({len(library())} library + random), {args.seeds} seeds, buckets {buckets}, "
          f"jax {jax.__version__} on {jax.devices()[0].platform}, {jax.local_device_count()} device")

    t0 = time.perf_counter()
    fast.warmup(buckets, args.seeds)
    compile_fast = time.perf_counter() - t0
    best, med = best_of(lambda: fast.run(programs, seeds), args.reps)
    fast_rate = len(programs) / best
    print(f"fast path: {fast_rate:8.2f} programs/s  ({best / len(programs) * 1e3:.1f} ms/program,"
          f" median run {med:.2f} s); one-time compile of {len(buckets)} bucket(s) "
          f"{compile_fast:.1f} s")

    n_jit = args.jit_programs or len(programs)
    ref = JitEngine(task)
    t0 = time.perf_counter()
    jit_results = ref.run(programs[:n_jit], seeds)
    jit_time = time.perf_counter() - t0
    jit_rate = n_jit / jit_time
    print(f"per-program jax.jit (compile included): {jit_rate:8.3f} programs/s  "
          f"({jit_time / n_jit:.2f} s/program over {n_jit} programs)")
    fast_results = fast.run(programs[:n_jit], seeds)
    agree = sum(np.array_equal(a.diverged, b.diverged) and np.allclose(
        a.losses[~a.diverged], b.losses[~b.diverged], rtol=1e-3) for a, b in
        zip(fast_results, jit_results))
    print(f"  fast and jit results agree on {agree}/{n_jit} programs (rtol 1e-3)")

    adamw = start_program()
    hand = hand_loop(task, fast.steps, adamw_start_by_hand())
    hand(jnp.asarray(seeds)).block_until_ready()  # compile excluded
    fast.run([adamw], seeds)
    hand_times, fast_times = [], []
    for _ in range(args.reps * 4):  # interleaved, so both see the same machine load
        hand_times.append(best_of(lambda: hand(jnp.asarray(seeds)).block_until_ready(), 1)[0])
        fast_times.append(best_of(lambda: fast.run([adamw], seeds), 1)[0])
    hand_best, fast_adamw = min(hand_times), min(fast_times)
    ratios = sorted(f / h for f, h in zip(fast_times, hand_times))
    same = np.allclose(np.asarray(hand(jnp.asarray(seeds))), fast.run([adamw], seeds)[0].losses,
                       rtol=1e-4)
    print(f"AdamW start: hand-written optax {hand_best * 1e3:.1f} ms, fast path "
          f"{fast_adamw * 1e3:.1f} ms per program ({args.seeds} seeds, {fast.steps} steps); "
          f"same losses: {same}")
    check_cost(task, fast, programs, adamw, seeds, args.reps)
    print(f"RATIO fast / per-program jit: {fast_rate / jit_rate:.1f}x  (goal >= 50x)")
    print(f"RATIO fast AdamW / hand-written optax AdamW: {fast_adamw / hand_best:.2f}x  "
          f"(goal <= 1.2x; best of {len(ratios)} interleaved pairs each; median of the pairwise "
          f"ratios {ratios[len(ratios) // 2]:.2f}x)")


if __name__ == "__main__":
    main()

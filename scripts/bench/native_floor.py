"""The native step (``optevo.proxy_tasks.native``) against the interpreter and hand-written
optax: does it reach #21's floor (1.2x hand-written)?

Builds the step (the system's C++ compiler), checks that its losses and divergence flags
equal the interpreter's on the library programs it runs, two that diverge and random
programs of its ops, then times, interleaved, compile excluded, on the same seeds: the
programs per second of ``scripts/bench/eval.py``'s 64 programs (library and random; the
native step runs some of them) with and without the step, and the AdamW start three ways:
written by hand in optax (``scripts/bench/eval.py``), in the fast engine with the
interpreter, and with the native step.

    taskset -c 1 python scripts/bench/native_floor.py --seeds 4    # as a search's worker
    taskset -c 1 python scripts/bench/native_floor.py --children runs/quick-...   # its children
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import jax.numpy as jnp
import numpy as np

from optevo.dsl import parse
from optevo.dsl.interpreter import encoded_form
from optevo.dsl.library import library, start_program
from optevo.dsl.random import random_program
from optevo.proxy_tasks import get_task
from optevo.proxy_tasks.engine import FastEngine

sys.path.insert(0, str(Path(__file__).parent))
from eval import (adamw_start_by_hand, bench_programs, hand_loop,  # noqa: E402
                  interleaved)  # (sibling)

# runs that diverge: a blow-up (the loop's rule), and one whose statement overflows while
# its update stays finite (the finite check)
DIVERGING = [parse("def train(w, g, m, v, lr):\n  update = w * -3.0\n  return update, m, v\n"),
             parse("def train(w, g, m, v, lr):\n  k = g * 0.0\n  k = k + 1e30\n  k = k * k\n"
                   "  c = g / k\n  update = g * lr\n  update = update + c\n"
                   "  return update, m, v\n")]


def children(run_dir: str, n: int = 256):
    """``n`` trained children of a search, evenly spaced in its log (evaluations.jsonl)."""
    recs = [json.loads(line) for line in Path(run_dir, "evaluations.jsonl").read_text()
            .splitlines() if line.endswith("}")]
    progs = [parse(r["program"]) for r in recs if not r.get("cached") and "program" in r]
    progs = [p for p in progs if len(encoded_form(p).stmts) <= 32]
    return [progs[i] for i in np.linspace(0, len(progs) - 1, min(n, len(progs))).astype(int)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--random", type=int, default=40, help="random programs checked")
    ap.add_argument("--children", metavar="RUN_DIR", default=None,
                    help="time the mix of 256 trained children of this search's run directory "
                         "(evenly spaced in its log) instead of eval.py's 64 programs")
    args = ap.parse_args(argv)
    task = get_task("digits_mlp")
    seeds = np.arange(args.seeds, dtype=np.uint32)
    fast, nat = FastEngine(task, native_step=False), FastEngine(task, native_step=True)
    adamw = start_program()
    # the native step computes what the interpreter computes: the library programs it
    # runs, two that diverge, and random programs of its ops
    lib = [p for p in library().values()
           if len(encoded_form(p).stmts) <= max(nat.buckets) and nat.runs_native(p)]
    rng, rand = np.random.default_rng(0), []
    while len(rand) < args.random:
        p = random_program(rng, int(rng.integers(4, 24)))
        if 1 <= len(encoded_form(p).stmts) <= max(nat.buckets) and nat.runs_native(p):
            rand.append(p)
    progs = lib + DIVERGING + rand
    assert all(nat.runs_native(p) for p in progs)
    agree, exact, diverged = 0, 0, 0
    for p, a, b in zip(progs, nat.run(progs, seeds), fast.run(progs, seeds)):
        diverged += bool(b.diverged.all())
        exact += bool(np.array_equal(a.losses, b.losses))
        agree += bool(np.array_equal(a.diverged, b.diverged)
                      and np.allclose(a.losses[~a.diverged], b.losses[~b.diverged], rtol=1e-4))
    print(f"native step and interpreter agree on {agree}/{len(progs)} programs (rtol 1e-4; "
          f"{exact} bit for bit): {len(lib)} library "
          f"({', '.join(sorted(n for n, p in library().items() if p in lib))}), "
          f"{len(DIVERGING)} diverging, {len(rand)} random; {diverged} diverged on every seed")

    # a mix: eval.py's 64 programs (the library and random ones), or a search's children
    mix = bench_programs(64, 0, 16) if args.children is None else children(args.children)
    share = np.mean([nat.runs_native(p) for p in mix])
    fast.run(mix, seeds), nat.run(mix, seeds)  # compile, then warm
    rate = {"interpreter": [], "native step": []}
    for _ in range(max(1, args.reps // 5)):
        for k, e in (("interpreter", fast), ("native step", nat)):
            t0 = time.perf_counter()
            e.run(mix, seeds)
            rate[k].append(len(mix) / (time.perf_counter() - t0))
    where = "scripts/bench/eval.py" if args.children is None else f"the run {args.children}"
    print(f"{len(mix)} programs of {where} ({share:.0%} run by the native step): "
          + ", ".join(f"{k} {max(v):.1f} programs/s" for k, v in rate.items())
          + f" (best of {len(rate['interpreter'])}, interleaved)")

    hand = hand_loop(task, fast.steps, adamw_start_by_hand())
    runs = {"hand-written optax": lambda: hand(jnp.asarray(seeds)).block_until_ready(),
            "fast engine": lambda: fast.run([adamw], seeds),
            "native step": lambda: nat.run([adamw], seeds)}
    times = interleaved(runs, args.reps)  # compile excluded
    h = np.asarray(times["hand-written optax"])
    print(f"AdamW start, digits_mlp, {args.seeds} seeds, {fast.steps} steps, "
          f"{args.reps} interleaved rounds:")
    for k, v in times.items():
        v = np.asarray(v)
        print(f"  {k:20s} best {v.min() * 1e3:6.2f} ms   best / hand {v.min() / h.min():.2f}x   "
              f"median of the pairwise ratios {np.median(v / h):.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

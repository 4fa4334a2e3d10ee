"""Where the fast path's time over hand-written optax goes, in the training loop itself.

Four runs of the AdamW start's task (``digits_mlp``, 2 seeds, 300 steps), interleaved so
that all see the same machine load, compile excluded:

* ``hand``: the hand-written optax loop of ``scripts/bench/eval.py`` (the floor);
* ``loop``: the engines' training loop (``TrainLoop.train``) with the AdamW start's step
  written by hand on flat vectors: what the loop costs without the interpreter;
* ``fast, 1 statement``: the fast engine running ``update = g * 0``: the interpreter's
  fixed cost per step;
* ``fast, AdamW start``: the fast engine running the start (9 live statements).

The differences, divided by the steps, give the fixed and the per-statement cost.

    python scripts/bench/step_cost.py --reps 20
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from optevo.dsl import parse
from optevo.dsl.library import start_program
from optevo.proxy_tasks import get_task
from optevo.proxy_tasks.engine import FastEngine, Optimizer, TrainLoop

sys.path.insert(0, str(Path(__file__).parent))
from eval import adamw_start_by_hand, hand_loop  # noqa: E402  (sibling)

ONE = parse("def train(w, g, m, v, lr):\n  t = g * 0.0\n  return t, m, v\n")


def flat_adamw(state, w, g, lr):
    """The AdamW start's step on flat ``(N, P)`` vectors: ``adamw_start_by_hand``'s own
    update (a flat array is one leaf), negated and times ``lr`` as the loop expects."""
    u, state = adamw_start_by_hand().update(g, state, w)
    return -u * lr, state


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=20)
    args = ap.parse_args(argv)
    task = get_task("digits_mlp")
    seeds = np.arange(2, dtype=np.uint32)
    scales = np.ones(2, np.float32)
    fast, loop = FastEngine(task), TrainLoop(task)
    hand = hand_loop(task, fast.steps, adamw_start_by_hand())
    flat = jax.jit(lambda s, l: loop.train(
        Optimizer(adamw_start_by_hand().init, flat_adamw), s, l)[:2])
    adamw = start_program()
    runs = {"hand": lambda: hand(jnp.asarray(seeds)).block_until_ready(),
            "loop": lambda: jax.block_until_ready(flat(seeds, scales)),
            "fast, 1 statement": lambda: fast.run([ONE], seeds),
            "fast, AdamW start": lambda: fast.run([adamw], seeds)}
    for f in runs.values():  # compile, then warm
        f(), f()
    times = {k: [] for k in runs}
    for _ in range(args.reps):
        for k, f in runs.items():
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
    h = np.asarray(times["hand"])
    best = {k: min(v) for k, v in times.items()}
    for k, v in times.items():
        print(f"{k:20s} best {best[k] * 1e3:6.2f} ms   median of the pairwise ratios to hand "
              f"{np.median(np.asarray(v) / h):.3f}x")
    n = len(adamw.stmts) - 1  # statements beyond the 1-statement program
    per = (best["fast, AdamW start"] - best["fast, 1 statement"]) / fast.steps / n
    print(f"fixed: {(best['fast, 1 statement'] - best['loop']) / fast.steps * 1e6:.1f} us/step "
          f"(1 statement over the loop); per statement: {per * 1e6:.2f} us/step "
          f"({n} statements more); loop over hand: "
          f"{(best['loop'] - best['hand']) / fast.steps * 1e6:.1f} us/step")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

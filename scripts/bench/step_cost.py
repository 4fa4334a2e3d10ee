"""Where the fast path's time over hand-written optax goes, in the training loop itself.

Five runs of the AdamW start's task (``digits_mlp``, 300 steps, 2 seeds or ``--seeds``; a
search trains 4), interleaved so that all see the same machine load, compile excluded:

* ``hand``: the hand-written optax loop of ``scripts/bench/eval.py`` (the floor);
* ``loop``: the engines' training loop (``TrainLoop.train``) with the AdamW start's step
  written by hand on flat vectors: what the loop costs without the interpreter;
* ``loop, no flags``: the same step in a plain ``fori_loop`` of the loop's pieces, without
  the divergence rule's per-step training loss and early exit: what that rule costs;
* ``fast, 1 statement``: the fast engine running ``update = g * 0``: the interpreter's
  fixed cost per step;
* ``fast, AdamW start``: the fast engine running the start (9 live statements).

The differences, divided by the steps, give the fixed and the per-statement cost.

    python scripts/bench/step_cost.py --reps 20
    taskset -c 1 python scripts/bench/step_cost.py --reps 20 --seeds 4   # as a search's worker
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from optevo.dsl import parse
from optevo.dsl.library import start_program
from optevo.proxy_tasks import get_task
from optevo.proxy_tasks.engine import FastEngine, Optimizer, TrainLoop, seed_keys

sys.path.insert(0, str(Path(__file__).parent))
from eval import adamw_start_by_hand, hand_loop, interleaved  # noqa: E402  (sibling)

ONE = parse("def train(w, g, m, v, lr):\n  t = g * 0.0\n  return t, m, v\n")


def flat_adamw(state, w, g, lr):
    """The AdamW start's step on flat ``(N, P)`` vectors: ``adamw_start_by_hand``'s own
    update (a flat array is one leaf), negated and times ``lr`` as the loop expects."""
    u, state = adamw_start_by_hand().update(g, state, w)
    return -u * lr, state


def flags_free(loop: TrainLoop, opt: Optimizer):
    """``loop.train`` without the divergence rule: ``steps`` plain steps, final losses."""

    def train(seeds, scales):
        k_init, k_data = seed_keys(seeds)
        w, inst = loop.start(k_init)

        def body(t, c):
            w, state = c
            _, g = loop.grads(w, k_data, t, inst)  # the loss value unused: not computed
            u, state = opt.update(state, w, g, loop.lr(t, scales))
            return w - u, state

        w, _ = jax.lax.fori_loop(0, loop.steps, body, (w, opt.init(w)))
        return loop.val_losses(w, inst)

    return jax.jit(train)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--seeds", type=int, default=2)
    args = ap.parse_args(argv)
    task = get_task("digits_mlp")
    seeds = np.arange(args.seeds, dtype=np.uint32)
    scales = np.ones(args.seeds, np.float32)
    fast, loop = FastEngine(task), TrainLoop(task)
    hand = hand_loop(task, fast.steps, adamw_start_by_hand())
    opt = Optimizer(adamw_start_by_hand().init, flat_adamw)
    flat = jax.jit(lambda s, l: loop.train(opt, s, l)[:2])
    bare = flags_free(loop, opt)
    adamw = start_program()
    runs = {"hand": lambda: hand(jnp.asarray(seeds)).block_until_ready(),
            "loop": lambda: jax.block_until_ready(flat(seeds, scales)),
            "loop, no flags": lambda: jax.block_until_ready(bare(seeds, scales)),
            "fast, 1 statement": lambda: fast.run([ONE], seeds),
            "fast, AdamW start": lambda: fast.run([adamw], seeds)}
    times = interleaved(runs, args.reps)  # compile excluded
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
          f"{(best['loop'] - best['hand']) / fast.steps * 1e6:.1f} us/step, of which the "
          f"divergence flags {(best['loop'] - best['loop, no flags']) / fast.steps * 1e6:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Simplify the paper's raw search output (Chen et al. 2023) as the paper did: exact passes,
then fitness-guided passes on digits_mlp at its default settings (300 steps, 16 seeds).

    python scripts/experiments/simplify_raw.py [--task digits_mlp] [--tolerance 0.01] [--steps N] [--seeds K]

Prints each step and the final program; also how far the exact result's updates are from
the raw program's over 100 steps on random inputs. The same as
``optevo simplify raw_search_output.py --task digits_mlp``, with that numeric check added.
"""

from __future__ import annotations

import argparse
import time

import jax.numpy as jnp
import numpy as np

import optevo.dsl.ops as ops
from optevo.dsl import parse, run
from optevo.proxy_tasks import get_task
from optevo.proxy_tasks.engine import enable_compile_cache
from optevo.proxy_tasks.evaluate import Evaluator
from optevo.search.core.tuning import CALIBRATION
from optevo.simplify import simplify_exact_report, simplify_guided

from optevo.dsl.library import example_program  # noqa: E402

RAW = example_program("raw_search_output").text()  # the paper's raw winner


def update_difference(a, b, steps=100, n=2000, seed=0):
    """Over ``steps`` steps on the same random inputs (independent trajectories): the max of
    ``max |update_a - update_b| / max |update_a|`` and the share of update elements that
    differ by more than 1e-4 of ``max |update_a|``."""
    rng = np.random.default_rng(seed)
    wa = wb = [jnp.asarray(rng.standard_normal(n), jnp.float32)]
    sa = sb = ([jnp.zeros(n, jnp.float32)], [jnp.zeros(n, jnp.float32)])
    worst, off = 0.0, 0
    for _ in range(steps):
        g = [jnp.asarray(rng.standard_normal(n) * 0.1, jnp.float32)]
        lr = jnp.float32(rng.uniform(0.1, 1.0))
        ua, *sa = run(a, wa, g, *sa, lr)
        ub, *sb = run(b, wb, g, *sb, lr)
        scale = float(jnp.max(jnp.abs(ua[0])))
        d = jnp.abs(ua[0] - ub[0])
        worst, off = max(worst, float(jnp.max(d)) / scale), off + int(jnp.sum(d > 1e-4 * scale))
        wa, wb = [wa[0] - ua[0]], [wb[0] - ub[0]]
    return worst, off / (steps * n)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", default="digits_mlp")
    ap.add_argument("--tolerance", type=float, default=0.01)
    ap.add_argument("--steps", type=int)
    ap.add_argument("--seeds", type=int)
    args = ap.parse_args()
    enable_compile_cache()
    raw = parse(RAW)
    exact, steps = simplify_exact_report(raw)
    print(f"== exact passes: {len(raw.stmts)} -> {len(exact.stmts)} statements")
    for s in steps:
        print(f"  {s}")
    print(exact.text())
    worst, share = update_difference(raw, exact)
    print(f"updates over 100 steps, 2000 weights (random inputs, independent trajectories): "
          f"max |difference| / max |update| = {worst:.1e} (sign(m) vs m / (|m| + 1e-8) where "
          f"|m| is tiny); share of elements off by more than 1e-4 of max |update|: {share:.1e}")
    eps, ops.EPS = ops.EPS, 1e-30
    worst, share = update_difference(raw, exact)
    ops.EPS = eps
    print(f"the same with the division epsilon set to 1e-30 (rounding only): {worst:.1e}, "
          f"share {share:.1e}")
    t0 = time.time()
    ev = Evaluator(get_task(args.task), steps=args.steps, seeds=args.seeds)
    scale = ev.tune(exact, CALIBRATION).scale
    print(f"\n== guided passes on {args.task}: {ev.steps} steps, seeds {ev.seeds}, tolerance "
          f"{args.tolerance:g}; lr scale tuned for the exact result: {scale:g}")
    final, gsteps = simplify_guided(exact, ev, tolerance=args.tolerance, lr_scale=scale,
                                    progress=lambda s: print(f"  {s}", flush=True))
    print(final.text())
    if gsteps:
        print(f"loss {gsteps[0].loss_before:.4f} -> {gsteps[-1].loss_after:.4f} "
              f"({gsteps[-1].loss_after / gsteps[0].loss_before - 1:+.2%}); "
              f"{len(exact.stmts)} -> {len(final.stmts)} statements; {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()

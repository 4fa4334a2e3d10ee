"""Benchmark: programs per second with programs batched (``optevo.proxy_tasks.batching``)
against one program per call, on whatever device JAX sees (a GPU if there is one).

The same programs (the library plus random programs, as ``scripts/bench/eval.py``), task
and seeds; each mode compiles once (reported apart) and is timed best of ``--reps``,
interleaved. The batched mode unrolls its statement loop only on an accelerator, as the
engine does. On a CPU expect batching to lose badly (every branch is computed for every
statement); the question it answers is the GPU's.

    python scripts/bench/batching.py                    # 16 programs, digits_mlp, 2 seeds
    python scripts/bench/batching.py --programs 64 --seeds 8   # on a GPU
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import jax
import numpy as np

from optevo.proxy_tasks import get_task
from optevo.proxy_tasks.engine import FastEngine

sys.path.insert(0, str(Path(__file__).parent))
from eval import bench_programs  # noqa: E402  (sibling)


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="digits_mlp")
    ap.add_argument("--programs", type=int, default=16)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args(argv)
    task = get_task(args.task)
    seeds = np.arange(args.seeds, dtype=np.uint32)
    engines = {"one per call": FastEngine(task, batch_programs=False),
               "batched": FastEngine(task, batch_programs=True)}
    programs = bench_programs(args.programs, 0, max(engines["batched"].buckets))
    print(f"task {task.describe()}; {len(programs)} programs, {args.seeds} seeds; jax "
          f"{jax.__version__} on {jax.devices()[0].platform} ({jax.devices()[0].device_kind})")
    results, best = {}, {}
    for name, e in engines.items():  # first call: compile (and run)
        took, results[name] = timed(lambda: e.run(programs, seeds))
        print(f"{name:13s} first call (compile included) {took:7.1f} s"
              f"{'; statement loop unrolled' if e.unroll else ''}")
    for _ in range(args.reps):
        for name, e in engines.items():
            took, _ = timed(lambda: e.run(programs, seeds))
            best[name] = min(best.get(name, took), took)
    a, b = results["one per call"], results["batched"]
    agree = sum(np.array_equal(x.diverged, y.diverged) and np.allclose(
        x.losses[~x.diverged], y.losses[~y.diverged], rtol=1e-3) for x, y in zip(a, b))
    for name, t in best.items():
        print(f"{name:13s} {len(programs) / t:9.2f} programs/s  (best of {args.reps}: "
              f"{t * 1e3:.0f} ms for {len(programs)} programs)")
    print(f"  results agree on {agree}/{len(programs)} programs (rtol 1e-3)")
    print(f"RATIO batched / one per call: {best['one per call'] / best['batched']:.3g}x "
          f"programs/s on {jax.devices()[0].platform}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

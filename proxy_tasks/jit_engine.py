"""The reference engine: each program traced into its own ``jax.jit``.

:class:`JitEngine` trains a program as a user's optimizer is trained: its ``update_fn``
(``optevo.dsl.execute``, the reference semantics) on the task's own pytrees, in the engines'
one loop (:class:`optevo.proxy_tasks.engine.TrainLoop`). It compiles once per program, so it
is the yardstick the fast engine is held equal to (``tests/test_engine.py``), not the path a
search takes.
"""

from __future__ import annotations

import time
from typing import List, Sequence

import jax
import numpy as np

from optevo.dsl.execute import update_fn
from optevo.dsl.program import Program

from .engine import Engine, SeedRuns, collect, per_seed_scales


class JitEngine(Engine):
    """The reference path: each program traced and compiled on its own (``jax.jit``), on
    the task's own pytrees, as a user's optimizer is (:meth:`TrainLoop.tree_optimizer`)."""

    def _train_fn(self, program: Program):
        opt = self.tree_optimizer(update_fn(program, check_finite=True))
        return jax.jit(lambda seeds, lr_scales: self.train(opt, seeds, lr_scales)[:2])

    def dispatch(self, program: Program, seeds, lr_scales=None):
        """Compile ``program`` and start training it on ``seeds``."""
        seeds = np.asarray(seeds, np.uint32)
        return self._train_fn(program)(seeds, per_seed_scales(seeds, lr_scales))

    def run(self, programs: Sequence[Program], seeds, lr_scales=None) -> List[SeedRuns]:
        """One program at a time: its seconds are its own (compile included)."""
        results = []
        for p in programs:
            t0 = time.perf_counter()
            results.append(collect(self.dispatch(p, seeds, lr_scales), t0))
        return results

    def run_grid(self, program: Program, seeds, scales) -> List[SeedRuns]:
        """One compile for all scales; each scale timed on its own."""
        fn = self._train_fn(program)
        seeds = np.asarray(seeds, np.uint32)
        out = []
        for s in scales:
            t0 = time.perf_counter()
            out.append(collect(fn(seeds, np.full(len(seeds), s, np.float32)), t0))
        return out

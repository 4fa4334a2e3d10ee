"""Evaluation engines: train a task with optimizer programs and report final validation losses.

Two engines with the same semantics (``proxy_tasks/base.py`` states the training loop):

* :class:`FastEngine` compiles one training loop per length bucket, in which the program is
  an argument (``optevo.dsl.interpreter``): no compile per candidate.
* :class:`JitEngine`, the reference: each program is traced into its own ``jax.jit``.

Both run all seeds of a program in one call (seeds batched along a leading axis), flag a
seed as diverged when a training loss is not finite, its final validation loss is not
finite, or its weights blew up past ``task.max_abs_weight``.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Dict, List, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.flatten_util import ravel_pytree

from optevo.dsl.execute import update_fn
from optevo.dsl.interpreter import Interpreter, bucket_for, encoded_form
from optevo.dsl.program import Program

from .tasks.base import Task

DEFAULT_BUCKETS = (8, 16, 32)


def enable_compile_cache(path: Optional[str] = None) -> Optional[str]:
    """Keep compiled engines on disk (JAX's persistent compilation cache), so that every
    worker and every later run loads the interpreter instead of compiling it again (measured
    here: 13.6 s -> 3.1 s to the first result). ``OPTEVO_XLA_CACHE`` sets the folder
    (default ``~/.cache/optevo/xla``); ``OPTEVO_XLA_CACHE=off`` disables it. Benchmarks
    that time compilation leave it off."""
    import os
    path = path or os.environ.get("OPTEVO_XLA_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "optevo", "xla")
    if path == "off":
        return None
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
    return path


@dataclasses.dataclass
class SeedRuns:
    """Per-seed outcome of training one program: final validation losses (inf where
    diverged) and divergence flags."""

    losses: np.ndarray
    diverged: np.ndarray
    seconds: float = 0.0


def _seed_keys(seeds):
    keys = jax.vmap(jax.random.PRNGKey)(jnp.asarray(seeds, jnp.uint32))
    pair = jax.vmap(jax.random.split)(keys)
    return pair[:, 0], pair[:, 1]


class _Loop:
    """What both engines share: flat parameters, batched seeds, divergence checks."""

    def __init__(self, task: Task, steps: Optional[int] = None):
        self.task = task
        self.steps = int(steps or task.steps)
        params0 = task.init_params(jax.random.PRNGKey(0))
        _, self.unravel = ravel_pytree(params0)
        self.leaf_shapes = [tuple(np.shape(x)) for x in jax.tree.leaves(params0)]
        self.leaf_sizes = [int(np.size(x)) for x in jax.tree.leaves(params0)]

    def start(self, k_init):
        """Flat initial parameters ``(Ns, P)`` and the problem instances of the seeds (both
        drawn from the seeds' init keys: ``Task.instance``)."""
        w = jax.vmap(lambda k: ravel_pytree(self.task.init_params(k))[0])(k_init)
        return w, jax.vmap(self.task.instance)(k_init)

    def grads(self, w, k_data, t, inst):
        """Training loss and gradient for each seed, at step ``t``: ``(Ns,)``, ``(Ns, P)``."""
        task = self.task

        def one(wi, key, ii):
            batch = task.train_batch(jax.random.fold_in(key, t))
            return jax.value_and_grad(lambda x: task.loss_of(self.unravel(x), batch, ii))(wi)

        return jax.vmap(one)(w, k_data, inst)

    def lr(self, t, lr_scales):
        return (self.task.lr_schedule(t, self.steps) * lr_scales)[:, None].astype(jnp.float32)

    def finish(self, w, bad, inst):
        val = jax.vmap(lambda x, ii: self.task.val_loss_of(self.unravel(x), ii))(w, inst)
        max_abs = jnp.max(jnp.abs(w), axis=-1)
        diverged = bad | ~jnp.isfinite(val) | ~(max_abs <= self.task.max_abs_weight)
        return jnp.where(diverged, jnp.inf, val), diverged


def _lr_scales(seeds: np.ndarray, lr_scales) -> np.ndarray:
    """One learning-rate scale per seed (1.0 when none is given)."""
    if lr_scales is None:
        return np.ones(len(seeds), np.float32)
    return np.broadcast_to(np.asarray(lr_scales, np.float32), seeds.shape)


def _collect(out, t0) -> SeedRuns:
    losses, diverged = jax.device_get(out)
    return SeedRuns(np.asarray(losses, np.float64), np.asarray(diverged, bool),
                    time.perf_counter() - t0)


class FastEngine(_Loop):
    """One compiled training loop per length bucket; programs are data.

    ``run(programs, seeds, lr_scales)`` trains every program on every seed. Calls are
    dispatched asynchronously, so the batch runs back to back with no Python in between."""

    def __init__(self, task: Task, steps: Optional[int] = None,
                 buckets: Sequence[int] = DEFAULT_BUCKETS):
        super().__init__(task, steps)
        self.buckets = tuple(sorted(buckets))
        self._compiled: Dict[int, tuple] = {}

    def _loop(self, length: int):
        if length in self._compiled:
            return self._compiled[length]
        interp = Interpreter(self.leaf_shapes, length)  # static shapes: matrix ops

        def train(code, seeds, lr_scales):
            k_init, k_data = _seed_keys(seeds)
            w, inst = self.start(k_init)
            regs = interp.init_regs(code, *w.shape)

            def body(carry):
                t, regs, w, m, v, bad = carry
                loss, g = self.grads(w, k_data, t, inst)
                regs, u, m, v = interp.step(code, regs, w, g, m, v, self.lr(t, lr_scales))
                return t + 1, regs, w - u, m, v, bad | ~jnp.isfinite(loss)

            def cond(carry):
                return (carry[0] < self.steps) & ~jnp.all(carry[-1])

            zeros = jnp.zeros_like(w)
            carry = (jnp.int32(0), regs, w, zeros, zeros, jnp.zeros(seeds.shape, bool))
            _, _, w, _, _, bad = lax.while_loop(cond, body, carry)
            return self.finish(w, bad, inst)

        entry = (interp, jax.jit(train))
        self._compiled[length] = entry
        return entry

    def bucket(self, program: Program) -> int:
        return bucket_for(len(encoded_form(program).stmts), self.buckets)

    def dispatch(self, program: Program, seeds, lr_scales=None):
        """Start training ``program`` on ``seeds`` (asynchronous); returns device arrays."""
        interp, fn = self._loop(self.bucket(program))
        seeds = np.asarray(seeds, np.uint32)
        scales = _lr_scales(seeds, lr_scales)
        return fn(interp.encode(program), seeds, scales)

    def run(self, programs: Sequence[Program], seeds, lr_scales=None) -> List[SeedRuns]:
        t0 = time.perf_counter()
        pending = [self.dispatch(p, seeds, lr_scales) for p in programs]
        return [_collect(out, t0) for out in pending]

    def run_grid(self, program: Program, seeds, scales) -> List[SeedRuns]:
        """``program`` at each learning-rate scale (all dispatched before any is awaited)."""
        t0 = time.perf_counter()
        pending = [self.dispatch(program, seeds, np.full(len(seeds), s, np.float32))
                   for s in scales]
        return [_collect(out, t0) for out in pending]

    def warmup(self, lengths: Optional[Sequence[int]] = None, n_seeds: int = 1):
        """Compile the given buckets (all by default) for ``n_seeds`` seeds."""
        for L in lengths or self.buckets:
            interp, fn = self._loop(L)
            fn(interp.encode(Program((), ("w", "m", "v"))), np.zeros(n_seeds, np.uint32),
               np.ones(n_seeds, np.float32))


class JitEngine(_Loop):
    """The reference path: each program traced and compiled on its own (``jax.jit``)."""

    def _train_fn(self, program: Program):
        update = update_fn(program)

        def train(seeds, lr_scales):
            k_init, k_data = _seed_keys(seeds)
            w0, inst = self.start(k_init)

            def one(w, g, m, v, lr):  # on the task's own pytrees, as a user's optimizer is
                out = update(*(self.unravel(x) for x in (w, g, m, v)), lr[0])
                return tuple(ravel_pytree(x)[0] for x in out)

            lr_step = jax.vmap(one)

            def body(t, carry):
                w, m, v, bad = carry
                loss, g = self.grads(w, k_data, t, inst)
                u, m, v = lr_step(w, g, m, v, self.lr(t, lr_scales))
                return w - u, m, v, bad | ~jnp.isfinite(loss)

            zeros = jnp.zeros_like(w0)
            w, _, _, bad = lax.fori_loop(0, self.steps, body,
                                         (w0, zeros, zeros, jnp.zeros(seeds.shape, bool)))
            return self.finish(w, bad, inst)

        return jax.jit(train)

    def run_grid(self, program: Program, seeds, scales) -> List[SeedRuns]:
        fn = self._train_fn(program)
        seeds = np.asarray(seeds, np.uint32)
        out = []
        for s in scales:
            t0 = time.perf_counter()
            out.append(_collect(fn(seeds, np.full(len(seeds), s, np.float32)), t0))
        return out

    def run(self, programs: Sequence[Program], seeds, lr_scales=None) -> List[SeedRuns]:
        seeds = np.asarray(seeds, np.uint32)
        scales = _lr_scales(seeds, lr_scales)
        results = []
        for p in programs:
            t0 = time.perf_counter()
            results.append(_collect(self._train_fn(p)(seeds, scales), t0))
        return results

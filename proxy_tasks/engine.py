"""Evaluation engines: train a task with optimizers and report final validation losses.

One training loop, :class:`TrainLoop` (``proxy_tasks/tasks/base.py`` states it for one seed),
run by three engines with three kinds of optimizer:

* :class:`FastEngine` compiles the loop once per length bucket, with the program an argument
  (``optevo.dsl.interpreter``): no compile per candidate. On a GPU or TPU it trains many
  programs per call, the loop vmapped over them (``optevo.proxy_tasks.batching``). With
  ``OPTEVO_NATIVE=on`` it trains a program of the native step's ops with that step
  (``optevo.proxy_tasks.native``), a second loop per bucket.
* ``JitEngine`` (:mod:`optevo.proxy_tasks.jit_engine`), the reference: each program traced
  into its own ``jax.jit``.
* ``OptaxEngine`` (:mod:`optevo.proxy_tasks.optax_engine`): optax transformations (the
  baselines of ``optevo.proxy_tasks.baselines.specs``), one compile per kind and structural
  setting.

The loop, for seeds ``s_1 .. s_N`` batched along a leading axis:

* keys: ``(k_init, k_data) = split(PRNGKey(s))`` (:func:`seed_keys`); ``w_0`` is
  ``task.init_params(k_init)`` raveled to one flat vector (``w``: ``(N, P)``), the problem
  instance ``task.instance(k_init)``; ``batch_t = task.train_batch(fold_in(k_data, t))``.
* an :class:`Optimizer` ``(init, update)`` acts on the flat, seed-batched parameters:
  ``state = init(w_0)``; at step ``t``, ``u, state = update(state, w_t, g_t, lr_t)`` with
  ``g_t = grad loss(w_t; batch_t)`` and ``lr_t = task.lr_schedule(t, steps) * lr_scale``
  (``(N, 1)``), and ``w_{t+1} = w_t - u``.
* divergence (``fitness.diverged``, the one rule): seed ``s`` diverged when a training loss
  was not finite, its final validation loss is not finite, or ``max_i |w_i|`` is not
  ``<= task.max_abs_weight``; its loss is then ``inf``. A program's step whose statements
  give a value that is not finite (float32 overflow, a NaN out of a domain) returns a NaN
  update (both program engines: ``check_finite``; the value is propagated as NaN to the
  outputs, ``execute.update_fn``), so the seed diverges: overflow is never a switch that
  stops the weights.
* without an observer the loop stops as soon as every seed has diverged (a ``while_loop``:
  all losses are ``inf`` whatever follows, so the result is the same). With ``observe(w, t)``
  (one seed's flat parameters) it runs all ``steps`` (a ``scan``, differentiable) and returns
  the values at ``t = 0`` (the start) and after each step, stacked: ``(steps + 1, N, ...)``.

Other training code calls the same loop: the Lion-K trace (``optevo.simplify.lion_k_trace``,
given a :class:`TrainLoop` by its caller) and ``scripts/experiments/calibrate_tasks.py``;
L2L meta-training (:mod:`optevo.proxy_tasks.l2l_train`) shares its pieces
(:func:`seed_keys`, :meth:`TrainLoop.start`, :meth:`TrainLoop.grads`), not the whole run
(its docstring says why).

Length buckets (:func:`buckets_for`): powers of two from the smallest (8) up to the first
that holds the longest program; a program runs in the smallest bucket that holds its live
statements (``interpreter.bucket_for``).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.flatten_util import ravel_pytree

from optevo.dsl.interpreter import Interpreter, bucket_for, encoded_form
from optevo.dsl.program import Program

from . import batching, fitness, native
from .tasks.base import Task


def buckets_for(max_length: int, smallest: int = 8) -> Tuple[int, ...]:
    """Interpreter length buckets: ``smallest, 2 smallest, ...`` up to the first that holds
    ``max_length`` live statements (``(8, 16, 32)`` for 32; ``(smallest,)`` when it holds)."""
    if not (isinstance(smallest, int) and smallest >= 1 and smallest & (smallest - 1) == 0):
        raise ValueError(f"smallest bucket must be a power of two, got {smallest!r}")
    out = [smallest]
    while out[-1] < max_length:
        out.append(out[-1] * 2)
    return tuple(out)


DEFAULT_BUCKETS = buckets_for(32)


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


class Optimizer(NamedTuple):
    """An optimizer on flat, seed-batched parameters ``w`` ``(N, P)``: ``state = init(w)``;
    ``u, state = update(state, w, g, lr)`` (``lr``: ``(N, 1)``), and the loop sets
    ``w <- w - u``."""

    init: Callable[[Any], Any]
    update: Callable[[Any, Any, Any, Any], Tuple[Any, Any]]


class Trained(NamedTuple):
    """What :meth:`TrainLoop.train` returns: per-seed final validation losses (``inf`` where
    diverged), divergence flags, final flat parameters ``(N, P)`` and the observed values
    (``(steps + 1, N, ...)``; None without an observer)."""

    losses: Any
    diverged: Any
    w: Any
    observed: Any = None


def seed_keys(seeds):
    """The seeds' init and data keys: ``split(PRNGKey(s))`` for each seed ``s``."""
    keys = jax.vmap(jax.random.PRNGKey)(jnp.asarray(seeds, jnp.uint32))
    pair = jax.vmap(jax.random.split)(keys)
    return pair[:, 0], pair[:, 1]


class TrainLoop:
    """The task's training loop on flat parameters, seeds batched (module docstring)."""

    seed_keys = staticmethod(seed_keys)

    def __init__(self, task: Task, steps: Optional[int] = None):
        self.task = task
        self.steps = int(steps or task.steps)
        params0 = task.init_params(jax.random.PRNGKey(0))
        _, self.unravel = ravel_pytree(params0)
        self.leaf_shapes = [tuple(np.shape(x)) for x in jax.tree.leaves(params0)]
        self.leaf_sizes = [int(np.size(x)) for x in jax.tree.leaves(params0)]

    def start(self, k_init, init_scale: float = 1.0):
        """Flat initial parameters ``(N, P)`` (times ``init_scale``) and the problem
        instances of the seeds (both drawn from the seeds' init keys: ``Task.instance``)."""
        w = jax.vmap(lambda k: ravel_pytree(self.task.init_params(k))[0])(k_init)
        w = w if init_scale == 1.0 else w * init_scale
        return w, jax.vmap(self.task.instance)(k_init)

    def grads(self, w, k_data, t, inst):
        """Training loss and gradient for each seed, at step ``t``: ``(N,)``, ``(N, P)``."""
        task = self.task

        def one(wi, key, ii):
            batch = task.train_batch(jax.random.fold_in(key, t))
            return jax.value_and_grad(lambda x: task.loss_of(self.unravel(x), batch, ii))(wi)

        return jax.vmap(one)(w, k_data, inst)

    def lr(self, t, lr_scales):
        """The ``lr`` input at step ``t``, ``(N, 1)``: ``lr_schedule(t, steps) * lr_scales``."""
        return (self.task.lr_schedule(t, self.steps) * lr_scales)[:, None].astype(jnp.float32)

    def val_losses(self, w, inst):
        """Validation loss of each seed's flat parameters ``(N,)`` (no divergence rule)."""
        return jax.vmap(lambda x, ii: self.task.val_loss_of(self.unravel(x), ii))(w, inst)

    def finish(self, w, bad, inst):
        """Final losses (``inf`` where diverged) and divergence flags; ``bad``: a training
        loss was not finite."""
        val = self.val_losses(w, inst)
        max_abs = jnp.max(jnp.abs(w), axis=-1)
        diverged = bad | fitness.diverged(val, max_abs, self.task.max_abs_weight, jnp)
        return jnp.where(diverged, jnp.inf, val), diverged

    def train(self, opt: Optimizer, seeds, lr_scales,
              observe: Optional[Callable] = None, init_scale: float = 1.0) -> Trained:
        """Train ``opt`` on ``seeds`` (``lr_scales``: one per seed); traceable, so callers jit
        it with what varies as arguments. ``observe(w, t)``: see the module docstring."""
        k_init, k_data = seed_keys(seeds)
        w, inst = self.start(k_init, init_scale)

        def step(carry, t):
            w, state, bad = carry
            loss, g = self.grads(w, k_data, t, inst)
            u, state = opt.update(state, w, g, self.lr(t, lr_scales))
            return w - u, state, bad | ~jnp.isfinite(loss)

        carry = (w, opt.init(w), jnp.zeros(w.shape[:1], bool))
        seen = None
        if observe is None:
            _, w, _, bad = lax.while_loop(
                lambda c: (c[0] < self.steps) & ~jnp.all(c[-1]),
                lambda c: (c[0] + 1, *step(c[1:], c[0])), (jnp.int32(0), *carry))
        else:
            look = jax.vmap(observe, in_axes=(0, None))

            def body(c, t):
                c = step(c, t)
                return c, look(c[0], t + 1)

            (w, _, bad), seen = lax.scan(body, carry, jnp.arange(self.steps))
            seen = jax.tree.map(lambda a, b: jnp.concatenate([a[None], b]),
                                look(carry[0], 0), seen)
        losses, diverged = self.finish(w, bad, inst)
        return Trained(losses, diverged, w, seen)

    def tree_optimizer(self, update: Callable) -> Optimizer:
        """An optimizer written on the task's own pytrees, ``update(w, g, m, v, lr) -> (u,
        m, v)`` with scalar ``lr`` (a program's ``update_fn``), as one :class:`Optimizer`:
        ``m = v = 0`` at the start, each seed updated on its own."""

        def one(w, g, m, v, lr):
            out = update(*(self.unravel(x) for x in (w, g, m, v)), lr[0])
            return tuple(ravel_pytree(x)[0] for x in out)

        def step(state, w, g, lr):
            u, m, v = jax.vmap(one)(w, g, *state, lr)
            return u, (m, v)

        return Optimizer(lambda w: (jnp.zeros_like(w), jnp.zeros_like(w)), step)


def per_seed_scales(seeds: np.ndarray, lr_scales) -> np.ndarray:
    """One learning-rate scale per seed (1.0 when none is given)."""
    if lr_scales is None:
        return np.ones(len(seeds), np.float32)
    return np.broadcast_to(np.asarray(lr_scales, np.float32), seeds.shape)


def collect(out, t0: float) -> SeedRuns:
    """Device ``(losses, diverged)`` to :class:`SeedRuns` (seconds since ``t0``)."""
    losses, diverged = jax.device_get(out)
    return SeedRuns(np.asarray(losses, np.float64), np.asarray(diverged, bool),
                    time.perf_counter() - t0)


class Engine(TrainLoop):
    """An engine dispatches asynchronously: ``dispatch(item, seeds, lr_scales)`` starts one
    run and returns device arrays; ``run`` and ``run_grid`` dispatch all before awaiting
    any, so a batch runs back to back with no Python in between."""

    def dispatch(self, item, seeds, lr_scales=None):
        raise NotImplementedError

    def run(self, items: Sequence, seeds, lr_scales=None) -> List[SeedRuns]:
        """Every item trained on every seed (``lr_scales``: a float or one per seed)."""
        return self.run_pairs([(p, lr_scales) for p in items], seeds)

    def run_grid(self, item, seeds, scales) -> List[SeedRuns]:
        """``item`` at each learning-rate scale (all dispatched before any is awaited)."""
        return self.run_pairs([(item, float(s)) for s in scales], seeds)

    def run_pairs(self, pairs, seeds) -> List[SeedRuns]:
        """``(item, lr_scales)`` pairs on ``seeds``, all dispatched before any is awaited."""
        t0 = time.perf_counter()
        pending = [self.dispatch(p, seeds, scales) for p, scales in pairs]
        return [collect(out, t0) for out in pending]


class FastEngine(Engine):
    """One compiled training loop per length bucket; programs are data (encoded arrays).
    ``batch_programs`` (None: :func:`batching.default_batching`, on a GPU or TPU): many
    programs per call, vmapped (``optevo.proxy_tasks.batching``). ``native_step`` (None:
    ``OPTEVO_NATIVE``; CPU, one program per call): a program whose statements the native step
    knows runs in a second compiled loop per bucket with that step
    (``optevo.proxy_tasks.native``)."""

    def __init__(self, task: Task, steps: Optional[int] = None,
                 buckets: Sequence[int] = DEFAULT_BUCKETS, check_finite: bool = True,
                 batch_programs: Optional[bool] = None, native_step: Optional[bool] = None):
        super().__init__(task, steps)
        self.buckets = tuple(sorted(buckets))
        self.check_finite = check_finite  # off only to time the check (scripts/bench/eval.py)
        self.batch_programs = (batching.default_batching() if batch_programs is None
                               else bool(batch_programs))
        # batched on an accelerator, the statement loop is unrolled (batching's docstring)
        self.unroll = self.batch_programs and jax.default_backend() != "cpu"
        # the native step has the finite check built in; it runs one program per call
        self.native = (native.wanted() if native_step is None else bool(native_step)) \
            and check_finite and not self.batch_programs
        if self.native:
            native.load()
        self._compiled: Dict[int, tuple] = {}
        self._native: Dict[int, tuple] = {}

    def _train_fn(self, interp: Interpreter, step: Callable):
        """The training loop with the program an argument: ``step(code, regs, w, g, lr) ->
        (regs, update)``, ``m`` and ``v`` living in the bank."""

        def train(code, seeds, lr_scales):
            def update(regs, w, g, lr):
                regs, u = step(code, regs, w, g, lr)
                return u, regs

            init = (lambda w: interp.init_regs(code, *w.shape))
            return self.train(Optimizer(init, update), seeds, lr_scales)[:2]

        return train

    def _loop(self, length: int):
        if length in self._compiled:
            return self._compiled[length]
        interp = Interpreter(self.leaf_shapes, length,  # static shapes: matrix ops
                             unroll=self.unroll, check_finite=self.check_finite)
        train = self._train_fn(interp, interp.step)
        batched = jax.vmap(train, in_axes=(0, None, 0))  # programs and their lr scales
        entry = (interp, jax.jit(batched if self.batch_programs else train))
        self._compiled[length] = entry
        return entry

    def _native_loop(self, length: int):
        """``(opcodes, compiled loop)`` of the native step for this bucket's interpreter."""
        if length not in self._native:
            interp, _ = self._loop(length)
            ops = native.opmap(interp.branch_keys)
            train = self._train_fn(interp, lambda code, regs, w, g, lr: native.step(
                code, ops, regs, w, g, lr))
            self._native[length] = (ops, jax.jit(train))
        return self._native[length]

    def _prepare(self, program: Program):
        """``(code, compiled loop, native?)``: ``program`` encoded for its bucket, and the
        loop that trains it (the native step's where it runs every statement)."""
        L = self.bucket(program)
        interp, fn = self._loop(L)
        code = interp.encode(program)
        if self.native:
            ops, native_fn = self._native_loop(L)
            if native.runs(code, ops):
                return code, native_fn, True
        return code, fn, False

    def runs_native(self, program: Program) -> bool:
        """Would this engine train ``program`` with the native step?"""
        return self.native and self._prepare(program)[2]

    def bucket(self, program: Program) -> int:
        return bucket_for(len(encoded_form(program).stmts), self.buckets)

    def dispatch(self, program: Program, seeds, lr_scales=None):
        """Start training ``program`` on ``seeds`` (asynchronous); returns device arrays."""
        if self.batch_programs:  # a batch of one
            (_, res), = self._dispatch_batched([(program, lr_scales)], seeds)
            return tuple(a[0] for a in res)
        code, fn, _ = self._prepare(program)
        seeds = np.asarray(seeds, np.uint32)
        return fn(code, seeds, per_seed_scales(seeds, lr_scales))

    def run_pairs(self, pairs, seeds) -> List[SeedRuns]:
        if not self.batch_programs:
            return super().run_pairs(pairs, seeds)
        t0 = time.perf_counter()
        out: List[Optional[SeedRuns]] = [None] * len(pairs)
        for chunk, res in self._dispatch_batched(pairs, seeds):  # all dispatched first
            losses, diverged = jax.device_get(res)
            for j, i in enumerate(chunk):
                out[i] = collect((losses[j], diverged[j]), t0)
        return out

    def _dispatch_batched(self, pairs, seeds):
        """``(program, lr_scales)`` pairs in calls of many programs (``batching.plan``);
        returns ``(indices, (losses, diverged))`` per call, rows past the indices padding."""
        seeds = np.asarray(seeds, np.uint32)
        calls = []
        for length, chunk in batching.plan([self.bucket(p) for p, _ in pairs]):
            interp, fn = self._loop(length)
            rows = batching.pad(chunk)
            codes = {i: interp.encode(pairs[i][0]) for i in chunk}
            calls.append((chunk, fn(batching.stack([codes[i] for i in rows]), seeds,
                                    np.stack([per_seed_scales(seeds, pairs[i][1]) for i in rows]))))
        return calls

    def warmup(self, lengths: Optional[Sequence[int]] = None, n_seeds: int = 1):
        """Compile the given buckets (all by default) for ``n_seeds`` seeds."""
        for L in lengths or self.buckets:
            interp, fn = self._loop(L)
            code = interp.encode(Program((), ("w", "m", "v")))
            scales = np.ones(n_seeds, np.float32)
            if self.batch_programs:  # a batch of one
                code, scales = batching.stack([code]), scales[None]
            fn(code, np.zeros(n_seeds, np.uint32), scales)

"""Optax optimizers as baselines, trained by exactly the loop the program engines use.

AdamW (with bias correction and epsilon, which programs cannot express) and Lion are not
programs, so they get their own path: :class:`OptaxEngine` runs the task loop of
``proxy_tasks/base.py`` (the same seeds, init and data keys, batches, gradient, divergence
checks and final validation loss as :class:`~optevo.proxy_tasks.engine.FastEngine`), with the
optax transformation in place of the program. The learning rate at step ``t`` is
``learning_rate * multiplier * task.lr_schedule(t, steps)``, as a program with the
constant ``lr = lr * learning_rate`` would see it.

One compiled function per optimizer kind and seed count: the hyperparameters (learning rate,
betas, eps, weight decay) and the per-seed multipliers are arguments, so tuning them never
recompiles. A baseline travels to workers as one line of text::

    optax:adamw learning_rate=0.001 b1=0.9 b2=0.999 eps=1e-08 weight_decay=0.0001
"""

from __future__ import annotations

import time
from typing import Dict, List, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from .base import Task
from .engine import SeedRuns, _collect, _Loop, _seed_keys

PREFIX = "optax:"
HYPER = {  # kind -> hyperparameter names and defaults (optax's, except weight decay)
    "adamw": {"learning_rate": 1e-3, "b1": 0.9, "b2": 0.999, "eps": 1e-8,
              "weight_decay": 1e-4},
    "lion": {"learning_rate": 1e-4, "b1": 0.9, "b2": 0.99, "weight_decay": 1e-2},
}


def _make(kind: str, lr, h):
    if kind == "adamw":
        return optax.adamw(lr, b1=h["b1"], b2=h["b2"], eps=h["eps"],
                           weight_decay=h["weight_decay"])
    return optax.lion(lr, b1=h["b1"], b2=h["b2"], weight_decay=h["weight_decay"])


def spec_text(kind: str, **hyper) -> str:
    """The one-line form of a baseline; unknown kinds or keys raise ValueError."""
    if kind not in HYPER:
        raise ValueError(f"unknown optax baseline {kind!r}; known: {', '.join(HYPER)}")
    bad = set(hyper) - set(HYPER[kind])
    if bad:
        raise ValueError(f"optax {kind}: unknown hyperparameter(s) {sorted(bad)}; "
                         f"known: {', '.join(HYPER[kind])}")
    h = {**HYPER[kind], **hyper}
    return PREFIX + kind + "".join(f" {k}={float(h[k])!r}" for k in HYPER[kind])


def parse_spec(text: str) -> Tuple[str, Dict[str, float]]:
    """Inverse of :func:`spec_text`."""
    if not text.startswith(PREFIX):
        raise ValueError(f"not an optax baseline: {text[:40]!r}")
    kind, *pairs = text[len(PREFIX):].split()
    hyper = {k: float(v) for k, v in (p.split("=", 1) for p in pairs)}
    spec_text(kind, **hyper)  # validates
    return kind, {**HYPER[kind], **hyper}


def is_spec(text: str) -> bool:
    return text.startswith(PREFIX)


class OptaxEngine(_Loop):
    """``run(spec_text, seeds, lr_scales)``: per-seed final validation losses, as the engines."""

    def __init__(self, task: Task, steps: Optional[int] = None):
        super().__init__(task, steps)
        self._compiled: Dict[Tuple[str, int], object] = {}

    def _fn(self, kind: str, n_seeds: int):
        key = (kind, n_seeds)
        if key in self._compiled:
            return self._compiled[key]
        steps, task = self.steps, self.task

        def train(seeds, lr_scales, hyper):
            k_init, k_data = _seed_keys(seeds)
            w, inst = self.start(k_init)

            def opt(scale):
                lr = lambda count: hyper["learning_rate"] * scale * task.lr_schedule(count, steps)
                return _make(kind, lr, hyper)

            state = jax.vmap(lambda wi, s: opt(s).init(wi))(w, lr_scales)

            def body(carry):
                t, w, state, bad = carry
                loss, g = self.grads(w, k_data, t, inst)
                u, state = jax.vmap(lambda gi, si, wi, s: opt(s).update(gi, si, wi))(
                    g, state, w, lr_scales)
                return t + 1, w + u, state, bad | ~jnp.isfinite(loss)

            def cond(carry):
                return (carry[0] < steps) & ~jnp.all(carry[-1])

            carry = (jnp.int32(0), w, state, jnp.zeros(seeds.shape, bool))
            _, w, _, bad = lax.while_loop(cond, body, carry)
            return self.finish(w, bad, inst)

        fn = jax.jit(train)
        self._compiled[key] = fn
        return fn

    def dispatch(self, text: str, seeds, lr_scales=None):
        kind, hyper = parse_spec(text)
        seeds = np.asarray(seeds, np.uint32)
        scales = np.ones(len(seeds), np.float32) if lr_scales is None else \
            np.broadcast_to(np.asarray(lr_scales, np.float32), seeds.shape)
        h = {k: jnp.float32(v) for k, v in hyper.items()}
        return self._fn(kind, len(seeds))(seeds, jnp.asarray(scales), h)

    def run(self, texts: Sequence[str], seeds, lr_scales=None) -> List[SeedRuns]:
        t0 = time.perf_counter()
        pending = [self.dispatch(t, seeds, lr_scales) for t in texts]
        return [_collect(out, t0) for out in pending]

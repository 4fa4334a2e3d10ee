"""The optax baselines' engine: optax transformations trained by the engines' one loop.

:class:`OptaxEngine` runs the baselines of ``optevo.proxy_tasks.baselines.specs`` (one line
of text each: AdamW, Lion, hypergradient and learned optimizers) in
:class:`optevo.proxy_tasks.engine.TrainLoop`, with the same seeds, init and data keys,
batches, gradient, divergence rule and final validation loss as a program. It sits beside
``engine`` (which holds the loop and the program engines) so that neither module imports the
other's optimizers.
"""

from __future__ import annotations

from typing import Callable, Dict, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from .baselines import specs
from .engine import Engine, Optimizer, per_seed_scales
from .tasks.base import Task


class OptaxEngine(Engine):
    """Optax baselines (``specs``: one line of text each) in the same loop: the learning rate
    at step ``t`` is ``learning_rate * lr_scale * task.lr_schedule(t, steps)``, as a program
    with the constant ``lr * learning_rate`` would see it. One compile per kind, structural
    setting (``specs.STATIC``, ``specs.STRINGS``) and seed count: numeric hyperparameters
    and per-seed scales are arguments, so tuning them never recompiles."""

    def __init__(self, task: Task, steps: Optional[int] = None):
        super().__init__(task, steps)
        self._compiled: Dict[Tuple, Callable] = {}

    def _fn(self, kind: str, n_seeds: int, structural: Tuple = ()):
        key = (kind, n_seeds, structural)
        if key not in self._compiled:
            self._compiled[key] = jax.jit(
                lambda seeds, lr_scales, hyper: self.train(
                    self._optimizer(kind, {**hyper, **dict(structural)}, lr_scales),
                    seeds, lr_scales)[:2])
        return self._compiled[key]

    def _optimizer(self, kind: str, hyper, lr_scales) -> Optimizer:
        """The transformation of every seed (its own scale), negated: optax adds ``u``."""
        sched = (lambda count: self.task.lr_schedule(count, self.steps))
        opt = (lambda s: specs.make_transformation(kind, hyper, s, sched))

        def update(state, w, g, lr):
            u, state = jax.vmap(lambda gi, si, wi, s: opt(s).update(gi, si, wi))(
                g, state, w, lr_scales)
            return -u, state

        return Optimizer(lambda w: jax.vmap(lambda wi, s: opt(s).init(wi))(w, lr_scales),
                         update)

    def dispatch(self, text: str, seeds, lr_scales=None):
        """Start training the baseline ``text`` on ``seeds`` (asynchronous)."""
        kind, hyper = specs.parse_spec(text)
        seeds = np.asarray(seeds, np.uint32)
        fixed = specs.STATIC + specs.STRINGS
        h = {k: jnp.float32(v) for k, v in hyper.items() if k not in fixed}
        structural = tuple((k, v) for k, v in hyper.items() if k in fixed)
        scales = jnp.asarray(per_seed_scales(seeds, lr_scales))
        return self._fn(kind, len(seeds), structural)(seeds, scales, h)

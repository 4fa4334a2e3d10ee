"""What the built-in tasks share (pure jax.numpy, jittable): parameter initialisation, the
classification loss, and :class:`ScheduledTask`, the run settings every built-in task takes.

Each piece has one definition here, so two tasks that use it compute it identically: a change
to the initialisation or the loss reaches every task at once.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from . import schedules
from .base import Rule, Task


SCALE_KEY = 0x5CA1  # fold_in tag of a seed's gradient-scale draw (grad_scale > 0)


def with_grad_scale(inst: dict, key, d: float, mid: float = 0.0) -> dict:
    """``inst`` with the seed's training-loss scale ``10^(mid + U(-d, d))`` under ``"scale"``
    (the options ``grad_scale = d`` and, where a task takes it, ``grad_scale_mid = mid``);
    unchanged when both are 0, so a task's default instance is what it was without them."""
    if d > 0.0 or mid != 0.0:
        u = jax.random.uniform(jax.random.fold_in(key, SCALE_KEY), (), jnp.float32, -1, 1)
        inst["scale"] = 10.0 ** (mid + d * u)
    return inst


def times_scale(loss, inst):
    """The training loss times the seed's ``grad_scale`` factor, where there is one: every
    gradient scaled, the value the optimizer never sees otherwise."""
    return loss * inst["scale"] if "scale" in inst else loss


def dense_init(key, fan_in: int, fan_out: int, gain: float = 1.0):
    """A float32 weight matrix drawn from N(0, gain^2 / fan_in) (LeCun/He-style scaling)."""
    std = gain / jnp.sqrt(jnp.float32(fan_in))
    return (jax.random.normal(key, (fan_in, fan_out), jnp.float32) * std).astype(jnp.float32)


def softmax_cross_entropy(logits, labels):
    """Mean over the leading axes of -log softmax(logits)[label] (labels are integer ids)."""
    logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    nll = -jnp.take_along_axis(logp, labels[..., None].astype(jnp.int32), axis=-1)[..., 0]
    return jnp.mean(nll)


class ScheduledTask(Task):
    """A task with the run settings of every built-in task: ``steps``, ``batch_size``,
    ``seeds`` (ints), ``max_abs_weight`` (a float) and an lr ``schedule`` (a kind or mapping
    for :func:`.schedules.make`, built with ``schedule_options`` such as ``warmup`` and
    ``total_steps``), which :meth:`lr_schedule` follows. Not registered: a base class.
    ``OPTIONS`` holds the rules of these settings (a data-free task may take batch 0)."""

    OPTIONS = {"steps": Rule(int, ge=1), "batch_size": Rule(int, ge=0), "seeds": Rule(int, ge=1),
               "max_abs_weight": Rule(float, gt=0), "schedule": Rule(test=schedules.problem),
               "warmup": Rule(float, ge=0)}

    def __init__(self, steps, batch_size, seeds, schedule, max_abs_weight, **schedule_options):
        self.steps, self.batch_size, self.seeds = int(steps), int(batch_size), int(seeds)
        self.schedule = schedule
        self.max_abs_weight = float(max_abs_weight)
        self.schedule_options = dict(schedule_options)
        self._sched = schedules.make(schedule, **schedule_options)

    def lr_schedule(self, step, total_steps):
        return self._sched(step, total_steps)

    def _default_instance(self, inst):
        """``inst``, or for direct calls (tests, notebooks) without one, seed 0's instance
        (a task with :meth:`instance`)."""
        return self.instance(jax.random.split(jax.random.PRNGKey(0))[0]) if inst is None \
            else inst

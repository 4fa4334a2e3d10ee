"""Meta-training of the learned LSTM optimizer (:mod:`optevo.proxy_tasks.baselines.l2l`) on a
proxy task, as Andrychowicz et al., NeurIPS 2016, section 2 and 3.

The meta-loss of the LSTM weights ``phi`` is the training loss summed along the trajectory
(the paper's ``w_t = 1``), here averaged over a batch of seeds::

    L(phi) = E_seeds [ (1/T) sum_{t=1..T} f(theta_t; batch_t) ],
    theta_{t+1} = theta_t + s_t * lstm_phi(grad f(theta_t; batch_t))

where the task's training loop is the engines' (``proxy_tasks/tasks/base.py``: the seed's
init and data keys, ``batch_t = task.train_batch(fold_in(k_data, t))``, ``s_t`` the task's
lr schedule). It is minimised by truncated backpropagation through time: a trajectory of
``steps`` steps is cut into unrolls of ``unroll`` steps; each unroll is one meta-step, whose
gradient flows through the ``unroll`` updates only (the carried parameters and LSTM states
are detached between unrolls); when a trajectory ends (or diverges) the next one starts from
fresh seeds. As in the paper, second derivatives are dropped: the gradient fed to the LSTM
is treated as a constant input (``d grad f / d phi = 0``), which the code gets by computing
``f`` and ``grad f`` at ``stop_gradient(theta)`` and adding the first-order term
``<grad f, theta - stop_gradient(theta)>`` (value ``f``, derivative ``grad f``). The
meta-optimizer is optax Adam on the globally clipped meta-gradient.

An unroll shares the engine's loop pieces (``optevo.proxy_tasks.engine``: :func:`seed_keys`,
``TrainLoop.start`` and ``TrainLoop.grads``) but not ``TrainLoop.train``, which runs whole
trajectories from the seeds' start to the divergence rule. An unroll instead starts
mid-trajectory at a traced step ``t0`` from a carried state (parameters and LSTM states),
masks the steps past the horizon, returns its carry detached, and needs the training loss at
every step with the first-order term attached, from the same evaluation as the gradient
the LSTM reads (at ``stop_gradient(theta)``, so that no second derivative enters the
meta-gradient). This module sits beside the engines, not among the baselines: it imports
the engine, and the engines import the baselines (``optax_engine.OptaxEngine`` runs them;
the import contracts put the engines above the baselines), so it is one layer above both.

Seeds: trajectory ``j`` of a run with ``seed`` trains on seeds
``META_BASE + 100000 * seed + batch * j + (0..batch-1)`` (``seeds.py``), which never
overlap the fitness seeds (0..K-1) or the fresh seeds (``FRESH_BASE + i``) of the rest of
optevo.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Callable, List, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from .baselines import l2l
from .engine import TrainLoop, seed_keys
from .seeds import META_BASE
from .tasks.base import Task



@dataclasses.dataclass
class MetaTrained:
    """The outcome of :func:`meta_train`: weights (numpy, with the fixed constants), the
    meta-loss of every meta-step, wall seconds and a one-line description."""

    weights: dict
    history: List[float]
    seconds: float
    info: str

    def save(self, path) -> object:
        return l2l.save(path, self.weights, self.info)


def _check(name: str, value, low: int = 1) -> int:
    if value is None or int(value) != value or value < low:
        raise l2l.L2LError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


class Unroller:
    """The task's training loop driven by the LSTM, in unrolls of ``unroll`` steps."""

    def __init__(self, task: Task, steps: Optional[int] = None, unroll: int = 20,
                 hidden: int = l2l.HIDDEN):
        self.loop, self.hidden = TrainLoop(task, steps), int(hidden)
        self.task, self.steps = task, self.loop.steps
        self.unroll = min(_check("unroll", unroll), self.steps)

    def start(self, seeds):
        """Carry of a fresh trajectory: (params (B, P), LSTM state, data keys, instances, t)."""
        k_init, k_data = seed_keys(seeds)
        x, inst = self.loop.start(k_init)
        state = tuple(jnp.zeros(x.shape + (self.hidden,), jnp.float32) for _ in range(4))
        return x, state, k_data, inst, jnp.int32(0)

    def _step(self, phi, x, state, k_data, inst, t):
        """All seeds at step ``t``: (loss terms at x (B,), new x, new LSTM state)."""
        xs = lax.stop_gradient(x)
        loss, g = self.loop.grads(xs, k_data, t, inst)
        term = loss + jax.vmap(jnp.vdot)(g, x - xs)  # value f, derivative grad f, no Hessian
        u, state = jax.vmap(l2l.lstm_step, in_axes=(None, 0, 0))(phi, g, state)
        return term, x + self.task.lr_schedule(t, self.steps) * u, state

    def loss(self, phi, carry):
        """Mean training loss at ``theta_{t0+1} .. theta_{t0+K}`` (steps past the horizon
        masked), with the carry at the end of the unroll (detached)."""
        x, state, k_data, inst, t0 = carry

        def body(c, j):
            x, state = c
            t = t0 + j
            term, x2, s2 = self._step(phi, x, state, k_data, inst, t)
            live = t < self.steps
            keep = (lambda a, b: jnp.where(live, a, b))
            return (keep(x2, x), jax.tree.map(keep, s2, state)), (term, t)

        (x, state), (terms, ts) = lax.scan(body, (x, state), jnp.arange(self.unroll))
        last, _, _ = self._step(phi, x, state, k_data, inst, t0 + self.unroll)
        terms = jnp.concatenate([terms[1:], last[None]], axis=0)  # (K, B)
        ts = ts + 1  # term j is the loss at theta_{t0+j+1}
        w = (ts <= self.steps).astype(jnp.float32)[:, None]
        mean = jnp.sum(terms * w) / (jnp.sum(w) * terms.shape[1])
        carry = (lax.stop_gradient(x), jax.tree.map(lax.stop_gradient, state), k_data, inst,
                 t0 + self.unroll)
        return mean, carry


def _split(weights):
    trainable = {k: jnp.asarray(weights[k], jnp.float32) for k in l2l.WEIGHT_KEYS}
    fixed = {k: jnp.asarray(weights[k], jnp.float32) for k in l2l.ALL_KEYS
             if k not in l2l.WEIGHT_KEYS}
    return trainable, fixed


def trajectory_loss(weights, task: Task, seeds, steps: Optional[int] = None,
                    unroll: int = 50) -> float:
    """The meta-loss of ``weights`` on ``seeds``: mean training loss over a whole trajectory
    (``inf`` if it diverged). No gradients."""
    u = Unroller(task, steps, unroll, l2l.hidden_size(weights))
    phi = {**_split(weights)[0], **_split(weights)[1]}
    fn = jax.jit(u.loss)
    carry, total, n = u.start(seeds), 0.0, 0
    while int(carry[-1]) < u.steps:
        k = min(u.unroll, u.steps - int(carry[-1]))
        mean, carry = fn(phi, carry)
        total, n = total + float(mean) * k, n + k
    return total / n if math.isfinite(total) else math.inf


def meta_train(task: Task, steps: Optional[int] = None, unroll: int = 20,
               meta_steps: int = 200, batch: int = 4, meta_lr: float = 3e-3,
               clip: float = 1.0, seed: int = 0, weights=None,
               log: Optional[Callable[[int, float, float], None]] = None,
               log_every: int = 25) -> MetaTrained:
    """Meta-train the LSTM optimizer on ``task`` (module docstring): ``meta_steps`` Adam
    steps (``meta_lr``, gradients clipped to global norm ``clip``), each on one unroll of
    ``unroll`` steps of ``batch`` seeds. Starts from ``weights`` or fresh ones drawn with
    ``seed``. ``log(meta_step, mean meta-loss of the last log_every steps, seconds)``."""
    meta_steps, batch = _check("meta_steps", meta_steps), _check("batch", batch)
    if steps is not None:
        _check("steps", steps)
    if not (meta_lr > 0 and clip > 0):
        raise l2l.L2LError(f"meta_lr and clip must be positive, got {meta_lr}, {clip}")
    phi, fixed = _split(weights if weights is not None
                        else l2l.init_weights(jax.random.PRNGKey(seed)))
    u = Unroller(task, steps, unroll, l2l.hidden_size(phi))
    opt = optax.chain(optax.clip_by_global_norm(clip), optax.adam(meta_lr))
    opt_state = opt.init(phi)

    @jax.jit
    def meta_step(phi, opt_state, carry):
        (loss, carry), grads = jax.value_and_grad(
            lambda p: u.loss({**p, **fixed}, carry), has_aux=True)(phi)
        ok = jnp.isfinite(loss) & jnp.all(jnp.stack(
            [jnp.all(jnp.isfinite(g)) for g in jax.tree.leaves(grads)]))
        upd, new_state = opt.update(grads, opt_state, phi)
        new_phi = optax.apply_updates(phi, upd)
        pick = (lambda a, b: jnp.where(ok, a, b))
        return (jax.tree.map(pick, new_phi, phi), jax.tree.map(pick, new_state, opt_state),
                carry, loss)

    t_start, history, traj = time.perf_counter(), [], 0
    seeds = (lambda j: META_BASE + 100000 * seed + batch * j + np.arange(batch))
    carry = u.start(seeds(traj))
    for i in range(meta_steps):
        phi, opt_state, carry, loss = meta_step(phi, opt_state, carry)
        history.append(float(loss))
        if int(carry[-1]) >= u.steps or not math.isfinite(history[-1]):
            traj += 1
            carry = u.start(seeds(traj))
        if log and ((i + 1) % log_every == 0 or i + 1 == meta_steps):
            recent = [x for x in history[-log_every:] if math.isfinite(x)]
            log(i + 1, float(np.mean(recent)) if recent else math.inf,
                time.perf_counter() - t_start)
    out = {k: np.asarray(v) for k, v in {**phi, **fixed}.items()}
    info = (f"meta-trained on {task.name} ({u.steps} steps), unroll {u.unroll}, "
            f"{meta_steps} meta-steps of {batch} seeds, Adam {meta_lr:g}, clip {clip:g}, "
            f"seed {seed}, {traj + 1} trajectories")
    return MetaTrained(out, history, time.perf_counter() - t_start, info)

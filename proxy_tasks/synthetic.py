"""Synthetic optimisation problems: ``quadratic`` and ``rosenbrock``.

Both are data-free and tiny, so a run costs microseconds per step; they test an optimizer's
behaviour on ill-conditioning (quadratic) and on a curved, narrow valley (rosenbrock).
Their ``val_loss`` is the noise-free objective plus a tiny positive ``floor``, so it is always
positive and a ratio ``loss / baseline_loss`` (see :mod:`optevo.proxy_tasks.fitness`) is
well defined even for a run that lands exactly on the minimum.

**Nothing here can be guessed.** The optimum (and the rotation of the quadratic) is drawn
per seed (:meth:`Task.instance`, from the seed's init key), at a random offset from the start
that has the same distribution as before the draw existed (the start relative to the optimum
is what makes the problem). A program that ignores the gradient and jumps to a fixed point
(0, 1, +-1, sign(w), a fixed point of log|w|, or decays the weights to 0) lands far from the
optimum: with a fixed optimum, ``update = w - 1.0`` solved Rosenbrock (loss 1e-6 against 4.6
for the tuned AdamW start). ``tests/test_task_quality.py`` checks such programs lose to the
tuned start on every built-in task.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from . import schedules
from .base import Task, register

_OPT_KEY = 0x0715  # fold_in tag of the optimum's draw (independent of the start's draw)


class _Synthetic(Task):
    """A data-free problem in ``x`` (``params = {"x": x}``) whose seed draws an instance;
    ``loss = f(x, inst) + noise * xi . x`` with ``xi ~ N(0, I)`` the batch (additive gradient
    noise of std ``noise`` per coordinate), ``val_loss = f(x, inst) + floor``."""

    batch_size = 0

    def __init__(self, dim, noise, steps, seeds, floor, schedule, max_abs_weight):
        self.dim = int(dim)
        self.noise = float(noise)
        self.steps = int(steps)
        self.seeds = int(seeds)
        self.floor = float(floor)
        self.max_abs_weight = float(max_abs_weight)
        self.schedule = schedule
        self._sched = schedules.make(schedule)

    def _f(self, x, inst):  # pragma: no cover - interface
        raise NotImplementedError

    def _default_instance(self, inst):
        """Direct calls (tests, notebooks) without an instance use seed 0's."""
        return self.instance(jax.random.split(jax.random.PRNGKey(0))[0]) if inst is None \
            else inst

    spike_prob = 0.0  # heavy-tailed noise: each coordinate's noise is spike_scale x larger
    spike_scale = 1.0  # with probability spike_prob (set by the quadratic's options)

    def train_batch(self, key):
        k_noise, k_spike = jax.random.split(key)
        xi = jax.random.normal(k_noise, (self.dim,), jnp.float32)
        if self.spike_prob <= 0.0:
            return xi
        spike = jax.random.bernoulli(k_spike, self.spike_prob, (self.dim,))
        return jnp.where(spike, self.spike_scale * xi, xi)

    def loss(self, params, batch, inst=None):
        inst = self._default_instance(inst)
        return self._f(params["x"], inst) + self.noise * jnp.dot(batch, params["x"])

    def val_loss(self, params, inst=None):
        return self._f(params["x"], self._default_instance(inst)) + self.floor

    def lr_schedule(self, step, total_steps):
        return self._sched(step, total_steps)


@register("quadratic")
class Quadratic(_Synthetic):
    """Ill-conditioned quadratic ``f(x) = 0.5 (x - x*)^T A (x - x*)``, ``A = Q diag(lam) Q^T``.

    ``lam`` is log-spaced over ``[lam_max / cond, lam_max]`` (``cond`` = condition number). Per
    seed: the start ``x0 ~ N(0, I)``, a random rotation ``Q`` (Haar, so a diagonal
    preconditioner does not see the eigenbasis) and the minimiser
    ``x* = x0 - init_scale * N(0, I)`` (so ``x0 - x*`` has the same law as when ``x*`` was
    fixed; ``problem_seed`` changes the family of draws).

    Defaults (scripts/calibrate_tasks.py): eigenvalues in [0.01, 10], noise 0.01 and a cosine
    lr. The large top eigenvalue makes gradients O(10) at the start, so programs that are not
    scale-free (sin(g), SGD) are clearly worse. Losses span orders of magnitude, so normalised
    ratios here can be far from 1.
    """

    def __init__(self, dim: int = 32, cond: float = 1e3, lam_max: float = 10.0,
                 noise: float = 0.01, init_scale: float = 1.0, steps: int = 300, seeds: int = 16,
                 problem_seed: int = 0, floor: float = 1e-6, schedule: str = "cosine",
                 max_abs_weight: float = 1e3, rotate: bool = True, spike_prob: float = 0.0,
                 spike_scale: float = 1.0):
        super().__init__(dim, noise, steps, seeds, floor, schedule, max_abs_weight)
        self.rotate = bool(rotate)
        self.spike_prob, self.spike_scale = float(spike_prob), float(spike_scale)
        self.cond = float(cond)
        self.init_scale = float(init_scale)
        self.problem_seed = int(problem_seed)
        lam = float(lam_max) * np.logspace(-np.log10(self.cond), 0.0, self.dim)
        self.eigenvalues = jnp.asarray(lam, jnp.float32)

    def init_params(self, key):
        return {"x": jax.random.normal(key, (self.dim,), jnp.float32)}

    def instance(self, key):
        k_rot, k_opt = jax.random.split(
            jax.random.fold_in(jax.random.fold_in(key, _OPT_KEY), self.problem_seed))
        q, r = jnp.linalg.qr(jax.random.normal(k_rot, (self.dim, self.dim), jnp.float32))
        q = q * jnp.sign(jnp.diag(r))  # Haar-distributed rotation
        if not self.rotate:  # axis-aligned: the eigenvalues in a random order per seed
            q = jnp.eye(self.dim, dtype=jnp.float32)[jax.random.permutation(k_rot, self.dim)]
        x0 = self.init_params(key)["x"]
        x_star = x0 - self.init_scale * jax.random.normal(k_opt, (self.dim,), jnp.float32)
        return {"A": (q * self.eigenvalues) @ q.T, "x_star": x_star}

    def _f(self, x, inst):
        d = x - inst["x_star"]
        return 0.5 * d @ (inst["A"] @ d)

    def describe(self):
        return (f"{self.name}: dim {self.dim}, cond {self.cond:g}, noise {self.noise:g}, "
                f"{self.steps} steps, {self.seeds} seeds, {self.schedule} lr, optimum and "
                f"rotation drawn per seed")


@register("rosenbrock")
class Rosenbrock(_Synthetic):
    """Chained N-dimensional Rosenbrock, scaled by ``scale`` and shifted per seed:

    ``f(x) = scale * sum_{i=0}^{N-2} [100 (y_{i+1} - y_i^2)^2 + (1 - y_i)^2]``,
    ``y = d * (x - s)``, minimum 0 at ``x = s + d`` (``d * d = 1``). Per seed, the shift
    ``s ~ N(0, shift^2)``, the signs ``d`` (+-1 per coordinate) and the start
    ``x0 = s + d * ((-1.2, 1, -1.2, 1, ...) + N(0, init_noise^2))``: relative to its valley
    the start is the classic one, but neither the optimum nor the direction from the start to
    it can be guessed (with ``d = 1`` a 5-minute search learnt to add the same constant push
    to every coordinate). Element-wise optimizers without weight decay (SGD, signum) are
    equivariant to ``d``: their results are those of the unflipped problem. With ``noise > 0`` the training gradient gets additive
    N(0, noise^2) noise from the batch key (default: deterministic, the batch is unused).

    Defaults (scripts/calibrate_tasks.py): 8 dimensions, 300 steps, cosine lr, 16 seeds (a run
    is deterministic given its start, and the final loss varies by ~40% across starts);
    ``shift`` 0.5: jumping to 1 then costs a loss of ~100 against ~3.3 for the tuned AdamW
    start, while a translation-dependent program such as ``g + w`` stays distinguishable
    from SGD (with shift 1 its seed-to-seed spread hid the difference).
    """

    def __init__(self, dim: int = 8, scale: float = 1.0, init_noise: float = 0.1,
                 noise: float = 0.0, shift: float = 0.5, steps: int = 300, seeds: int = 16,
                 floor: float = 1e-6, schedule: str = "cosine", max_abs_weight: float = 1e3):
        if dim < 2:
            raise ValueError("rosenbrock needs dim >= 2")
        super().__init__(dim, noise, steps, seeds, floor, schedule, max_abs_weight)
        self.scale = float(scale)
        self.init_noise = float(init_noise)
        self.shift = float(shift)
        self.x0 = jnp.asarray(np.resize(np.array([-1.2, 1.0]), self.dim), jnp.float32)

    def instance(self, key):
        k_shift, k_sign = jax.random.split(jax.random.fold_in(key, _OPT_KEY))
        return {"s": self.shift * jax.random.normal(k_shift, (self.dim,), jnp.float32),
                "d": jnp.where(jax.random.bernoulli(k_sign, 0.5, (self.dim,)), 1.0,
                               -1.0).astype(jnp.float32)}

    def init_params(self, key):
        y = self.x0 + self.init_noise * jax.random.normal(key, (self.dim,), jnp.float32)
        inst = self.instance(key)
        return {"x": (inst["s"] + inst["d"] * y).astype(jnp.float32)}

    def _f(self, x, inst):
        y = inst["d"] * (x - inst["s"])
        return self.scale * jnp.sum(100.0 * (y[1:] - y[:-1] ** 2) ** 2 + (1.0 - y[:-1]) ** 2)

    def describe(self):
        return (f"{self.name}: dim {self.dim}, scale {self.scale:g}, noise {self.noise:g}, "
                f"{self.steps} steps, {self.seeds} seeds, {self.schedule} lr, optimum and "
                f"axis signs drawn per seed (shift {self.shift:g})")

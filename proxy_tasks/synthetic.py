"""Synthetic optimisation problems: ``quadratic`` and ``rosenbrock``.

Both are data-free and tiny, so a run costs microseconds per step; they test an optimizer's
behaviour on ill-conditioning (quadratic) and on a curved, narrow valley (rosenbrock).
Their ``val_loss`` is the noise-free objective plus a tiny positive ``floor``, so it is always
positive and a ratio ``loss / baseline_loss`` (see :mod:`optevo.proxy_tasks.fitness`) is
well defined even for a run that lands exactly on the minimum.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .base import Task, register
from . import schedules


@register("quadratic")
class Quadratic(Task):
    """Ill-conditioned quadratic ``f(x) = 0.5 (x - x*)^T A (x - x*)``, ``A = Q diag(lam) Q^T``.

    ``lam`` is log-spaced over ``[lam_min, lam_min * cond]`` (``cond`` = condition number), ``Q``
    is a random rotation (so a diagonal preconditioner does not see the eigenbasis); ``Q`` and
    the minimiser ``x*`` (N(0,1) entries) are fixed by ``problem_seed`` (not the run seed).
    The initial point, drawn from the run's key, is ``x* + N(0, init_scale^2)`` per entry.

    Training loss on a batch ``xi ~ N(0, I)`` (drawn from the batch key) is
    ``f(x) + noise * xi . x``, so the gradient is ``A (x - x*) + noise * xi``: a stochastic
    gradient with additive noise of standard deviation ``noise`` per coordinate.
    ``val_loss = f(x) + floor``.

    Defaults (scripts/calibrate_tasks.py): eigenvalues in [0.01, 10], noise 0.01 and a cosine
    lr. The large top eigenvalue makes gradients O(10) at the start, so programs that are not
    scale-free (sin(g), SGD) are clearly worse; signum < AdamW start < Lion << SGD there.
    Losses span orders of magnitude, so normalised ratios here can be far from 1.
    """

    def __init__(self, dim: int = 32, cond: float = 1e3, lam_max: float = 10.0,
                 noise: float = 0.01, init_scale: float = 1.0, steps: int = 300, seeds: int = 16,
                 problem_seed: int = 0, floor: float = 1e-6, schedule: str = "cosine",
                 max_abs_weight: float = 1e3):
        self.dim = int(dim)
        self.cond = float(cond)
        self.noise = float(noise)
        self.init_scale = float(init_scale)
        self.steps = int(steps)
        self.batch_size = 0
        self.seeds = int(seeds)
        self.floor = float(floor)
        self.max_abs_weight = float(max_abs_weight)
        self.schedule = schedule
        self._sched = schedules.make(schedule)
        rng = np.random.RandomState(problem_seed)
        q, r = np.linalg.qr(rng.randn(self.dim, self.dim))
        q = q * np.sign(np.diag(r))  # Haar-distributed rotation
        lam = float(lam_max) * np.logspace(-np.log10(self.cond), 0.0, self.dim)
        self.eigenvalues = jnp.asarray(lam, jnp.float32)
        self.A = jnp.asarray((q * lam) @ q.T, jnp.float32)
        self.x_star = jnp.asarray(rng.randn(self.dim), jnp.float32)

    def init_params(self, key):
        x0 = self.x_star + self.init_scale * jax.random.normal(key, (self.dim,), jnp.float32)
        return {"x": x0.astype(jnp.float32)}

    def train_batch(self, key):
        return jax.random.normal(key, (self.dim,), jnp.float32)

    def _f(self, params):
        d = params["x"] - self.x_star
        return 0.5 * d @ (self.A @ d)

    def loss(self, params, batch):
        return self._f(params) + self.noise * jnp.dot(batch, params["x"])

    def val_loss(self, params):
        return self._f(params) + self.floor

    def metrics(self, params):
        return {"dist_to_opt": jnp.linalg.norm(params["x"] - self.x_star)}

    def lr_schedule(self, step, total_steps):
        return self._sched(step, total_steps)

    def describe(self):
        return (f"{self.name}: dim {self.dim}, cond {self.cond:g}, noise {self.noise:g}, "
                f"{self.steps} steps, {self.seeds} seeds, {self.schedule} lr")


@register("rosenbrock")
class Rosenbrock(Task):
    """Chained N-dimensional Rosenbrock, scaled by ``scale``:

    ``f(x) = scale * sum_{i=0}^{N-2} [100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2]``, minimum 0 at
    ``x = (1, ..., 1)``. The start is the classic ``(-1.2, 1, -1.2, 1, ...)`` plus
    ``N(0, init_noise^2)`` per entry drawn from the run's key. With ``noise > 0`` the training
    gradient gets additive N(0, noise^2) noise from the batch key (default: deterministic,
    the batch is unused). ``val_loss = f(x) + floor``.

    Defaults (scripts/calibrate_tasks.py): 8 dimensions, 300 steps, cosine lr, 16 seeds (a run
    is deterministic given its start, and the final loss varies by ~40% across starts). Here
    Lion (0.37) and signum (0.54) beat the AdamW start (3.4) and SGD (6.7).
    """

    def __init__(self, dim: int = 8, scale: float = 1.0, init_noise: float = 0.1,
                 noise: float = 0.0, steps: int = 300, seeds: int = 16, floor: float = 1e-6,
                 schedule: str = "cosine", max_abs_weight: float = 1e3):
        if dim < 2:
            raise ValueError("rosenbrock needs dim >= 2")
        self.dim = int(dim)
        self.scale = float(scale)
        self.init_noise = float(init_noise)
        self.noise = float(noise)
        self.steps = int(steps)
        self.batch_size = 0
        self.seeds = int(seeds)
        self.floor = float(floor)
        self.max_abs_weight = float(max_abs_weight)
        self.schedule = schedule
        self._sched = schedules.make(schedule)
        self.x0 = jnp.asarray(np.resize(np.array([-1.2, 1.0]), self.dim), jnp.float32)

    def init_params(self, key):
        x = self.x0 + self.init_noise * jax.random.normal(key, (self.dim,), jnp.float32)
        return {"x": x.astype(jnp.float32)}

    def train_batch(self, key):
        return jax.random.normal(key, (self.dim,), jnp.float32)

    def _f(self, params):
        x = params["x"]
        return self.scale * jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)

    def loss(self, params, batch):
        return self._f(params) + self.noise * jnp.dot(batch, params["x"])

    def val_loss(self, params):
        return self._f(params) + self.floor

    def metrics(self, params):
        return {"dist_to_opt": jnp.linalg.norm(params["x"] - 1.0)}

    def lr_schedule(self, step, total_steps):
        return self._sched(step, total_steps)

    def describe(self):
        return (f"{self.name}: dim {self.dim}, scale {self.scale:g}, noise {self.noise:g}, "
                f"{self.steps} steps, {self.seeds} seeds, {self.schedule} lr")

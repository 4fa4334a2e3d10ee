"""Planted tasks: problems built so that one known optimizer truly wins, for the planted
rediscovery checks (``scripts/experiments/planted_rediscovery.py``). ``binary_regression``
(sign-momentum with decay wins) lives with the synthetic tasks; here:

* ``deep_linear``: Muon (orthogonalised momentum) wins. A deep linear network fitting a
  rotated target map, judged on every singular mode alike.
* ``diagonal_scales``: Adam wins. A diagonal quadratic whose coordinates' curvatures span
  three decades, with gradient noise that scales with them, judged on the distance to the
  answer in every coordinate alike.

Like every built-in task, the answer is drawn per seed (nothing can be guessed), the
validation loss is the noise-free criterion plus a tiny ``floor``, and programs that ignore
the gradient lose (``tests/test_task_quality.py``). Each premise (the target, tuned on
learning rate and decay, beats the tuned start by more than 5 standard errors on fresh
seeds, and the near-misses a search could stop at lose to it) is measured by
``scripts/experiments/planted_premise.py`` (BENCHMARKS.md, "Planted rediscovery").
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .base import Rule, check_options, register
from .common import ScheduledTask, times_scale, with_grad_scale

_ANSWER_KEY = 0xA550  # fold_in tag of the instance's draw (independent of the start's)


def _haar(key, n):
    """A Haar-distributed ``n x n`` rotation."""
    q, r = jnp.linalg.qr(jax.random.normal(key, (n, n), jnp.float32))
    return q * jnp.sign(jnp.diag(r))


@register("deep_linear")
class DeepLinear(ScheduledTask):
    """A deep linear network ``x -> x W_0 W_1 ... W_{depth-1}`` (each ``dim x dim``) fitted
    to a target map ``T = U diag(s) V^T`` from noisy samples.

    Per seed: rotations ``U``, ``V`` (Haar) and the start ``W_i ~ N(0, init_scale^2 / dim)``;
    the singular values ``s`` are log-spaced from 1 down to ``10^-spread``. A step sees
    ``batch_size`` inputs ``x ~ N(0, I)`` with targets ``x T + noise * e``; training loss
    ``0.5 mean_b |x_b P - y_b|^2`` with ``P`` the product. ``val_loss`` is the mean squared
    relative error of each singular mode, ``|U^T (P - T) V diag(1/s)|_F^2 / dim + floor``:
    every mode counts the same, so the small ones decide it.

    Why Muon wins: from a small start, gradient descent learns mode ``i`` in a time
    proportional to ``1 / s_i`` (Saxe, McClelland & Ganguli 2014, "Exact solutions to the
    nonlinear dynamics of learning in deep linear neural networks"), and Adam's per-coordinate
    scaling cannot see the rotated modes; orthogonalising a layer's update gives every mode
    the same step. The noise makes momentum pay: orthogonalising the raw gradient loses to
    the tuned AdamW start here. Defaults: 3 layers of 16, ``s`` from 1 to 0.1, noise 0.3,
    batches of 16, 300 steps, cosine lr. Measured on 16 fresh seeds, each tuned on learning
    rate and decay: Muon beats the AdamW start by 8.8 standard errors, ``orthogonalize(g)``
    and signum lose to it (BENCHMARKS.md)."""

    OPTIONS = {"dim": Rule(int, ge=2), "depth": Rule(int, ge=1), "spread": Rule(float, ge=0),
               "init_scale": Rule(float, ge=0), "noise": Rule(float, ge=0),
               "floor": Rule(float, gt=0)}

    def __init__(self, dim: int = 16, depth: int = 3, spread: float = 1.0,
                 batch_size: int = 16, init_scale: float = 0.01, noise: float = 0.3,
                 steps: int = 300, seeds: int = 16, floor: float = 1e-6,
                 schedule: str = "cosine", max_abs_weight: float = 1e3):
        check_options(type(self), locals())
        super().__init__(steps=steps, batch_size=max(int(batch_size), 1), seeds=seeds,
                         schedule=schedule, max_abs_weight=max_abs_weight)
        self.dim, self.depth, self.spread = int(dim), int(depth), float(spread)
        self.init_scale, self.noise, self.floor = float(init_scale), float(noise), float(floor)
        self.s = jnp.asarray(10.0 ** -np.linspace(0.0, self.spread, self.dim), jnp.float32)

    def init_params(self, key):
        return {f"W{i}": self.init_scale / np.sqrt(self.dim)
                * jax.random.normal(k, (self.dim, self.dim), jnp.float32)
                for i, k in enumerate(jax.random.split(key, self.depth))}

    def instance(self, key):
        k_u, k_v = jax.random.split(jax.random.fold_in(key, _ANSWER_KEY))
        U, V = _haar(k_u, self.dim), _haar(k_v, self.dim)
        return {"U": U, "V": V, "T": (U * self.s) @ V.T}

    def train_batch(self, key):
        k_x, k_e = jax.random.split(key)
        shape = (self.batch_size, self.dim)
        return {"x": jax.random.normal(k_x, shape, jnp.float32),
                "e": jax.random.normal(k_e, shape, jnp.float32)}

    def _product(self, params):
        p = params["W0"]
        for i in range(1, self.depth):
            p = p @ params[f"W{i}"]
        return p

    def loss(self, params, batch, inst=None):
        inst = self._default_instance(inst)
        x = batch["x"]
        r = x @ self._product(params) - x @ inst["T"] - self.noise * batch["e"]
        return 0.5 * jnp.mean(jnp.sum(r * r, axis=-1))

    def val_loss(self, params, inst=None):
        inst = self._default_instance(inst)
        d = inst["U"].T @ (self._product(params) - inst["T"]) @ inst["V"] / self.s[None, :]
        return jnp.sum(d * d) / self.dim + self.floor

    def describe(self):
        return (f"{self.name}: {self.depth} layers of {self.dim}, modes 1 to "
                f"{10 ** -self.spread:g}, noise {self.noise:g}, batch {self.batch_size}, "
                f"{self.steps} steps, {self.seeds} seeds, {self.schedule} lr, target drawn "
                f"per seed, every mode weighted alike")


@register("diagonal_scales")
class DiagonalScales(ScheduledTask):
    """A diagonal quadratic ``sum_i lam_i (0.5 (x_i - x*_i)^2 + noise * xi_i x_i)`` whose
    curvatures ``lam_i = 10^U(-spread, 0)`` are drawn per seed and coordinate, axis-aligned.

    Per seed: ``lam``, the start ``x0 ~ N(0, I)`` and ``x* = x0 - N(0, I)``; the gradient
    noise ``lam_i * noise * xi_i`` (``xi ~ N(0, I)`` per step) scales with the curvature, as
    minibatch noise does, so every coordinate has the same signal-to-noise ratio at the
    same distance. ``val_loss = mean_i (x_i - x*_i)^2 + floor``: every coordinate counts the
    same, so the flat ones decide it.

    Why Adam wins: one learning rate cannot suit curvatures three decades apart, so SGD with
    momentum leaves the flat coordinates where they started (it must not overshoot the
    steep ones); a per-coordinate normalization by a running estimate of the gradient's
    magnitude moves each at its own pace. The sign of momentum is scale-free too, but it
    takes full steps where the gradient is only noise (near the answer), where Adam's step
    shrinks with the signal-to-noise ratio. Defaults: 32 coordinates, 3 decades, noise 1,
    300 steps, cosine lr. Measured on 16 fresh seeds, each tuned on learning rate and decay:
    Adam beats the SGD-with-momentum start by 8.2 standard errors, signum reaches 1.7x
    Adam's loss (BENCHMARKS.md).

    ``grad_scale = d`` (off by default) multiplies each seed's training loss, so every
    gradient, by ``10^U(-d, d)``, as ``binary_regression`` does: a normalization that is only
    close to scale-free over the default range of gradient sizes (``sin g / running |sin
    g|``) then meets gradients it has not seen; ``val_loss`` is unchanged.
    ``grad_scale_mid = c`` moves that range's centre to ``10^c``: ``grad_scale = 2,
    grad_scale_mid = 2`` draws ``10^U(0, 4)``, one-sided, so that the smallest gradients stay
    far above an ``eps`` of 1e-8 while the largest reach a bounded map's saturation."""

    OPTIONS = {"dim": Rule(int, ge=1), "spread": Rule(float, ge=0), "noise": Rule(float, ge=0),
               "floor": Rule(float, gt=0), "grad_scale": Rule(float, ge=0),
               "grad_scale_mid": Rule(float)}

    def __init__(self, dim: int = 32, spread: float = 3.0, noise: float = 1.0,
                 steps: int = 300, seeds: int = 16, floor: float = 1e-6,
                 schedule: str = "cosine", max_abs_weight: float = 1e3, batch_size: int = 0,
                 grad_scale: float = 0.0, grad_scale_mid: float = 0.0):
        check_options(type(self), locals())
        super().__init__(steps=steps, batch_size=batch_size, seeds=seeds, schedule=schedule,
                         max_abs_weight=max_abs_weight)
        self.dim, self.spread = int(dim), float(spread)
        self.noise, self.floor = float(noise), float(floor)
        self.grad_scale, self.grad_scale_mid = float(grad_scale), float(grad_scale_mid)

    def init_params(self, key):
        return {"x": jax.random.normal(key, (self.dim,), jnp.float32)}

    def instance(self, key):
        k_lam, k_opt = jax.random.split(jax.random.fold_in(key, _ANSWER_KEY))
        lam = 10.0 ** jax.random.uniform(k_lam, (self.dim,), jnp.float32, -self.spread, 0.0)
        x0 = self.init_params(key)["x"]
        return with_grad_scale(
            {"lam": lam, "x_star": x0 - jax.random.normal(k_opt, (self.dim,), jnp.float32)},
            key, self.grad_scale, self.grad_scale_mid)

    def train_batch(self, key):
        return jax.random.normal(key, (self.dim,), jnp.float32)

    def loss(self, params, batch, inst=None):
        inst = self._default_instance(inst)
        x = params["x"]
        d = x - inst["x_star"]
        return times_scale(jnp.sum(inst["lam"] * (0.5 * d * d + self.noise * batch * x)), inst)

    def val_loss(self, params, inst=None):
        inst = self._default_instance(inst)
        d = params["x"] - inst["x_star"]
        return jnp.mean(d * d) + self.floor

    def describe(self):
        return (f"{self.name}: dim {self.dim}, curvatures over {self.spread:g} decades, "
                f"noise {self.noise:g}, "
                + (f"gradient scale 10^U({self.grad_scale_mid - self.grad_scale:g}, "
                   f"{self.grad_scale_mid + self.grad_scale:g}) per seed, "
                   if self.grad_scale or self.grad_scale_mid else "")
                + f"{self.steps} steps, {self.seeds} seeds, "
                f"{self.schedule} lr, curvatures and answer drawn per seed")

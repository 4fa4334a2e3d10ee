"""Synthetic optimisation problems: ``quadratic``, ``rosenbrock`` and ``binary_regression``.

All are data-free and tiny, so a run costs microseconds per step; they test an optimizer's
behaviour on ill-conditioning (quadratic), on a curved, narrow valley (rosenbrock), and on
an under-determined problem whose answer is a corner of a box (binary_regression, the
planted-rediscovery task where sign-momentum with weight decay truly wins).
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

from .base import Rule, check_options, register
from .common import SCALE_KEY, ScheduledTask, times_scale, with_grad_scale

_OPT_KEY = 0x0715  # fold_in tag of the optimum's draw (independent of the start's draw)


class _Synthetic(ScheduledTask):
    """A data-free problem in ``x`` (``params = {"x": x}``) whose seed draws an instance;
    ``loss = f(x, inst) + noise * xi . x`` with ``xi ~ N(0, I)`` the batch (additive gradient
    noise of std ``noise`` per coordinate), ``val_loss = f(x, inst) + floor``.

    Options that change the gradient and never ``val_loss`` (all off by default):

    * ``spike_prob``, ``spike_scale``: heavy-tailed noise; each coordinate's ``xi`` is
      ``spike_scale`` times larger with probability ``spike_prob``.
    * ``grad_scale = d``: each seed's training loss (so every gradient) is multiplied by
      ``10^U(-d, d)``. Scale-free optimizers (Adam, sign methods) do not notice; a program
      that clips at a fixed threshold (``arctan(g)``) clips everything on one seed and
      nothing on another.
    * ``scale_noise = d``: at every step each gradient coordinate is multiplied by its own
      ``10^U(-d, d)``: its sign is kept and its size is noise (``loss`` keeps its value; the
      factor enters through ``stop_gradient``).
    """

    OPTIONS = {"dim": Rule(int, ge=1), "noise": Rule(float, ge=0), "floor": Rule(float, gt=0),
               "spike_prob": Rule(float, ge=0, le=1), "spike_scale": Rule(float, ge=0),
               "grad_scale": Rule(float, ge=0), "scale_noise": Rule(float, ge=0)}

    def __init__(self, dim, noise, steps, seeds, floor, schedule, max_abs_weight,
                 spike_prob=0.0, spike_scale=1.0, grad_scale=0.0, scale_noise=0.0,
                 batch_size=0):
        super().__init__(steps=steps, batch_size=batch_size, seeds=seeds, schedule=schedule,
                         max_abs_weight=max_abs_weight)
        self.spike_prob, self.spike_scale = float(spike_prob), float(spike_scale)
        self.grad_scale, self.scale_noise = float(grad_scale), float(scale_noise)
        self.dim, self.noise, self.floor = int(dim), float(noise), float(floor)

    def _f(self, x, inst):  # pragma: no cover - interface
        raise NotImplementedError

    def train_batch(self, key):
        k_noise, k_spike = jax.random.split(key)
        xi = jax.random.normal(k_noise, (self.dim,), jnp.float32)
        if self.spike_prob > 0.0:
            spike = jax.random.bernoulli(k_spike, self.spike_prob, (self.dim,))
            xi = jnp.where(spike, self.spike_scale * xi, xi)
        if self.scale_noise <= 0.0:
            return xi
        u = jax.random.uniform(jax.random.fold_in(key, SCALE_KEY), (self.dim,), jnp.float32,
                               -1.0, 1.0)
        return {"xi": xi, "s": 10.0 ** (self.scale_noise * u)}

    def loss(self, params, batch, inst=None):
        inst = self._default_instance(inst)
        x = params["x"]
        if isinstance(batch, dict):  # scale_noise: the gradient is s * grad, the value kept
            x0 = jax.lax.stop_gradient(x)
            x, batch = x0 + batch["s"] * (x - x0), batch["xi"]
        return times_scale(self._f(x, inst) + self.noise * jnp.dot(batch, x), inst)

    def val_loss(self, params, inst=None):
        return self._f(params["x"], self._default_instance(inst)) + self.floor


@register("quadratic")
class Quadratic(_Synthetic):
    """Ill-conditioned quadratic ``f(x) = 0.5 (x - x*)^T A (x - x*)``, ``A = Q diag(lam) Q^T``.

    ``lam`` is log-spaced over ``[lam_max / cond, lam_max]`` (``cond`` = condition number). Per
    seed: the start ``x0 ~ N(0, I)``, a random rotation ``Q`` (Haar, so a diagonal
    preconditioner does not see the eigenbasis) and the minimiser
    ``x* = x0 - init_scale * N(0, I)`` (so ``x0 - x*`` has the same law as when ``x*`` was
    fixed; ``problem_seed`` changes the family of draws).

    Defaults (scripts/experiments/calibrate_tasks.py): eigenvalues in [0.01, 10], noise 0.01 and a cosine
    lr. The large top eigenvalue makes gradients O(10) at the start, so programs that are not
    scale-free (sin(g), SGD) are clearly worse. Losses span orders of magnitude, so normalised
    ratios here can be far from 1.
    """

    OPTIONS = {"cond": Rule(float, ge=1), "lam_max": Rule(float, gt=0),
               "init_scale": Rule(float, gt=0),  # 0: the start is the optimum
               "problem_seed": Rule(int, ge=0, le=2**32 - 1)}

    def __init__(self, dim: int = 32, cond: float = 1e3, lam_max: float = 10.0,
                 noise: float = 0.01, init_scale: float = 1.0, steps: int = 300, seeds: int = 16,
                 problem_seed: int = 0, floor: float = 1e-6, schedule: str = "cosine",
                 max_abs_weight: float = 1e3, rotate: bool = True, spike_prob: float = 0.0,
                 spike_scale: float = 1.0, grad_scale: float = 0.0, scale_noise: float = 0.0):
        check_options(type(self), locals())
        super().__init__(dim, noise, steps, seeds, floor, schedule, max_abs_weight,
                         spike_prob, spike_scale, grad_scale, scale_noise)
        self.rotate = bool(rotate)
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
        return with_grad_scale({"A": (q * self.eigenvalues) @ q.T, "x_star": x_star}, key,
                               self.grad_scale)

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

    Defaults (scripts/experiments/calibrate_tasks.py): 8 dimensions, 300 steps, cosine lr, 16 seeds (a run
    is deterministic given its start, and the final loss varies by ~40% across starts);
    ``shift`` 0.5: jumping to 1 then costs a loss of ~100 against ~3.3 for the tuned AdamW
    start, while a translation-dependent program such as ``g + w`` stays distinguishable
    from SGD (with shift 1 its seed-to-seed spread hid the difference).
    """

    OPTIONS = {"dim": Rule(int, ge=2), "scale": Rule(float, gt=0),
               "init_noise": Rule(float, ge=0), "shift": Rule(float, ge=0)}

    def __init__(self, dim: int = 8, scale: float = 1.0, init_noise: float = 0.1,
                 noise: float = 0.0, shift: float = 0.5, steps: int = 300, seeds: int = 16,
                 floor: float = 1e-6, schedule: str = "cosine", max_abs_weight: float = 1e3,
                 spike_prob: float = 0.0, spike_scale: float = 1.0, grad_scale: float = 0.0,
                 scale_noise: float = 0.0):
        check_options(type(self), locals())
        super().__init__(dim, noise, steps, seeds, floor, schedule, max_abs_weight,
                         spike_prob, spike_scale, grad_scale, scale_noise)
        self.scale = float(scale)
        self.init_noise = float(init_noise)
        self.shift = float(shift)
        self.x0 = jnp.asarray(np.resize(np.array([-1.2, 1.0]), self.dim), jnp.float32)

    def instance(self, key):
        k_shift, k_sign = jax.random.split(jax.random.fold_in(key, _OPT_KEY))
        return with_grad_scale(
            {"s": self.shift * jax.random.normal(k_shift, (self.dim,), jnp.float32),
             "d": jnp.where(jax.random.bernoulli(k_sign, 0.5, (self.dim,)), 1.0,
                            -1.0).astype(jnp.float32)}, key, self.grad_scale)

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


@register("binary_regression")
class BinaryRegression(_Synthetic):
    """Under-determined least squares whose solution is a corner of a box.

    Per seed: ``X`` (``rows x dim``, N(0, 1/dim)), ``x* = box * s`` with random signs ``s``,
    ``y = X x*``, the start ``x0 ~ N(0, (init_scale box)^2)``. Training loss:
    ``0.5 mean_b (X_b x - y_b)^2`` over ``batch_size`` random rows (0: all rows);
    ``val_loss = mean((x - x*)^2) / box^2 + floor`` (the distance to the answer: fitting the
    rows is not enough). With ``rows < dim`` the training loss has a whole affine set of
    minimisers; ``x*`` is the only one in the box ``|x_i| <= box`` once ``rows > dim / 2``
    (Mangasarian & Recht 2011). A sign update with decoupled weight decay ``lambda`` (Lion,
    signum) keeps ``|x_i| <= 1 / lambda`` (Chen, Liu et al. 2023, "Lion secretly solves
    constrained optimization"), so with ``lambda = 1 / box`` it finds ``x*``; AdamW's decay
    does not bound the weights that way.

    Defaults: ``box = 100``, the box that the AdamW start's weight decay 0.01 implies once
    its update is a sign (the planted check, configs/planted.yaml, runs the same problem
    scaled by 1/81: ``box = 100/81``, ``noise = 3/81``, far from float32 overflow); 32
    dimensions, 24 rows, batches of 16 rows, gradient noise 3 (``noise * xi . x``), and
    ``grad_scale = 2``. Every part pays (BENCHMARKS.md, 16 fresh seeds, lr-tuned): tuned
    optax AdamW reaches 0.37, Lion 0.28, the AdamW start with ``update = sign(update)``
    after ``m / sqrt_v`` and momentum 0.99 reaches 0.24; without the noise and with all rows, ``sign(g)`` plus the
    decay solves it as well as Lion, and a search found that instead of momentum; with
    both, ``sign(g)`` plus the decay reaches only 0.59. A program that ignores the
    gradient cannot know the signs ``s`` (``sign(w)`` guesses half of them wrong).
    ``batch_size`` 0 trains on all rows."""

    OPTIONS = {"rows": Rule(int, ge=1), "box": Rule(float, gt=0), "init_scale": Rule(float, ge=0)}

    def __init__(self, dim: int = 32, rows: int = 24, box: float = 100.0,
                 batch_size: int = 16, init_scale: float = 0.1, noise: float = 3.0,
                 steps: int = 300, seeds: int = 16, floor: float = 1e-6,
                 schedule: str = "cosine", max_abs_weight: float = 1e3,
                 grad_scale: float = 2.0):
        check_options(type(self), locals())
        super().__init__(dim, noise, steps, seeds, floor, schedule, max_abs_weight,
                         grad_scale=grad_scale, batch_size=batch_size)
        self.rows, self.box, self.init_scale = int(rows), float(box), float(init_scale)

    def init_params(self, key):
        return {"x": self.init_scale * self.box * jax.random.normal(key, (self.dim,),
                                                                     jnp.float32)}

    def instance(self, key):
        k_x, k_s = jax.random.split(jax.random.fold_in(key, _OPT_KEY))
        X = jax.random.normal(k_x, (self.rows, self.dim), jnp.float32) / np.sqrt(self.dim)
        s = jnp.where(jax.random.bernoulli(k_s, 0.5, (self.dim,)), 1.0, -1.0)
        x_star = (self.box * s).astype(jnp.float32)
        return with_grad_scale({"X": X, "y": X @ x_star, "x_star": x_star}, key,
                               self.grad_scale)

    def train_batch(self, key):
        k_rows, k_noise = jax.random.split(key)
        rows = (jnp.arange(self.rows) if self.batch_size <= 0 else
                jax.random.randint(k_rows, (self.batch_size,), 0, self.rows))
        return {"rows": rows, "xi": jax.random.normal(k_noise, (self.dim,), jnp.float32)}

    def loss(self, params, batch, inst=None):
        inst = self._default_instance(inst)
        x = params["x"]
        r = inst["X"][batch["rows"]] @ x - inst["y"][batch["rows"]]
        return times_scale(0.5 * jnp.mean(r * r) + self.noise * jnp.dot(batch["xi"], x),
                                 inst)

    def _f(self, x, inst):
        return jnp.mean((x - inst["x_star"]) ** 2) / self.box ** 2

    def describe(self):
        return (f"{self.name}: dim {self.dim}, {self.rows} rows, box {self.box:g}, batch "
                f"{self.batch_size}, noise {self.noise:g}, {self.steps} steps, {self.seeds} "
                f"seeds, solution drawn per seed")

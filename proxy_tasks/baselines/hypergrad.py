"""Hypergradient optimizers as optax transformations: SGD, SGD with momentum and Adam whose
hyperparameters are adapted during training by gradient descent, stackable to any height.

Source: Chandra, Xie, Ragan-Kelley, Meijer, "Gradient Descent: The Ultimate Optimizer",
NeurIPS 2022 (arXiv 1909.13371) and its reference code (github kach/gradient-descent-the-
ultimate-optimizer, ``gdtuo.py``); the one-level case is Baydin, Cornish, Martinez Rubio,
Schmidt, Wood, "Online Learning Rate Adaptation with Hypergradient Descent", ICLR 2018.

The math. A base optimizer maps the gradient ``g_t = grad f(theta_t)`` and its state to an
update with hyperparameters ``k0`` (a small vector)::

    theta_{t+1} = theta_t + u(k0_t, g_t, state_t),   e.g. SGD: u = -s_t * alpha * g_t

(``s_t``: the task's order-1 learning-rate schedule, 1 by default). Since ``theta_{t+1}``
depends on ``k0_t``, the loss at the next step has a gradient with respect to it, the
hypergradient, computed with one step of history only (older dependence is detached, as in
the paper)::

    h0_{t+1} = d f(theta_{t+1}) / d k0_t = < g_{t+1}, d u_t / d k0 >

(for SGD ``h0_{t+1} = -s_t <g_{t+1}, g_t>``, Baydin et al.'s eq. 4). Level 1 updates ``k0``
by SGD with step ``eta_1``: ``k0_{t+1} = k0_t - eta_1 * h0_{t+1}``. Stacking (the paper's
"hyperoptimizers all the way up"): ``eta_1`` is itself adapted by level 2 with step
``eta_2``, and so on; the top step ``eta_L`` is fixed (``hyper_lr``), and every lower
``eta_k`` starts at ``hyper_lr``. The gradient of the loss with respect to ``eta_k`` follows
from the chain rule through the last update of the level below::

    h1 = < h0, d k0 / d eta_1 > = -< h0_t, h0_{t-1} >,   h_k = h_{k-1,t} * (-h_{k-1,t-1})

Each step (as ``gdtuo.py``'s ``step``): hypergradients bottom-up from the stored tangents,
then the levels are updated top-down (each with its own freshly updated step size), then
the base optimizer steps with the new ``k0``. ``levels=0`` is the plain base optimizer.

Base optimizers and their adapted hyperparameters (as the paper's code):

* SGD: ``u = -s alpha g``; adapts ``alpha``.
* SGD with momentum: ``b = mu b + g``, ``u = -s alpha b``; adapts ``alpha`` and ``mu``.
* Adam: ``m = b1 m + (1-b1) g``, ``v = b2 v + (1-b2) g^2``, ``u = -s alpha mh / (sqrt(vh)
  + eps)`` with bias corrections ``mh = m / (1 - b1^t)``, ``vh = v / (1 - b2^t)``; adapts
  ``alpha``, ``b1`` and ``b2``, the betas through ``b = (tanh x + 1) / 2`` (the paper's
  clamp), so the adapted raw values are ``x = atanh(2 b - 1)``.

One deviation: the paper's Adam starts ``v`` at ``eps`` because sqrt has no derivative at 0;
here ``v`` starts at 0 as in optax (so ``levels=0`` is exactly ``optax.adam``) and sqrt's
derivative at 0 is taken as 0. The step sizes are not clamped (a negative learning rate is
the paper's behaviour too; such runs diverge and are flagged by the engines).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
import optax

PyTree = Any
Schedule = Callable[[jnp.ndarray], jnp.ndarray]


class Base(NamedTuple):
    """A base optimizer with adaptable hyperparameters ``k0`` (a 1-D array).

    names: the hyperparameters' names, in ``k0`` order.
    hyper0: ``(*initial values) -> k0`` (raw: Adam's betas as ``atanh(2 b - 1)``).
    init: ``params -> state``; step: ``(k0, g, state, t, s) -> (update, state)``, ``t`` the
    1-based step number, ``s`` the schedule factor.
    """

    names: Sequence[str]
    hyper0: Callable[..., jnp.ndarray]
    init: Callable[[PyTree], PyTree]
    step: Callable[..., tuple]


def _tree_dot(a, b) -> jnp.ndarray:
    """``sum_i a_i * b_i`` over all leaves; ``b`` leaves may carry a trailing axis."""
    parts = [jnp.tensordot(x.reshape(-1), y.reshape(x.size, -1), axes=1)
             for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))]
    return sum(parts[1:], parts[0])


def _safe_sqrt(x):
    """sqrt(x) with derivative 0 (not inf) at x = 0."""
    pos = x > 0
    return jnp.where(pos, jnp.sqrt(jnp.where(pos, x, 1.0)), 0.0)


def clamp(x):
    """The paper's map from a raw value to (0, 1): ``(tanh x + 1) / 2``."""
    return (jnp.tanh(x) + 1.0) / 2.0


def unclamp(b):
    """Inverse of :func:`clamp`: ``atanh(2 b - 1)``."""
    return jnp.arctanh(2.0 * jnp.asarray(b, jnp.float32) - 1.0)


def sgd_base() -> Base:
    """SGD: ``u = -s alpha g``."""
    def step(k, g, state, t, s):
        return jax.tree.map(lambda x: -s * k[0] * x, g), state
    return Base(("alpha",), lambda a: jnp.stack([jnp.float32(a)]), lambda p: (), step)


def sgdm_base() -> Base:
    """SGD with (heavy-ball) momentum, as torch and the paper: ``b = mu b + g``,
    ``u = -s alpha b`` (``optax.sgd(lr, momentum=mu)``)."""
    def step(k, g, buf, t, s):
        buf = jax.tree.map(lambda b, x: k[1] * b + x, buf, g)
        return jax.tree.map(lambda b: -s * k[0] * b, buf), buf
    return Base(("alpha", "mu"), lambda a, mu: jnp.stack([jnp.float32(a), jnp.float32(mu)]),
                lambda p: jax.tree.map(jnp.zeros_like, p), step)


def adam_base(eps: float = 1e-8) -> Base:
    """Adam with bias correction (``optax.adam(lr, b1, b2, eps)``); betas reparameterised
    by :func:`clamp`."""
    def step(k, g, mv, t, s):
        b1, b2 = clamp(k[1]), clamp(k[2])
        m = jax.tree.map(lambda a, x: b1 * a + (1 - b1) * x, mv[0], g)
        v = jax.tree.map(lambda a, x: b2 * a + (1 - b2) * x * x, mv[1], g)
        c1, c2 = 1 - b1 ** t, 1 - b2 ** t
        u = jax.tree.map(lambda a, b: -s * k[0] * (a / c1) / (_safe_sqrt(b / c2) + eps), m, v)
        return u, (m, v)

    def hyper0(a, b1, b2):
        return jnp.stack([jnp.float32(a), unclamp(b1), unclamp(b2)])

    return Base(("alpha", "b1", "b2"), hyper0,
                lambda p: (jax.tree.map(jnp.zeros_like, p), jax.tree.map(jnp.zeros_like, p)),
                step)


class HyperState(NamedTuple):
    """State of :func:`hypergradient`.

    count: steps taken. k0: the base optimizer's current (raw) hyperparameters. etas: step
    sizes ``eta_1..eta_L`` (the last fixed). inner: the base optimizer's state. tangent:
    ``d u / d k0`` of the last update (leaves with a trailing axis ``len(k0)``; () when
    ``L = 0``). tau1: ``d k0 / d eta_1`` of the last level-1 update (``-h0``). taus:
    ``d eta_{k-1} / d eta_k`` for ``k = 2..L`` (``-h_{k-1}``). h0: the last hypergradient.
    """

    count: jnp.ndarray
    k0: jnp.ndarray
    etas: jnp.ndarray
    inner: PyTree
    tangent: PyTree
    tau1: jnp.ndarray
    taus: jnp.ndarray
    h0: jnp.ndarray


def _hypergrads(g, state: HyperState, levels: int):
    """``[h0 (vector), h1, ..., h_{L-1}]``: the loss gradient w.r.t. ``k0`` and ``eta_k``."""
    h0 = _tree_dot(g, state.tangent)
    hs = [h0]
    if levels >= 2:
        hs.append(jnp.dot(h0, state.tau1))
    for k in range(2, levels):
        hs.append(hs[-1] * state.taus[k - 2])
    return hs


def _descend(state: HyperState, hs, levels: int):
    """Top-down SGD updates of the levels: ``eta_k -= eta_{k+1} h_k`` for ``k = L-1..1``,
    then ``k0 -= eta_1 h0``; returns (k0, etas, tau1, taus)."""
    etas = [state.etas[i] for i in range(levels)]
    taus = [state.taus[i] for i in range(levels - 1)]
    for k in range(levels - 1, 0, -1):
        etas[k - 1] = etas[k - 1] - etas[k] * hs[k]
        taus[k - 1] = -hs[k]
    k0 = state.k0 - etas[0] * hs[0]
    stack = (lambda xs: jnp.stack(xs) if xs else jnp.zeros((0,), jnp.float32))
    return k0, stack(etas), -hs[0], stack(taus)


def hypergradient(base: Base, hyper: Sequence[float], hyper_lr: float, levels: int = 1,
                  schedule: Optional[Schedule] = None) -> optax.GradientTransformation:
    """``base`` with its hyperparameters ``hyper`` (initial values, in ``base.names`` order)
    adapted by ``levels`` stacked levels of hypergradient SGD whose step sizes start at
    ``hyper_lr`` (module docstring). ``schedule(count)`` multiplies every update (default
    1). ``levels`` is structural (a Python int)."""
    levels = int(levels)
    if levels < 0:
        raise ValueError(f"levels must be >= 0, got {levels}")
    sched = schedule or (lambda count: jnp.float32(1.0))

    def init(params):
        k0 = base.hyper0(*hyper)
        tangent = jax.tree.map(lambda p: jnp.zeros(p.shape + (k0.size,), jnp.float32),
                               params) if levels else ()
        return HyperState(jnp.zeros((), jnp.int32), k0,
                          jnp.full((levels,), hyper_lr, jnp.float32), base.init(params),
                          tangent, jnp.zeros_like(k0),
                          jnp.zeros((max(levels - 1, 0),), jnp.float32), jnp.zeros_like(k0))

    def update(grads, state: HyperState, params=None):
        del params
        t = (state.count + 1).astype(jnp.float32)
        s = jnp.asarray(sched(state.count), jnp.float32)
        if levels == 0:
            u, inner = base.step(state.k0, grads, state.inner, t, s)
            return u, state._replace(count=state.count + 1, inner=inner)
        hs = _hypergrads(grads, state, levels)
        k0, etas, tau1, taus = _descend(state, hs, levels)
        u, inner = base.step(k0, grads, state.inner, t, s)
        tangent = jax.jacfwd(lambda k: base.step(k, grads, state.inner, t, s)[0])(k0)
        return u, HyperState(state.count + 1, k0, etas, inner, tangent, tau1, taus, hs[0])

    return optax.GradientTransformation(init, update)


def hyper_sgd(learning_rate: float, hyper_lr: float, levels: int = 1,
              schedule: Optional[Schedule] = None) -> optax.GradientTransformation:
    """SGD whose learning rate is adapted by ``levels`` stacked hypergradient-SGD levels
    (Chandra et al. 2022 "SGD / SGD / ..."; ``levels=1``: Baydin et al. 2018 SGD-HD)."""
    return hypergradient(sgd_base(), (learning_rate,), hyper_lr, levels, schedule)


def hyper_sgdm(learning_rate: float, momentum: float, hyper_lr: float, levels: int = 1,
               schedule: Optional[Schedule] = None) -> optax.GradientTransformation:
    """SGD with momentum, learning rate and momentum adapted (Chandra et al. 2022)."""
    return hypergradient(sgdm_base(), (learning_rate, momentum), hyper_lr, levels, schedule)


def hyper_adam(learning_rate: float, b1: float, b2: float, hyper_lr: float, levels: int = 1,
               eps: float = 1e-8, schedule: Optional[Schedule] = None
               ) -> optax.GradientTransformation:
    """Adam with learning rate, b1 and b2 adapted (Chandra et al. 2022, "Adam / SGD ...")."""
    return hypergradient(adam_base(eps), (learning_rate, b1, b2), hyper_lr, levels, schedule)


def hyperparameters(state: HyperState, base: Base) -> dict:
    """The current hyperparameters by name (betas mapped back through :func:`clamp`)."""
    out = {n: state.k0[..., i] for i, n in enumerate(base.names)}
    for n in ("b1", "b2"):
        if n in out:
            out[n] = clamp(out[n])
    return out

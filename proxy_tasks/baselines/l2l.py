"""The learned LSTM optimizer of Andrychowicz et al., "Learning to learn by gradient descent
by gradient descent", NeurIPS 2016 (arXiv 1606.04474): its update rule, and saving and
loading its weights (``.npz``, never pickle) as an ``optax.GradientTransformation``.
Meta-training is in :mod:`optevo.proxy_tasks.l2l_train`.

The update rule is coordinatewise: every coordinate ``i`` of the parameters runs the same
two-layer LSTM (20 hidden units per layer; weights ``phi`` shared across coordinates, hidden
states per coordinate)::

    x_i = pre(g_i),   (o_i, state_i) = LSTM_phi(x_i, state_i),   theta_i += s_t * c * o_i

with ``o_i = W_out h2_i + b_out`` read from the top layer, ``c = 0.1`` (the paper's output
scaling) and ``s_t`` the learning rate of the training loop (``learning_rate`` times the
task's schedule; 1 by default). The gradient preprocessing is the paper's (Appendix A,
``p = 10``): each gradient coordinate becomes two inputs,

    pre(g) = (log|g| / p, sign g)   if |g| >= e^-p,
             (-1, e^p g)            otherwise,

which keeps inputs of order 1 over many orders of magnitude of gradients. An LSTM layer with
input ``x`` and state ``(h, c)``: ``[i, f, z, o] = [x, h] W + b``,
``c' = sigmoid(f) c + sigmoid(i) tanh(z)``, ``h' = sigmoid(o) tanh(c')``.

File format (``save`` / ``load``): an ``.npz`` with float32 arrays ``l0_w, l0_b, l1_w,
l1_b, out_w, out_b`` (shapes ``(2+H, 4H), (4H,), (2H, 4H), (4H,), (H, 1), (1,)``) and
``meta_*`` entries: ``meta_p``, ``meta_output_scale`` (floats) and ``meta_info`` (a unicode
string: how it was trained). Loaded with ``allow_pickle=False``.
"""

from __future__ import annotations

import io
from importlib import resources
from pathlib import Path
from typing import Any, Dict, NamedTuple, Union

import jax
import jax.numpy as jnp
import numpy as np
import optax

from optevo.dsl.errors import OptevoError
from optevo.dsl.outfiles import write_output

HIDDEN = 20
LAYERS = 2
P = 10.0
OUTPUT_SCALE = 0.1
WEIGHT_KEYS = ("l0_w", "l0_b", "l1_w", "l1_b", "out_w", "out_b")  # meta-trained
ALL_KEYS = WEIGHT_KEYS + ("meta_p", "meta_output_scale")          # + fixed constants
PACKAGED = "digits_mlp"  # the default weights: configs/l2l/digits_mlp.npz

Weights = Dict[str, Any]


class L2LError(OptevoError):
    """A missing or malformed weights file (one line)."""


def init_weights(key, hidden: int = HIDDEN) -> Weights:
    """Fresh weights: uniform(+-1/sqrt(fan_in)) matrices, forget-gate bias 1, a small output
    layer (initial updates are small), float32."""
    k = jax.random.split(key, 3)

    def mat(key, n_in, n_out, scale=1.0):
        lim = scale / np.sqrt(n_in)
        return jax.random.uniform(key, (n_in, n_out), jnp.float32, -lim, lim)

    def bias():
        return jnp.zeros((4 * hidden,), jnp.float32).at[hidden:2 * hidden].set(1.0)

    return {"l0_w": mat(k[0], 2 + hidden, 4 * hidden), "l0_b": bias(),
            "l1_w": mat(k[1], 2 * hidden, 4 * hidden), "l1_b": bias(),
            "out_w": mat(k[2], hidden, 1, 0.1), "out_b": jnp.zeros((1,), jnp.float32),
            "meta_p": jnp.float32(P), "meta_output_scale": jnp.float32(OUTPUT_SCALE)}


def hidden_size(w: Weights) -> int:
    return int(w["out_w"].shape[0])


def preprocess(g, p=P):
    """The paper's preprocessing: ``(..., 2)`` inputs (log-magnitude / p and sign, or
    ``(-1, e^p g)`` for tiny gradients)."""
    g = jnp.asarray(g, jnp.float32)
    big = jnp.abs(g) >= jnp.exp(-p)
    mag = jnp.where(big, jnp.log(jnp.where(big, jnp.abs(g), 1.0)) / p, -1.0)
    sgn = jnp.where(big, jnp.sign(g), jnp.exp(p) * g)
    return jnp.stack([mag, sgn], axis=-1)


def _cell(w, b, x, h, c):
    zs = jnp.concatenate([x, h], axis=-1) @ w + b
    i, f, z, o = jnp.split(zs, 4, axis=-1)
    c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(z)
    return jax.nn.sigmoid(o) * jnp.tanh(c), c


def zero_state(n: int, hidden: int = HIDDEN):
    """LSTM state of ``n`` coordinates: ``(h1, c1, h2, c2)``, each ``(n, hidden)``."""
    z = jnp.zeros((n, hidden), jnp.float32)
    return (z, z, z, z)


def lstm_step(w: Weights, g, state):
    """One step of the coordinatewise LSTM on flat gradients ``g`` ``(n,)``: returns the
    raw update ``c * o`` ``(n,)`` (before the learning rate) and the new state."""
    x = preprocess(g, w["meta_p"])
    h1, c1 = _cell(w["l0_w"], w["l0_b"], x, state[0], state[1])
    h2, c2 = _cell(w["l1_w"], w["l1_b"], h1, state[2], state[3])
    out = (h2 @ w["out_w"] + w["out_b"])[..., 0]
    return w["meta_output_scale"] * out, (h1, c1, h2, c2)


class L2LState(NamedTuple):
    """count: steps taken; lstm: per leaf, the ``(h1, c1, h2, c2)`` states ``(size, H)``."""

    count: jnp.ndarray
    lstm: Any


def l2l_optimizer(weights: Weights, learning_rate: optax.ScalarOrSchedule = 1.0
                  ) -> optax.GradientTransformation:
    """The learned optimizer as an optax transformation: ``updates = lr_t * lstm(g)``
    coordinatewise (``learning_rate`` a float or an optax schedule of the step count)."""
    w = {k: jnp.asarray(weights[k], jnp.float32) for k in ALL_KEYS}
    hidden = hidden_size(w)

    def init(params):
        return L2LState(jnp.zeros((), jnp.int32),
                        jax.tree.map(lambda p: zero_state(p.size, hidden), params))

    def update(grads, state: L2LState, params=None):
        del params
        lr = learning_rate(state.count) if callable(learning_rate) else learning_rate
        leaves, treedef = jax.tree.flatten(grads)
        states = treedef.flatten_up_to(state.lstm)
        outs, news = [], []
        for g, s in zip(leaves, states):
            u, s = lstm_step(w, g.reshape(-1), s)
            outs.append((lr * u).reshape(g.shape).astype(g.dtype))
            news.append(s)
        return (jax.tree.unflatten(treedef, outs),
                L2LState(state.count + 1, jax.tree.unflatten(treedef, news)))

    return optax.GradientTransformation(init, update)


def packaged_path(name: str = PACKAGED) -> Path:
    """The packaged weights ``optevo.configs/l2l/NAME.npz``."""
    return Path(str(resources.files("optevo.configs") / "l2l" / f"{name}.npz"))


def resolve(spec: Union[str, Path]) -> Path:
    """A weights file from a path (``*.npz`` or containing a slash) or a packaged name."""
    s = str(spec)
    path = Path(s) if s.endswith(".npz") or "/" in s else packaged_path(s)
    if not path.is_file():
        raise L2LError(f"L2L weights {s!r}: no such file {path}")
    return path


def save(path: Union[str, Path], weights: Weights, info: str = "") -> Path:
    """Write ``weights`` (and a one-line ``info``) to ``path`` as ``.npz``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {k: np.asarray(weights[k], np.float32) for k in WEIGHT_KEYS}
    arrays["meta_p"] = np.float32(weights["meta_p"])
    arrays["meta_output_scale"] = np.float32(weights["meta_output_scale"])
    arrays["meta_info"] = np.array(str(info))
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return write_output(path, buf.getvalue())  # checked: a failed write is one line


def load(spec: Union[str, Path] = PACKAGED) -> Weights:
    """Weights from a file or packaged name (:func:`resolve`); checks keys and shapes."""
    path = resolve(spec)
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (OSError, ValueError) as e:
        raise L2LError(f"{path}: not a weights file ({e})") from None
    missing = [k for k in ALL_KEYS if k not in data]
    if missing:
        raise L2LError(f"{path}: missing array(s) {', '.join(missing)}")
    h = data["out_w"].shape[0]
    want = {"l0_w": (2 + h, 4 * h), "l0_b": (4 * h,), "l1_w": (2 * h, 4 * h),
            "l1_b": (4 * h,), "out_w": (h, 1), "out_b": (1,)}
    bad = [k for k, s in want.items() if tuple(data[k].shape) != s]
    if bad:
        raise L2LError(f"{path}: array(s) {', '.join(bad)} have the wrong shape")
    out = {k: np.asarray(data[k], np.float32) for k in want}
    out["meta_p"] = np.float32(data["meta_p"])
    out["meta_output_scale"] = np.float32(data["meta_output_scale"])
    out["meta_info"] = str(data["meta_info"]) if "meta_info" in data else ""
    return out


def load_optimizer(spec: Union[str, Path] = PACKAGED, learning_rate=1.0
                   ) -> optax.GradientTransformation:
    """:func:`l2l_optimizer` with the weights of :func:`load`."""
    return l2l_optimizer(load(spec), learning_rate)

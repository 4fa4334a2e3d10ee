"""Matrix-aware rows of the op table: ``orthogonalize``, ``row_mean``, ``col_mean``.

Every other op is elementwise or reduces over all parameters (or a whole leaf); these three
read a parameter leaf as a *matrix*. They are rows of ``dsl/ops.py``'s table like any other
(registered here at import, ``optevo.dsl`` imports this module), written once against a
:class:`~optevo.dsl.ops.Space` through ``Space.leaf_map(f, x, scalar)``: ``f`` maps one leaf,
in the leaf's own shape, to an array of that shape; ``scalar`` is applied to a scalar ``x``.
The pytree space calls ``f`` on each leaf; the flat spaces (the fast interpreter's
``FlatSpace``, the fingerprint's ``VectorSpace``) know each leaf's static shape and slice,
reshape, map and re-join the flat vector (:func:`flat_leaf_map`).

The matrix view of a leaf of shape ``(d_1, ..., d_k, c)``: the 2-D matrix
``(d_1 * ... * d_k, c)``, leading dimensions flattened, the last kept (a dense kernel
``(in, out)`` is itself; a conv kernel ``(h, w, c_in, c_out)`` is ``(h w c_in, c_out)``, as
Keller Jordan's Muon flattens conv filters, with flax's output-last layout). optax's Muon
does not reshape: by default it hands every non-2-D leaf to AdamW.

* ``orthogonalize(x)``: Muon's orthogonalisation (Jordan et al. 2024, "Muon: An optimizer for
  hidden layers in neural networks"; ``optax.contrib.muon``): ``X / (||X||_F + 1e-8)``, then 5
  steps of the quintic Newton-Schulz iteration ``X <- a X + (b A + c A A) X``, ``A = X X^T``,
  ``(a, b, c) = (3.4445, -4.7750, 2.0315)``, on the wide orientation (transposed when rows >
  columns), exactly as ``optax.contrib.muon``'s default ``'frobenius'`` preconditioning. It
  approximates the polar factor ``U V^T`` of ``X = U S V^T`` (singular values land in about
  [0.7, 1.2], not exactly 1: not idempotent, no algebraic row property holds bit for bit).
  A 1-D (or 0-d) leaf, and a scalar, get ``sign(x)``: read the vector as the diagonal matrix
  ``diag(x)``, whose polar factor is exactly ``sign(x)``, whose nuclear norm is ``|x|_1`` and
  spectral norm ``|x|_inf``. So Lion-K with ``K`` the nuclear norm (Muon) stays one Lion-K
  member on every leaf: matrices bounded in spectral norm, vectors (biases, gains) in
  ``|.|_inf`` -- Lion on them, the same constraint ``||diag(b)||_op <= 1/lambda``. (The
  identity would leave vectors at raw momentum scale, orders of magnitude off the matrices'
  unit-size steps; the row view ``(1, n)`` would give ``x / |x|_2``, a step of total size 1
  spread over the whole bias.)
* ``row_mean(x)``, ``col_mean(x)``: the mean of each row / each column of the leaf's matrix,
  broadcast back over the leaf (Adafactor's factored second moment, Shazeer & Stern 2018:
  ``v_hat = R C / mean`` is ``row_mean(v) * col_mean(v) / row_mean(col_mean(v))``, since
  ``row_mean(col_mean(v))`` is the leaf's mean). A 1-D leaf is the one-row matrix ``(1, n)``:
  ``row_mean`` is its mean, ``col_mean`` the vector itself, so the Adafactor formula gives
  ``v_hat = v`` there, unfactored, as Adafactor and ``optax.scale_by_factored_rms`` treat
  vectors. A 0-d leaf and a scalar are ``1 x 1``: the value itself (as float32).

These rows are not drawn by random statements by default (``search=False``: the search
space, and with it every run's meaning, stays what it was); :func:`set_searchable` adds them.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence, Tuple

import jax
import jax.numpy as jnp
from jax import lax

from .ops import OPS, SAME_AS_FIRST, Op, Space, register_op, unregister_op

NS_COEFFS = (3.4445, -4.7750, 2.0315)  # Jordan et al. 2024; optax.contrib.muon's default
NS_STEPS = 5
MATRIX_OPS = ("orthogonalize", "row_mean", "col_mean")


# --- one leaf, in its own shape (self-contained: the export copies their source) --------------

def orthogonalize_leaf(x):
    """Muon's Newton-Schulz orthogonalisation of one leaf (Jordan et al. 2024), as
    optax.contrib.muon computes it: leading dims flattened, X / (||X||_F + 1e-8), 5 quintic
    steps X <- a X + (b A + c A A) X, A = X X^T, (a, b, c) = (3.4445, -4.7750, 2.0315),
    on the wide orientation. A vector (or 0-d) leaf: sign(x), the polar factor of diag(x)."""
    if x.ndim < 2:
        return jnp.sign(x)
    shape = x.shape
    x = x.reshape(-1, shape[-1])
    transposed = x.shape[0] > x.shape[1]
    if transposed:
        x = x.T
    x = x / (jnp.linalg.norm(x, ord="fro") + 1e-8)
    c0, c1, c2 = (jnp.float32(c) for c in (3.4445, -4.7750, 2.0315))
    for _ in range(5):
        a = x @ x.T
        b = c1 * a + c2 * a @ a
        x = c0 * x + b @ x
    if transposed:
        x = x.T
    return x.reshape(shape)


def row_mean_leaf(x):
    """The mean of each row of the leaf's matrix (leading dims flattened, the last kept),
    broadcast back: the mean over the last axis. A vector is one row: its mean."""
    if x.ndim < 1:
        return x
    return jnp.broadcast_to(jnp.mean(x, axis=-1, keepdims=True), x.shape)


def col_mean_leaf(x):
    """The mean of each column of the leaf's matrix (leading dims flattened, the last kept),
    broadcast back: the mean over every axis but the last. A vector is one row: itself."""
    if x.ndim < 2:
        return x
    return jnp.broadcast_to(jnp.mean(x, axis=tuple(range(x.ndim - 1)), keepdims=True),
                            x.shape)


def _as_f32(x):
    """A scalar as a float32 value (the 1 x 1 matrix's row/column mean is itself)."""
    return jnp.asarray(x, jnp.float32)


# --- the flat spaces ---------------------------------------------------------------------------

def leaf_shapes_of(spec: Sequence) -> Tuple[Tuple[int, ...], ...]:
    """Leaf shapes from a list whose entries are shapes or sizes (a size ``n`` is the 1-D
    leaf ``(n,)``)."""
    return tuple((int(s),) if isinstance(s, (int,)) or getattr(s, "ndim", 1) == 0
                 else tuple(int(d) for d in s) for s in spec)


def flat_leaf_map(f: Callable, x, bounds: Sequence[int], shapes: Sequence[Tuple[int, ...]]):
    """``f`` on each leaf of the flat tensor ``x`` (``(..., P)``, leaves concatenated along
    the last axis at ``bounds``): each slice is reshaped to its leaf shape, ``f`` is mapped
    over the leading (seed) axes with ``jax.vmap``, and the results are re-joined."""
    batch = x.shape[:-1]
    parts = []
    for a, b, shape in zip(bounds[:-1], bounds[1:], shapes):
        leaf = lax.slice_in_dim(x, int(a), int(b), axis=x.ndim - 1)
        out = jax.vmap(f)(leaf.reshape((-1,) + tuple(shape)))
        parts.append(out.reshape(batch + (int(b - a),)))
    return parts[0] if len(parts) == 1 else jnp.concatenate(parts, axis=-1)


# --- the rows ----------------------------------------------------------------------------------

def _orthogonalize(sp: Space, x):
    """Muon's Newton-Schulz orthogonalisation of each matrix leaf; sign of vectors, scalars."""
    return sp.leaf_map(orthogonalize_leaf, x, jnp.sign)


def _row_mean(sp: Space, x):
    """Mean of each row of each leaf's matrix, broadcast back (vector: its mean)."""
    return sp.leaf_map(row_mean_leaf, x, _as_f32)


def _col_mean(sp: Space, x):
    """Mean of each column of each leaf's matrix, broadcast back (vector: itself)."""
    return sp.leaf_map(col_mean_leaf, x, _as_f32)


def _export(leaf_fn: Callable, scalar_template: str):
    return lambda wr, x: wr.per_leaf(leaf_fn, x, scalar_template)


ROWS = (
    Op("orthogonalize", 1, SAME_AS_FIRST, _orthogonalize,
       _export(orthogonalize_leaf, "jnp.sign({0})"), doc=_orthogonalize.__doc__, search=False),
    Op("row_mean", 1, SAME_AS_FIRST, _row_mean,
       _export(row_mean_leaf, "jnp.asarray({0}, jnp.float32)"), doc=_row_mean.__doc__,
       search=False),
    Op("col_mean", 1, SAME_AS_FIRST, _col_mean,
       _export(col_mean_leaf, "jnp.asarray({0}, jnp.float32)"), doc=_col_mean.__doc__,
       search=False),
)


def register_rows():
    """Put the matrix rows in the op table (done at import; a no-op if they are there)."""
    for op in ROWS:
        if op.name not in OPS:
            register_op(op)


def set_searchable(flag: bool = True):
    """Let random statements (the search's insert mutation) draw the matrix ops, or not.
    The rows are replaced in place: op indices (an engine's switch table) do not move."""
    import dataclasses
    from .ops import OPS, replace_op
    for name in MATRIX_OPS:
        if OPS[name].search != bool(flag):
            replace_op(dataclasses.replace(OPS[name], search=bool(flag)))


def matrix_view(shape: Sequence[int]) -> Tuple[int, int]:
    """The ``(rows, cols)`` of a leaf's matrix view (a vector is one row, 0-d is 1 x 1)."""
    shape = tuple(shape)
    if not shape:
        return 1, 1
    return math.prod(shape[:-1]), shape[-1]


register_rows()

"""The op table's space for the fast interpreter (``optevo.dsl.interpreter``): the
parameters flattened to one vector per seed.

The ops are written once, against ``ops.Space``; the reference executor runs them on the
task's pytrees, the interpreter on :class:`FlatSpace`'s flat arrays, so both compute the same
formulas. The matrix ops see each leaf through its static shape (``matrix_ops``).
"""

from __future__ import annotations

import math
from typing import Sequence

import jax.numpy as jnp
import numpy as np

from .matrix_ops import flat_leaf_map, leaf_shapes_of
from .ops import Space


class FlatSpace(Space):
    """Tensors are ``(Ns, P)`` arrays, scalars ``(Ns, 1)``; leaves are slices of the last axis.

    ``leaf_shapes``: each leaf's static shape (a plain size ``n`` is the 1-D leaf ``(n,)``);
    the matrix ops (``leaf_map``) slice, reshape and re-join inside the compiled program."""

    def __init__(self, leaf_shapes: Sequence):
        self.shapes = leaf_shapes_of(leaf_shapes)
        self.bounds = np.cumsum([0] + [math.prod(s) for s in self.shapes])
        self.size = int(self.bounds[-1])

    def map(self, f, *args):
        return f(*args)

    def total(self, x):
        return jnp.sum(x, axis=-1, keepdims=True)

    def leaf_total(self, x):
        if x.shape[-1] != self.size:  # a scalar
            return x
        parts = [jnp.broadcast_to(jnp.sum(x[..., a:b], axis=-1, keepdims=True),
                                  x.shape[:-1] + (int(b - a),))
                 for a, b in zip(self.bounds[:-1], self.bounds[1:])]
        return jnp.concatenate(parts, axis=-1)

    def leaf_map(self, f, x, scalar):
        if x.shape[-1] != self.size:  # a scalar
            return scalar(x)
        return flat_leaf_map(f, x, self.bounds, self.shapes)

"""Export a program as an ``optax.GradientTransformation``.

The transformation applies the program once per step: with ``w`` the current parameters,
``g`` the incoming gradient and ``lr = learning_rate(count)`` (a float or an optax schedule),
the program returns ``update`` and the new state, and the transformation emits ``-update``
(optax adds updates to the parameters; the paper's loop does ``w = w - update``).
"""

from __future__ import annotations

from typing import Any, NamedTuple, Union

import jax
import jax.numpy as jnp
import optax

from .execute import update_fn
from .liveness import live_state
from .program import Program


class ProgramState(NamedTuple):
    """State of an exported program: the step count and the two state slots; a slot that no
    update ever reads (``liveness.live_state``: Lion's ``v``) is ``()``, not stored."""

    count: jnp.ndarray
    m: Any
    v: Any


def to_optax(program: Program,
             learning_rate: Union[float, optax.Schedule] = 1.0) -> optax.GradientTransformation:
    """The program as an optax transformation (needs ``params`` in ``update``).

    ``learning_rate`` is the program's ``lr`` input: the paper's programs scale it themselves
    (``lr = lr * 0.001``), so the default 1.0 runs them as written. This is the reference
    semantics, kept for tests and notebooks; ``optevo export`` and ``Run.to_optax`` write the
    readable module (``dsl.codegen``), whose ``learning_rate`` is in optax's units."""
    step = update_fn(program)
    live = live_state(program)

    def init(params):
        zeros = jax.tree.map(jnp.zeros_like, params)
        return ProgramState(jnp.zeros([], jnp.int32), zeros if "m" in live else (),
                            zeros if "v" in live else ())

    def update(updates, state, params=None):
        if params is None:
            raise ValueError("this optimizer reads the weights: pass params to update()")
        lr = learning_rate(state.count) if callable(learning_rate) else learning_rate
        zeros = (lambda: jax.tree.map(jnp.zeros_like, params))  # a dead slot: never read
        upd, m, v = step(params, updates, state.m if "m" in live else zeros(),
                         state.v if "v" in live else zeros(), lr)
        return jax.tree.map(jnp.negative, upd), ProgramState(
            optax.safe_int32_increment(state.count), m if "m" in live else (),
            v if "v" in live else ())

    return optax.GradientTransformation(init, update)

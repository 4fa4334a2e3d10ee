"""The reference semantics: run a program statement by statement on parameter pytrees.

This is the plain path: a program becomes a Python function of JAX arrays, which callers
``jax.jit`` (one compile per program). Each statement runs its op's row (``Op.impl``); a
literal ``name = c`` holds the Python float ``c`` itself. The fast interpreter
(``optevo.dsl.interpreter``) must agree with it; tests hold the two equal.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Tuple

import jax
import jax.numpy as jnp

from .liveness import strip_dead
from .ops import OPS, Space
from .program import INPUTS, Program, check, inline_literals


class TreeSpace(Space):
    """Tensors are lists of parameter leaves; scalars are 0-d arrays or Python floats.

    Python-float constants stay Python floats until they meet an array, so constant
    arithmetic such as ``1 - 0.9`` in ``interp`` happens in double precision, exactly as
    optax's own optimizers compute ``1 - b1``."""

    def map(self, f, *args):
        n = next((len(a) for a in args if isinstance(a, list)), None)
        if n is None:
            return f(*args)
        return [f(*[a[i] if isinstance(a, list) else a for a in args]) for i in range(n)]

    def total(self, x):
        if isinstance(x, list):
            return sum(jnp.sum(leaf) for leaf in x)
        return x

    def leaf_total(self, x):
        if isinstance(x, list):
            return [jnp.broadcast_to(jnp.sum(leaf), leaf.shape) for leaf in x]
        return x

    def leaf_map(self, f, x, scalar):
        if isinstance(x, list):
            return [f(leaf) for leaf in x]
        return scalar(x)


TREE = TreeSpace()


def _steps(program: Program, inputs, space: Space):
    """The variables before the first statement and after each one (one dict, updated)."""
    env = dict(zip(INPUTS, inputs))
    yield env
    for s in program.stmts:
        args = [env[a] if isinstance(a, str) else a for a in s.args]
        env[s.target] = OPS[s.op].impl(space, *args)
        yield env


def run(program: Program, w, g, m, v, lr, space: Space = TREE):
    """One step of ``program`` in ``space``; returns (update, new_m, new_v) as produced
    (outputs may be scalars)."""
    for env in _steps(program, (w, g, m, v, lr), space):
        pass
    return tuple(env[r] for r in program.returns)


def trace(program: Program, w, g, m, v, lr, space: Space = TREE) -> List[Dict[str, Any]]:
    """One step of ``program``, keeping every variable: ``len(stmts) + 1`` dicts, the
    variables before each statement and, last, after the final one."""
    return [dict(env) for env in _steps(program, (w, g, m, v, lr), space)]


def _broadcast_leaves(x, like):
    if isinstance(x, list):
        return x
    return [jnp.broadcast_to(jnp.asarray(x, leaf.dtype), leaf.shape) for leaf in like]


def update_fn(program: Program, check_finite: bool = False
              ) -> Callable[..., Tuple[Any, Any, Any]]:
    """``f(w, g, m, v, lr) -> (update, m, v)`` on pytrees: the reference update function.

    ``w, g, m, v`` share the parameters' tree structure; scalar outputs are broadcast over
    it. Pure and traceable: wrap it in ``jax.jit`` or call it inside a jitted train step.

    ``check_finite`` (the engines' divergence rule, ``proxy_tasks.fitness.diverged``): the
    update is NaN at each coordinate where a statement of the live program (literals
    inlined, dead statements removed: what the fast interpreter runs) gave a value that is
    not finite there (a scalar statement: at every coordinate), so a program cannot use
    float32 overflow as a switch (``m / cosh(w)`` is 0 once ``cosh(w)`` is inf): one NaN
    weight makes the training loss NaN, and the run diverged."""
    check(program)
    if check_finite:
        program = strip_dead(inline_literals(program))

    def f(w, g, m, v, lr):
        leaves_w, treedef = jax.tree.flatten(w)
        leaves = [leaves_w] + [jax.tree.leaves(x) for x in (g, m, v)]
        steps = _steps(program, (*leaves, jnp.asarray(lr, jnp.float32)), TREE)
        env = next(steps)
        ok = [True] * len(leaves_w)
        for s, env in zip(program.stmts, steps):
            if check_finite:
                ok = [a & jnp.isfinite(x)
                      for a, x in zip(ok, _broadcast_leaves(env[s.target], leaves_w))]
        out = [_broadcast_leaves(env[r], leaves_w) for r in program.returns]
        if check_finite:
            out[0] = [jnp.where(a, u, jnp.nan) for a, u in zip(ok, out[0])]
        return tuple(jax.tree.unflatten(treedef, [o.astype(lw.dtype)
                                                  for o, lw in zip(x, leaves_w)])
                     for x in out)

    return f

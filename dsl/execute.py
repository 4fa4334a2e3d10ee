"""The reference semantics: run a program statement by statement on parameter pytrees.

This is the plain path: a program becomes a Python function of JAX arrays, which callers
``jax.jit`` (one compile per program). Each statement runs its op's row (``Op.impl``); a
literal ``name = c`` holds the Python float ``c`` itself. The fast interpreter
(``optevo.dsl.interpreter``) must agree with it; tests hold the two equal.
"""

from __future__ import annotations

import functools
import operator
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


def _finite(x, elementwise: bool):
    """Where ``x`` (an operand in :class:`TreeSpace`) is finite: per leaf elementwise, else
    one flag for all its leaves; None for a Python float (constants are finite)."""
    if isinstance(x, list):
        fin = [jnp.isfinite(leaf) for leaf in x]
        return fin if elementwise else functools.reduce(
            operator.and_, [jnp.all(f) for f in fin])
    return None if isinstance(x, float) else jnp.isfinite(x)


def poison(op, args, out):
    """``out`` of ``op(*args)`` with NaN where an operand is not finite: at that coordinate
    for an elementwise op, everywhere for any other (the divergence rule's propagation; the
    interpreter's ``check_finite`` does the same)."""
    fin = [f for f in (_finite(a, op.elementwise) for a in args) if f is not None]
    if not fin:
        return out
    n = next((len(f) for f in fin if isinstance(f, list)), None)
    if n is None:  # one flag (scalar operands, or a non-elementwise op)
        ok = functools.reduce(operator.and_, fin)
        return [jnp.where(ok, o, jnp.nan) for o in out] if isinstance(out, list) \
            else jnp.where(ok, out, jnp.nan)
    oks = [functools.reduce(operator.and_, [f[i] if isinstance(f, list) else f for f in fin])
           for i in range(n)]
    return [jnp.where(ok, o, jnp.nan) for ok, o in zip(oks, out)]


def _steps(program: Program, inputs, space: Space, check_finite: bool = False):
    """The variables before the first statement and after each one (one dict, updated);
    with ``check_finite``, each value poisoned (:func:`poison`)."""
    env = dict(zip(INPUTS, inputs))
    yield env
    for s in program.stmts:
        args = [env[a] if isinstance(a, str) else a for a in s.args]
        out = OPS[s.op].impl(space, *args)
        env[s.target] = poison(OPS[s.op], args, out) if check_finite else out
        yield env


def run(program: Program, w, g, m, v, lr, space: Space = TREE, check_finite: bool = False):
    """One step of ``program`` in ``space``; returns (update, new_m, new_v) as produced
    (outputs may be scalars); ``check_finite``: values poisoned (:func:`poison`)."""
    for env in _steps(program, (w, g, m, v, lr), space, check_finite):
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

    ``check_finite`` (the engines' divergence rule, ``proxy_tasks.fitness.diverged``): a
    value that is not finite in any statement of the live program (literals inlined, dead
    statements removed: what the fast interpreter runs) makes the update NaN, so a program
    cannot use float32 overflow as a switch (``m / cosh(w)`` is 0 once ``cosh(w)`` is inf).
    Each statement's value is NaN where an operand is not finite (:func:`poison`: at that
    coordinate for an elementwise op, everywhere for any other); every live statement
    reaches an output, so a non-finite value anywhere leaves ``update``, ``m`` or ``v``
    non-finite somewhere, and the update is NaN wherever one of the three is. One NaN weight
    fails the divergence rule (``max |w| <= limit`` is false), so the run diverged exactly
    when some live statement, at some step, computed a value that is not finite."""
    check(program)
    if check_finite:
        program = strip_dead(inline_literals(program))

    def f(w, g, m, v, lr):
        leaves_w, treedef = jax.tree.flatten(w)
        leaves = [leaves_w] + [jax.tree.leaves(x) for x in (g, m, v)]
        outs = run(program, *leaves, jnp.asarray(lr, jnp.float32), check_finite=check_finite)
        out = [_broadcast_leaves(x, leaves_w) for x in outs]
        if check_finite:  # a non-finite value anywhere has reached an output (poison)
            out[0] = [jnp.where(jnp.isfinite(u) & jnp.isfinite(a) & jnp.isfinite(b), u, jnp.nan)
                      for u, a, b in zip(*out)]
        return tuple(jax.tree.unflatten(treedef, [o.astype(lw.dtype)
                                                  for o, lw in zip(x, leaves_w)])
                     for x in out)

    return f

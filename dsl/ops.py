"""The op table: the single source of truth for every function a program may call.

One row per op: its printed name, arity, how its output kind (tensor or scalar) follows from
its arguments' kinds, its implementation, its infix symbol and its aliases. Adding an op is
adding one row to ``_ROWS``.

Functions are those of the paper's release (google/automl ``hero/fn_lib.py``, Chen et al.
2023), with ``clip(x, c)`` added and ``interp`` as the printed name of ``interpolate``. The
release's ``invert`` (bitwise NOT) is left out: it is undefined on floats, so abstract
execution there rejected every program that used it.

Values are of two kinds. A *tensor* has the shape of the parameters (a pytree); a *scalar* is
one number (``lr``, constants, reductions). Implementations are written once against a
:class:`Space`, which says how to map an elementwise function over values and how to sum
them; the reference executor uses a pytree space and the fast interpreter a flat-vector
space, so both run the very same formulas.

Safe forms (as in the paper): ``log``, ``log2``, ``log10`` and ``sqrt`` act on ``|x|``,
``log1p(x) = log|1 + x|``, division and ``reciprocal`` add ``1e-8`` to the denominator, and the
reductions ``cosine_sim`` and ``clip_by_global_norm`` divide safely too.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, Dict, Optional, Tuple

import jax.numpy as jnp

TENSOR = "tensor"
SCALAR = "scalar"

EPS = 1e-8


class Space:
    """How values are represented. ``map`` applies an elementwise function, broadcasting
    scalars over tensors; ``total`` sums every element of a value into a scalar;
    ``leaf_total`` sums each parameter leaf and broadcasts the sum back over that leaf."""

    def map(self, f, *args):  # pragma: no cover - interface
        raise NotImplementedError

    def total(self, x):  # pragma: no cover - interface
        raise NotImplementedError

    def leaf_total(self, x):  # pragma: no cover - interface
        raise NotImplementedError


# --- elementwise implementations (plain jnp functions; broadcasting) -------------------------

def _div(x, y):
    return x / (y + EPS)


def _interp(x, y, a):
    """interp(x, y, a) = (1 - a) * x + a * y (the paper's ``interp``/``interpolate``)."""
    return (1.0 - a) * x + a * y


def _clip(x, c):
    c = jnp.abs(c)
    return jnp.clip(x, -c, c)


_ELEMENTWISE: Dict[str, Tuple[int, Callable]] = {
    # arithmetic
    "add": (2, lambda x, y: x + y),
    "sub": (2, lambda x, y: x - y),
    "mul": (2, lambda x, y: x * y),
    "div": (2, _div),
    "max": (2, jnp.maximum),
    "min": (2, jnp.minimum),
    "power": (2, jnp.power),
    # unary
    "abs": (1, jnp.abs),
    "cos": (1, jnp.cos),
    "sin": (1, jnp.sin),
    "tan": (1, jnp.tan),
    "arcsin": (1, jnp.arcsin),
    "arccos": (1, jnp.arccos),
    "arctan": (1, jnp.arctan),
    "sinh": (1, jnp.sinh),
    "cosh": (1, jnp.cosh),
    "tanh": (1, jnp.tanh),
    "arcsinh": (1, jnp.arcsinh),
    "arccosh": (1, jnp.arccosh),
    "arctanh": (1, jnp.arctanh),
    "exp": (1, jnp.exp),
    "exp2": (1, jnp.exp2),
    "exp10": (1, lambda x: jnp.power(10.0, x)),
    "expm1": (1, jnp.expm1),
    "log": (1, lambda x: jnp.log(jnp.abs(x))),
    "log10": (1, lambda x: jnp.log10(jnp.abs(x))),
    "log2": (1, lambda x: jnp.log2(jnp.abs(x))),
    "log1p": (1, lambda x: jnp.log(jnp.abs(1.0 + x))),
    "square": (1, jnp.square),
    "sqrt": (1, lambda x: jnp.sqrt(jnp.abs(x))),
    "cube": (1, lambda x: x * x * x),
    "cbrt": (1, jnp.cbrt),
    "sign": (1, jnp.sign),
    "reciprocal": (1, lambda x: 1.0 / (x + EPS)),
    "negative": (1, jnp.negative),
    # more arguments
    "interp": (3, _interp),
    "clip": (2, _clip),
}


# --- ops that reduce over the parameters ------------------------------------------------------

def _global_norm(sp: Space, x):
    """sqrt(sum over all parameters of x^2): a scalar."""
    return jnp.sqrt(sp.total(sp.map(jnp.square, x)))


def _norm(sp: Space, x):
    """The L2 norm of each parameter leaf, broadcast over that leaf (release: per-leaf norm)."""
    return sp.map(jnp.sqrt, sp.leaf_total(sp.map(jnp.square, x)))


def _dot(sp: Space, x, y):
    """sum over all parameters of x * y: a scalar."""
    return sp.total(sp.map(lambda a, b: a * b, x, y))


def _cosine_sim(sp: Space, x, y):
    """dot(x, y) / (|x| |y| + 1e-8), norms over all parameters (safe division)."""
    return _dot(sp, x, y) / (_global_norm(sp, x) * _global_norm(sp, y) + EPS)


def _clip_by_global_norm(sp: Space, x, c):
    """x * min(1, c / (global_norm(x) + 1e-8)) (safe division)."""
    factor = sp.map(lambda cc: jnp.minimum(1.0, cc / (_global_norm(sp, x) + EPS)), c)
    return sp.map(lambda a, f: a * f, x, factor)


# Output-kind rules.
ELEMENTWISE = "elementwise"  # tensor if any argument is a tensor, else scalar
REDUCE = "reduce"  # always scalar
SAME_AS_FIRST = "first"  # the kind of the first argument
ANY_TENSOR = "any"  # not elementwise, but a tensor if any argument is a tensor
CONSTANT = "constant"  # no arguments, scalar


@dataclasses.dataclass(frozen=True)
class Op:
    """One row of the op table."""

    name: str  # canonical (printed) name
    arity: int
    rule: str  # ELEMENTWISE, REDUCE, SAME_AS_FIRST or CONSTANT
    impl: Callable  # impl(space, *args) -> value
    infix: Optional[str] = None  # '+', '-', '*', '/' for arithmetic
    aliases: Tuple[str, ...] = ()
    doc: str = ""

    def out_kind(self, arg_kinds) -> str:
        if self.rule in (ELEMENTWISE, ANY_TENSOR):
            return TENSOR if TENSOR in arg_kinds else SCALAR
        if self.rule == SAME_AS_FIRST:
            return arg_kinds[0]
        return SCALAR

    @property
    def elementwise(self) -> bool:
        return self.rule == ELEMENTWISE


def _ew(name, **kw):
    arity, f = _ELEMENTWISE[name]
    return Op(name, arity, ELEMENTWISE, lambda sp, *a, _f=f: sp.map(_f, *a), doc=f.__doc__ or "", **kw)


def _const(name, value):
    return Op(name, 0, CONSTANT, lambda sp, _v=value: jnp.float32(_v))


_ROWS = [
    _ew("add", infix="+"),
    _ew("sub", infix="-"),
    _ew("mul", infix="*"),
    _ew("div", infix="/"),
    _ew("max"),
    _ew("min"),
    _ew("power", aliases=("pow",)),
    *[_ew(n) for n in (
        "abs cos sin tan arcsin arccos arctan sinh cosh tanh arcsinh arccosh arctanh exp exp2 "
        "exp10 expm1 log log10 log2 log1p square sqrt cube cbrt sign reciprocal negative"
    ).split()],
    _ew("interp", aliases=("interpolate",)),
    _ew("clip"),
    Op("norm", 1, SAME_AS_FIRST, _norm, doc=_norm.__doc__),
    Op("global_norm", 1, REDUCE, _global_norm, doc=_global_norm.__doc__),
    Op("dot", 2, REDUCE, _dot, doc=_dot.__doc__),
    Op("cosine_sim", 2, REDUCE, _cosine_sim, doc=_cosine_sim.__doc__),
    Op("clip_by_global_norm", 2, ANY_TENSOR, _clip_by_global_norm,
       doc=_clip_by_global_norm.__doc__),
    _const("get_pi", math.pi),
    _const("get_e", math.e),
    _const("get_eps", EPS),
]

OPS: Dict[str, Op] = {op.name: op for op in _ROWS}
OP_LIST: Tuple[Op, ...] = tuple(_ROWS)
OP_INDEX: Dict[str, int] = {op.name: i for i, op in enumerate(_ROWS)}
INFIX: Dict[str, str] = {op.infix: op.name for op in _ROWS if op.infix}
_ALIASES: Dict[str, str] = {a: op.name for op in _ROWS for a in op.aliases}


def resolve(name: str) -> Optional[Op]:
    """The op called ``name`` (canonical name or alias), or None."""
    name = _ALIASES.get(name, name)
    if name in INFIX:
        name = INFIX[name]
    return OPS.get(name)


def callable_names():
    """Every name a program may call (canonical names and aliases, not the infix ops)."""
    return sorted([n for n, op in OPS.items() if not op.infix] + list(_ALIASES))

"""The op table: the single source of truth for every function a program may call.

One row (:class:`Op`) per op holds everything known about it: its printed name, arity, how
its output kind (tensor or scalar) follows from its arguments' kinds, its implementation,
its infix symbol, aliases and doc, its export template (``dsl/codegen.py``), and the
algebraic facts that hashing and simplification use (``commutative``, ``idempotent``,
``involution``, ``absorbs``, ``units``, ``fold``, ``pyfloat``). The parser, both executors,
liveness, hashing (``dsl/canon.py``), the simplifier and the export read the row; no other
module names an op's formula or properties. Adding an op is one row: append it to
``_ROWS``, or at run time ``register_op(Op(...))`` (``registered(op)`` is a context manager
that removes it again). ``OPS``, ``OP_LIST``, ``INFIX`` and the alias map are live views of
the table, so code that imported them sees a registered op; an engine built afterwards has
it in its switch table. The matrix-aware rows (``orthogonalize``, ``row_mean``,
``col_mean``) live in ``dsl/matrix_ops.py`` and are registered when ``optevo.dsl`` loads.
What a row is (:class:`Op`, :class:`Unit`, the output-kind rules, :class:`Space`,
:func:`elementwise`) is defined in ``dsl/op_row.py`` and importable from here.

Functions are those of the paper's release (google/automl ``hero/fn_lib.py``, Chen et al.
2023), with ``clip(x, c)`` added and ``interp`` as the printed name of ``interpolate``. The
release's ``invert`` (bitwise NOT) is left out: it is undefined on floats, so abstract
execution there rejected every program that used it. The release's ``name = 1e-8`` is the
``literal`` op (rule ``LITERAL``): one numeric argument, a scalar result, printed as the bare
number, not callable by name and never drawn by random statements; it computes exactly what
writing the number in place of the name computes.

Values are of two kinds. A *tensor* has the shape of the parameters (a pytree); a *scalar* is
one number (``lr``, constants, reductions). Implementations are written once against a
:class:`Space`, which says how to map an elementwise function over values and how to sum
them; the reference executor uses a pytree space and the fast interpreter a flat-vector
space, so both run the very same formulas.

Safe forms (as in the paper): ``log``, ``log2``, ``log10`` and ``sqrt`` act on ``|x|``,
``log1p(x) = log|1 + x|``, division and ``reciprocal`` add ``EPS = 1e-8`` to the denominator,
and the reductions ``cosine_sim`` and ``clip_by_global_norm`` divide safely too.
"""

from __future__ import annotations

import collections.abc
import contextlib
import math
import operator
from typing import Callable, Dict, List, Optional

import jax.numpy as jnp

from .op_row import (ANY_TENSOR, CONSTANT, LITERAL, REDUCE, SAME_AS_FIRST, TENSOR, Op, Space,
                     Unit, elementwise)
from .op_row import ELEMENTWISE, SCALAR  # noqa: F401 (re-exported: the row type's names)

EPS = 1e-8  # the safe-division epsilon: export templates write it as {eps}
LITERAL_OP = "literal"  # the name of the one op with rule LITERAL
MAX_ARITY = 3  # the fast interpreter's statement rows hold at most three arguments


# --- elementwise implementations that need more than one line ---------------------------------

def _div(x, y):
    """x / (y + 1e-8) (safe division)."""
    return x / (y + EPS)


def _interp(x, y, a):
    """interp(x, y, a) = (1 - a) * x + a * y (the paper's ``interp``/``interpolate``)."""
    return (1.0 - a) * x + a * y


def _clip(x, c):
    """x clipped to [-|c|, |c|]."""
    c = jnp.abs(c)
    return jnp.clip(x, -c, c)


# --- ops that reduce over the parameters (impl and export side by side) ------------------------

def _global_norm(sp: Space, x):
    """sqrt(sum over all parameters of x^2): a scalar."""
    return jnp.sqrt(sp.total(sp.map(jnp.square, x)))


def _norm(sp: Space, x):
    """The L2 norm of each parameter leaf, broadcast over that leaf (release: per-leaf norm)."""
    return sp.map(jnp.sqrt, sp.leaf_total(sp.map(jnp.square, x)))


def _norm_export(wr, x):
    c, kind = x
    if kind != TENSOR:
        return f"jnp.sqrt(jnp.square({c}))"
    return f"jax.tree.map(lambda {c}: jnp.sqrt(jnp.broadcast_to(jnp.sum(jnp.square({c})), " \
           f"{c}.shape)), {c})"


def _dot(sp: Space, x, y):
    """sum over all parameters of x * y: a scalar."""
    return sp.total(sp.map(lambda a, b: a * b, x, y))


def _dot_export(wr, x, y):
    return wr.total(wr.mapped("{0} * {1}", [x, y]))


def _cosine_sim(sp: Space, x, y):
    """dot(x, y) / (|x| |y| + 1e-8), norms over all parameters (safe division)."""
    return _dot(sp, x, y) / (_global_norm(sp, x) * _global_norm(sp, y) + EPS)


def _cosine_sim_export(wr, x, y):
    return f"{_dot_export(wr, x, y)} / ({wr.global_norm(x)} * {wr.global_norm(y)} + {EPS!r})"


def _clip_by_global_norm(sp: Space, x, c):
    """x * min(1, c / (global_norm(x) + 1e-8)) (safe division)."""
    factor = sp.map(lambda cc: jnp.minimum(1.0, cc / (_global_norm(sp, x) + EPS)), c)
    return sp.map(lambda a, f: a * f, x, factor)


def _clip_by_global_norm_export(wr, x, c):
    gn = wr.let(wr.global_norm(x))
    return wr.mapped("{0} * jnp.minimum(1.0, {1} / (%s + {eps}))" % gn, [x, c])[0]


def _const(name: str, value: float, export: str) -> Op:
    return Op(name, 0, CONSTANT, lambda sp, _v=value: jnp.float32(_v), export)


def _jnp(name: str, **props) -> Op:
    """A unary op that is the jnp function of the same name."""
    return elementwise(name, 1, getattr(jnp, name), f"jnp.{name}({{0}})", **props)


_ON_ABS = dict(absorbs=("abs", "negative"))  # f(|x|) = f(-x) = f(x): f reads |x| or x * x
_ARITH = dict(pyfloat=True)
_ODD = set("sin tan arcsin arctan sinh tanh arcsinh arctanh".split())

_ROWS: List[Op] = [
    elementwise("add", 2, operator.add, "{0} + {1}", infix="+", commutative=True,
                units=(Unit(-0.0), Unit(0.0, strict=False)), fold=operator.add, **_ARITH),
    elementwise("sub", 2, operator.sub, "{0} - {1}", infix="-",
                units=(Unit(0.0), Unit(-0.0, strict=False)), fold=operator.sub, **_ARITH),
    elementwise("mul", 2, operator.mul, "{0} * {1}", infix="*", commutative=True,
                units=(Unit(1.0),), fold=operator.mul, **_ARITH),
    # x / 1 is x for float32 x (1 + 1e-8 rounds to 1), not for a Python-float x
    elementwise("div", 2, _div, "{0} / ({1} + {eps})", infix="/",
                units=(Unit(1.0, double=False),), **_ARITH),
    elementwise("max", 2, jnp.maximum, "jnp.maximum({0}, {1})", commutative=True,
                idempotent=True),
    elementwise("min", 2, jnp.minimum, "jnp.minimum({0}, {1})", commutative=True,
                idempotent=True),
    elementwise("power", 2, jnp.power, "jnp.power({0}, {1})", aliases=("pow",)),
    _jnp("abs", idempotent=True, absorbs=("negative",)),
    *[_jnp(n, odd=n in _ODD) for n in "cos sin tan arcsin arccos arctan sinh cosh tanh "
      "arcsinh arccosh arctanh exp exp2".split()],
    elementwise("exp10", 1, lambda x: jnp.power(10.0, x), "jnp.power(10.0, {0})"),
    _jnp("expm1"),
    elementwise("log", 1, lambda x: jnp.log(jnp.abs(x)), "jnp.log(jnp.abs({0}))", **_ON_ABS),
    elementwise("log10", 1, lambda x: jnp.log10(jnp.abs(x)), "jnp.log10(jnp.abs({0}))",
                **_ON_ABS),
    elementwise("log2", 1, lambda x: jnp.log2(jnp.abs(x)), "jnp.log2(jnp.abs({0}))",
                **_ON_ABS),
    elementwise("log1p", 1, lambda x: jnp.log(jnp.abs(1.0 + x)), "jnp.log(jnp.abs(1.0 + {0}))"),
    _jnp("square", **_ON_ABS),
    elementwise("sqrt", 1, lambda x: jnp.sqrt(jnp.abs(x)), "jnp.sqrt(jnp.abs({0}))", **_ON_ABS),
    elementwise("cube", 1, lambda x: x * x * x, "{0} * {0} * {0}", odd=True, **_ARITH),
    _jnp("cbrt", odd=True),
    _jnp("sign", idempotent=True, odd=True),
    elementwise("reciprocal", 1, lambda x: 1.0 / (x + EPS), "1.0 / ({0} + {eps})", **_ARITH),
    _jnp("negative", involution=True, odd=True),
    elementwise("interp", 3, _interp, "(1.0 - {2}) * {0} + {2} * {1}", aliases=("interpolate",),
                **_ARITH),
    elementwise("clip", 2, _clip, "jnp.clip({0}, -jnp.abs({1}), jnp.abs({1}))"),
    Op("norm", 1, SAME_AS_FIRST, _norm, _norm_export, doc=_norm.__doc__),
    Op("global_norm", 1, REDUCE, _global_norm, lambda wr, x: wr.global_norm(x),
       doc=_global_norm.__doc__),
    Op("dot", 2, REDUCE, _dot, _dot_export, doc=_dot.__doc__, commutative=True, **_ARITH),
    Op("cosine_sim", 2, REDUCE, _cosine_sim, _cosine_sim_export, doc=_cosine_sim.__doc__,
       commutative=True),
    Op("clip_by_global_norm", 2, ANY_TENSOR, _clip_by_global_norm, _clip_by_global_norm_export,
       doc=_clip_by_global_norm.__doc__),
    _const("get_pi", math.pi, f"jnp.float32({math.pi!r})"),
    _const("get_e", math.e, f"jnp.float32({math.e!r})"),
    _const("get_eps", EPS, "jnp.float32({eps})"),
    Op(LITERAL_OP, 1, LITERAL, lambda sp, c: c, "{0}", doc="name = c: the number c itself",
       search=False, **_ARITH),
]


# --- the live table ---------------------------------------------------------------------------

class _Rows(collections.abc.Sequence):
    """A read-only, live view of the rows in table order."""

    def __getitem__(self, i):
        return _ROWS[i]

    def __len__(self):
        return len(_ROWS)

    def __repr__(self):
        return f"OP_LIST({', '.join(op.name for op in _ROWS)})"


class OpSet(collections.abc.Set):
    """The names of the ops whose row satisfies ``test``: a live view of the table."""

    def __init__(self, test: Callable[[Op], bool]):
        self._test = test

    @classmethod
    def _from_iterable(cls, it):
        return frozenset(it)

    def __contains__(self, name):
        op = OPS.get(name) if isinstance(name, str) else None
        return op is not None and bool(self._test(op))

    def __iter__(self):
        return iter([op.name for op in _ROWS if self._test(op)])

    def __len__(self):
        return sum(1 for op in _ROWS if self._test(op))


OPS: Dict[str, Op] = {}
OP_LIST = _Rows()
OP_INDEX: Dict[str, int] = {}
INFIX: Dict[str, str] = {}
_ALIASES: Dict[str, str] = {}
COMMUTATIVE = OpSet(lambda op: op.commutative)


def _reindex():
    """Rebuild the name maps in place (importers hold these very dicts)."""
    seen = set()
    for op in _ROWS:
        names = (op.name,) + op.aliases + ((op.infix,) if op.infix else ())
        if seen & set(names) or len(set(names)) != len(names):
            raise ValueError(f"op {op.name!r}: a name, alias or infix symbol is already taken")
        seen |= set(names)
    for d, items in ((OPS, [(op.name, op) for op in _ROWS]),
                     (OP_INDEX, [(op.name, i) for i, op in enumerate(_ROWS)]),
                     (INFIX, [(op.infix, op.name) for op in _ROWS if op.infix]),
                     (_ALIASES, [(a, op.name) for op in _ROWS for a in op.aliases])):
        d.clear()
        d.update(items)


def register_op(op: Op) -> Op:
    """Add ``op`` to the table (parser, executors, hashing, simplifier and export see it).
    Raises ValueError if its name, an alias or its infix symbol is taken."""
    if not isinstance(op, Op) or not op.name.isidentifier() or not 0 <= op.arity <= MAX_ARITY:
        raise ValueError(f"not an op row with an identifier name and at most {MAX_ARITY} "
                         f"arguments: {op!r}")
    _ROWS.append(op)
    try:
        _reindex()
    except ValueError:
        _ROWS.pop()
        _reindex()
        raise
    return op


def unregister_op(name: str) -> Op:
    """Remove the op called ``name`` from the table; returns its row."""
    op = OPS[name]
    _ROWS.remove(op)
    _reindex()
    return op


def replace_op(op: Op) -> Op:
    """Put ``op`` in the place of its name's row (same index, names); returns the old row."""
    i = OP_INDEX[op.name]
    if (op.aliases, op.infix) != (_ROWS[i].aliases, _ROWS[i].infix):
        raise ValueError(f"op {op.name!r}: a replacement keeps the row's names")
    old, _ROWS[i] = _ROWS[i], op
    _reindex()
    return old


@contextlib.contextmanager
def registered(*ops: Op):
    """``with registered(op, ...):`` the ops are in the table, and removed afterwards."""
    done = []
    try:
        for op in ops:
            done.append(register_op(op))
        yield ops
    finally:
        for op in reversed(done):
            unregister_op(op.name)


_reindex()


def resolve(name: str) -> Optional[Op]:
    """The op called ``name`` (canonical name, alias or infix symbol), or None. The literal
    op is not callable by name: ``x = 0.5`` is how a program writes it."""
    name = _ALIASES.get(name, name)
    if name in INFIX:
        name = INFIX[name]
    op = OPS.get(name)
    return None if op is None or op.rule == LITERAL else op


def callable_names():
    """Every name a program may call (canonical names and aliases, not the infix ops)."""
    return sorted([n for n, op in OPS.items() if not op.infix and op.rule != LITERAL]
                  + list(_ALIASES))

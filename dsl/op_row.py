"""What a row of the op table (``dsl/ops.py``) is: the :class:`Op` record and its
:class:`Unit` facts, the output-kind rules (``ELEMENTWISE``, ``REDUCE``, ...), the two value
kinds (``TENSOR``, ``SCALAR``), the :class:`Space` interface every implementation is written
against, and :func:`elementwise`, the row of a plain elementwise function.

No op is named here: the rows themselves, their formulas and ``EPS`` are in ``dsl/ops.py``,
which re-exports every name of this module.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Optional, Tuple, Union

TENSOR = "tensor"
SCALAR = "scalar"


class Space:
    """How values are represented. ``map`` applies an elementwise function, broadcasting
    scalars over tensors; ``total`` sums every element of a value into a scalar;
    ``leaf_total`` sums each parameter leaf and broadcasts the sum back over that leaf;
    ``leaf_map`` maps each leaf in its own shape (so a space knows the leaves' shapes)."""

    def map(self, f, *args):  # pragma: no cover - interface
        raise NotImplementedError

    def total(self, x):  # pragma: no cover - interface
        raise NotImplementedError

    def leaf_total(self, x):  # pragma: no cover - interface
        raise NotImplementedError

    def leaf_map(self, f, x, scalar):  # pragma: no cover - interface
        """``f`` on each parameter leaf of tensor ``x`` in the leaf's own shape (``f`` keeps
        the shape); ``scalar(x)`` for a scalar ``x`` (the matrix ops, ``dsl/matrix_ops.py``)."""
        raise NotImplementedError


# Output-kind rules.
ELEMENTWISE = "elementwise"  # tensor if any argument is a tensor, else scalar
REDUCE = "reduce"  # always scalar
SAME_AS_FIRST = "first"  # the kind of the first argument
ANY_TENSOR = "any"  # not elementwise, but a tensor if any argument is a tensor
CONSTANT = "constant"  # no arguments, scalar
LITERAL = "literal"  # `name = c`: one numeric argument (never a variable), scalar, its value


@dataclasses.dataclass(frozen=True)
class Unit:
    """A right identity: ``f(x, value) = x`` (also ``f(value, x)`` for commutative ops).

    ``strict``: bitwise for every float32 ``x`` (else equal but for the sign of a zero);
    ``double``: also when ``x`` is a Python float (the reference executor's double)."""

    value: float
    strict: bool = True
    double: bool = True


@dataclasses.dataclass(frozen=True)
class Op:
    """One row of the op table.

    The properties hold bitwise as both engines compute (float32 through XLA, which flushes
    subnormals to zero in every arithmetic op, as ``x * 1`` does) and, for ``pyfloat`` ops,
    also in Python double; the simplifier's exact passes rely on that (``simplify/graph.py``)."""

    name: str  # canonical (printed) name
    arity: int
    rule: str  # an output-kind rule: ELEMENTWISE, REDUCE, SAME_AS_FIRST, ANY_TENSOR, ...
    impl: Callable  # impl(space, *args) -> value
    # export: for elementwise ops (and CONSTANT/LITERAL) a format string over the argument
    # codes {0}, {1}, ... (and {eps}), mapped over the tensor leaves by codegen; otherwise a
    # function (writer, *args) -> code, args as (code, kind) pairs (see dsl/codegen.py).
    export: Union[str, Callable, None] = None
    infix: Optional[str] = None  # '+', '-', '*', '/' for arithmetic
    aliases: Tuple[str, ...] = ()
    doc: str = ""
    commutative: bool = False  # f(x, y) = f(y, x): hashing sorts the arguments
    idempotent: bool = False  # unary: f(f(x)) = f(x); binary: f(x, x) = x
    involution: bool = False  # f(f(x)) = x
    odd: bool = False  # unary, f(-x) = -f(x): c * f(w) is a decay term (dsl/decay.py)
    absorbs: Tuple[str, ...] = ()  # unary ops g with f(g(x)) = f(x)
    units: Tuple[Unit, ...] = ()  # right identities
    fold: Optional[Callable] = None  # f on Python floats, exact in both engines whenever
    # the arguments and the result are float32 values (+ - *: double rounding is innocuous)
    pyfloat: bool = False  # on Python floats the reference computes in double, returns one
    search: bool = True  # random statements (the search's insert mutation) may draw it

    def out_kind(self, arg_kinds) -> str:
        if self.rule in (ELEMENTWISE, ANY_TENSOR):
            return TENSOR if TENSOR in arg_kinds else SCALAR
        if self.rule == SAME_AS_FIRST:
            return arg_kinds[0]
        return SCALAR

    @property
    def elementwise(self) -> bool:
        return self.rule == ELEMENTWISE


def elementwise(name: str, arity: int, f: Callable, export: str, **props) -> Op:
    """A row for an elementwise op: ``f`` is a plain jnp function (broadcasting), ``export``
    the same formula as a template, e.g. ``elementwise("softsign", 1, lambda x: x / (1.0 +
    jnp.abs(x)), "{0} / (1.0 + jnp.abs({0}))")``; ``props`` are further :class:`Op` fields."""
    props.setdefault("doc", f.__doc__ or "")
    return Op(name, arity, ELEMENTWISE, lambda sp, *a, _f=f: sp.map(_f, *a), export, **props)

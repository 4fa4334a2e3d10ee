"""Constants in the exact passes (:mod:`optevo.simplify.graph`): float32 rounding, folding
constant-only statements, and the op rows' units.

How the engines compute a statement on constants alone: the reference executor
(``dsl/execute.py``) and the fingerprint's rows hold constants as Python floats and do the
arithmetic rows (``+ - *``, ``Op.pyfloat``) in **double**, rounding to float32 only where the
value meets an array (then once); the fast interpreter (``dsl/interpreter.py``) loads every
constant into a float32 register and does the same statement in **float32** (XLA, which
flushes subnormal results to zero and reads subnormal operands as zero). :func:`fold`
replaces ``c1 op c2`` by the double ``D = c1 op c2``, exactly what the reference computes
(so the reference, whatever it does with the value next, in double or not, runs the same
numbers), and only when the interpreter's float32 result is ``float32(D)``, the value it
then loads for the constant. It computes that result: ``op`` is ``+``, ``-`` or ``*``
(``Op.fold``), the operands are ``float32(c1)``, ``float32(c2)`` (finite, not subnormal, so
none is read as zero), and an IEEE float32 op is the exact result rounded once, which the
double ``F = float32(c1) op float32(c2)`` rounded to float32 equals (rounding to double
first changes nothing: 53 >= 2 * 24 + 2 bits) unless it underflows, so ``|F| > 2^-126`` or
``F == 0`` (no flush before or after rounding; exact zeros take the same sign in both
precisions) and ``float32(F)`` finite; then ``float32(D)`` and ``float32(F)`` must have the
same bits. For float32 constants (what mutations write) ``D == F``, so it holds unless
the result underflows or overflows;
``0.4015291 * 0.1661706`` (doubles, as a rounded program writes them) folds to the double
``0.06672233146446001`` when both round alike, and stays when they do not. ``D`` need not be a
float32 value: the program then carries the reference's double as its number, except as
``interp``'s weight, the one place where the interpreter treats a constant otherwise than a
register holding the same float32 (it computes a constant weight's ``1 - a`` in double, as
the reference does, and a computed weight's in float32): there the statement stays
(``Graph.make``; a folded double is a node apart from a literal of the same value). A chain
``(c1 * c2) * c3`` folds link by link while the check holds (the reference goes on in
double, the interpreter rounds in between: the next link's operand is ``float32(D)``). The
fingerprint's rows compute constant statements in double, as the reference, and round a
Python float to float32 wherever it meets an array, so they too see no difference.
Division, ``interp`` and the jnp rows (``sqrt``, ``tanh``...) are never folded: safe
division adds ``1e-8`` in double in the reference and in float32 in the interpreter,
``interp`` rounds ``1 - a`` in double, and XLA's float32 functions are not pinned down
(they differ across backends).
"""

from __future__ import annotations

import math
import struct
from typing import Optional

import numpy as np

from optevo.dsl.ops import Op

MIN_NORMAL = float(np.finfo(np.float32).tiny)  # 2^-126


def f32(c) -> float:
    """``c`` rounded to the nearest float32, as a Python float (+-inf beyond its range)."""
    if abs(c) < 3.0e38 or not math.isfinite(c):
        return float(np.float32(c))
    with np.errstate(over="ignore"):
        return float(np.float32(c))


def _operand(c) -> bool:
    """A finite Python float whose float32 the interpreter reads as itself (finite, not
    subnormal)."""
    if type(c) is not float or not math.isfinite(c):
        return False
    c32 = f32(c)
    return math.isfinite(c32) and (c32 == 0.0 or abs(c32) >= MIN_NORMAL)


def _bits(c: float) -> bytes:
    return struct.pack("<f", c)


def fold(op: Op, args) -> Optional[float]:
    """``op(*args)`` as the one constant that changes no engine's result (the reference's
    double, which the interpreter loads as its own float32 result), or None (see the
    module docstring)."""
    if op.fold is None or not args or not all(_operand(x) for x in args):
        return None
    d = op.fold(*args)  # the reference: Python doubles
    fa = op.fold(*[f32(x) for x in args])  # the interpreter's exact result (double-rounded)
    if type(d) is not float or not (fa == 0.0 or abs(fa) > MIN_NORMAL):
        return None
    f, g = f32(fa), f32(d)
    return d if math.isfinite(f) and math.isfinite(g) and _bits(f) == _bits(g) else None


def unit(op: Op, c) -> Optional[object]:
    """The row's identity (``Op.units``) that constant ``c`` is, sign of zero included."""
    for u in op.units:
        if type(c) is float and c == u.value and math.copysign(1, c) == math.copysign(1, u.value):
            return u
    return None

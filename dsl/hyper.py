"""A program's named hyperparameters: what an exported optimizer takes as arguments.

optax optimizers take ``learning_rate`` in true units (``optax.lion(1e-4)``), and ``b1``,
``b2``, ``weight_decay`` as named arguments that ``optax.inject_hyperparams`` can change. A
program's constants are anonymous and its ``lr`` input is only an order-1 signal that the
program scales itself (``lr = lr * 0.0001`` in Lion), so this module names them, on the
program as the export writes it (dead statements stripped first):

* **The lr unit.** When the only read of the input ``lr`` is one statement ``x = lr * c``
  (or ``c * lr``) with ``c`` a positive constant, the program computes with ``lr * c``
  alone: the exported ``learning_rate`` *is* ``lr * c`` (the true step size: Lion's is
  ``1e-4``), and that statement becomes ``x = learning_rate``. Otherwise the unit is 1 and
  ``learning_rate`` is the program's ``lr`` input as it is (a multiplier, said so in the
  module's docstring); ``reads_lr`` is False when no live statement reads ``lr`` at all (a
  program whose step the learning rate cannot change, flagged by the export).
* **b1, b2, ...**: the constant weight of each ``interp(x, y, a)`` (``(1 - a) x + a y``:
  ``a`` is the decay of the running average, as optax's ``b1``), in statement order, so
  Lion's are optax's ``b1 = 0.9`` (the update's) and ``b2 = 0.99`` (the momentum's), and
  AdamW's its ``b1 = 0.9`` and ``b2 = 0.999``.
* **weight_decay**: the decay site (``dsl.decay``). One site: its constant (AdamW's 1e-4,
  in units of the learning rate as optax's ``adamw``). Several: a factor (default 1) that
  scales all of them, as the tuner does.
* **c1, c2, ...**: every other constant argument, in statement order. Literal statements
  (``epsilon = 1e-8``) keep their own names as assignments.

Written with these names, the module computes exactly what the program computes: a
named constant is the same Python float the literal was, and ``learning_rate = lr * c``
enters as that product.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, List, Optional, Tuple

from .decay import Site, decay_sites
from .ops import LITERAL, OPS
from .program import Program

RESERVED = ("learning_rate", "weight_decay")


@dataclasses.dataclass(frozen=True)
class Hyper:
    """A named hyperparameter: its default and the constant arguments it stands for (each
    site as ``(statement, argument, scale)``: the argument becomes ``name * scale``, or the
    name itself where ``scale`` is None)."""

    name: str
    value: float
    sites: Tuple[Tuple[int, int, Optional[float]], ...]
    role: str  # "b" (an interp weight), "weight_decay", "c" (any other constant)


@dataclasses.dataclass(frozen=True)
class Hypers:
    """What :func:`named_hyperparameters` finds (statement indices of the program given)."""

    unit: float  # learning_rate = lr * unit (1.0: learning_rate is the lr input itself)
    unit_stmt: Optional[int]  # the statement ``x = lr * unit`` written as ``x = learning_rate``
    reads_lr: bool  # some statement reads the lr input
    named: Tuple[Hyper, ...]

    def defaults(self) -> Dict[str, float]:
        return {h.name: h.value for h in self.named}

    def arg_names(self) -> Dict[Site, Tuple[str, Optional[float]]]:
        """(statement, argument) -> (name, scale) for every named constant argument."""
        return {(i, a): (h.name, scale) for h in self.named for i, a, scale in h.sites}


def _is_const(a) -> bool:
    return not isinstance(a, str)


def _input_lr_reads(program: Program) -> List[int]:
    """Statements that read the input ``lr`` (before any statement reassigns ``lr``)."""
    reads = []
    for i, s in enumerate(program.stmts):
        if "lr" in s.vars():
            reads.append(i)
        if s.target == "lr":
            break
    return reads


def lr_unit(program: Program) -> Tuple[float, Optional[int]]:
    """(unit, statement) of the lr unit (the module docstring); (1.0, None) if none."""
    reads = _input_lr_reads(program)
    if len(reads) != 1:
        return 1.0, None
    s = program.stmts[reads[0]]
    if s.op != "mul" or len(s.args) != 2 or "lr" not in s.args:
        return 1.0, None
    other = s.args[1 - s.args.index("lr")]
    if _is_const(other) and float(other) > 0 and s.args.count("lr") == 1:
        return float(other), reads[0]
    return 1.0, None


def named_hyperparameters(program: Program) -> Hypers:
    """The named hyperparameters of ``program`` (strip it of dead statements first: a dead
    constant would become an argument that changes nothing)."""
    unit, unit_stmt = lr_unit(program)
    reads_lr = bool(_input_lr_reads(program))
    decay = set(decay_sites(program))
    named: List[Hyper] = []
    if decay:
        sites = sorted(decay)
        if len(sites) == 1:
            i, a = sites[0]
            named.append(Hyper("weight_decay", float(program.stmts[i].args[a]),
                               ((i, a, None),), "weight_decay"))
        else:
            named.append(Hyper("weight_decay", 1.0, tuple(
                (i, a, float(program.stmts[i].args[a])) for i, a in sites), "weight_decay"))
    n_b = n_c = 0
    taken = set(RESERVED) | {s.target for s in program.stmts}
    for i, s in enumerate(program.stmts):
        if OPS[s.op].rule == LITERAL or i == unit_stmt:
            continue
        for a, x in enumerate(s.args):
            if not _is_const(x) or (i, a) in decay:
                continue
            if s.op == "interp" and a == 2:
                n_b += 1
                base, role = f"b{n_b}", "b"
            else:
                n_c += 1
                base, role = f"c{n_c}", "c"
            name = base
            while name in taken:  # a program variable of that name: keep it, rename ours
                name += "_"
            taken.add(name)
            named.append(Hyper(name, float(x), ((i, a, None),), role))
    order = {"b": 0, "weight_decay": 1, "c": 2}
    named.sort(key=lambda h: (order[h.role], h.sites[0][:2]))
    return Hypers(unit, unit_stmt, reads_lr, tuple(named))

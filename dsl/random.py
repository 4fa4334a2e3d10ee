"""Random statements and programs over the op table (used by mutations, tests, benchmarks).

Draws are from a ``numpy.random.Generator`` so that a seed fixes every choice. Constants
are drawn from N(0, 1), as in the paper's mutations. Ops are drawn from the rows of the op
table whose ``search`` flag is set (every op but the literal ``name = c``, in table order),
so a registered op joins the search space.
"""

from __future__ import annotations

from typing import List, Optional, Sequence

import numpy as np

from .ops import OP_LIST, Op
from .program import INPUTS, OUTPUTS, Program, Stmt

TEMP_PREFIX = "t"


def random_const(rng: np.random.Generator) -> float:
    return float(np.float32(rng.standard_normal()))


def random_arg(rng: np.random.Generator, names: Sequence[str], p_const: float = 0.2):
    if not names or rng.random() < p_const:
        return random_const(rng)
    return str(names[rng.integers(len(names))])


def fresh_name(used: Sequence[str]) -> str:
    used = set(used)
    k = 0
    while f"{TEMP_PREFIX}{k}" in used:
        k += 1
    return f"{TEMP_PREFIX}{k}"


def random_statement(rng: np.random.Generator, names: Sequence[str],
                     ops: Optional[Sequence[Op]] = None, p_new: float = 0.5,
                     p_const: float = 0.2) -> Stmt:
    """A statement reading only ``names`` (the variables defined at its position); it
    assigns a fresh temporary with probability ``p_new``, else one of ``names``."""
    ops = searchable_ops() if ops is None else ops
    op = ops[rng.integers(len(ops))]
    args = tuple(random_arg(rng, names, p_const) for _ in range(op.arity))
    if rng.random() < p_new or not names:
        target = fresh_name(names)
    else:
        target = str(names[rng.integers(len(names))])
    return Stmt(target, op.name, args)


def searchable_ops() -> List[Op]:
    """The ops random statements draw from, in table order."""
    return [op for op in OP_LIST if op.search]


def defined_before(program: Program, index: int) -> List[str]:
    """Variables defined before statement ``index`` (inputs first, in order of definition)."""
    names = list(INPUTS)
    for s in program.stmts[:index]:
        if s.target not in names:
            names.append(s.target)
    return names


def random_program(rng: np.random.Generator, length: int, ops=None) -> Program:
    """``length`` random statements, then ``update`` from a random defined variable; the
    outputs are ``update``, the last values of ``m`` and ``v``."""
    stmts: List[Stmt] = []
    names = list(INPUTS)
    for _ in range(length):
        s = random_statement(rng, names, ops)
        stmts.append(s)
        if s.target not in names:
            names.append(s.target)
    src = names[rng.integers(len(names))]
    stmts.append(Stmt("update", "mul", (src, "lr")))
    return Program(tuple(stmts), OUTPUTS)

"""optevo.dsl: the language of optimizer programs.

One op table (``ops``) defines every function, one row per op (``register_op`` adds one;
``matrix_ops`` adds the matrix-aware rows; ``op_row`` says what a row is);
programs are data (``program``), parsed from the paper's text form with ``ast``
(``parse``), run by the reference executor (``execute``) or by the fast interpreter
(``interpreter``), and exported to optax (``export``, ``codegen``).
"""

from .ops import OPS, OP_LIST, SCALAR, TENSOR, Op, register_op, registered, resolve
from . import matrix_ops  # noqa: F401  (registers orthogonalize, row_mean, col_mean)
from .program import INPUTS, OUTPUTS, STATE, Program, ProgramError, Stmt, check
from .parse import parse
from .library import load_program as load  # a program file or a library name ("lion")
from .execute import run, update_fn
from .export import ProgramState, to_optax

__all__ = [
    "OPS", "OP_LIST", "SCALAR", "TENSOR", "Op", "register_op", "registered", "resolve",
    "INPUTS", "OUTPUTS", "STATE", "Program", "ProgramError", "Stmt", "check", "load", "parse",
    "run", "update_fn", "ProgramState", "to_optax",
]

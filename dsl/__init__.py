"""optevo.dsl: the language of optimizer programs.

One op table (``ops``) defines every function; programs are data (``program``), parsed from
the paper's text form with ``ast`` (``parse``), run by the reference executor (``execute``)
or by the fast interpreter (``interpreter``), and exported to optax (``export``).
"""

from .ops import OPS, OP_LIST, SCALAR, TENSOR, resolve
from .program import INPUTS, OUTPUTS, Program, ProgramError, Stmt, check
from .parse import load, parse
from .execute import run, update_fn
from .export import ProgramState, to_optax

__all__ = [
    "OPS", "OP_LIST", "SCALAR", "TENSOR", "resolve", "INPUTS", "OUTPUTS", "Program",
    "ProgramError", "Stmt", "check", "load", "parse", "run", "update_fn", "ProgramState",
    "to_optax",
]

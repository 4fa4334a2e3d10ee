"""Programs as data: a straight-line list of assignments, and their canonical text form.

A program is ``def train(w, g, m, v, lr): ... return update, m, v``. Each statement assigns
one op applied to variables or constants. Inputs are ``w`` (weights), ``g`` (gradient),
the ``STATE`` slots ``m`` and ``v`` (they start at zero and are loop-carried) and ``lr``
(the schedule's value this step); the three returned names hold the update and the new
``m`` and ``v``. ``INPUTS``, ``STATE`` and ``OUTPUTS`` are defined here and only here. The
engines read them by position, so ``check`` refuses returned names that say another order
(``return m, update, v``: :func:`order_error`, which ``parse`` applies to parameters too).

A statement ``name = c`` (a number, as the official release writes ``epsilon = 1e-8``) is
the ``literal`` op of ``dsl/ops.py``: ``name`` is a scalar holding exactly ``c`` (a Python
float in the reference executor, as a number written in place of the name is), so
:func:`inline_literals` (reads of ``name`` replaced by ``c``) computes the same bits.
Its argument must be a number: ``check`` rejects ``name = literal(variable)`` (copies are
not statements). Its text is ``name = c``, so ``parse(p.text()) == p`` holds.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Dict, List, Tuple, Union

from .errors import OptevoError
from .ops import LITERAL, OPS, SCALAR, TENSOR

STATE: Tuple[str, ...] = ("m", "v")  # state slots: inputs that the returned values replace
INPUTS: Tuple[str, ...] = ("w", "g") + STATE + ("lr",)
INPUT_KINDS: Dict[str, str] = {**{n: TENSOR for n in INPUTS}, "lr": SCALAR}
OUTPUTS: Tuple[str, ...] = ("update",) + STATE
INPUT_BIT: Dict[str, int] = {name: 1 << i for i, name in enumerate(INPUTS)}  # read masks

Arg = Union[str, float]  # a variable name or a constant

# The engines call a program by position (the paper's loop): ``(w, g, m, v, lr) -> (update,
# m, v)``. Names that say which role a value plays (case aside); a parameter, or a returned
# variable the body assigns, named for another position is an error (:func:`order_error`).
# Any other name is free. A returned *input* (``return m, t0, v``: the old m as the update)
# is data, never a claim; so is a returned variable whose own position holds no other role.
ORDER = "the order is train(w, g, m, v, lr) -> (update, m, v)"
PARAM_ROLES: Tuple[Tuple[str, ...], ...] = (
    ("w", "weight", "weights", "param", "params", "parameters"),
    ("g", "grad", "grads", "gradient", "gradients"),
    ("m", "momentum", "first_moment"),
    ("v", "velocity", "second_moment"),
    ("lr", "learning_rate", "step_size"),
)
_PARAM_WORDS = ("weights", "gradient", "state m", "state v", "learning rate")
_RETURN_WORDS = ("update", "new m", "new v")


class ProgramError(OptevoError, ValueError):
    """An invalid program: one line that names the file, the line and what is wrong."""

    def __init__(self, msg: str, line: int = 0, filename: str = ""):
        self.msg = msg
        self.line = line
        self.filename = filename
        super().__init__(self.__str__())

    def __str__(self):
        where = self.filename or "<program>"
        if self.line:
            where += f":{self.line}"
        return f"{where}: {self.msg}"

    def with_filename(self, filename: str) -> "ProgramError":
        return ProgramError(self.msg, self.line, filename)


@dataclasses.dataclass(frozen=True)
class Stmt:
    """``target = op(*args)``; ``line`` is the source line (not part of equality)."""

    target: str
    op: str
    args: Tuple[Arg, ...]
    line: int = dataclasses.field(default=0, compare=False)

    def vars(self) -> Tuple[str, ...]:
        return tuple(a for a in self.args if isinstance(a, str))

    def text(self) -> str:
        return f"{self.target} = {format_expr(self.op, self.args)}"


@dataclasses.dataclass(frozen=True)
class Program:
    stmts: Tuple[Stmt, ...]
    returns: Tuple[str, str, str] = OUTPUTS

    def __post_init__(self):
        object.__setattr__(self, "stmts", tuple(self.stmts))
        object.__setattr__(self, "returns", tuple(self.returns))

    def __len__(self):
        return len(self.stmts)

    def text(self, name: str = "train") -> str:
        """The canonical text form; ``parse(p.text()) == p``."""
        lines = [f"def {name}({', '.join(INPUTS)}):"]
        lines += [f"  {s.text()}" for s in self.stmts]
        lines.append(f"  return {', '.join(self.returns)}")
        return "\n".join(lines) + "\n"

    __str__ = text

    def constants(self) -> List[float]:
        return [a for s in self.stmts for a in s.args if not isinstance(a, str)]

    def replace(self, stmts=None, returns=None) -> "Program":
        return Program(self.stmts if stmts is None else stmts,
                       self.returns if returns is None else returns)


def format_const(c: float) -> str:
    """Shortest text that reads back as the same float."""
    return repr(float(c))


def format_arg(a: Arg) -> str:
    return a if isinstance(a, str) else format_const(a)


def format_expr(op: str, args) -> str:
    spec = OPS[op]
    if spec.rule == LITERAL:
        return format_arg(args[0])
    if spec.infix:
        return f"{format_arg(args[0])} {spec.infix} {format_arg(args[1])}"
    return f"{op}({', '.join(format_arg(a) for a in args)})"


def check(program: Program) -> List[str]:
    """Validate ``program`` and infer the kind (tensor/scalar) each statement produces.

    Raises ProgramError (with the statement's line) for an unknown op, a wrong number of
    arguments, a variable read before it is assigned, a non-finite constant, a variable as the
    number of ``name = c``, a returned name that is never assigned. Returns one kind per
    statement. A scalar output is broadcast over the parameters by the executors.
    """
    env = dict(INPUT_KINDS)
    kinds = []
    for s in program.stmts:
        op = OPS.get(s.op)
        if op is None:
            raise ProgramError(f"unknown function {s.op!r}", s.line)
        if len(s.args) != op.arity:
            raise ProgramError(
                f"{s.op} takes {op.arity} argument{'s' if op.arity != 1 else ''}, "
                f"got {len(s.args)}", s.line)
        arg_kinds = []
        for a in s.args:
            if isinstance(a, str):
                if op.rule == LITERAL:
                    raise ProgramError(f"'{s.target} = ...' must assign a number, not the variable "
                                       f"{a!r} (copies are not statements)", s.line)
                if a not in env:
                    raise ProgramError(f"variable {a!r} is used before it is assigned", s.line)
                arg_kinds.append(env[a])
            else:
                if not math.isfinite(a):
                    raise ProgramError(f"constant {a!r} is not finite", s.line)
                arg_kinds.append(SCALAR)
        if not isinstance(s.target, str) or not s.target.isidentifier():
            raise ProgramError(f"bad assignment target {s.target!r}", s.line)
        kind = op.out_kind(arg_kinds)
        env[s.target] = kind
        kinds.append(kind)
    if len(program.returns) != 3:
        raise ProgramError("the program must return three values: update, m, v")
    for r in program.returns:
        if r not in env:
            raise ProgramError(f"returned variable {r!r} is never assigned")
    wrong = order_error(INPUTS, program.returns, {s.target for s in program.stmts})
    if wrong:
        raise ProgramError(wrong)
    return kinds


def _role(name: str, table) -> int:
    return next((i for i, names in enumerate(table) if name.lower() in names), -1)


def order_error(params, returns, assigned) -> str:
    """What says the parameters or the returned values are in another order than the
    engines' ``(w, g, m, v, lr) -> (update, m, v)`` ('' if nothing does). ``params``,
    ``returns``: the names as written; ``assigned``: the names the body assigns. A parameter
    named for another position is wrong; so is a returned variable the body assigns, named
    for another output (``update``; ``m`` or the third parameter's name; ``v`` or the
    fourth's), where that output's own position returns a name of yet another role (a swap:
    ``return m, update, v``). ``program_hash``-equal rewrites (dead slots returning their
    input, a fresh name for a decayed update) never make one."""
    for i, p in enumerate(params):
        role = _role(p, PARAM_ROLES)
        if role >= 0 and role != i:
            return f"parameter {i + 1} is named {p!r} but is the {_PARAM_WORDS[i]}: {ORDER}"
    outs = tuple(tuple(n.lower() for n in names) for names in (
        ("update",), PARAM_ROLES[2] + tuple(params[2:3]), PARAM_ROLES[3] + tuple(params[3:4])))
    for q, r in enumerate(returns):
        role = _role(r, outs) if r in assigned else -1
        if role >= 0 and role != q and _role(returns[role], outs) not in (-1, role):
            return f"return value {q + 1} is named {r!r} but is the {_RETURN_WORDS[q]}: {ORDER}"
    return ""


def inline_literals(program: Program) -> Program:
    """``program`` with every read of a name that holds a literal (``name = c``) replaced by
    ``c``. It computes the same bits in every engine; the literal statements stay
    (``liveness.strip_dead`` drops those that nothing reads any more)."""
    known: Dict[str, float] = {}
    stmts = []
    for s in program.stmts:
        if any(isinstance(a, str) and a in known for a in s.args):
            s = Stmt(s.target, s.op, tuple(known.get(a, a) if isinstance(a, str) else a
                                           for a in s.args), s.line)
        op = OPS.get(s.op)
        if op is not None and op.rule == LITERAL and s.args and not isinstance(s.args[0], str):
            known[s.target] = s.args[0]
        else:
            known.pop(s.target, None)
        stmts.append(s)
    return program.replace(stmts=stmts)

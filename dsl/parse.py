"""Parse the paper's text form of a program with Python's ``ast`` (never ``eval``/``exec``).

Accepted: the paper's form (``def train(w, g, m, v, lr): ... return update, m, v``) and the
spelling of the official release: ``interpolate`` for ``interp``, a parenthesised tuple
return, type annotations, and any names for the five parameters (they are renamed by
position to ``w, g, m, v, lr``) except a name of another position's role: the engines call
by position, so ``def train(w, m, v, gradient, lr)`` or ``return m, update, v`` is an error
stating the order (``program.order_error``). Each statement is one assignment of one call
or one arithmetic operation (``+ - * / **`` or unary minus) on variables and numeric constants,
or of a numeric constant alone (``epsilon = 1e-8``, ``c = -0.5``: the ``literal`` op, a
scalar). Names come from the op table (``ops.resolve``): a registered op parses with no
edit here. Anything else is a :class:`ProgramError` naming the line.
"""

from __future__ import annotations

import ast
import difflib
import math
from pathlib import Path
from typing import Dict, List

from .files import read_text
from .ops import LITERAL_OP, callable_names, resolve
from .program import INPUTS, Program, ProgramError, Stmt, check, order_error

_BINOPS = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "div", ast.Pow: "power"}


def _const(node, line) -> float:
    """A numeric literal, possibly signed; None if ``node`` is not one."""
    sign = 1.0
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        sign = -1.0 if isinstance(node.op, ast.USub) else 1.0
        node = node.operand
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        try:
            value = sign * float(node.value)
        except OverflowError:
            raise ProgramError(f"constant {node.value!r} is too large", line) from None
        if not math.isfinite(value):
            raise ProgramError(f"constant {node.value!r} is not finite", line)
        return value
    return None


def _arg(node, names: Dict[str, str], line):
    c = _const(node, line)
    if c is not None:
        return c
    if isinstance(node, ast.Name):
        return names.get(node.id, node.id)
    if isinstance(node, (ast.Call, ast.BinOp, ast.UnaryOp)):
        raise ProgramError("nested expression: write one operation per statement", line)
    raise ProgramError(f"an argument must be a variable or a number, not {_what(node)}", line)


def _what(node) -> str:
    if isinstance(node, ast.Constant):
        return f"the constant {node.value!r}"
    if isinstance(node, ast.Name):
        return f"the bare variable {node.id!r} (copies are not statements; use it directly)"
    return f"'{type(node).__name__}'"


def _statement(node, names, line) -> Stmt:
    if isinstance(node, ast.Assign):
        if len(node.targets) != 1 or not isinstance(node.targets[0], ast.Name):
            raise ProgramError("assign to exactly one variable name", line)
        target, value = node.targets[0].id, node.value
    elif isinstance(node, ast.AnnAssign) and node.value is not None \
            and isinstance(node.target, ast.Name):
        target, value = node.target.id, node.value
    else:
        raise ProgramError(
            f"expected an assignment 'x = f(...)', found {type(node).__name__.lower()} statement",
            line)
    target = names.get(target, target)
    number = _const(value, line)
    if number is not None:  # `epsilon = 1e-8`, as the release writes constants
        return Stmt(target, LITERAL_OP, (number,), line)
    if isinstance(value, ast.Call):
        if not isinstance(value.func, ast.Name):
            raise ProgramError("call a function of the language by its plain name", line)
        if value.keywords:
            raise ProgramError("keyword arguments are not allowed", line)
        if any(isinstance(a, ast.Starred) for a in value.args):
            raise ProgramError("*args are not allowed", line)
        op = resolve(value.func.id)
        if op is None:
            near = difflib.get_close_matches(value.func.id, callable_names(), n=3)
            hint = f" (did you mean {', '.join(near)}?)" if near else ""
            raise ProgramError(f"unknown function {value.func.id!r}{hint}", line)
        args = tuple(_arg(a, names, line) for a in value.args)
        if len(args) != op.arity:
            raise ProgramError(
                f"{value.func.id} takes {op.arity} argument{'s' if op.arity != 1 else ''}, "
                f"got {len(args)}", line)
        return Stmt(target, op.name, args, line)
    if isinstance(value, ast.BinOp):
        op = _BINOPS.get(type(value.op))
        if op is None:
            raise ProgramError(f"operator {type(value.op).__name__} is not in the language", line)
        return Stmt(target, op, (_arg(value.left, names, line), _arg(value.right, names, line)),
                    line)
    if isinstance(value, ast.UnaryOp) and isinstance(value.op, ast.USub):
        return Stmt(target, "negative", (_arg(value.operand, names, line),), line)
    raise ProgramError(
        f"expected a call or an arithmetic operation on the right of '=', found {_what(value)}",
        line)


def _rename_map(fn: ast.FunctionDef, line) -> Dict[str, str]:
    a = fn.args
    if a.vararg or a.kwarg or a.kwonlyargs or a.posonlyargs or a.defaults:
        raise ProgramError("the parameters must be five plain names: w, g, m, v, lr", line)
    params = [p.arg for p in a.args]
    if len(params) != len(INPUTS):
        raise ProgramError(
            f"the function takes {len(params)} parameters; it must take five "
            f"(weights, gradient, m, v, lr)", line)
    if len(set(params)) != len(params):
        raise ProgramError("duplicate parameter names", line)
    wrong = order_error(params, (), ())
    if wrong:  # `def train(w, m, v, gradient, lr)`: the engines would pass g as m
        raise ProgramError(wrong, line)
    names = dict(zip(params, INPUTS))
    used = {n.id for n in ast.walk(fn) if isinstance(n, ast.Name)} | set(params)
    for canon in INPUTS:  # a body variable that would clash with a canonical input name
        if canon in used and canon not in names:
            k = 1
            while f"{canon}_{k}" in used:
                k += 1
            names[canon] = f"{canon}_{k}"
            used.add(names[canon])
    return names


def parse(text: str, filename: str = "") -> Program:
    """Parse a program's text. Raises :class:`ProgramError` with file and line."""
    try:
        return _parse(text)
    except ProgramError as e:
        raise e.with_filename(filename) if filename else e
    except SyntaxError as e:
        raise ProgramError(f"syntax error: {e.msg}", e.lineno or 0, filename) from None
    except (ValueError, TypeError, RecursionError, MemoryError, OverflowError) as e:
        raise ProgramError(f"cannot read the program: {type(e).__name__}: {e}", 0,
                           filename) from None


def _parse(text: str) -> Program:
    tree = ast.parse(text)
    body = [n for n in tree.body if not _is_docstring(n)]
    fns = [n for n in body if isinstance(n, ast.FunctionDef)]
    if not fns:
        raise ProgramError("no 'def train(w, g, m, v, lr):' found")
    for n in body:
        if not isinstance(n, ast.FunctionDef) or n is not fns[0]:
            raise ProgramError("the file must hold one function definition and nothing else",
                               n.lineno)
    fn = fns[0]
    if fn.decorator_list:
        raise ProgramError("decorators are not allowed", fn.lineno)
    names = _rename_map(fn, fn.lineno)
    stmts: List[Stmt] = []
    nodes = [n for n in fn.body if not _is_docstring(n)]
    if not nodes or not isinstance(nodes[-1], ast.Return):
        last = nodes[-1].lineno if nodes else fn.lineno
        raise ProgramError("missing 'return update, m, v' at the end of the function", last)
    for n in nodes[:-1]:
        if isinstance(n, ast.Return):
            raise ProgramError("'return' must be the last statement", n.lineno)
        stmts.append(_statement(n, names, n.lineno))
    ret = nodes[-1]
    elts = ret.value.elts if isinstance(ret.value, ast.Tuple) else None
    if elts is None or len(elts) != 3 or not all(isinstance(e, ast.Name) for e in elts):
        raise ProgramError("the return must name three variables: return update, m, v",
                           ret.lineno)
    wrong = order_error([p.arg for p in fn.args.args], [e.id for e in elts],
                        {n.id for s in nodes for n in ast.walk(s)
                         if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)})
    if wrong:  # `return m, update, v`: checked on the names as written
        raise ProgramError(wrong, ret.lineno)
    returns = tuple(names.get(e.id, e.id) for e in elts)
    program = Program(tuple(stmts), returns)
    try:
        check(program)
    except ProgramError as e:
        raise ProgramError(e.msg, e.line or ret.lineno) from None
    return program


def _is_docstring(node) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) \
        and isinstance(node.value.value, str)


def load(path) -> Program:
    """Read and parse a program file."""
    path = Path(path)
    try:
        text = read_text(path)  # a regular file only; a leading UTF-8 BOM is allowed
    except OSError as e:
        raise ProgramError(f"cannot read file: {e.strerror or e}", 0, str(path)) from None
    except UnicodeDecodeError:
        raise ProgramError("file is not UTF-8 text", 0, str(path)) from None
    return parse(text, str(path))

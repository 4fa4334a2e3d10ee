"""The parser: round trips, robustness on malformed text, error messages, the release's spelling.

(a) random valid programs built from the op table print and parse back to themselves;
(b) random malformed texts either parse to a valid program or raise ProgramError with a
one-line message that names the line; (c) each kind of invalid program gets the right message
and line; (d) the official release's spelling is accepted and nothing is ever evaluated.
(The release's ``name = constant`` statements: tests/test_op_row.py, the literal row.)
"""

import ast
import importlib
import math
import os
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from optevo.dsl import INPUTS, OP_LIST, OUTPUTS, Program, ProgramError, Stmt, check, load, parse
from optevo.dsl.ops import LITERAL, callable_names
from optevo.dsl.program import order_error

ROOT = Path(__file__).resolve().parents[1]
LIBRARY_TEXTS = [p.read_text() for p in sorted((ROOT / "configs" / "programs").glob("*.py"))]

# --- (a) random valid programs ---------------------------------------------------------------

SPECIAL_CONSTANTS = [
    0.0, -0.0, 1.0, -1.0, 2.0, -3.0, 0.5, 0.9, 0.999, 1.109133005142212, 0.1 + 0.2,
    1e-8, -1e-8, 1e-300, 5e-324, -5e-324, 2.2250738585072014e-308, 1e300, -1e308,
    1.7976931348623157e308, -1.7976931348623157e308, 2.0 ** 53, 2.0 ** 53 + 2, 1e16, 1e22,
    123456789.0, -1000000.0,
]

CONSTANTS = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),  # all magnitudes, both signs
    st.floats(min_value=-10.0, max_value=10.0),
    st.integers(min_value=-10 ** 6, max_value=10 ** 6).map(float),  # ints as floats
    st.sampled_from(SPECIAL_CONSTANTS),
)

# Targets: the inputs, the usual names, and names that are also function names or look like
# the parser's renamed variables.
TARGETS = INPUTS + ("update", "t0", "t1", "tmp", "wd", "sqrt_v", "m2", "w_1", "norm", "sign",
                    "interp", "pi")


@st.composite
def programs(draw, max_stmts=14):
    defined = list(INPUTS)
    stmts = []
    for i in range(draw(st.integers(min_value=0, max_value=max_stmts))):
        op = draw(st.sampled_from(OP_LIST))
        args = tuple(draw(CONSTANTS if op.rule == LITERAL else  # `x = c`: a number
                          st.one_of(st.sampled_from(defined), CONSTANTS))
                     for _ in range(op.arity))
        target = draw(st.sampled_from(TARGETS))
        stmts.append(Stmt(target, op.name, args, line=i + 2))
        if target not in defined:
            defined.append(target)
    if "update" in defined and draw(st.booleans()):
        returns = OUTPUTS
    else:  # (not a swap of the outputs' names: program.order_error)
        returns = tuple(draw(st.sampled_from(defined)) for _ in range(3))
        assume(not order_error(INPUTS, returns, {s.target for s in stmts}))
    program = Program(tuple(stmts), returns)
    check(program)
    return program


@settings(max_examples=300, deadline=None)
@given(programs())
def test_round_trip(program):
    text = program.text()
    parsed = parse(text)
    assert parsed == program
    assert parsed.text() == text
    # lines: statement i is on line i + 2 (after the def line)
    assert [s.line for s in parsed.stmts] == list(range(2, len(program) + 2))
    # constants come back bit for bit (sign of zero included)
    for a, b in zip(parsed.constants(), program.constants()):
        assert a == b and math.copysign(1.0, a) == math.copysign(1.0, b)


@settings(max_examples=50, deadline=None)
@given(programs(), st.sampled_from([("weight", "gradient", "m", "v", "lr"),
                                    ("params", "grads", "mu", "nu", "step_size"),
                                    ("x", "dx", "s1", "s2", "eta")]))
def test_round_trip_with_other_parameter_names(program, names):
    """Renaming the parameters (by position) in the text gives back the same program."""
    rename = dict(zip(INPUTS, names))
    tree = ast.parse(program.text())
    functions = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and id(node) not in functions:
            node.id = rename.get(node.id, node.id)
        elif isinstance(node, ast.arg):
            node.arg = rename[node.arg]
    text = ast.unparse(tree)
    assert text.startswith(f"def train({', '.join(names)}):")
    assert parse(text) == program


# --- (b) malformed texts ---------------------------------------------------------------------

ODD_CHARS = "\x00\x0b\x0c\x1c\x85\u2028\u00a0\ufeff\ud800\t\r\\\"'`$?!~^|&"
PROGRAM_CHARS = st.sampled_from(list("abcdefgilmnorstuvwxyz_0123456789 ,.:=()+-*/%@[]{}#\n"))
CHARS = st.one_of(PROGRAM_CHARS, PROGRAM_CHARS, PROGRAM_CHARS, st.sampled_from(ODD_CHARS),
                  st.characters())

TOKEN_POOL = [
    "import os", "from os import path", "lambda x: x", "'s'", "b'x'", "f'{g}'", '"""doc"""',
    "for i in range(3):", "if g:", "else:", "while True:", "with g:", "try:", "except:",
    "x.y", "g.sum()", "f(a=1)", "sign(x=g)", "sign(*g)", "sign(**g)", "sign(sign(g))",
    "__import__('os')", "eval('g')", "exec('x = 1')", "open('f')", "(", ")", "[", "]", "{",
    "}", ",", ":", "=", "==", "**", "//", "%", "@", "...", "None", "True", "[1, 2]", "{}",
    "yield", "await", "async", "global x", "nonlocal x", "return", "del g", "pass", "break",
    "\t", "\n", "  ", "    ", "1e999", "-1e999", "1e-400", "0x10", "1j", "1_000", "10" * 30,
    "undefined_var", "unknown_fn(g)", "sgn(g)", "sign(g, m)", "interp(g)", "get_pi(g)",
    "*g", "-", "+", "~g", "not g", "g < m", "g and m", "g if m else v", "a, b = g, m",
    "x = y = g", "x += g", "x: float = g", "x: float", "print(g)", "#comment", "@decorator",
    "class A:", "def f():", "def train(w, g, m, v, lr):", "lr.x", "g[0]", "g[1:2]", ";",
    "\\", "interpolate", "norm", "clip_by_global_norm", "w", "g", "m", "v", "lr", "update",
    "0.9", "-0.5", "5e-324",
]


def _tokens(text):
    return re.findall(r"[A-Za-z_]\w*|\d+\.?\d*(?:e[+-]?\d+)?|[ \t]+|\n|.", text, re.S)


@st.composite
def mutated(draw):
    """A valid program text with 1 to 3 random edits."""
    text = draw(st.one_of(st.sampled_from(LIBRARY_TEXTS), programs(max_stmts=6).map(str)))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        kind = draw(st.sampled_from([
            "del_char", "dup_char", "ins_char", "del_token", "dup_token", "ins_token",
            "ins_token", "swap_lines", "del_line", "dup_line", "bad_line", "bad_line",
            "rename_fn", "rename_fn", "nest", "return",
        ]))
        if kind in ("del_char", "dup_char", "ins_char") and text:
            i = draw(st.integers(min_value=0, max_value=len(text) - 1))
            if kind == "del_char":
                text = text[:i] + text[i + 1:]
            elif kind == "dup_char":
                text = text[:i] + text[i] + text[i:]
            else:
                text = text[:i] + draw(CHARS) + text[i:]
        elif kind in ("del_token", "dup_token", "ins_token"):
            toks = _tokens(text)
            i = draw(st.integers(min_value=0, max_value=len(toks)))
            if kind == "del_token" and i < len(toks):
                del toks[i]
            elif kind == "dup_token" and i < len(toks):
                toks.insert(i, toks[i])
            else:
                toks.insert(i, draw(st.sampled_from(TOKEN_POOL)))
            text = "".join(toks)
        elif kind in ("swap_lines", "del_line", "dup_line", "bad_line", "return"):
            lines = text.split("\n")
            i = draw(st.integers(min_value=0, max_value=len(lines) - 1))
            j = draw(st.integers(min_value=0, max_value=len(lines) - 1))
            if kind == "swap_lines":
                lines[i], lines[j] = lines[j], lines[i]
            elif kind == "del_line":
                del lines[i]
            elif kind == "dup_line":
                lines.insert(j, lines[i])
            elif kind == "bad_line":  # inside the body
                lines.insert(max(i, 1), "  " + draw(st.sampled_from(BAD_STATEMENTS))[0])
            else:
                lines.insert(i, "  " + draw(st.sampled_from(
                    ["return", "return update", "return update, m", "return (update, m, v)",
                     "return update, m, v, w", "return sign(g), m, v", "return [update, m, v]",
                     "return update, m, v"])))
            text = "\n".join(lines)
        elif kind == "rename_fn":
            name = draw(st.sampled_from(callable_names()))
            new = draw(st.sampled_from(["foo", "sgn", "Sign", "np.sign", "jnp.exp", "eval",
                                        "exec", "__import__", "interpolate", "interp", "lambda",
                                        "sign", "print", "getattr", "exp"]))
            text = text.replace(name + "(", new + "(", 1)
        elif kind == "nest":
            text = re.sub(r"\(([A-Za-z_]\w*)\)", r"(sign(\1))", text, count=1)
    return text


RANDOM_TEXT = st.one_of(
    st.text(CHARS, max_size=120),
    st.text(CHARS, max_size=80).map(lambda s: "def train(w, g, m, v, lr):\n  " + s),
    st.lists(st.sampled_from(TOKEN_POOL), max_size=12).map(
        lambda t: "def train(w, g, m, v, lr):\n  " + " ".join(t) + "\n  return update, m, v\n"),
)


def _assert_parses_or_clean_error(text):
    try:
        program = parse(text, filename="prog.py")
    except ProgramError as e:
        message = str(e)
        assert len(message.splitlines()) == 1 and "\n" not in message and "\r" not in message
        assert e.msg and message.startswith("prog.py")
        if e.line:
            assert message.startswith(f"prog.py:{e.line}: ")
            assert 1 <= e.line <= len(text.splitlines()) + 1
        else:
            assert message.startswith("prog.py: ")
        return None
    # accepted: a valid program that round-trips
    check(program)
    assert parse(program.text()) == program
    return program


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(mutated(), mutated(), mutated(), RANDOM_TEXT))
def test_malformed_text_is_a_clean_error_or_a_valid_program(text):
    _assert_parses_or_clean_error(text)


# --- (c) each kind of invalid program: message and line --------------------------------------

# One bad statement (line 3 of TEMPLATE) and a piece of the message it must give.
BAD_STATEMENTS = [
    ("x = foo(g)", "unknown function 'foo'"),
    ("x = sgn(g)", "did you mean sign"),
    ("x = sign(g, m)", "sign takes 1 argument, got 2"),
    ("x = interp(g, m)", "interp takes 3 arguments, got 2"),
    ("x = interpolate(g)", "interpolate takes 3 arguments, got 1"),
    ("x = get_pi(g)", "get_pi takes 0 arguments, got 1"),
    ("x = sign(y)", "variable 'y' is used before it is assigned"),
    ("x = y + g", "variable 'y' is used before it is assigned"),
    ("x = sign(sign(g))", "nested expression"),
    ("x = g * m * v", "nested expression"),
    ("x = sign(g + m)", "nested expression"),
    ("x = -(-g)", "nested expression"),
    ("x = lambda: g", "Lambda"),
    ("x = (lambda a: a)(g)", "plain name"),
    ("import os", "found import statement"),
    ("from os import path", "found importfrom statement"),
    ("x = g.sum()", "plain name"),
    ("x = jnp.sign(g)", "plain name"),
    ("x = __import__('os').system('true')", "plain name"),
    ("x = eval('g')", "unknown function 'eval'"),
    ("x = exec('y = 1')", "unknown function 'exec'"),
    ("x = sign(x=g)", "keyword arguments are not allowed"),
    ("x = sign(**g)", "keyword arguments are not allowed"),
    ("x = sign(*g)", "*args are not allowed"),
    ("x = 'abc'", "the constant 'abc'"),
    ("x = sign('abc')", "not the constant 'abc'"),
    ("x = g * True", "not the constant True"),
    ("x = g * None", "not the constant None"),
    ("x = g * 1j", "not the constant 1j"),
    ("x = g * 1e999", "is not finite"),
    ("x = -1e999 * g", "is not finite"),
    ("x = g * [1]", "not 'List'"),
    ("x = sign(g)[0]", "found 'Subscript'"),
    ("x = g", "bare variable 'g'"),
    ("x = (g)", "bare variable 'g'"),
    ("x = True", "the constant True"),
    ("x = +g", "found 'UnaryOp'"),
    ("x = literal(0.5)", "unknown function 'literal'"),
    ("x = -'a'", "not the constant 'a'"),
    ("x = ~g", "found 'UnaryOp'"),
    ("x = not g", "found 'UnaryOp'"),
    ("x = g and m", "found 'BoolOp'"),
    ("x = g < m", "found 'Compare'"),
    ("x = g if m else v", "found 'IfExp'"),
    ("x = f'{g}'", "found 'JoinedStr'"),
    ("x = (y := g)", "found 'NamedExpr'"),
    ("x = g // m", "operator FloorDiv is not in the language"),
    ("x = g % m", "operator Mod is not in the language"),
    ("x = g @ m", "operator MatMult is not in the language"),
    ("x, y = g, m", "assign to exactly one variable name"),
    ("x = y = sign(g)", "assign to exactly one variable name"),
    ("g.x = sign(g)", "assign to exactly one variable name"),
    ("x += g", "found augassign statement"),
    ("x: float", "found annassign statement"),
    ("for i in g: x = sign(g)", "found for statement"),
    ("while g: x = sign(g)", "found while statement"),
    ("if g: x = sign(g)", "found if statement"),
    ("with g: x = sign(g)", "found with statement"),
    ("def f(): pass", "found functiondef statement"),
    ("class A: pass", "found classdef statement"),
    ("print(g)", "found expr statement"),
    ("pass", "found pass statement"),
    ("del g", "found delete statement"),
    ("global x", "found global statement"),
    ("assert g", "found assert statement"),
    ("raise ValueError", "found raise statement"),
    ("return update, m, v", "'return' must be the last statement"),
    ("x = sign(g", "syntax error"),
    ("x = sign(g))", "syntax error"),
    ("x = = g", "syntax error"),
    ("  x = sign(g)", "syntax error: unexpected indent"),
    ("x = g * 10" + "0" * 5000, "syntax error"),
]

TEMPLATE = "def train(w, g, m, v, lr):\n  update = sign(g)\n  {}\n  return update, m, v\n"


@pytest.mark.parametrize("statement,message", BAD_STATEMENTS, ids=[s for s, _ in BAD_STATEMENTS])
def test_bad_statement_message_and_line(statement, message):
    with pytest.raises(ProgramError) as info:
        parse(TEMPLATE.format(statement), filename="bad.py")
    e = info.value
    assert message in e.msg, str(e)
    assert e.line == 3, str(e)
    assert str(e).startswith("bad.py:3: ") and len(str(e).splitlines()) == 1


@settings(max_examples=100, deadline=None)
@given(programs(max_stmts=8), st.data())
def test_bad_statement_in_a_random_program_names_its_line(program, data):
    """Inserting a bad statement before statement k of a valid program: the error names
    that line (the lines before it are valid, so it is the first error)."""
    lines = program.text().splitlines()
    k = data.draw(st.integers(min_value=1, max_value=len(lines) - 1))  # 0-based; after def
    statement, message = data.draw(st.sampled_from(
        [b for b in BAD_STATEMENTS if not b[0].startswith("  ")]))
    lines.insert(k, "  " + statement)
    with pytest.raises(ProgramError) as info:
        parse("\n".join(lines) + "\n")
    assert info.value.line == k + 1, str(info.value)
    assert message in info.value.msg


SHAPE_ERRORS = [
    # (text, message, line)
    ("", "no 'def train(w, g, m, v, lr):' found", 0),
    ("# only a comment\n", "no 'def train", 0),
    ("train = lambda w, g, m, v, lr: (g, m, v)\n", "no 'def train", 0),
    ("async def train(w, g, m, v, lr):\n  return g, m, v\n", "no 'def train", 0),
    ("import os\ndef train(w, g, m, v, lr):\n  return g, m, v\n", "one function definition", 1),
    ("def train(w, g, m, v, lr):\n  return g, m, v\nx = 1\n", "one function definition", 3),
    ("def train(w, g, m, v, lr):\n  return g, m, v\ndef train(w, g, m, v, lr):\n"
     "  return g, m, v\n", "one function definition", 3),
    ("@jax.jit\ndef train(w, g, m, v, lr):\n  return g, m, v\n", "decorators", 2),
    ("def train(w, g, m, v):\n  return g, m, v\n", "takes 4 parameters; it must take five", 1),
    ("def train(w, g, m, v, lr, x):\n  return g, m, v\n", "takes 6 parameters", 1),
    ("def train(w, g, m, v, lr=1.0):\n  return g, m, v\n", "five plain names", 1),
    ("def train(w, g, m, v, *lr):\n  return g, m, v\n", "five plain names", 1),
    ("def train(w, g, m, v, lr, **kw):\n  return g, m, v\n", "five plain names", 1),
    ("def train(w, g, m, v, *, lr):\n  return g, m, v\n", "five plain names", 1),
    ("def train(w, g, m, v, lr, /):\n  return g, m, v\n", "five plain names", 1),
    ("def train(w, g, m, v, w):\n  return g, m, v\n", "duplicate parameter names", 1),
    ("def train(w, g, m, v, lr):\n  update = sign(g)\n", "missing 'return update, m, v'", 2),
    ("def train(w, g, m, v, lr):\n  '''only a docstring'''\n", "missing 'return", 1),
    ("def train(w, g, m, v, lr):\n  update = sign(g)\n  return update, m\n",
     "the return must name three variables", 3),
    ("def train(w, g, m, v, lr):\n  update = sign(g)\n  return\n", "three variables", 3),
    ("def train(w, g, m, v, lr):\n  update = sign(g)\n  return sign(g), m, v\n",
     "three variables", 3),
    ("def train(w, g, m, v, lr):\n  update = sign(g)\n  return [update, m, v]\n",
     "three variables", 3),
    ("def train(w, g, m, v, lr):\n  x = sign(g)\n\n  return update, m, v\n",
     "returned variable 'update' is never assigned", 4),
    ("def train(w, g, m, v, lr):\n  return update, m, v\n", "'update' is never assigned", 2),
    ("def train(w, g, m, v, lr):\n", "syntax error: expected an indented block", 1),
    ("def train(w, g, m, v, lr)\n  return g, m, v\n", "syntax error", 1),
    ("def train(w, g, m, v, lr):\n\tx = sign(g)\n        return x, m, v\n", "syntax error", 3),
    ("def train(w, g, m, v, lr):\n  x = sign(g)\n  return x, m, v\n\x00", "null bytes", 0),
    ("(" * 300, "syntax error", 1),
]


@pytest.mark.parametrize("text,message,line", SHAPE_ERRORS,
                         ids=[f"shape{i}" for i in range(len(SHAPE_ERRORS))])
def test_program_shape_errors(text, message, line):
    with pytest.raises(ProgramError) as info:
        parse(text)
    assert message in info.value.msg, str(info.value)
    assert info.value.line == line, str(info.value)
    assert len(str(info.value).splitlines()) == 1


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(ProgramError, match="cannot read file"):
        load(tmp_path / "missing.py")
    binary = tmp_path / "binary.py"
    binary.write_bytes(b"\xff\xfe\x00def")
    with pytest.raises(ProgramError, match="not UTF-8"):
        load(binary)
    bad = tmp_path / "bad.py"
    bad.write_text(TEMPLATE.format("x = foo(g)"))
    with pytest.raises(ProgramError) as info:
        load(bad)
    assert str(info.value).startswith(f"{bad}:3: unknown function 'foo'")


def test_accepted_forms():
    """Things that look odd but are valid: they parse to the expected statements."""
    p = parse("def train(w, g, m, v, lr):\n  x = -g; y = sign(x)\n  update = 0x10 * y\n"
              "  update = update ** 2\n  update = -0.5 - update\n  return update, m, v,\n")
    assert p.stmts == (Stmt("x", "negative", ("g",)), Stmt("y", "sign", ("x",)),
                       Stmt("update", "mul", (16.0, "y")), Stmt("update", "power", ("update", 2.0)),
                       Stmt("update", "sub", (-0.5, "update")))
    assert [s.line for s in p.stmts] == [2, 2, 3, 4, 5]
    # an empty body is valid: it returns inputs
    assert parse("def train(w, g, m, v, lr):\n  return g, m, v\n") == Program((), ("g", "m", "v"))
    # the function may have another name; comments and blank lines anywhere
    assert parse("# c\n\ndef step(w, g, m, v, lr):  # c\n\n  # c\n  return g, m, v  # c\n") \
        == Program((), ("g", "m", "v"))


# --- (d) the official release's spelling, and no evaluation ----------------------------------

LION = parse(
    "def train(w, g, m, v, lr):\n"
    "  update = interp(g, m, 0.9)\n  update = sign(update)\n  m = interp(g, m, 0.99)\n"
    "  wd = w * 0.01\n  update = update + wd\n  lr = lr * 0.0001\n  update = update * lr\n"
    "  return update, m, v\n")


def test_release_spelling():
    text = '''
def train(weight: jnp.ndarray, gradient: jnp.ndarray, m: jnp.ndarray, v: jnp.ndarray,
          lr: float) -> Tuple[jnp.ndarray, jnp.ndarray, jnp.ndarray]:
  """Lion, as the release writes it."""
  update = interpolate(gradient, m, 0.9)
  update = sign(update)
  m = interpolate(gradient, m, 0.99)
  wd = weight * 0.01
  update = update + wd
  lr = lr * 0.0001
  update = update * lr
  return (update, m, v)
'''
    assert parse(text) == LION


@pytest.mark.parametrize("header", [
    "def train(w, g, m, v, lr):",
    "def train(weight, gradient, m, v, lr):",
    "def train(w: Tensor, g: Tensor, m: Tensor, v: Tensor, lr: float):",
    "def train(w, g, m, v, lr) -> tuple:",
    "def train(\n    w,\n    g,\n    m,\n    v,\n    lr,\n):",
])
def test_headers(header):
    names = re.findall(r"\b(w|weight|g|gradient)\b(?=\s*[:,)])", header)
    wname, gname = names[0], names[1]
    body = (f"  update = interpolate({gname}, m, 0.9)\n  update = sign(update)\n"
            f"  m = interp({gname}, m, 0.99)\n  wd = {wname} * 0.01\n  update = update + wd\n"
            "  lr = lr * 0.0001\n  update = update * lr\n  return (update, m, v)\n")
    assert parse(header + "\n" + body) == LION


def test_renamed_parameters_keep_body_names_apart():
    """With parameters named otherwise, a body variable called like a canonical input is a
    different variable: it is renamed, not confused with the input."""
    p = parse("def train(weight, gradient, mom, vel, lr):\n  m = sign(gradient)\n"
              "  update = m * lr\n  return update, mom, vel\n")
    assert p.stmts[0].args == ("g",) and p.stmts[0].target != "m"
    assert p.stmts[1].args == (p.stmts[0].target, "lr")
    assert p.returns == ("update", "m", "v")
    assert parse(p.text()) == p


def test_parse_never_evaluates(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    payload = f"__import__('os').system('touch {marker}')"
    monkeypatch.delenv("OPTEVO_PWNED", raising=False)
    env_payload = "__import__('os').environ.setdefault('OPTEVO_PWNED', '1')"
    texts = [
        TEMPLATE.format(f"x = {payload}"),
        TEMPLATE.format(f"x = sign({payload})"),
        TEMPLATE.format(payload),
        TEMPLATE.format(f"x = {env_payload}"),
        f"{payload}\n" + TEMPLATE.format("x = sign(g)"),
        f"x = {env_payload}\n" + TEMPLATE.format("x = sign(g)"),
        f"@{payload}\n" + TEMPLATE.format("x = sign(g)"),
        TEMPLATE.format("x = sign(g)").replace("lr)", f"lr={payload})"),
        TEMPLATE.format("x = sign(g)").replace("):", f") -> {payload}:"),
        TEMPLATE.format("x = sign(g)").replace("lr)", f"lr: {payload})"),
        TEMPLATE.format(f"x: {payload} = sign(g)"),
    ]
    for text in texts:
        try:
            parse(text)  # annotations are accepted, but never evaluated
        except ProgramError:
            pass
    assert not marker.exists()
    assert "OPTEVO_PWNED" not in os.environ
    with pytest.raises(ProgramError):
        parse(TEMPLATE.format(f"x = {payload}"))


def test_parser_source_has_no_eval():
    """parse.py reads programs with ``ast`` only: no eval, exec, compile or __import__."""
    parse_module = importlib.import_module("optevo.dsl.parse")  # the name 'parse' is the function
    tree = ast.parse(Path(parse_module.__file__).read_text())
    called = {n.func.id for n in ast.walk(tree)
              if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    called |= {n.func.attr for n in ast.walk(tree)
               if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)}
    assert not called & {"eval", "exec", "compile", "__import__", "literal_eval", "import_module"}

"""Names that say something else than the position they sit in (issue #19).

(a) The engines call a program by position, ``(w, g, m, v, lr) -> (update, m, v)`` (the
paper's loop). A parameter named for another position (``def train(w, m, v, gradient,
lr)``), or a returned variable named for another output where that output returns yet
another role (``return m, update, v``), was read by position without a word; it is one
line stating the order. Other names stay free, and every form the library's own rewrites
write (simplified, canonical, decayed programs) still reads back.

(b) Python reads identifiers in NFKC: ``ｊａｘ`` *is* ``jax``. An export name or a program
variable in full-width letters passed the reserved-name check and shadowed ``jax``/``jnp``
in the exported module; names are now checked, and written, as Python reads them.
"""

from __future__ import annotations

import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest

from optevo.dsl import OUTPUTS, Program, ProgramError, Stmt, check, parse
from optevo.dsl.canon import canonical_form, program_hash
from optevo.dsl.codegen import to_module_source
from optevo.dsl.decay import with_decoupled_decay
from optevo.dsl.execute import update_fn
from optevo.dsl.library import library_program
from optevo.simplify.exact import simplify_exact

ORDER = "the order is train(w, g, m, v, lr) -> (update, m, v)"
BODY = "  m = interp(g, m, 0.9)\n  update = sign(m)\n  update = update * lr\n"


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "optevo.search.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


# --- (a) parameter and return order ----------------------------------------------------------

@pytest.mark.parametrize("header,where,what", [
    ("def train(w, m, v, gradient, lr):", 2, "named 'm' but is the gradient"),
    ("def train(g, w, m, v, lr):", 1, "named 'g' but is the weights"),
    ("def train(w, g, v, m, lr):", 3, "named 'v' but is the state m"),
    ("def train(weights, grad, m, v, Gradient):", 5, "named 'Gradient' but is the learning"),
    ("def train(lr, g, m, v, w):", 1, "named 'lr' but is the weights"),
    ("def train(params, grads, velocity, momentum, lr):", 3,
     "named 'velocity' but is the state m"),
])
def test_parameters_in_another_order_are_one_line(header, where, what):
    text = header + "\n  update = sign(g)\n  return update, m, v\n"
    with pytest.raises(ProgramError) as e:
        parse(text, "prog.py")
    msg = str(e.value)
    assert msg.startswith(f"prog.py:1: parameter {where} is ") and what in msg, msg
    assert msg.endswith(ORDER) and "\n" not in msg


@pytest.mark.parametrize("body,ret,where,what", [
    (BODY, "m, update, v", 1, "named 'm' but is the update"),
    (BODY + "  v = square(g)\n", "update, v, m", 2, "named 'v' but is the new m"),
    (BODY + "  v = square(g)\n", "v, m, update", 1, "named 'v' but is the update"),
    ("  update = sign(g)\n", "m, update, v", 2, "named 'update' but is the new m"),
])
def test_returns_in_another_order_are_one_line(body, ret, where, what):
    text = f"def train(w, g, m, v, lr):\n{body}  return {ret}\n"
    line = text.count("\n")
    with pytest.raises(ProgramError) as e:
        parse(text, "prog.py")
    msg = str(e.value)
    assert msg == f"prog.py:{line}: return value {where} is {what}: {ORDER}"
    # the same rule holds for programs built in Python
    with pytest.raises(ProgramError, match="return value"):
        check(Program(parse(f"def train(w, g, m, v, lr):\n{body}  return update, m, v\n")
                      .stmts, tuple(r.strip() for r in ret.split(","))))


def test_renamed_parameters_name_the_returns_too():
    text = ("def train(weight, grad, mom, vel, lr):\n  mom = interp(grad, mom, 0.9)\n"
            "  vel = interp(grad, vel, 0.9)\n  update = sign(mom)\n  return update, vel, mom\n")
    with pytest.raises(ProgramError, match=r"return value 2 is named 'vel' but is the new m"):
        parse(text)


@pytest.mark.parametrize("text", [
    # any names that claim no other role, by position
    "def train(a, b, c, d, e):\n  update = sign(b)\n  update = update * e\n"
    "  return update, c, d\n",
    "def train(params, grads, momentum, second_moment, step_size):\n"
    "  update = sign(grads)\n  return update, momentum, second_moment\n",
    "def train(w, g, m, v, lr):\n" + BODY + "  return m, m, v\n",  # momentum: the update is m
    "def train(w, g, m, v, lr):\n" + BODY + "  return update, update, v\n",
    # a returned input is data: the old m as the update, the state slots swapped
    "def train(w, g, m, v, lr):\n  t = interp(g, m, 0.9)\n  return m, t, v\n",
    "def train(w, g, m, v, lr):\n  update = sign(g)\n  return update, v, m\n",
    "def train(w, g, m, v, lr):\n" + BODY + "  return g, update, v\n",
    "def train(w, g, m, v, lr):\n  return g, m, v\n",
])
def test_names_that_claim_nothing_else_stay_allowed(text):
    program = parse(text)
    assert parse(program.text()) == program


@pytest.mark.parametrize("name", ["lion", "adamw", "momentum", "nesterov", "rmsprop"])
def test_rewritten_programs_read_back(name):
    """What the library's rewrites write reads back: simplified, canonical, decayed (its
    update under a fresh name while a state slot keeps the name ``update``)."""
    p = library_program(name)
    momentum = parse("def train(w, g, m, v, lr):\n  update = interp(g, m, 0.9)\n"
                     "  return update, update, v\n")
    for q in (p, momentum):
        for r in (simplify_exact(q), simplify_exact(q, strict=True), canonical_form(q),
                  with_decoupled_decay(q), with_decoupled_decay(simplify_exact(q))):
            assert program_hash(parse(r.text())) == program_hash(r)


def test_cli_says_the_order_in_one_line(tmp_path):
    (tmp_path / "prog.py").write_text("def train(w, m, v, gradient, lr):\n"
                                      "  update = sign(gradient)\n  return update, m, v\n")
    r = _cli("show", "prog.py", cwd=tmp_path)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr == ("optevo: error: prog.py:1: parameter 2 is named 'm' but is the "
                        f"gradient: {ORDER}\n")


# --- (b) names as Python reads them (NFKC) ----------------------------------------------------

@pytest.mark.parametrize("name,reads", [
    ("ｊａｘ", "jax"), ("ｊｎｐ", "jnp"), ("ｏｐｔａｘ", "optax"), ("ｐａｒａｍｓ", "params"),
    ("ｌａｍｂｄａ", "lambda"), ("＿total", "_total"), ("ﬂoat", "float"),
])
def test_export_name_is_checked_as_python_reads_it(name, reads):
    with pytest.raises(ValueError) as e:
        to_module_source(library_program("lion"), name=name)
    assert str(e.value) == (f"{name!r} is not a usable Python function name "
                            f"(Python reads it as {reads!r})")


def test_cli_export_refuses_a_full_width_reserved_name(tmp_path):
    r = _cli("export", "lion", "--name", "ｊａｘ", "-o", "out.py", cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.startswith("optevo: error: 'ｊａｘ' is not a usable Python function name")
    assert not (tmp_path / "out.py").exists()


def _run_module(src, name):
    ns = {}
    exec(compile(src, "exported.py", "exec"), ns)  # safe: generated by us, from our program
    opt = ns[name](learning_rate=0.5)
    params = {"w": jnp.ones(3)}
    updates, _ = opt.update({"w": jnp.full(3, 2.0)}, opt.init(params), params)
    return np.asarray(updates["w"])


def test_full_width_program_variables_neither_shadow_nor_merge():
    """``ｊｎｐ`` would rebind ``jnp`` (the sign below then fails) and ``ｘ`` would overwrite
    ``x``: both are written as distinct names that Python reads as written."""
    program = Program((
        Stmt("ｊｎｐ", "mul", ("g", 2.0)),
        Stmt("x", "mul", ("g", 3.0)),
        Stmt("ｘ", "add", ("ｊｎｐ", 1.0)),
        Stmt("s", "sign", ("x",)),
        Stmt("q", "mul", ("x", "s")),
        Stmt("u", "add", ("q", "ｘ")),
        Stmt("update", "mul", ("u", "lr")),
    ), OUTPUTS)
    check(program)
    want, _, _ = update_fn(program)({"w": jnp.ones(3)}, {"w": jnp.full(3, 2.0)},
                                    {"w": jnp.zeros(3)}, {"w": jnp.zeros(3)}, 0.5)
    np.testing.assert_allclose(np.asarray(want["w"]), 5.5)  # (6 * 1 + (4 + 1)) * 0.5
    np.testing.assert_allclose(_run_module(to_module_source(program), "discovered"), -5.5)


def test_a_full_width_name_that_reads_as_a_free_name_works():
    src = to_module_source(library_program("sgd"), name="ｍｙ_sgd")
    updates = _run_module(src, "my_sgd")  # Python binds the NFKC form
    assert np.all(np.isfinite(updates)) and np.all(updates != 0)

"""Adding an op is one row (``dsl/ops.py``): an op registered with ``register_op`` parses, runs
alike on both engines, hashes, simplifies and exports with no other edit, and the hash and
the simplifier read its algebraic properties from the row. The table is standard again
afterwards. Then the literal row: ``name = constant`` as the official release writes it.

(Engines, export and simplification of literals: test_engine, test_codegen, test_simplify;
their hashing: test_canon.)"""

import importlib.util
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from optevo.dsl import Program, ProgramError, Stmt, check, parse, update_fn
from optevo.dsl.canon import COMMUTATIVE, canonical_form, program_hash
from optevo.dsl.codegen import SUPPORTED, to_module_source
from optevo.dsl.interpreter import Interpreter
from optevo.dsl.liveness import live_state, strip_dead
from optevo.dsl.ops import LITERAL_OP, OP_LIST, OPS, SCALAR, callable_names, elementwise, \
    register_op, registered, resolve
from optevo.dsl.program import inline_literals
from optevo.dsl.random import searchable_ops
from optevo.simplify import simplify_exact

# One row each. softsign is the op the whole pipeline is shown on; avg and relu carry the
# properties that hashing (commutative) and simplification (idempotent) read from the row.
SOFTSIGN = elementwise("softsign", 1, lambda x: x / (1.0 + jnp.abs(x)),
                       "{0} / (1.0 + jnp.abs({0}))", doc="x / (1 + |x|)")
AVG = elementwise("avg", 2, lambda x, y: (x + y) * 0.5, "({0} + {1}) * 0.5", commutative=True,
                  pyfloat=True)
RELU = elementwise("relu", 1, lambda x: jnp.maximum(x, 0.0), "jnp.maximum({0}, 0.0)",
                   idempotent=True)
NEW = ("softsign", "avg", "relu")

PROGRAM = """\
def train(w, g, m, v, lr):
  s = softsign(g)
  m = interp(s, m, 0.9)
  r = relu(m)
  r = relu(r)
  a = avg(r, m)
  update = a * lr
  update = update * 0.1
  return update, m, v
"""
WITHOUT = PROGRAM.replace("softsign(g)", "tanh(g)")


def h(text):
    return program_hash(parse(text))


def _tree(seed):
    rng = np.random.default_rng(seed)
    return {"a": jnp.asarray(rng.standard_normal((4, 3)), jnp.float32),
            "b": jnp.asarray(rng.standard_normal(5), jnp.float32)}


def _steps(f, steps=3, lr=0.5):
    """Updates and new state of ``f(w, g, m, v, lr)`` for a few steps from zero state."""
    w = _tree(0)
    m = v = jax.tree.map(jnp.zeros_like, w)
    out = []
    for k in range(steps):
        u, m, v = f(w, _tree(k + 1), m, v, lr)
        out.append((u, m, v))
        w = jax.tree.map(lambda a, b: a - b, w, u)
    return out


def _assert_same(a, b):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


class TestRegisteredOps:
    @pytest.fixture(scope="class", autouse=True)
    @classmethod
    def rows(cls):
        with registered(SOFTSIGN, AVG, RELU):
            yield

    def test_the_row_is_in_every_table(self):
        for op in (SOFTSIGN, AVG, RELU):
            assert OPS[op.name] is op and op in OP_LIST and resolve(op.name) is op
            assert op.name in callable_names() and op.name in SUPPORTED
            assert op in searchable_ops()  # the search may insert it
        assert "avg" in COMMUTATIVE and "softsign" not in COMMUTATIVE
        keys = Interpreter([3], 4).branch_keys  # an engine built now has it in its switch
        assert ("softsign", "T") in keys and ("avg", "S") in keys

    def test_parses(self):
        p = parse(PROGRAM)
        assert [s.op for s in p.stmts][:5] == ["softsign", "interp", "relu", "relu", "avg"]
        assert p.text() == PROGRAM and parse(p.text()) == p
        with pytest.raises(ProgramError, match="softsign takes 1 argument, got 2"):
            parse(PROGRAM.replace("softsign(g)", "softsign(g, m)"))
        with pytest.raises(ProgramError, match="did you mean softsign"):
            parse(PROGRAM.replace("softsign(g)", "sofsign(g)"))

    def test_runs_alike_on_both_engines(self):
        from optevo.proxy_tasks import get_task
        from optevo.proxy_tasks.engine import FastEngine
        from optevo.proxy_tasks.jit_engine import JitEngine
        task = get_task("digits_mlp", hidden=8, batch_size=16)
        fast, ref = FastEngine(task, steps=20, buckets=(8,)), JitEngine(task, steps=20)
        p, seeds = parse(PROGRAM), [0, 1]
        got, want = fast.run([p], seeds)[0], ref.run([p], seeds)[0]
        assert not got.diverged.any() and not want.diverged.any()
        np.testing.assert_allclose(got.losses, want.losses, rtol=1e-4)
        other = fast.run([parse(WITHOUT)], seeds)[0]  # softsign computes its own thing
        assert not np.allclose(other.losses, got.losses, rtol=1e-6)

    def test_hashes(self):
        assert h(PROGRAM) == h(PROGRAM.replace("avg(r, m)", "avg(m, r)"))  # commutative row
        assert h(PROGRAM) == program_hash(canonical_form(parse(PROGRAM)))
        assert len({h(PROGRAM), h(WITHOUT), h(PROGRAM.replace("avg(r, m)", "r + m")),
                    h(PROGRAM.replace("relu(m)", "abs(m)"))}) == 4
        # the idempotent row: relu(relu(m)) hashes as relu(m)
        assert h(PROGRAM.replace("  r = relu(r)\n", "")) == h(PROGRAM)
        assert h(PROGRAM.replace("softsign(g)", "softsign(m)")) != h(PROGRAM)

    def test_simplifies(self):
        p = parse(PROGRAM.replace("  a = avg(r, m)\n",
                                  "  a = avg(r, m)\n  b = avg(m, r)\n  a = a * b\n"))
        q = simplify_exact(p, strict=True)
        ops = [s.op for s in q.stmts]
        assert ops.count("relu") == 1 and ops.count("avg") == 1  # idempotent, commutative
        assert parse(q.text()) == q and simplify_exact(q, strict=True) == q
        _assert_same(_steps(update_fn(p)), _steps(update_fn(q)))

    def test_exports(self, tmp_path):
        p = parse(PROGRAM)
        source = to_module_source(p, name="soft")
        assert "/ (1.0 + jnp.abs(" in source and "optevo" not in source.split('"""', 2)[2]
        path = tmp_path / "optevo_generated_softsign.py"
        path.write_text(source)
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        opt = module.soft(learning_rate=0.5)
        ref = _steps(update_fn(p))
        w = _tree(0)
        state = opt.init(w)
        assert set(state._fields) == {"count"} | set(live_state(p))
        for k, (u, m, _) in enumerate(ref):
            updates, state = opt.update(_tree(k + 1), state, w)
            _assert_same(updates, jax.tree.map(jnp.negative, u))
            _assert_same(state.m, m)
            w = jax.tree.map(lambda a, b: a + b, w, updates)


def test_the_standard_table_is_back():
    for name in NEW:
        assert name not in OPS and resolve(name) is None and name not in callable_names()
    assert all(op.name not in NEW for op in OP_LIST) and "avg" not in COMMUTATIVE
    with pytest.raises(ProgramError, match="unknown function 'softsign'"):
        parse(PROGRAM)


def test_register_refuses_taken_names_and_removes_cleanly():
    n = len(OP_LIST)
    for bad in (elementwise("sign", 1, jnp.sign, "jnp.sign({0})"),  # a name
                elementwise("lerp", 3, jnp.where, "x", aliases=("interpolate",)),  # an alias
                elementwise("plus", 2, jnp.add, "{0} + {1}", infix="+"),  # an infix symbol
                elementwise("four", 4, lambda a, b, c, d: a, "{0}")):  # too many arguments
        with pytest.raises(ValueError):
            register_op(bad)
        assert len(OP_LIST) == n and OPS.get(bad.name) is not bad
    with registered(SOFTSIGN):
        assert resolve("softsign") is SOFTSIGN
        with pytest.raises(ValueError):
            register_op(SOFTSIGN)
    assert "softsign" not in OPS and len(OP_LIST) == n


# --- the literal row: `name = c` ----------------------------------------------------------

# The release's style (google/automl hero): named constants, interpolate, a parenthesised
# return; and the same program with the numbers written where the names are read.
RELEASE_ADAM = """
def train(w, g, m, v, lr):
  beta1 = 0.9
  beta2 = 0.999
  epsilon = 1e-8
  m = interpolate(g, m, beta1)
  g2 = square(g)
  v = interpolate(g2, v, beta2)
  sqrt_v = sqrt(v)
  sqrt_v = sqrt_v + epsilon
  update = m / sqrt_v
  decay = -1e-2
  wd = w * decay
  update = update - wd
  lr = lr * 0.001
  update = update * lr
  return (update, m, v)
"""
INLINE_ADAM = """
def train(w, g, m, v, lr):
  m = interp(g, m, 0.9)
  g2 = square(g)
  v = interp(g2, v, 0.999)
  sqrt_v = sqrt(v)
  sqrt_v = sqrt_v + 1e-08
  update = m / sqrt_v
  wd = w * -0.01
  update = update - wd
  lr = lr * 0.001
  update = update * lr
  return update, m, v
"""


def test_named_constants_in_the_release_style():
    p, inline = parse(RELEASE_ADAM), parse(INLINE_ADAM)
    assert p.stmts[0] == Stmt("beta1", LITERAL_OP, (0.9,)) and p.stmts[9].args == (-0.01,)
    assert "  epsilon = 1e-08\n" in p.text() and parse(p.text()) == p
    assert check(p)[:3] == [SCALAR] * 3  # a named constant is a scalar
    assert strip_dead(inline_literals(p)) == inline  # reading the name reads the number
    assert program_hash(p) == program_hash(inline) and canonical_form(p) == canonical_form(inline)
    # the reference executor computes the same bits, step after step
    f, f_inline = update_fn(p), update_fn(inline)
    rng = np.random.default_rng(0)
    tree = lambda: {"a": rng.standard_normal((3, 2)).astype(np.float32),
                    "b": rng.standard_normal(4).astype(np.float32)}
    w, m, v = tree(), jax.tree.map(np.zeros_like, tree()), jax.tree.map(np.zeros_like, tree())
    state = state_inline = (m, v)
    for _ in range(3):
        g = tree()
        u, *state = f(w, g, *state, 0.5)
        u2, *state_inline = f_inline(w, g, *state_inline, 0.5)
        for x, y in zip(jax.tree.leaves((u, state)), jax.tree.leaves((u2, state_inline))):
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
        w = jax.tree.map(lambda a, b: a - b, w, u)


@pytest.mark.parametrize("statement,value", [("x = 1.0", 1.0), ("x = -5", -5.0), ("x = +2", 2.0),
                                             ("x = 0x10", 16.0), ("x = (-0.0)", -0.0),
                                             ("x: float = 3e-8", 3e-8)])
def test_a_number_alone_is_a_literal_statement(statement, value):
    p = parse(f"def train(w, g, m, v, lr):\n  update = sign(g)\n  {statement}\n"
              "  return update, m, v\n")
    s = p.stmts[1]
    assert (s.target, s.op, s.args, s.line) == ("x", LITERAL_OP, (value,), 3)
    assert math.copysign(1, s.args[0]) == math.copysign(1, value)
    assert s.text() == f"x = {value!r}" and parse(p.text()) == p


def test_a_literal_takes_a_number_not_a_variable():
    with pytest.raises(ProgramError, match="must assign a number, not the variable 'g'"):
        check(Program((Stmt("x", LITERAL_OP, ("g",), line=4), Stmt("update", "sign", ("x",)))))
    # not callable by name, and random statements (the insert mutation) never draw it
    assert LITERAL_OP not in callable_names() and OPS[LITERAL_OP] not in searchable_ops()

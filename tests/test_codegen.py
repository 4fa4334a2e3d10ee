"""The exported module (``dsl.codegen``): self-contained, one state slot per live state
variable, updates equal to the reference executor's, and Lion trains like ``optax.lion``.

Generated modules are written to a temporary directory and imported with importlib (the
generated code is ours; program text itself is only ever parsed, never executed).
"""

import ast
import importlib.util
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from sklearn.datasets import load_digits

from optevo.dsl import OPS, Program, parse, update_fn
from optevo.dsl.codegen import SUPPORTED, to_module_source
from optevo.dsl.hyper import lr_unit
from optevo.dsl.library import library, library_program
from optevo.dsl.liveness import STATE, live_state, strip_dead

_count = itertools.count()

ALL_OPS = """
def train(w, g, m, v, lr):
  a = tanh(g)
  b = arcsin(a)
  c = arccos(a)
  d = arctan(g)
  e = a * 0.5
  f = arctanh(e)
  h = cosh(a)
  i = arccosh(h)
  j = sinh(a)
  k = arcsinh(j)
  s = b + c
  s = s - d
  s = s + f
  s = max(s, i)
  s = min(s, k)
  c2 = cos(a)
  s3 = sin(a)
  s4 = tan(e)
  c2 = c2 * s3
  c2 = c2 / s4
  c2 = tanh(c2)
  x1 = exp(e)
  x2 = exp2(e)
  x3 = exp10(e)
  x4 = expm1(e)
  x1 = x1 + x2
  x1 = x1 + x3
  x1 = x1 + x4
  y1 = log(x1)
  y2 = log10(a)
  y3 = log2(x1)
  y4 = log1p(e)
  y1 = y1 + y3
  y1 = y1 - y4
  y2 = clip(y2, 3.0)
  y1 = y1 + y2
  z1 = square(e)
  z2 = sqrt(a)
  z3 = cube(e)
  z4 = cbrt(e)
  z5 = sign(g)
  z6 = abs(g)
  z7 = reciprocal(x1)
  z8 = negative(z1)
  z9 = power(x1, 0.5)
  z1 = z1 + z2
  z1 = z1 + z3
  z1 = z1 + z4
  z1 = z1 + z5
  z1 = z1 - z6
  z1 = z1 + z7
  z1 = z1 + z8
  z1 = z1 + z9
  n1 = norm(g)
  n2 = global_norm(g)
  n3 = dot(g, m)
  n4 = cosine_sim(g, w)
  n5 = clip_by_global_norm(g, 0.5)
  n1 = n1 * n2
  n1 = n1 + n3
  n1 = n1 * n4
  pi = get_pi()
  ee = get_e()
  ep = get_eps()
  k1 = 0.9 * 0.1
  k2 = interp(0.3, 0.5, k1)
  k3 = pi + ee
  k3 = k3 * ep
  kb = -0.25
  k3 = k3 * kb
  k3 = k3 + k2
  q1 = lr * 2.0
  q2 = norm(q1)
  q3 = global_norm(q1)
  q4 = dot(q1, g)
  q5 = dot(q1, 0.5)
  q6 = cosine_sim(q1, g)
  q7 = clip_by_global_norm(q1, a)
  q8 = clip_by_global_norm(0.3, 0.2)
  q2 = q2 + q3
  q2 = q2 * q4
  q2 = q2 + q5
  q2 = q2 - q6
  q2 = q2 + q8
  q2 = q2 + k3
  x5 = orthogonalize(g)
  x6 = row_mean(g)
  x7 = col_mean(x5)
  x8 = orthogonalize(lr)
  x9 = row_mean(lr)
  x9 = col_mean(x9)
  x5 = x5 + x6
  x5 = x5 + x7
  x8 = x8 + x9
  q2 = q2 + x8
  t = s + c2
  t = t + x5
  t = t + y1
  t = t + z1
  t = t + n1
  t = t + q7
  t = t + q2
  t = t * 0.01
  m = interp(n5, m, 0.9)
  g2 = square(g)
  v = interp(g2, v, 0.99)
  sv = sqrt(v)
  mv = m / sv
  mv = clip(mv, 1.0)
  t = t + mv
  lr = lr * 0.001
  update = t * lr
  return update, m, v
"""


def import_module(tmp_path, source: str):
    name = f"optevo_generated_{next(_count)}"
    path = tmp_path / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def export(tmp_path, program: Program, name: str = "discovered"):
    source = to_module_source(program, name=name)
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert imported <= {"typing", "jax", "optax"}
    assert "optevo" not in imported
    return getattr(import_module(tmp_path, source), name)


def _tree(key):
    shapes = {"a": (4, 3), "b": {"c": (5,), "d": (2, 2, 2)}}
    leaves, treedef = jax.tree.flatten(shapes, is_leaf=lambda x: isinstance(x, tuple))
    keys = jax.random.split(key, len(leaves))
    return jax.tree.unflatten(treedef, [jax.random.normal(k, s) for k, s in zip(keys, leaves)])


def _assert_equal(a, b):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def check_against_reference(tmp_path, program: Program, steps: int = 4, lr=0.5):
    """Run the exported module and the reference executor side by side (eagerly) for a few
    steps from zero state; updates and live state must be equal. The module's
    ``learning_rate`` is the lr input times the program's lr unit (``dsl.hyper``); ``lr`` a
    power of two keeps that product exact."""
    opt = export(tmp_path, program)(learning_rate=lr * lr_unit(strip_dead(program))[0])
    ref = update_fn(program)
    live = live_state(program)
    w = _tree(jax.random.PRNGKey(0))
    zeros = jax.tree.map(jnp.zeros_like, w)
    state, m, v = opt.init(w), zeros, zeros
    assert set(state._fields) == {"count"} | set(live)
    for step in range(steps):
        g = _tree(jax.random.PRNGKey(step + 1))
        updates, state = opt.update(g, state, w)
        upd, m, v = ref(w, g, m, v, lr)
        _assert_equal(updates, jax.tree.map(jnp.negative, upd))
        for slot, value in (("m", m), ("v", v)):
            if slot in live:
                _assert_equal(getattr(state, slot), value)
        assert int(state.count) == step + 1
        w = optax.apply_updates(w, updates)


@pytest.mark.parametrize("name", sorted(library()))
def test_library_program_exports_and_matches_reference(tmp_path, name):
    check_against_reference(tmp_path, library_program(name))


def test_every_op_exports_and_matches_reference(tmp_path):
    program = parse(ALL_OPS)
    assert {s.op for s in strip_dead(program).stmts} == set(OPS) == SUPPORTED
    check_against_reference(tmp_path, program, steps=3)


def test_dead_statements_and_scalar_outputs(tmp_path):
    # the dead statement and the never-read v disappear; the update is a scalar (broadcast),
    # m is overwritten before it is read (dead state); a variable named like the module's
    # own names (jnp, params) is renamed.
    program = parse("def train(w, g, m, v, lr):\n  jnp = lr * 0.5\n  params = g * 2.0\n"
                    "  v = sqrt(params)\n  m = v + jnp\n  update = jnp * 3.0\n"
                    "  return update, m, v\n")
    source = to_module_source(program)
    assert "sqrt" not in source.split('"""', 2)[2]  # dead statements are not exported
    check_against_reference(tmp_path, program)
    opt = export(tmp_path, program)()
    assert opt.init({"x": jnp.ones(2)})._fields == ("count",)


def test_named_constant_is_a_python_float_assignment(tmp_path):
    """`epsilon = 1e-8` is exported as that assignment (a double, as in the reference
    executor) and the module computes what the reference computes; a returned literal is
    broadcast like any scalar."""
    program = parse("def train(w, g, m, v, lr):\n  beta = 0.9\n  epsilon = 1e-8\n"
                    "  m = interpolate(g, m, beta)\n  sq = square(m)\n  sq = sqrt(sq)\n"
                    "  sq = sq + epsilon\n  update = m / sq\n  update = update * lr\n"
                    "  v = 0.5\n  return (update, m, v)\n")
    source = to_module_source(program)
    body = source.split('"""', 2)[2]
    assert "        beta = 0.9\n" in body and "        epsilon = 1e-08\n" in body
    check_against_reference(tmp_path, program)
    check_against_reference(tmp_path, parse("def train(w, g, m, v, lr):\n  update = -0.5\n"
                                            "  m = 2.0\n  return update, m, v\n"))


def test_lion_state_has_one_slot(tmp_path):
    opt = export(tmp_path, library_program("lion"))()
    params = _tree(jax.random.PRNGKey(0))
    state = opt.init(params)
    assert state._fields == ("count", "m")
    assert jax.tree.structure(state.m) == jax.tree.structure(params)
    assert STATE == ("m", "v") and live_state(library_program("lion")) == {"m"}


def test_missing_params_is_a_clear_error(tmp_path):
    opt = export(tmp_path, library_program("lion"))()
    params = _tree(jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="pass params"):
        opt.update(params, opt.init(params))


def test_bad_name_is_refused():
    with pytest.raises(ValueError):
        to_module_source(library_program("lion"), name="not a name")


# --- Lion trains like optax.lion -------------------------------------------------------------

def _digits():
    x, y = load_digits(return_X_y=True)
    return jnp.asarray(x[:256] / 16.0, jnp.float32), jnp.asarray(y[:256], jnp.int32)


def _train(opt, steps=300):
    x, y = _digits()
    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    params = {"l1": {"w": jax.random.normal(k1, (64, 32)) * 0.125, "b": jnp.zeros(32)},
              "l2": {"w": jax.random.normal(k2, (32, 10)) * 0.18, "b": jnp.zeros(10)}}

    def loss_fn(p):
        h = jnp.tanh(x @ p["l1"]["w"] + p["l1"]["b"])
        logits = h @ p["l2"]["w"] + p["l2"]["b"]
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    @jax.jit
    def run(params):
        def step(carry, _):
            params, state = carry
            loss, grads = jax.value_and_grad(loss_fn)(params)
            updates, state = opt.update(grads, state, params)
            return (optax.apply_updates(params, updates), state), loss
        return jax.lax.scan(step, (params, opt.init(params)), None, length=steps)[1]

    return np.asarray(run(params))


def test_lion_module_trains_like_optax_lion(tmp_path):
    ours = _train(export(tmp_path, library_program("lion"))(learning_rate=1e-4))
    theirs = _train(optax.lion(1e-4, b1=0.9, b2=0.99, weight_decay=0.01))
    assert np.all(np.isfinite(ours)) and ours[-1] < ours[0]
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=0)


def test_text_from_outside_never_becomes_code(tmp_path):
    """A file name with quotes (or a run directory's path) goes into the docstring escaped,
    and a program variable named like the module's own names is renamed (from #10)."""
    evil = 'x""";__import__("os").system("touch PWNED");"""y.py'
    src = to_module_source(library_program("lion"), source=evil)
    ast_module = __import__("ast").parse(src)
    doc = __import__("ast").get_docstring(ast_module)
    assert "touch PWNED" in doc  # kept as text, inside the docstring ...
    assert [type(n).__name__ for n in ast_module.body][:1] == ["Expr"]
    assert not any("system" in __import__("ast").unparse(n) for n in ast_module.body[1:])
    clash = parse("def train(w, g, m, v, lr):\n  DiscoveredState = g * lr\n"
                  "  discovered = DiscoveredState * 0.5\n  update = discovered * 1.0\n"
                  "  return update, m, v\n")
    ns = {}
    exec(compile(to_module_source(clash), "clash.py", "exec"), ns)  # safe: generated by us
    opt = ns["discovered"](learning_rate=1.0)
    params = {"w": jnp.ones(3)}
    updates, _ = opt.update({"w": jnp.full(3, 2.0)}, opt.init(params), params)
    np.testing.assert_allclose(np.asarray(updates["w"]), -1.0)

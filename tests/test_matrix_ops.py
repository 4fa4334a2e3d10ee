"""The matrix-aware ops (``dsl/matrix_ops.py``): orthogonalize, row_mean, col_mean.

Each equals a NumPy reference on random leaves (non-square, square, 3-D, 1-D, 0-d), the
fast interpreter (flat vector, static leaf shapes) equals the reference executor (pytree),
and parsing, hashing, simplification, the fingerprint and the export handle them."""

import importlib.util
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from optevo.dsl import ProgramError, parse, update_fn
from optevo.dsl.canon import canonical_form, program_hash
from optevo.dsl.codegen import to_module_source
from optevo.dsl.fingerprint import fingerprint
from optevo.dsl.interpreter import Interpreter
from optevo.dsl.matrix_ops import MATRIX_OPS, NS_COEFFS, set_searchable
from optevo.dsl.random import searchable_ops
from optevo.simplify import removal_candidates, simplify_exact

SHAPES = [(5, 3), (3, 7), (4, 4), (2, 3, 4), (6,), ()]
_count = itertools.count()


# --- NumPy references (float64) --------------------------------------------------------------

def np_matrix(x):
    """The leaf's matrix view: leading dims flattened, the last kept (a vector: one row)."""
    return x.reshape(-1, x.shape[-1]) if x.ndim else x.reshape(1, 1)


def np_orthogonalize(x):
    if x.ndim < 2:
        return np.sign(x)
    a = np_matrix(x).astype(np.float64)
    t = a.shape[0] > a.shape[1]
    a = a.T if t else a
    a = a / (np.linalg.norm(a) + 1e-8)
    c0, c1, c2 = NS_COEFFS
    for _ in range(5):
        s = a @ a.T
        a = c0 * a + (c1 * s + c2 * s @ s) @ a
    return (a.T if t else a).reshape(x.shape)


def np_row_mean(x):
    a = np_matrix(x).astype(np.float64)
    return np.broadcast_to(a.mean(axis=1, keepdims=True), a.shape).reshape(x.shape)


def np_col_mean(x):
    a = np_matrix(x).astype(np.float64)
    return np.broadcast_to(a.mean(axis=0, keepdims=True), a.shape).reshape(x.shape)


NP = {"orthogonalize": np_orthogonalize, "row_mean": np_row_mean, "col_mean": np_col_mean}


def leaves(seed, scale=1.0):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal(s) * scale).astype(np.float32) for s in SHAPES]


def program_of(op, arg="g"):
    return parse(f"def train(w, g, m, v, lr):\n  x = {op}({arg})\n  update = x * lr\n"
                 f"  return update, m, v\n")


def flat(tree):
    return np.concatenate([np.ravel(x) for x in tree])


# --- values --------------------------------------------------------------------------------

@pytest.mark.parametrize("op", MATRIX_OPS)
def test_op_equals_numpy_reference(op):
    g = leaves(1)
    z = [np.zeros_like(x) for x in g]
    u, _, _ = jax.jit(update_fn(program_of(op)))(z, g, z, z, 1.0)
    for x, got in zip(g, u):
        assert got.shape == x.shape
        np.testing.assert_allclose(np.asarray(got), NP[op](x), rtol=2e-4, atol=2e-5,
                                   err_msg=f"{op} on a leaf of shape {x.shape}")


def test_orthogonalize_is_an_approximate_polar_factor():
    """Singular vectors kept, singular values pushed into Muon's band around 1; scale-free."""
    x = leaves(2)[0].astype(np.float64)  # 5 x 3
    z = [np.zeros_like(a) for a in leaves(2)]
    ortho = jax.jit(update_fn(program_of("orthogonalize")))
    o = np.asarray(ortho(z, leaves(2), z, z, 1.0)[0][0], np.float64)
    u, s, vt = np.linalg.svd(x, full_matrices=False)
    core = u.T @ o @ vt.T  # diagonal if o = U f(S) V^T
    assert np.abs(core - np.diag(np.diag(core))).max() < 1e-4
    assert 0.6 < np.diag(core).min() and np.diag(core).max() < 1.25
    big = ortho(z, [a * 1000.0 for a in leaves(2)], z, z, 1.0)[0][0]
    np.testing.assert_allclose(np.asarray(big), o, atol=1e-5)  # X / ||X||_F first


def test_scalars_and_vectors():
    """A scalar: orthogonalize is sign, the means are the value; a vector is one row."""
    z = [np.zeros_like(x) for x in leaves(0)]
    for op, want in (("orthogonalize", -1.0), ("row_mean", -0.3), ("col_mean", -0.3)):
        p = parse(f"def train(w, g, m, v, lr):\n  c = lr * -1.0\n  x = {op}(c)\n"
                  f"  update = x * 1.0\n  return update, m, v\n")
        u = jax.jit(update_fn(p))(z, z, z, z, 0.3)[0]
        assert all(np.allclose(np.asarray(a), want) for a in u)
    vec = leaves(3)[4]
    assert np.allclose(np_row_mean(vec), vec.mean()) and np.array_equal(np_col_mean(vec), vec)


def test_adafactor_factorisation():
    """row_mean(v) * col_mean(v) / row_mean(col_mean(v)) is v for a rank-one matrix of
    positive entries (Adafactor's factored second moment) and for a vector."""
    rng = np.random.default_rng(4)
    r, c = rng.uniform(0.5, 2.0, (6, 1)), rng.uniform(0.5, 2.0, (1, 3))
    v = [(r @ c).astype(np.float32), rng.uniform(0.5, 2.0, (5,)).astype(np.float32)]
    p = parse("def train(w, g, m, v, lr):\n  r = row_mean(g)\n  c = col_mean(g)\n"
              "  a = col_mean(g)\n  s = row_mean(a)\n  f = r * c\n  update = f / s\n"
              "  return update, m, v\n")
    z = [np.zeros_like(x) for x in v]
    u = jax.jit(update_fn(p))(z, v, z, z, 1.0)[0]
    for got, want in zip(u, v):
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5)


# --- both engines ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def stepper():
    """One compiled interpreter (bucket 16) on SHAPES, shared by every program here."""
    it = Interpreter(SHAPES, 16)

    @jax.jit
    def run(code, w, gs, lr):
        regs = it.init_regs(code, *w.shape)
        outs = []
        for g in gs:
            regs, u = it.step(code, regs, w, g, lr)
            outs.append(u)
            w = w - u
        return outs

    return it, run


PROGRAMS = [
    "  m = interp(g, m, 0.95)\n  o = orthogonalize(m)\n  d = w * 0.01\n  o = o + d\n"
    "  update = o * lr\n",
    "  q = square(g)\n  v = interp(q, v, 0.9)\n  r = row_mean(v)\n  c = col_mean(v)\n"
    "  a = col_mean(v)\n  s = row_mean(a)\n  f = r * c\n  f = f / s\n  f = sqrt(f)\n"
    "  update = g / f\n  update = update * lr\n",
    "  o = orthogonalize(lr)\n  r = row_mean(lr)\n  c = col_mean(0.5)\n  o = o + r\n"
    "  o = o * c\n  x = orthogonalize(g)\n  update = x * o\n",
]


@pytest.mark.parametrize("body", PROGRAMS, ids=["muon", "adafactor", "scalars"])
def test_fast_interpreter_equals_reference(stepper, body):
    it, run = stepper
    p = parse(f"def train(w, g, m, v, lr):\n{body}  return update, m, v\n")
    rng = np.random.default_rng(5)
    w = leaves(6)
    gs = [[(rng.standard_normal(s) * 0.1).astype(np.float32) for s in SHAPES]
          for _ in range(3)]
    ref, wr = update_fn(p), w
    m = v = [np.zeros_like(x) for x in w]
    expected = []
    for g in gs:
        u, m, v = ref(wr, g, m, v, 0.7)
        expected.append(u)
        wr = [a - b for a, b in zip(wr, u)]
    got = run(it.encode(p), flat(w)[None], [flat(g)[None] for g in gs],
              jnp.full((1, 1), 0.7, jnp.float32))
    for e, g in zip(expected, got):
        np.testing.assert_allclose(np.asarray(g)[0], flat(e), rtol=1e-4, atol=1e-6)


def test_fast_engine_passes_leaf_shapes():
    """FastEngine == JitEngine on a task whose parameters include matrices."""
    from optevo.proxy_tasks import get_task
    from optevo.proxy_tasks.engine import FastEngine
    from optevo.proxy_tasks.jit_engine import JitEngine
    task = get_task("digits_mlp", hidden=8, batch_size=16)
    fast, ref = FastEngine(task, steps=20, buckets=(8,)), JitEngine(task, steps=20)
    assert (64, 8) in fast.leaf_shapes and (8,) in fast.leaf_shapes
    p = parse(f"def train(w, g, m, v, lr):\n{PROGRAMS[0]}  return update, m, v\n")
    got, want = fast.run([p], [0, 1])[0], ref.run([p], [0, 1])[0]
    assert not got.diverged.any()
    np.testing.assert_allclose(got.losses, want.losses, rtol=1e-4)


# --- the language around them ----------------------------------------------------------------

def test_parse_and_round_trip():
    p = parse(f"def train(w, g, m, v, lr):\n{PROGRAMS[1]}  return update, m, v\n")
    assert parse(p.text()) == p
    with pytest.raises(ProgramError, match="orthogonalize takes 1 argument, got 2"):
        program_of("orthogonalize", "g, m")


def test_hashing():
    ops = [program_hash(program_of(op)) for op in MATRIX_OPS + ("sign",)]
    assert len(set(ops)) == 4  # each op its own computation
    p = parse(f"def train(w, g, m, v, lr):\n{PROGRAMS[0]}  return update, m, v\n")
    renamed = parse(p.text().replace("o = ", "k = ").replace("(o)", "(k)")
                    .replace(" o ", " k ").replace("o * lr", "k * lr"))
    assert program_hash(renamed) == program_hash(p) == program_hash(canonical_form(p))
    twice = parse("def train(w, g, m, v, lr):\n  a = orthogonalize(g)\n  b = orthogonalize(a)\n"
                  "  update = b * lr\n  return update, m, v\n")
    assert program_hash(twice) != program_hash(program_of("orthogonalize"))  # not idempotent


def test_simplification_keeps_what_they_compute():
    p = parse("def train(w, g, m, v, lr):\n  a = orthogonalize(g)\n  dead = row_mean(w)\n"
              "  b = orthogonalize(g)\n  c = orthogonalize(a)\n  r = row_mean(c)\n"
              "  r = row_mean(r)\n  s = a + b\n  s = s + r\n  update = s * lr\n"
              "  return update, m, v\n")
    q = simplify_exact(p, strict=True)
    ops = [s.op for s in q.stmts]
    assert ops.count("orthogonalize") == 2 and ops.count("row_mean") == 2  # dup merged, dead gone
    z = [np.zeros_like(x) for x in leaves(0)]
    a, b = (jax.jit(update_fn(x))(leaves(7), leaves(8), z, z, 0.5)[0] for x in (p, q))
    for x, y in zip(a, b):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    cands = [d for d, _ in removal_candidates(program_of("orthogonalize"))]
    assert any("orthogonalize(g) by g" in d for d in cands)


def test_fingerprint_sees_the_leaf_shapes():
    fps = {op: fingerprint(program_of(op)) for op in MATRIX_OPS + ("sign",)}
    assert len(set(fps.values())) == 4


def test_export_round_trips(tmp_path):
    """The exported module (per-leaf helpers copied from the rows) equals the reference
    bitwise on non-square, 3-D, 1-D and 0-d leaves."""
    body = PROGRAMS[0] + "  r = row_mean(g)\n  c = col_mean(g)\n  r = r * c\n" \
        "  k = orthogonalize(lr)\n  r = r * k\n  update = update + r\n"
    p = parse(f"def train(w, g, m, v, lr):\n{body}  return update, m, v\n")
    src = to_module_source(p)
    assert "def _orthogonalize_leaf(x):" in src and "optevo" not in src.split('"""', 2)[2]
    path = tmp_path / f"exported_{next(_count)}.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    opt, ref = mod.discovered(learning_rate=0.5), update_fn(p)
    w = [jnp.asarray(x) for x in leaves(9)]
    state, m, v = opt.init(w), [jnp.zeros_like(x) for x in w], [jnp.zeros_like(x) for x in w]
    for step in range(3):
        g = [jnp.asarray(x) for x in leaves(10 + step, 0.1)]
        updates, state = opt.update(g, state, w)
        u, m, v = ref(w, g, m, v, 0.5)
        for a, b in zip(updates, u):
            np.testing.assert_array_equal(np.asarray(a), -np.asarray(b))
        w = [a + b for a, b in zip(w, updates)]


def test_not_searchable_unless_enabled():
    names = lambda: {op.name for op in searchable_ops()}
    assert not names() & set(MATRIX_OPS)
    try:
        set_searchable(True)
        assert set(MATRIX_OPS) <= names()
    finally:
        set_searchable(False)
    assert not names() & set(MATRIX_OPS)


def test_search_draws_matrix_ops_only_when_enabled(tmp_path):
    """``search.matrix_ops`` turns the rows on for inserted statements; off by default."""
    from optevo.search.core.config import config_from_dict
    from optevo.search.core.run import build_search
    from optevo.search.core.workers import InProcessPool, eval_spec
    seen = {}
    try:
        for flag in (False, True):
            cfg = config_from_dict({
                "seed": 2, "task": {"name": "quadratic", "steps": 5, "seeds": 1},
                "search": {"population": 6, "tournament": 2, "max_evals": 24,
                           "max_length": 16, "matrix_ops": flag,
                           "mutations": {"insert": 1.0, "delete": 0, "change_arg": 0,
                                         "scale_const": 0}},
                "workers": {"count": 0}, "progress": {"enabled": False}})
            run = build_search(cfg, tmp_path / str(flag), InProcessPool(eval_spec(cfg)))
            text = " ".join(r.program for r in run.run().rundir.records())
            seen[flag] = {op for op in ("orthogonalize", "row_mean", "col_mean") if op in text}
    finally:  # the search set the process-wide switch on; later tests expect it off
        set_searchable(False)
    assert seen[False] == set() and seen[True]

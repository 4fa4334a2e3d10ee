"""Equivalences (issue #22): which identities hash as their argument, which do not and why,
bit-exact constant folding, and "distinct programs" that are distinct.

Every engine is run: the jitted reference executor (``execute.update_fn`` under ``jax.jit``,
as the training loops run it), the fast interpreter (``dsl/interpreter.py``) and the
fingerprint's rows (``fingerprint.trajectory``), on inputs holding ``-0.0``, infinities,
NaN, the smallest normal float32 values, huge values and random magnitudes; a soundness
claim is checked per engine, bit for bit (any NaN equals any NaN)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from optevo.dsl import Program, Stmt, parse
from optevo.dsl.canon import canonical_form, program_hash
from optevo.dsl.execute import update_fn
from optevo.dsl.fingerprint import fingerprint, trajectory
from optevo.dsl.interpreter import Interpreter
from optevo.dsl.library import library
from optevo.search.core.rundir import Record, best_distinct
from optevo.simplify import simplify_exact
from optevo.simplify.fold import MIN_NORMAL, fold
from optevo.dsl.ops import LITERAL_OP, OPS

P = 96
STEPS = 3
LRS = (0.3, -0.0, 7.0)
SPECIAL = [0.0, -0.0, np.inf, -np.inf, np.nan, MIN_NORMAL, -MIN_NORMAL, 2 * MIN_NORMAL,
           3e38, -3e38, 1e-30, -1.5, 1.0]
SUBNORMAL = [1e-40, -1e-40, 1e-45, -1e-45]
HEAD = "def train(w, g, m, v, lr):\n"


def _draw(rng, extra=()):
    x = rng.standard_normal(P) * 10.0 ** rng.uniform(-30, 30, P)
    vals = SPECIAL + list(extra)
    x[:len(vals)] = vals
    return rng.permutation(x).astype(np.float32)


def _inputs(seed, extra=()):
    rng = np.random.default_rng(seed)
    return _draw(rng, extra), [_draw(rng, extra) for _ in range(STEPS)]


@pytest.fixture(scope="module")
def interp_run():
    it = Interpreter([P], 16)

    @jax.jit
    def run(code, w, gs, lrs):
        regs = it.init_regs(code, 1, P)
        w = w[None]
        outs = []
        for g, lr in zip(gs, lrs):
            regs, u = it.step(code, regs, w, g[None], jnp.reshape(lr, (1, 1)))
            m, v = it.state(regs)
            outs.append((u[0], m[0], v[0]))
            w = w - u
        return outs

    def go(program, inputs):
        w, gs = inputs
        out = run(it.encode(program), w, gs, jnp.asarray(LRS, jnp.float32))
        return [np.asarray(x) for step in out for x in step]

    return go


def _ref(program, inputs):
    """The jitted reference executor, steps fed back as the training loop feeds them."""
    w, gs = inputs
    f = jax.jit(update_fn(program))
    m = v = np.zeros(P, np.float32)
    out = []
    for g, lr in zip(gs, LRS):
        u, m, v = f({"a": w}, {"a": g}, {"a": m}, {"a": v}, np.float32(lr))
        u, m, v = (np.asarray(x["a"]) for x in (u, m, v))
        out += [u, m, v]
        w = w - u
    return out


def _same(a, b) -> bool:
    """Bitwise equal, any NaN equal to any NaN."""
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    nan = np.isnan(a) & np.isnan(b)
    return bool(np.all((a.view(np.int32) == b.view(np.int32)) | nan))


def _flush(a):
    a = np.array(a, np.float32)
    tiny = np.abs(a) < MIN_NORMAL
    a[tiny] = np.copysign(np.float32(0.0), a[tiny])
    return a


def _all_same(xs, ys, flush=False):
    f = _flush if flush else (lambda a: a)
    return len(xs) == len(ys) and all(_same(f(x), f(y)) for x, y in zip(xs, ys))


def _prog(body):
    return parse(HEAD + "".join(f"  {s.strip()}\n" for s in body.split(";")))


# --- the identities that hash as their argument ---------------------------------------------

IDENTITIES = ["{x} * 1.0", "1.0 * {x}", "{x} - 0.0", "{x} + -0.0", "-0.0 + {x}", "{x} / 1.0"]

# The identity on a computed tensor (d), on the scalar lr, on the state v and on the input g;
# the plain program uses the argument itself.
BODY = HEAD + """  d = g - m
{defs}  m = interp({c}, m, 0.9)
  v = max({b}, {a})
  t = {a} * {s}
  update = t + {c}
  return update, m, v
"""


def _pair(expr):
    defs = "".join(f"  {n} = {expr.format(x=x)}\n"
                   for n, x in (("a", "d"), ("s", "lr"), ("b", "v"), ("c", "g")))
    return (parse(BODY.format(defs=defs, a="a", s="s", b="b", c="c")),
            parse(BODY.format(defs="", a="d", s="lr", b="v", c="g")))


@pytest.mark.parametrize("expr", IDENTITIES)
def test_identity_hashes_as_its_argument(expr):
    ident, plain = _pair(expr)
    assert program_hash(ident) == program_hash(plain)
    assert canonical_form(ident) == canonical_form(plain)
    # on an input directly, and through a named constant (`one = 1.0` is the number)
    alone = _prog(f"update = {expr.format(x='g')}; return update, m, v")
    assert program_hash(alone) == program_hash(_prog("return g, m, v"))
    (st,) = alone.stmts
    c = next(a for a in st.args if not isinstance(a, str))
    named = Program((Stmt("k", LITERAL_OP, (c,)),
                     Stmt(st.target, st.op, tuple("k" if a is c else a for a in st.args))),
                    alone.returns)
    assert program_hash(named) == program_hash(alone)


@pytest.mark.parametrize("expr", IDENTITIES)
def test_identity_is_bit_exact_in_every_engine(expr, interp_run):
    """Soundness: the identity and its argument give the same bits for 3 steps (updates
    and state) in each engine, on -0.0, +-inf, NaN, tiny normal and huge inputs."""
    ident, plain = _pair(expr)
    ins = _inputs(1)
    assert _all_same(_ref(ident, ins), _ref(plain, ins))
    assert _all_same(interp_run(ident, ins), interp_run(plain, ins))
    assert _same(trajectory(ident), trajectory(plain))
    assert fingerprint(ident, digits=None) == fingerprint(plain, digits=None)


@pytest.mark.parametrize("expr", IDENTITIES)
def test_subnormal_inputs_are_equal_after_flushing(expr, interp_run):
    """No engine feeds a program a subnormal (XLA flushes them); fed some anyway, the
    interpreter's ``x * 1.0`` is ``x`` flushed to +-0: equal once subnormals are flushed
    (the jitted reference drops the identity: bit for bit there)."""
    ident, plain = _pair(expr)
    ins = _inputs(2, SUBNORMAL)
    assert _all_same(_ref(ident, ins), _ref(plain, ins))
    assert _all_same(interp_run(ident, ins), interp_run(plain, ins), flush=True)


# --- what does not hash as its argument, and why ----------------------------------------------

def _alone(expr):
    return _prog(f"update = {expr}; return update, m, v")


G = _prog("return g, m, v")


@pytest.mark.parametrize("expr", ["g + 0.0", "0.0 + g", "g - -0.0"])
def test_adding_positive_zero_is_no_identity(expr, interp_run):
    """-0.0 + 0.0 is +0.0 in the interpreter (the jitted reference keeps -0.0: XLA drops
    the addition), and the sign of a zero reaches results: power(-0.0, -1) = -inf."""
    assert program_hash(_alone(expr)) != program_hash(G)
    ins = _inputs(3)
    assert not _all_same(interp_run(_alone(expr), ins), interp_run(G, ins))
    via = _prog(f"t = {expr}; update = power(t, -1.0); return update, m, v")
    direct = _prog("update = power(g, -1.0); return update, m, v")
    u_via, u_direct = interp_run(via, ins)[0], interp_run(direct, ins)[0]
    assert np.any(np.isinf(u_via) & np.isinf(u_direct) & (u_via != u_direct))


@pytest.mark.parametrize("a", ["0.9", "0.3", "0.5", "0.0", "1.0", "w"])
def test_interp_of_equal_arguments_is_no_identity(a, interp_run):
    """(1 - a) x + a x rounds (0.9, w: one ulp off for a fifth of normal x), flushes tiny x
    (0.3, 0.5: a x underflows to 0 in XLA), and is NaN at x = inf (0 * inf for a = 0 or 1):
    never x bit for bit in every engine. The hash keeps it apart; the exact simplifier (not
    strict) makes it x."""
    p = _alone(f"interp(g, g, {a})")
    assert program_hash(p) != program_hash(G)
    ins = _inputs(4)
    assert not (_all_same(_ref(p, ins), _ref(G, ins))
                and _all_same(interp_run(p, ins), interp_run(G, ins)))
    assert simplify_exact(p, strict=True) != simplify_exact(G, strict=True)
    assert program_hash(simplify_exact(p)) == program_hash(simplify_exact(G))


def test_dividing_a_python_double_by_one_is_no_identity():
    """The reference holds ``0.1 / 3.0`` as a Python double; ``/ 1.0`` divides it by the
    double 1 + 1e-8, which changes it (only a float32 ``x / 1.0`` is ``x``)."""
    a = _prog("t = 0.1 / 3.0; s = t / 1.0; d = s - t; update = g * d; return update, m, v")
    b = _prog("t = 0.1 / 3.0; d = t - t; update = g * d; return update, m, v")
    assert program_hash(a) != program_hash(b)
    ins = _inputs(5)
    assert not _all_same(_ref(a, ins), _ref(b, ins))


# --- constant folding, bit for bit ----------------------------------------------------------

def _consts(rng, n):
    """float32 values (what mutations write) and 7-digit decimals (what rounding writes)."""
    out = []
    for i in range(n):
        c = rng.standard_normal() * 10.0 ** rng.uniform(-4, 4)
        out.append(float(np.float32(c)) if i % 2 else float(f"{c:.7g}"))
    return out


def test_folding_is_bit_exact_in_both_engines(interp_run):
    """``t = c1 op c2`` feeding a product, a chain, interp's weight and the update: the
    strict simplification folds it (mostly) and every engine gives the same bits."""
    rng = np.random.default_rng(6)
    ins = _inputs(7)
    folded = 0
    cases = [(0.4015291, 0.1661706, "*")] + [
        (c1, c2, op) for (c1, c2), op in zip(zip(_consts(rng, 24), _consts(rng, 24)),
                                             "*+-" * 8)]
    for c1, c2, op in cases:
        c3 = _consts(rng, 1)[0]
        p = _prog(f"t = {c1!r} {op} {c2!r}; s = t * {c3!r}; m = interp(g, m, t); "
                  f"u = g * s; k = m + t; update = u + k; return update, m, v")
        q = simplify_exact(p, strict=True)
        d = fold(OPS[{"*": "mul", "+": "add", "-": "sub"}[op]], (c1, c2))
        if d is not None:
            folded += 1
            assert any(d in s.args for s in q.stmts), q.text()
            (weight,) = [s.args[2] for s in q.stmts if s.op == "interp"]
            # interp's weight: the constant itself only if it is a float32 value
            assert weight == d if float(np.float32(d)) == d else isinstance(weight, str)
        assert _all_same(_ref(p, ins), _ref(q, ins)), (p.text(), q.text())
        assert _all_same(interp_run(p, ins), interp_run(q, ins)), (p.text(), q.text())
        assert _same(trajectory(p), trajectory(q))
    assert folded >= len(cases) // 2


def test_the_product_of_the_issue_folds():
    p = _prog("t = 0.4015291 * 0.1661706; update = g * t; return update, m, v")
    q = simplify_exact(p, strict=True)
    assert q.text() == _prog(f"update = g * {0.4015291 * 0.1661706!r}; "
                             "return update, m, v").text()
    # what the interpreter computes (float32) is the reference's double rounded once
    f = np.float32(np.float32(0.4015291) * np.float32(0.1661706))
    assert f == np.float32(0.4015291 * 0.1661706)


def test_fold_refuses_what_an_engine_would_compute_otherwise():
    mul, add = OPS["mul"], OPS["add"]
    assert fold(mul, (0.5, 0.25)) == 0.125
    assert fold(mul, (0.1, 0.1)) is None  # float32(0.1) ** 2 rounds apart from 0.01
    assert fold(mul, (1e-20, 1e-20)) is None  # underflows: XLA flushes it
    assert fold(mul, (1e-40, 1e30)) is None  # a subnormal operand is read as zero
    assert fold(mul, (3e38, 10.0)) is None  # overflows
    assert fold(add, (1.0, -1.0)) == 0.0 and fold(mul, (-0.0, 2.0)) == -0.0
    assert str(fold(mul, (-0.0, 2.0))) == "-0.0"
    assert fold(OPS["div"], (1.0, 2.0)) is None  # safe division: never folded


# --- distinct programs ------------------------------------------------------------------------

RMSPROP = library()["rmsprop"].text()


def _record(i, text, loss, logged_hash=None):
    return Record(id=i, parent=0, mutation="m", hash=logged_hash or program_hash(parse(text)),
                  program=text, loss=loss, normalized=loss, stderr=0.01, diverged=False,
                  cached=False)


def _with_first(line):
    return RMSPROP.replace(HEAD, HEAD + f"  {line}\n")


def test_best_distinct_merges_interp_of_equal_arguments():
    """Three RMSprops written ``g = interp(g, g, c)`` with different c were listed (and held
    out) as three distinct programs; they are one."""
    other = library()["lion"].text()
    records = [_record(0, RMSPROP, 2.0),
               _record(1, _with_first("g = interp(g, g, 0.37)"), 1.1),
               _record(2, _with_first("g = interp(g, g, -0.19511613)"), 1.2),
               _record(3, other, 1.3),
               _record(4, _with_first("g = interp(g, g, 0.9)"), 1.4)]
    assert len({r.hash for r in records}) == 5
    assert [r.id for r in best_distinct(records, 5, merge=False)] == [1, 2, 3, 4, 0]
    assert [r.id for r in best_distinct(records, 5)] == [1, 3]
    assert [r.id for r in best_distinct(records, 1)] == [1]
    assert [r.id for r in best_distinct(records, include_start=False)] == [1, 3]


def test_best_distinct_lists_no_two_equal_fingerprints_or_hashes():
    records = [_record(1, RMSPROP, 1.0),
               # an old log's hash for `g * 1.0` (before the units joined the hash)
               _record(2, _with_first("g = g * 1.0"), 1.1, logged_hash="0123456789abcdef"),
               # |lr| for lr > 0: equal up to rounding, the fingerprint's business
               _record(3, _with_first("lr = global_norm(lr)"), 1.2),
               _record(4, RMSPROP.replace("0.9)", "0.8)"), 1.3)]
    assert fingerprint(parse(records[2].program)) == fingerprint(parse(RMSPROP))
    assert program_hash(simplify_exact(parse(records[2].program))) != \
        program_hash(simplify_exact(parse(RMSPROP)))
    listed = best_distinct(records)
    assert [r.id for r in listed] == [1, 4]
    for key in (fingerprint, lambda p: program_hash(simplify_exact(p))):
        keys = [key(parse(r.program)) for r in listed]
        assert len(set(keys)) == len(keys)


def test_best_distinct_keeps_a_program_that_does_not_parse():
    bad = _record(5, RMSPROP.replace("sqrt(v)", "frobnicate(v)"), 0.5, "feedfacefeedface")
    assert [r.id for r in best_distinct([_record(1, RMSPROP, 1.0), bad])] == [5, 1]

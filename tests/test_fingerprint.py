"""The functional fingerprint (optevo.dsl.fingerprint): equal hashes give equal fingerprints
(over mutants of the library, as tests/test_canon.py makes them), dead code and dead slots
do not matter, literals fingerprint like the inline number, known optimizers differ,
non-finite values are tokens, values agree with the jitted reference executor, and the
fixed inputs are the same in every process. Its rates against training are measured by
scripts/bench/fingerprint.py (BENCHMARKS.md)."""

import subprocess
import sys
from collections import defaultdict

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from optevo.dsl import Program, ProgramError, Stmt, check, parse, update_fn
from optevo.dsl import fingerprint as F
from optevo.dsl.canon import COMMUTATIVE, program_hash
from optevo.dsl.library import library
from optevo.dsl.liveness import live_state
from optevo.dsl.ops import LITERAL, LITERAL_OP, OPS, elementwise, registered
from optevo.dsl.program import INPUTS
from optevo.dsl.random import defined_before, random_program, random_statement
from optevo.search.core.mutations import MUTATIONS, NoSite

fp = F.fingerprint
WRAP = "def train(w, g, m, v, lr):\n  {}\n  return update, m, v\n"


def body(text):
    return parse(WRAP.format(text.replace("\n", "\n  ")))


# --- mutants: the search's edits and edits that keep the hash ----------------------------------

def _rename(p, old, new):
    r = lambda a: new if a == old else a
    return Program(tuple(Stmt(r(s.target), s.op, tuple(r(a) for a in s.args)) for s in p.stmts),
                   tuple(r(x) for x in p.returns))


def _mutate(p, rng):
    """One edit: a search mutation, or (as in test_canon) a rename, a commutative swap, a
    swap of adjacent statements, a dead statement, a named constant, ``x = min(x, x)``."""
    st, n = list(p.stmts), len(p.stmts)
    kind = int(rng.integers(9))
    if kind < 3 or n == 0:
        names = sorted(MUTATIONS)
        try:
            return MUTATIONS[names[int(rng.integers(len(names)))]](rng, p)
        except NoSite:
            return p
    i = int(rng.integers(n))
    s = st[i]
    if kind == 3:
        temps = sorted({x.target for x in st} - set(INPUTS))
        if temps:
            old = temps[int(rng.integers(len(temps)))]
            return _rename(p, old, f"r{rng.integers(1000)}_{old}")
    elif kind == 4 and s.op in COMMUTATIVE:
        st[i] = Stmt(s.target, s.op, s.args[::-1])
    elif kind == 5 and n > 1:
        j = min(i, n - 2)
        st[j], st[j + 1] = st[j + 1], st[j]
    elif kind == 6:  # a statement whose target nothing reads
        d = random_statement(rng, defined_before(p, i))
        st.insert(i, Stmt(f"dead{rng.integers(1000)}", d.op, d.args))
    elif kind == 7:
        idx = [j for j, a in enumerate(s.args) if not isinstance(a, str)]
        if idx and OPS[s.op].rule != LITERAL:
            j, name = idx[0], f"k{rng.integers(100)}"
            st[i] = Stmt(s.target, s.op, s.args[:j] + (name,) + s.args[j + 1:])
            st.insert(i, Stmt(name, LITERAL_OP, (s.args[j],)))
    elif kind == 8:
        st.insert(i + 1, Stmt(s.target, "min", (s.target, s.target)))
    return p.replace(stmts=st)


def _valid(p):
    try:
        check(p)
        return len(p.stmts) <= 30
    except ProgramError:
        return False


@pytest.fixture(scope="module")
def mutants():
    rng = np.random.default_rng(11)
    bases = list(library().values()) + [random_program(rng, 8) for _ in range(10)]
    pool, out = list(bases), []
    while len(out) < 400:
        p = pool[int(rng.integers(len(pool)))]
        for _ in range(int(rng.integers(1, 4))):
            p = _mutate(p, rng)
        if _valid(p):
            out.append(p)
            pool.append(p)
    return bases + out


def test_equal_hashes_give_equal_fingerprints(mutants):
    groups = defaultdict(dict)
    for p in mutants:
        groups[program_hash(p)].setdefault(p.text(), p)
    colliding = [list(g.values()) for g in groups.values() if len(g) > 1]
    print(f"\n{len(mutants)} programs, {len(groups)} hashes, {len(colliding)} colliding groups")
    assert len(colliding) >= 30  # the edits that keep the hash do make groups
    for members in colliding:
        want = fp(members[0])
        for p in members[1:]:
            assert fp(p) == want, f"{members[0].text()}\n{p.text()}"
        assert fp(members[0], digits=None) == fp(members[-1], digits=None)
    # and the fingerprint merges more than the hash does, not less
    assert len({fp(p) for p in mutants}) <= len(groups)


@pytest.mark.parametrize("op", sorted(COMMUTATIVE))
def test_commutative_arguments_give_identical_bits(op):
    """The swaps hashing allows hold bit for bit here too, for every kind of argument (each
    order is its own compiled variant of the row)."""
    for a, b in [("g", "w"), ("g", "lr"), ("m", 0.37), ("lr", 0.37), ("g", -2.5)]:
        p, q = (Program((Stmt("t", op, xy), Stmt("u", "mul", ("t", "g")),
                         Stmt("update", "add", ("u", "w")))) for xy in [(a, b), (b, a)])
        assert program_hash(p) == program_hash(q)
        np.testing.assert_array_equal(F.trajectory(p), F.trajectory(q))
        assert fp(p, digits=None) == fp(q, digits=None)


def test_dead_code_and_dead_slot_do_not_matter():
    plain = body("m = interp(g, m, 0.9)\nupdate = sign(m)\nupdate = update * lr")
    junk = body("m = interp(g, m, 0.9)\nj = exp(w)\nupdate = sign(m)\nv = log(j)\n"
                "v = v / 0.0\nupdate = update * lr\nq = cosh(update)")
    assert program_hash(junk) == program_hash(plain)
    assert fp(junk) == fp(plain)
    # a slot that is never read: whatever it holds (here inf and nan) is not hashed
    nan_slot = body("m = interp(g, m, 0.9)\nupdate = sign(m)\nupdate = update * lr\n"
                    "v = arccosh(0.5)\nv = v * g")
    assert fp(nan_slot) == fp(plain)
    rows = F.trajectory(plain)
    assert rows.shape == (F.STEPS * 2, F.trajectory(plain, 1).shape[1])  # update and m


def test_known_optimizers_differ():
    lib = library()
    four = [fp(lib[n]) for n in ("adam_style", "lion", "sgd", "signum")]
    assert len(set(four)) == 4
    assert len({fp(p) for p in lib.values()}) == len(lib)
    # per-leaf norm and whole-tree norm differ (two leaves); so does a constant
    assert fp(body("n = norm(g)\nupdate = g / n")) != fp(body("n = global_norm(g)\nupdate = g / n"))
    assert fp(body("update = g * 0.5")) != fp(body("update = g * 0.25"))


def test_deterministic_within_and_across_processes():
    p = library()["adam_style"]
    assert fp(p) == fp(p) == fp(parse(p.text()))
    np.testing.assert_array_equal(F.trajectory(p), F.trajectory(p))
    code = ("from optevo.dsl import fingerprint as F; from optevo.dsl.library import library; "
            "print(F.fingerprint(library()['adam_style']))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True)
    assert out.stdout.strip() == fp(p)


def test_rounding_is_relative():
    """digits=3 keeps 10 bits: x = f 2^e, 1/2 <= |f| < 1, code (rint(f 2^10), e); a value
    rounding up to 2^10 carries into the exponent, so 0.99999 and 1.0 share a code."""
    x = np.array([1.0, 1.00001, 0.99999, 3 * 2.0 ** -20, 3.00001 * 2.0 ** -20,
                  3 * 2.0 ** 20, 3.00001 * 2.0 ** 20, 1.01])
    q, e = F._codes(x, 3)
    assert (q[0], e[0]) == (q[1], e[1]) == (q[2], e[2]) == (512, 1)
    assert q[3] == q[4] == q[5] == q[6] and e[3] == e[4] == e[5] - 40 == e[6] - 40
    assert (q[7], e[7]) != (q[0], e[0])  # a 1% change shows at 3 digits
    # a relative change of 3e-5 is kept by exact bits and by 6 digits (20 bits)
    a, b = body("update = g * 3.0"), body("update = g * 3.0001")
    assert fp(a, digits=None) != fp(b, digits=None) and fp(a, digits=6) != fp(b, digits=6)


def test_non_finite_values_are_tokens():
    with np.errstate(all="ignore"):
        c = F._codes(np.array([np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0, 1.5, -1.5]), 3)
    q, e = c
    assert e[0] == e[1] and len({e[0], e[2], e[3]}) == 3
    assert (q[4], e[4]) == (q[5], e[5]) == (0, 0)
    assert q[6] == -q[7] and e[6] == e[7]
    ninf = body("update = log(m)")  # log|0| = -inf at step 1: w becomes +inf
    assert np.isneginf(F.trajectory(ninf)[0]).all()
    assert fp(ninf) == fp(body("t = log(m)\nupdate = t * 2.0"))
    assert fp(ninf) != fp(body("t = log(m)\nupdate = negative(t)"))
    nan = body("c = arccosh(0.5)\nupdate = g * c")
    assert np.isnan(F.trajectory(nan)).all()
    assert fp(nan) == fp(body("t = arcsin(2.0)\nupdate = t + w")) != fp(ninf)


def test_constants_are_told_apart_by_their_bits():
    """Constants and constant-only statements are remembered across programs; 0.0 and -0.0
    (here: the sign of an infinity) must not share an entry."""
    for first, second in [("0.0", "-0.0"), ("-0.0", "0.0")]:
        for pre in ["", "c = negative({})\n"]:
            a, b = (body(pre.format(c) + ("t = c * g" if pre else f"t = {c} * g")
                         + "\nupdate = power(t, -1.0)") for c in (first, second))
            assert fp(a) != fp(b) and fp(parse(b.text())) == fp(b)


def test_literal_statement_fingerprints_like_the_inline_number():
    inline = body("m = interp(g, m, 0.9)\nd = sqrt(v)\nd = d + 1e-8\nupdate = m / d\n"
                  "update = update * lr")
    named = body("b = 0.9\neps = 1e-8\nm = interp(g, m, b)\nd = sqrt(v)\nd = d + eps\n"
                 "update = m / d\nupdate = update * lr")
    assert fp(named) == fp(inline)
    assert fp(named, digits=None) == fp(inline, digits=None)
    np.testing.assert_array_equal(F.trajectory(named), F.trajectory(inline))
    assert fp(body("update = 0.5")) == fp(body("update = 0.5"))  # a returned literal runs
    assert fp(body("h = 0.5\nupdate = h * lr")) == fp(body("update = 0.5 * lr"))


def _reference(program, steps):
    """Update, m and v per step (flattened) from the jitted reference on pytrees."""
    space, ins = F._setup()
    shapes = F.LEAF_SHAPES

    def tree(x):
        x = np.asarray(x)
        return [jnp.asarray(x[a:b].reshape(s)) for a, b, s in
                zip(space.bounds[:-1], space.bounds[1:], shapes)]

    f = jax.jit(update_fn(program))
    w, m, v = tree(ins.w), tree(ins.zeros), tree(ins.zeros)
    out = []
    for k in range(steps):
        u, m, v = f(w, tree(ins.g[k]), m, v, ins.lr[k])
        w = [a - b for a, b in zip(w, u)]
        out.append([np.concatenate([np.ravel(x) for x in t]) for t in (u, m, v)])
    return out


@pytest.mark.parametrize("name", ["adam_style", "lion", "adabelief", "reductions", "scalar"])
def test_values_agree_with_the_jitted_reference(name):
    extra = {"reductions": body("n = norm(g)\nc = cosine_sim(g, w)\nd = dot(m, g)\n"
                                "m = clip_by_global_norm(g, 0.5)\nu = n * c\nu = u + d\n"
                                "update = u * lr"),
             "scalar": body("update = lr * 0.01")}
    p = extra.get(name) or library()[name]
    steps = 4
    rows, ref = F.trajectory(p, steps), _reference(p, steps)
    live = [i for i, s in enumerate("mv") if s in live_state(p)]
    want = np.stack([r[j] for r in ref for j in [0] + [1 + i for i in live]])
    assert rows.shape == want.shape
    np.testing.assert_allclose(rows, want, rtol=2e-5, atol=1e-30)


def test_registered_op_and_bad_arguments():
    relu = elementwise("relu_fp", 1, lambda x: jnp.maximum(x, 0.0), "jnp.maximum({0}, 0.0)")
    with registered(relu):
        p = body("update = relu_fp(g)")
        assert fp(p) == fp(body("update = max(g, 0.0)"))
    with pytest.raises(ValueError, match="steps"):
        fp(library()["sgd"], steps=0)
    with pytest.raises(ProgramError):
        fp(Program((Stmt("update", "add", ("g", "nope")),)))

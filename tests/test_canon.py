"""Canonical hashing (optevo.dsl.canon): invariances, sensitivity, and soundness checked by
running every colliding program on the same random inputs over several steps."""

import re
from collections import defaultdict

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from optevo.dsl.library import example_program

from optevo.dsl import INPUTS, Program, ProgramError, Stmt, check, parse, update_fn
from optevo.dsl.canon import COMMUTATIVE, canonical_form, live_slots, program_hash
from optevo.dsl.library import library
from optevo.dsl.liveness import live_mask, live_state, strip_dead, update_mask
from optevo.dsl.ops import LITERAL, LITERAL_OP, OP_LIST, OPS
from optevo.dsl.random import defined_before, random_arg, random_program, random_statement

RAW = example_program("raw_search_output").text()  # the paper's raw winner

# The same with its dead statements removed by hand (m is dead: the input m is only read
# by `m = clip(m, lr)`, which is overwritten before it is read, so `m = cosh(update)` is dead).
RAW_STRIPPED = """\
def train(w, g, m, v, lr):
  g = clip(g, lr)
  g = arcsin(g)
  m = interp(g, v, 0.8999999761581421)
  v1 = m * m
  v = interp(g, m, 1.109133005142212)
  lr = lr * 0.0002171761734643951
  update = m * lr
  v1 = sqrt(v1)
  update = update / v1
  wd = lr * 0.4601978361606598
  wd = wd * w
  update = update + wd
  return update, m, v
"""

LION = """\
def train(w, g, m, v, lr):
  update = interp(g, m, 0.9)
  update = sign(update)
  m = interp(g, m, 0.99)
  wd = w * 0.01
  update = update + wd
  lr = lr * 0.0001
  update = update * lr
  return update, m, v
"""

# Lion again: other names, independent statements reordered, + and * arguments swapped,
# dead statements (v written but never read; `junk` only feeds v; m overwritten, not returned).
LION_VARIANT = """\
def train(w, g, m, v, lr):
  decay = 0.01 * w
  scale = 0.0001 * lr
  junk = exp(g)
  c = interp(g, m, 0.9)
  m_next = interp(g, m, 0.99)
  direction = sign(c)
  v = square(junk)
  step = decay + direction
  out = scale * step
  m = cosh(out)
  return out, m_next, v
"""


def h(text):
    return program_hash(parse(text))


# --- invariances ---------------------------------------------------------------------------

def test_hash_is_hex_and_stable():
    d = h(LION)
    assert re.fullmatch(r"[0-9a-f]{16}", d), d  # exactly 16 lower-case hex digits
    assert h(LION) == d == program_hash(library()["lion"])
    # what a program computes decides its hash: the renamed, reordered Lion hashes alike,
    # one changed op or another optimizer hashes apart
    assert h(LION_VARIANT) == d
    assert h(LION.replace("sign(update)", "tanh(update)")) != d
    assert program_hash(library()["adam_style"]) != d


# Digests of existing programs never change (run directories and caches key on them).
PINNED = {"adam_style": "1dc040288a02fa01", "lion": "2f68064909959bf9",
          "rmsprop": "14211cc06795de07", "adabelief": "0d1558bd29b4ef23"}


def test_pinned_hashes():
    lib = library()
    assert {name: program_hash(lib[name]) for name in PINNED} == PINNED
    assert h(RAW) == "ad259faeb81f2dfe"
    rng = np.random.default_rng(5)  # random statements draw the same ops as before
    assert program_hash(random_program(rng, int(rng.integers(3, 15)))) == "7725c21fb0b9655a"


def test_renaming_reordering_dead_code_and_commutativity():
    assert h(LION_VARIANT) == h(LION)


def test_raw_search_output_equals_its_stripped_form():
    raw = parse(RAW)
    assert h(RAW) == h(RAW_STRIPPED) == program_hash(strip_dead(raw))
    assert live_slots(raw) == live_state(raw) == frozenset({"v"})
    # the final `m = cosh(update)` is dead: changing or dropping it changes nothing
    assert h(RAW.replace("m = cosh(update)", "m = sinh(wd)")) == h(RAW)
    assert h(RAW.replace("  m = cosh(update)\n", "")) == h(RAW)


@pytest.mark.parametrize("a,b", [
    ("update = g + m", "update = m + g"),
    ("update = g * m", "update = m * g"),
    ("update = max(g, m)", "update = max(m, g)"),
    ("update = min(g, 0.5)", "update = min(0.5, g)"),
    ("update = dot(g, w)", "update = dot(w, g)"),
    ("update = cosine_sim(g, w)", "update = cosine_sim(w, g)"),
])
def test_commutative_swaps(a, b):
    wrap = "def train(w, g, m, v, lr):\n  m = interp(g, m, 0.9)\n  {}\n  return update, m, v\n"
    assert h(wrap.format(a)) == h(wrap.format(b))


def test_rename_temporaries_and_reorder_independent_statements():
    a = "def train(w, g, m, v, lr):\n  x = g * 2.0\n  y = w * 3.0\n  update = x - y\n  return update, m, v\n"
    b = "def train(w, g, m, v, lr):\n  q = w * 3.0\n  p = g * 2.0\n  update = p - q\n  return update, m, v\n"
    assert h(a) == h(b)


def test_dead_state_hashes_alike():
    a = "def train(w, g, m, v, lr):\n  update = g * lr\n  return update, m, v\n"
    b = "def train(w, g, m, v, lr):\n  update = g * lr\n  m = exp(g)\n  v = m + w\n  return update, m, v\n"
    assert h(a) == h(b)


# --- sensitivity ---------------------------------------------------------------------------

@pytest.mark.parametrize("edit", [
    ("0.99", "0.98"),  # a constant
    ("sign(update)", "tanh(update)"),  # an op
    ("interp(g, m, 0.9)", "interp(m, g, 0.9)"),  # interp argument order
    ("interp(g, m, 0.99)", "interp(g, v, 0.99)"),  # which state slot is read
    ("update + wd", "update - wd"),
    ("  m = interp(g, m, 0.99)", "  v = interp(g, m, 0.99)"),  # which slot holds the state
])
def test_sensitive_edits(edit):
    assert h(LION.replace(*edit)) != h(LION)


def test_named_constant_hashes_like_the_number():
    wrap = "def train(w, g, m, v, lr):\n  d = sqrt(v)\n  {}\n  return update, m, v\n"
    inline = h(wrap.format("d = d + 1e-8\n  update = g / d"))
    assert h(wrap.format("eps = 1e-8\n  d = d + eps\n  update = g / d")) == inline
    assert h(wrap.format("eps = 1e-8\n  d = eps + d\n  update = g / d")) == inline  # sorted
    assert h(wrap.format("eps = 1e-7\n  d = d + eps\n  update = g / d")) != inline
    # get_eps() is a float32 array, not the double 1e-8; a reassigned name is no literal
    assert h(wrap.format("eps = get_eps()\n  d = d + eps\n  update = g / d")) != inline
    assert h(wrap.format("eps = 1e-8\n  eps = sign(eps)\n  d = d + eps\n  update = g / d")) \
        != inline
    # a returned literal: its canonical form is a literal statement
    p = parse("def train(w, g, m, v, lr):\n  update = 0.5\n  return update, m, v\n")
    c = canonical_form(p)
    assert c.stmts == (Stmt("t0", LITERAL_OP, (0.5,)),) and canonical_form(c) == c
    assert program_hash(c) == program_hash(p) != h(p.text().replace("0.5", "0.25"))
    with pytest.raises(ProgramError, match="must assign a number"):
        program_hash(Program((Stmt("update", LITERAL_OP, ("g",)),)))


def test_exact_identities_hash_as_their_argument():
    """min(x, x), max(x, x), sign(sign(x)), abs(abs(x)) and -(-x) are x (or f(x)) bit for
    bit: a held-out pair of 'distinct' programs once differed only by ``g = min(g, g)``."""
    wrap = "def train(w, g, m, v, lr):\n  {}\n  update = u * lr\n  return update, m, v\n"
    plain = h(wrap.format("u = sign(g)"))
    for body in ["g = min(g, g)\n  u = sign(g)", "g = max(g, g)\n  u = sign(g)",
                 "u = sign(g)\n  u = sign(u)", "a = sign(g)\n  u = min(a, a)",
                 "n = negative(g)\n  n = negative(n)\n  u = sign(n)"]:
        assert h(wrap.format(body)) == plain, body
    assert h(wrap.format("a = abs(g)\n  u = abs(a)")) == h(wrap.format("u = abs(g)"))
    # not identities: min(x, y), sign(abs(x)), -x, and constants are left alone
    for body in ["g = min(g, w)\n  u = sign(g)", "a = abs(g)\n  u = sign(a)",
                 "u = negative(g)", "c = min(0.9, 0.9)\n  u = g * c"]:
        assert h(wrap.format(body)) != plain, body
    ins = _inputs(np.random.default_rng(3))
    for body in ["g = min(g, g)\n  u = sign(g)",
                 "n = negative(g)\n  n = negative(n)\n  u = sign(n)"]:
        a, b = (_run(parse(wrap.format(x)), ins, 2) for x in (body, "u = sign(g)"))
        for step_a, step_b in zip(a, b):  # updates and both state slots, every leaf
            for xs, ys in zip(step_a, step_b):
                for x, y in zip(xs, ys):
                    _same(x, y)


def test_non_commutative_argument_order():
    wrap = "def train(w, g, m, v, lr):\n  update = {}\n  return update, m, v\n"
    for a, b in [("g - w", "w - g"), ("g / w", "w / g"), ("power(g, w)", "power(w, g)"),
                 ("clip(g, w)", "clip(w, g)"), ("interp(g, w, lr)", "interp(w, g, lr)"),
                 ("interp(g, w, lr)", "interp(g, lr, w)")]:
        assert h(wrap.format(a)) != h(wrap.format(b)), (a, b)


def test_state_read_but_not_written_is_live():
    # v is read but returned unchanged: it stays zero, but the hash still tells it from w
    a = "def train(w, g, m, v, lr):\n  update = g + v\n  return update, m, v\n"
    b = "def train(w, g, m, v, lr):\n  update = g + m\n  return update, m, v\n"
    assert h(a) != h(b)


def test_constant_identity_is_what_the_engines_compute():
    """0.9 and float32(0.9) load as the same float32, but interp's weight enters as
    float32(1 - a) computed in double, which differs: they must not share a hash."""
    wrap = "def train(w, g, m, v, lr):\n  update = interp(g, w, {})\n  return update, m, v\n"
    a, b = wrap.format(0.9), wrap.format(0.8999999761581421)
    assert np.float32(0.9) == np.float32(0.8999999761581421)
    assert h(a) != h(b)
    out = [_run(parse(t), _inputs(np.random.default_rng(0)), 1)[0][0] for t in (a, b)]
    assert any(not np.array_equal(x, y) for x, y in zip(out[0], out[1]))


def test_canonical_form_library():
    for name, p in library().items():
        c = canonical_form(p)
        check(c)
        assert program_hash(c) == program_hash(p), name
        assert canonical_form(c) == c, name
    assert len({program_hash(p) for p in library().values()}) == len(library())


def test_invalid_program_raises():
    with pytest.raises(ProgramError):
        program_hash(Program((Stmt("update", "add", ("g", "nope")),)))
    with pytest.raises(ProgramError):
        program_hash(Program((Stmt("update", "frobnicate", ("g",)),)))


def test_hashing_is_fast():
    rng = np.random.default_rng(1)
    programs = [random_program(rng, 20) for _ in range(2000)]
    assert len({program_hash(p) for p in programs}) > 1000  # short random programs do collide


# --- soundness: equal hashes compute equal things -------------------------------------------

SHAPES = {"kernel": (4, 3), "bias": (5,)}
STEPS = 3
LRS = (1.0, 0.3, 0.05)


def _inputs(rng):
    tree = lambda: {k: jnp.asarray(rng.standard_normal(s), jnp.float32) for k, s in SHAPES.items()}
    return tree(), [tree() for _ in range(STEPS)]


def _run(program, inputs, steps=STEPS):
    """Updates and new state per step (leaves as numpy), from m = v = 0, w <- w - update."""
    w, gs = inputs
    f = update_fn(program)
    m = v = jax.tree.map(jnp.zeros_like, w)
    out = []
    for k in range(steps):
        update, m, v = f(w, gs[k], m, v, LRS[k])
        w = jax.tree.map(lambda a, b: a - b, w, update)
        out.append(tuple([np.asarray(x) for x in jax.tree.leaves(t)] for t in (update, m, v)))
    return out


def _same(a, b):
    """Bitwise equal, except that any NaN equals any NaN."""
    np.testing.assert_array_equal(a, b)
    keep = ~np.isnan(a)
    np.testing.assert_array_equal(np.signbit(a[keep]), np.signbit(b[keep]))


def _valid(p):
    try:
        check(p)
        return True
    except ProgramError:
        return False


def _rename_all(p, old, new):
    r = lambda a: new if a == old else a
    return Program(tuple(Stmt(r(s.target), s.op, tuple(r(a) for a in s.args)) for s in p.stmts),
                   tuple(r(x) for x in p.returns))


def _mutate(p, rng):
    """One random edit. Many are semantic no-ops (dead code, renames, swaps), which is what
    makes hashes collide; nudging a constant by one float32 step must never collide."""
    st = list(p.stmts)
    n = len(st)
    kind = rng.integers(10)
    if kind == 0 or n == 0:  # insert
        i = int(rng.integers(n + 1))
        st.insert(i, random_statement(rng, defined_before(p, i)))
    elif kind == 1:  # delete
        del st[rng.integers(n)]
    elif kind == 2:  # change one argument to a defined variable or a constant
        i = int(rng.integers(n))
        s = st[i]
        if s.args:
            j = rng.integers(len(s.args))
            args = list(s.args)
            args[j] = random_arg(rng, defined_before(p, i), p_const=0.3)
            st[i] = Stmt(s.target, s.op, tuple(args))
    elif kind == 3 and n > 1:  # swap adjacent statements
        i = int(rng.integers(n - 1))
        st[i], st[i + 1] = st[i + 1], st[i]
    elif kind == 4:  # rename a temporary everywhere
        temps = sorted({s.target for s in st} - set(INPUTS))
        if temps:
            old = temps[rng.integers(len(temps))]
            return _rename_all(p, old, f"r{rng.integers(1000)}_{old}")
    elif kind == 5:  # swap the arguments of a commutative statement
        idx = [i for i, s in enumerate(st) if s.op in COMMUTATIVE]
        if idx:
            i = idx[rng.integers(len(idx))]
            s = st[i]
            st[i] = Stmt(s.target, s.op, s.args[::-1])
    elif kind == 6:  # change the op to another of the same arity
        i = int(rng.integers(n))
        s = st[i]
        ops = [o for o in OP_LIST if o.arity == len(s.args)]
        st[i] = Stmt(s.target, ops[rng.integers(len(ops))].name, s.args)
    elif kind == 7:  # nudge a constant by one float32 step (must change the hash)
        idx = [(i, j) for i, s in enumerate(st) for j, a in enumerate(s.args)
               if not isinstance(a, str)]
        if idx:
            i, j = idx[rng.integers(len(idx))]
            s = st[i]
            args = list(s.args)
            c = np.float32(args[j])
            args[j] = float(np.nextafter(c, np.float32(np.inf if rng.random() < 0.5 else -np.inf)))
            st[i] = Stmt(s.target, s.op, tuple(args))
    elif kind == 9:  # name a constant: `k = c` before its statement, which reads k (a no-op)
        idx = [(i, j) for i, s in enumerate(st) for j, a in enumerate(s.args)
               if not isinstance(a, str) and OPS[s.op].rule != LITERAL]
        if idx:
            i, j = idx[rng.integers(len(idx))]
            s, name = st[i], f"k{rng.integers(100)}"
            st[i] = Stmt(s.target, s.op, s.args[:j] + (name,) + s.args[j + 1:])
            st.insert(i, Stmt(name, LITERAL_OP, (s.args[j],)))
    else:  # change which name a statement assigns
        i = int(rng.integers(n))
        names = defined_before(p, i)
        st[i] = Stmt(str(names[rng.integers(len(names))]), st[i].op, st[i].args)
    return p.replace(stmts=st)


N_MUTANTS = 3000


@pytest.fixture(scope="module")
def population():
    rng = np.random.default_rng(2023)
    bases = list(library().values()) + [parse(RAW)]
    bases += [random_program(rng, int(rng.integers(3, 12))) for _ in range(40)]
    pool = list(bases)
    mutants = []
    while len(mutants) < N_MUTANTS:
        p = pool[rng.integers(len(pool))] if rng.random() < 0.5 else bases[rng.integers(len(bases))]
        for _ in range(int(rng.integers(1, 4))):
            p = _mutate(p, rng)
        if len(p.stmts) <= 30 and _valid(p):
            mutants.append(p)
            if rng.random() < 0.3:
                pool.append(p)
    return bases, mutants


def test_hash_properties_on_mutants(population):
    bases, mutants = population
    for p in bases + mutants:
        assert live_slots(p) == live_state(p), p.text()
        c = canonical_form(p)
        assert program_hash(c) == program_hash(p) == program_hash(strip_dead(p)), p.text()
        assert canonical_form(c) == c


def test_equal_hashes_compute_equal_things(population):
    """Every program text in every group of equal hashes (and the group's canonical form)
    gives bit-identical updates and live state for 3 steps on the same inputs."""
    bases, mutants = population
    groups = defaultdict(dict)
    for p in bases + mutants:
        groups[program_hash(p)].setdefault(p.text(), p)
    colliding = [g for g in groups.values() if len(g) > 1]
    inputs = _inputs(np.random.default_rng(7))
    runs = 0
    for group in colliding:
        members = list(group.values())
        members.append(canonical_form(members[0]))
        slots = live_slots(members[0])
        ref = _run(members[0], inputs)
        for p in members[1:]:
            assert live_slots(p) == slots
            got = _run(p, inputs)
            runs += 1
            for step, (r, o) in enumerate(zip(ref, got)):
                outs = [0] + [1 + i for i, s in enumerate(("m", "v")) if s in slots]
                for j in outs:
                    for a, b in zip(r[j], o[j]):
                        try:
                            _same(a, b)
                        except AssertionError:
                            raise AssertionError(
                                f"step {step} output {j} differs:\n{members[0].text()}\n{p.text()}")
    print(f"\n{len(mutants)} mutants + {len(bases)} bases: {len(groups)} distinct hashes, "
          f"{len(colliding)} colliding groups "
          f"({sum(len(g) for g in colliding)} distinct texts), {runs} programs compared")
    assert len(colliding) > 100


def test_update_mask_marks_what_feeds_this_steps_update_not_the_state():
    p = parse("def train(w, g, m, v, lr):\n  t = sign(g)\n  m = interp(g, m, 0.9)\n"
              "  u = sign(m)\n  update = u * lr\n  return update, m, v\n")
    # m's update feeds this step's update through u; t feeds nothing
    assert update_mask(p) == [False, True, True, True]
    q = parse("def train(w, g, m, v, lr):\n  update = sign(m)\n  m = interp(g, m, 0.9)\n"
              "  update = update * lr\n  return update, m, v\n")
    # the new m only reaches a future update: live, but not this step's
    assert update_mask(q) == [True, False, True] and live_mask(q) == [True, True, True]

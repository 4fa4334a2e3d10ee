"""The fast path (array-encoded interpreter) agrees with the reference path (per-program jit)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from optevo.dsl.library import example_program

from optevo.dsl import Stmt, parse
from optevo.dsl.program import inline_literals
from optevo.dsl.execute import trace, update_fn
from optevo.dsl.interpreter import Interpreter, bucket_for
from optevo.dsl.library import library
from optevo.dsl.liveness import live_state, strip_dead
from optevo.dsl.random import random_program
from optevo.proxy_tasks.engine import DEFAULT_BUCKETS, FastEngine, TrainLoop, buckets_for
from optevo.proxy_tasks.jit_engine import JitEngine

LIB = library()

SHAPES = {"a": (3, 4), "b": (4,), "c": (2, 2, 2)}


def random_programs(n, seed=0, max_live=16):
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        p = random_program(rng, int(rng.integers(3, 20)))
        if 1 <= len(strip_dead(p).stmts) <= max_live:
            out.append(p)
    return out


RANDOM = random_programs(60)


def _stepper(check_finite=False):
    """One compiled interpreter step (bucket 16) shared by every program."""
    it = Interpreter(list(SHAPES.values()), 16,  # static leaf shapes (the matrix ops)
                     check_finite=check_finite)

    @jax.jit
    def run(code, w, gs, lr):
        ns, p = w.shape
        regs = it.init_regs(code, ns, p)
        outs = []
        for g in gs:
            regs, u = it.step(code, regs, w, g, lr)
            outs.append((u, *it.state(regs)))
            w = w - u
        return outs

    return it, run


@pytest.fixture(scope="module")
def stepper():
    return _stepper()


@pytest.fixture(scope="module")
def checked_stepper():
    return _stepper(check_finite=True)


def _inputs(seed, steps=4):
    rng = np.random.default_rng(seed)
    tree = lambda: {k: rng.standard_normal(s).astype(np.float32) for k, s in SHAPES.items()}
    return tree(), [tree() for _ in range(steps)]


def _flat(tree):
    return np.concatenate([np.ravel(tree[k]) for k in SHAPES])


def _check_program(stepper, program, seed):
    it, run = stepper
    w, gs = _inputs(seed)
    lr = 0.7
    ref = update_fn(program, check_finite=it.check_finite)
    m = v = jax.tree.map(np.zeros_like, w)
    expected = []
    wr = w
    for g in gs:
        u, m, v = ref(wr, g, m, v, lr)
        expected.append((u, m, v))
        wr = jax.tree.map(lambda a, b: a - b, wr, u)
    got = run(it.encode(program), _flat(w)[None], [_flat(g)[None] for g in gs],
              jnp.full((1, 1), lr, jnp.float32))
    live = strip_dead(program)
    for step, ((eu, em, ev), (gu, gm, gv)) in enumerate(zip(expected, got)):
        pairs = [("update", eu, gu)]
        # a state slot no update ever reads may differ: only live state is compared
        state = live_state(program)
        if "m" in state:
            pairs.append(("m", em, gm))
        if "v" in state:
            pairs.append(("v", ev, gv))
        for name, e, g in pairs:
            np.testing.assert_allclose(
                np.asarray(g)[0], _flat(e), rtol=2e-5, atol=1e-6, equal_nan=True,
                err_msg=f"{name} differs at step {step} for\n{program.text()}\nlive:\n{live}")


@pytest.mark.parametrize("name", sorted(LIB))
def test_interpreter_matches_reference_on_library(stepper, name):
    _check_program(stepper, LIB[name], seed=1)


def test_interpreter_matches_reference_on_random_programs(stepper):
    for i, p in enumerate(RANDOM):
        _check_program(stepper, p, seed=100 + i)


# overflow as a switch: the update is g, or 0 once exp(1000 w) is inf (|w| > 0.09)
OVERFLOW = parse("def train(w, g, m, v, lr):\n  k = w * 1000.0\n  a = exp(k)\n  b = g / a\n"
                 "  c = arctan(b)\n  update = g * lr\n  update = update + c\n"
                 "  return update, m, v\n")


def test_checked_interpreter_matches_checked_reference(checked_stepper):
    """With check_finite, both paths give a NaN update on the same steps (random programs
    overflow now and then; the library never does) and agree everywhere else."""
    for i, p in enumerate(RANDOM):
        _check_program(checked_stepper, p, seed=100 + i)
    for name in ("adam_style", "lion", "rmsprop"):
        _check_program(checked_stepper, LIB[name], seed=1)
    _check_program(checked_stepper, OVERFLOW, seed=3)
    _check_program(checked_stepper, parse(RAW), seed=3)


def test_check_finite_turns_an_overflowed_statement_into_a_nan_update(stepper,
                                                                         checked_stepper):
    w, gs = _inputs(5, steps=1)
    args = (_flat(w)[None], [_flat(gs[0])[None]], jnp.full((1, 1), 0.1, jnp.float32))
    with np.errstate(over="ignore"):  # where exp(1000 w) overflows in float32
        where = ~np.isfinite(np.exp(np.float32(1000.0) * _flat(w)))
    assert 0 < where.sum() < where.size
    for (it, run), checked in ((stepper, False), (checked_stepper, True)):
        u = np.asarray(run(it.encode(OVERFLOW), *args)[0][0])[0]
        ref = _flat(update_fn(OVERFLOW, check_finite=checked)(w, gs[0], w, w, 0.1)[0])
        for x in (u, ref):  # NaN exactly there when checked, nowhere unchecked
            np.testing.assert_array_equal(np.isnan(x), where & checked)
    dead = parse("def train(w, g, m, v, lr):\n  k = w * 1000.0\n  a = exp(k)\n"
                 "  update = g * lr\n"
                 "  return update, m, v\n")  # a dead overflow is never run
    it, run = checked_stepper
    assert np.isfinite(np.asarray(run(it.encode(dead), *args)[0][0])).all()
    assert all(np.isfinite(x).all() for x in jax.tree.leaves(
        update_fn(dead, check_finite=True)(w, gs[0], w, w, 0.1)[0]))


def test_check_finite_flags_a_step_exactly_when_a_live_statement_is_not_finite(
        checked_stepper):
    """The check propagates NaN instead of scanning every statement, and flags the same
    steps: the checked update has a NaN somewhere exactly when the unchecked step computed a
    value that is not finite in some live statement (random programs, inputs from x1 to x100
    so that some overflow), and a reduction of a non-finite operand poisons the whole seed
    even where its result would be finite (g / norm(exp(1000 w)) is 0 unchecked)."""
    flagged = 0
    for i, p in enumerate(RANDOM):
        live = strip_dead(inline_literals(p))
        w0, gs = _inputs(200 + i, steps=1)
        for scale in (1.0, 100.0):
            w, g = (jax.tree.map(lambda x: x * scale, t) for t in (w0, gs[0]))
            with np.errstate(all="ignore"):
                envs = trace(live, *(jax.tree.leaves(x) for x in (w, g, w, g)), 0.1)
                bad = any(not np.all(np.isfinite(np.asarray(x, np.float64)))
                          for s, env in zip(live.stmts, envs[1:])
                          for x in jax.tree.leaves(env[s.target]))
            u = update_fn(p, check_finite=True)(w, g, w, g, 0.1)[0]
            assert bool(np.isnan(_flat(u)).any()) == bad, (scale, p.text())
            flagged += bad
    assert flagged > 3  # the comparison is not vacuous
    norm_gate = parse("def train(w, g, m, v, lr):\n  k = w * 1000.0\n  a = exp(k)\n"
                      "  n = norm(a)\n  update = g / n\n  return update, m, v\n")
    w, gs = _inputs(5, steps=1)
    it, run = checked_stepper
    u = np.asarray(run(it.encode(norm_gate), _flat(w)[None], [_flat(gs[0])[None]],
                       jnp.full((1, 1), 0.1, jnp.float32))[0][0])[0]
    ref = _flat(update_fn(norm_gate, check_finite=True)(w, gs[0], w, w, 0.1)[0])
    assert np.isnan(u).all() and np.isnan(ref).all()
    assert np.isfinite(_flat(update_fn(norm_gate)(w, gs[0], w, w, 0.1)[0])).all()


def test_every_op_variant_is_exercised_and_agrees(stepper):
    """Each op on tensor and on scalar arguments, through both paths."""
    from optevo.dsl.ops import LITERAL, OP_LIST
    for op in OP_LIST:
        arg_sets = [()] if op.arity == 0 else [(0.37,), (-1.3,)] if op.rule == LITERAL else [
            tuple(["g", "m", "w"][: op.arity]),  # tensors
            tuple(["lr", 0.37, -1.3][: op.arity]),  # scalars (a variable and constants)
            tuple(["g", "lr", 0.4][: op.arity]),  # mixed
        ]
        for args in arg_sets:
            src = (f"def train(w, g, m, v, lr):\n  m = interp(g, m, 0.5)\n"
                   f"  {Stmt('x', op.name, args).text()}\n"  # printed by the row's rule
                   f"  update = x * 0.01\n  return update, m, v\n")
            _check_program(stepper, parse(src), seed=7)


def test_named_constants_run_alike(stepper):
    """`name = c` reads as c (interp's constant weight included); a returned literal."""
    _check_program(stepper, parse(
        "def train(w, g, m, v, lr):\n  b1 = 0.9\n  eps = 1e-8\n  m = interpolate(g, m, b1)\n"
        "  v = interp(g, v, eps)\n  b1 = sign(v)\n  q = m + eps\n  update = q * b1\n"
        "  update = update * lr\n  return (update, m, v)\n"), seed=8)
    for body in ("update = -0.25", "update = m * lr\n  m = 1.5"):  # a returned literal
        _check_program(stepper, parse(f"def train(w, g, m, v, lr):\n  {body}\n"
                                      "  return update, m, v\n"), seed=9)


# Returns that keep m or v out of the statement that computes them (interpreter: moves).
MOVED = {
    "old m read after the new one": ("  q = g * 2.0\n  x = m + q\n  update = x * lr\n",
                                     "update, q, v"),
    "one value for m and v": ("  q = interp(g, m, 0.9)\n  r = q * v\n  update = r * lr\n",
                              "update, q, q"),
    "an input as m": ("  update = m * lr\n", "update, g, v"),
    "the old m as update": ("  m2 = interp(g, m, 0.9)\n", "m, m2, v"),
    "v takes the old m, m the gradient": ("  q = m - v\n  update = q * lr\n", "update, g, m"),
    "a scalar update": ("  update = lr * 0.5\n  m = interp(g, m, 0.9)\n", "update, m, v"),
    "a scalar m": ("  m = lr * 2.0\n  update = g * m\n", "update, m, v"),
}


@pytest.mark.parametrize("case", sorted(MOVED))
def test_outputs_the_statements_cannot_write_in_place_are_moved(stepper, case):
    """m and v stay in the bank between steps: the statement computing each writes it into
    its slot, or moves after the statements do, without overwriting a value still read."""
    body, returns = MOVED[case]
    program = parse(f"def train(w, g, m, v, lr):\n{body}  return {returns}\n")
    _check_program(stepper, program, seed=11)
    code = stepper[0].encode(program)
    assert int(code.n) > len(strip_dead(program).stmts)  # at least one move


def test_the_usual_program_needs_no_move(stepper):
    """The AdamW start (and every library program) computes m and v in place: no moves."""
    it, _ = stepper
    for name, program in LIB.items():
        assert int(it.encode(program).n) == len(strip_dead(program).stmts), name


def test_encoding_is_compact_and_dead_code_free():
    it = Interpreter([10], 16)
    raw = parse(RAW)
    code = it.encode(raw)
    assert int(code.n) == len(strip_dead(raw).stmts) < len(raw.stmts)
    with pytest.raises(ValueError, match="bucket holds"):
        Interpreter([10], 4).encode(raw)
    assert bucket_for(9, (8, 16, 32)) == 16
    with pytest.raises(ValueError):
        bucket_for(40, (8, 16, 32))


RAW = example_program("raw_search_output").text()  # the paper's raw winner


# --- whole training runs: FastEngine against JitEngine -------------------------------------

@pytest.fixture(scope="module")
def tiny_engines():
    from optevo.proxy_tasks import get_task
    task = get_task("digits_mlp", hidden=8, batch_size=16)
    return FastEngine(task, steps=60, buckets=(16,)), JitEngine(task, steps=60)


BLOW_UP = parse("def train(w, g, m, v, lr):\n  update = w * -3.0\n  return update, m, v\n")


def test_training_runs_agree(tiny_engines):
    """Whole runs (init, batches, lr scale, divergence flags) agree; one compile per program
    on the reference path, so few programs here: the step test above covers the rest."""
    fast, ref = tiny_engines
    programs = [LIB["lion"], LIB["rmsprop"], RANDOM[0], OVERFLOW, BLOW_UP]
    seeds = [0, 3]
    scales = np.array([1.0, 4.0], np.float32)
    got = fast.run(programs, seeds, scales)
    want = ref.run(programs, seeds, scales)
    for p, a, b in zip(programs, got, want):
        np.testing.assert_array_equal(a.diverged, b.diverged)
        ok = ~a.diverged
        np.testing.assert_allclose(a.losses[ok], b.losses[ok], rtol=1e-4,
                                   err_msg=p.text())
        assert np.all(np.isinf(a.losses[a.diverged]))
    assert got[-1].diverged.all() and not got[0].diverged.any()
    assert got[-2].diverged.all()  # the overflow switch: its weights stay finite


def _planted_gate():
    """The planted sign check's task (configs/planted.yaml) and its overflow gate."""
    from optevo.dsl.library import example_program, library_dir
    from optevo.proxy_tasks import get_task
    from optevo.search.core.config import load_config
    t = load_config(library_dir().parents[0] / "planted.yaml").tasks[0]
    return get_task(t.name, **t.options), example_program("planted/sign_overflow_gate")


@pytest.mark.parametrize("case", ["overflow", "planted_gate"])
def test_overflow_switch_trains_finite_without_the_check(tiny_engines, case):
    """What the rule catches: unchecked, a program that stops coordinates by overflow
    trains to finite losses and weights (the planted sign check's gate scores well: its box
    is where the switch fires), so only the rule flags it; checked, every seed diverges."""
    task, program = (tiny_engines[0].task, OVERFLOW) if case == "overflow" else _planted_gate()
    steps = tiny_engines[0].steps if case == "overflow" else None
    seeds = np.arange(1000, 1004, dtype=np.uint32)
    bare = FastEngine(task, steps, buckets=(16,), check_finite=False).run([program], seeds)[0]
    assert not bare.diverged.any() and np.isfinite(bare.losses).all()
    assert FastEngine(task, steps, buckets=(16,)).run([program], seeds)[0].diverged.all()


def test_divergence_is_flagged_not_raised(tiny_engines):
    fast, _ = tiny_engines
    nan = parse("def train(w, g, m, v, lr):\n  a = arccosh(0.5)\n  update = g * a\n"
                "  return update, m, v\n")
    fine = LIB["adam_style"]
    r_blow, r_nan, r_fine = fast.run([BLOW_UP, nan, fine], [0, 1])
    assert r_blow.diverged.all() and np.isinf(r_blow.losses).all()
    assert r_nan.diverged.all() and np.isinf(r_nan.losses).all()
    assert not r_fine.diverged.any() and np.isfinite(r_fine.losses).all()


def test_seeds_and_lr_scale_change_results_deterministically(tiny_engines):
    fast, _ = tiny_engines
    p = LIB["adam_style"]
    a = fast.run([p], [0, 1])[0].losses
    b = fast.run([p], [0, 1])[0].losses
    c = fast.run([p], [0, 2])[0].losses
    d = fast.run([p], [0, 1], [2.0, 2.0])[0].losses
    np.testing.assert_array_equal(a, b)
    assert a[0] == c[0] and a[1] != c[1]
    assert not np.allclose(a, d)


# --- the one training loop: the observer, the buckets ----------------------------------------

def test_observer_sees_the_start_and_every_step(tiny_engines):
    """``observe(w, t)`` at t = 0 sees the initial parameters, at t = steps the returned final
    ones; observing does not change the run (the engines' result, unobserved)."""
    fast, _ = tiny_engines
    loop = TrainLoop(fast.task, steps=12)
    opt = loop.tree_optimizer(update_fn(LIB["adam_style"]))
    seeds, scales = np.array([0, 3], np.uint32), np.array([1.0, 2.0], np.float32)
    look = (lambda w, t: (jnp.max(jnp.abs(w)), t))
    seen = jax.jit(lambda: loop.train(opt, seeds, scales, observe=look))()
    plain = jax.jit(lambda: loop.train(opt, seeds, scales))()
    qs, ts = seen.observed
    assert qs.shape == ts.shape == (13, 2)
    np.testing.assert_array_equal(ts[:, 0], np.arange(13))
    w0, _ = jax.jit(lambda: loop.start(loop.seed_keys(seeds)[0]))()
    np.testing.assert_allclose(qs[0], np.max(np.abs(np.asarray(w0)), axis=-1), rtol=1e-6)
    np.testing.assert_array_equal(qs[-1], np.max(np.abs(np.asarray(seen.w)), axis=-1))
    assert not np.array_equal(qs[1], qs[0])
    np.testing.assert_allclose(seen.losses, plain.losses, rtol=1e-6)
    np.testing.assert_array_equal(seen.diverged, plain.diverged)
    engine = FastEngine(fast.task, steps=12, buckets=(16,)).run([LIB["adam_style"]], seeds, scales)
    np.testing.assert_allclose(engine[0].losses, plain.losses, rtol=1e-4)


def test_observed_run_goes_to_the_end_when_every_seed_diverged(tiny_engines):
    """Without an observer the loop stops once every seed diverged; with one it runs every
    step (a whole trajectory), and both flag the seeds alike."""
    fast, _ = tiny_engines
    loop = TrainLoop(fast.task, steps=10)
    opt = loop.tree_optimizer(update_fn(BLOW_UP))
    seeds, scales = np.array([0, 1], np.uint32), np.ones(2, np.float32)
    seen = loop.train(opt, seeds, scales, observe=lambda w, t: t, init_scale=2.0)
    assert seen.observed.shape == (11, 2) and seen.diverged.all()
    assert np.isinf(seen.losses).all()
    assert loop.train(opt, seeds, scales).diverged.all()


def test_buckets_for():
    assert DEFAULT_BUCKETS == buckets_for(32) == (8, 16, 32)
    assert buckets_for(33) == (8, 16, 32, 64) and buckets_for(3) == (8,)
    assert buckets_for(40, smallest=16) == (16, 32, 64)
    with pytest.raises(ValueError, match="power of two"):
        buckets_for(8, smallest=12)

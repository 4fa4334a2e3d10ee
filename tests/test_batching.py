"""Programs batched for an accelerator (``optevo.proxy_tasks.batching``): the same results
as one program per call, on the CPU (the tested path; CI has no GPU)."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from optevo.dsl import parse
from optevo.dsl.interpreter import Interpreter
from optevo.dsl.library import library, start_program
from optevo.dsl.liveness import strip_dead
from optevo.proxy_tasks import batching, get_task
from optevo.proxy_tasks.engine import FastEngine
from test_engine import random_programs  # (tests/ is on the path, as pytest runs them)

LIB = library()
BLOW_UP = parse("def train(w, g, m, v, lr):\n  update = w * -3.0\n  return update, m, v\n")
OVERFLOW = parse("def train(w, g, m, v, lr):\n  k = w * 1000.0\n  a = exp(k)\n  b = g / a\n"
                 "  c = arctan(b)\n  update = g * lr\n  update = update + c\n"
                 "  return update, m, v\n")  # overflows; the finite check makes it diverge


@pytest.fixture(scope="module")
def engines():
    task = get_task("digits_mlp", hidden=8, batch_size=16)
    return (FastEngine(task, steps=25, buckets=(16,), batch_programs=False),
            FastEngine(task, steps=25, buckets=(16,), batch_programs=True))


def assert_same(got, want, programs):
    assert len(got) == len(want)
    for p, a, b in zip(programs, got, want):
        np.testing.assert_array_equal(a.diverged, b.diverged, err_msg=p.text())
        ok = ~a.diverged
        np.testing.assert_allclose(a.losses[ok], b.losses[ok], rtol=1e-4, err_msg=p.text())
        assert np.all(np.isinf(a.losses[a.diverged]))


def test_batched_runs_equal_one_program_per_call(engines):
    """Whole runs of the library programs (one bucket: each compile of the batched loop is
    seconds; ``test_plan...`` covers several buckets), a run that blows up and one that
    overflows, two lr scales.
    (Random programs are compared step by step below: many of them barely train, and a
    chaotic run turns rounding, which vmap may change, into percents.)"""
    single, batched = engines
    programs = [p for p in LIB.values() if len(strip_dead(p).stmts) <= 16]
    programs += [BLOW_UP, OVERFLOW]
    seeds, scales = [0, 3], np.array([1.0, 4.0], np.float32)
    got = batched.run(programs, seeds, scales)
    assert_same(got, single.run(programs, seeds, scales), programs)
    assert got[-1].diverged.all() and got[-2].diverged.all()
    assert not got[0].diverged.any()


def test_batched_learning_rate_grid_equals_one_call_per_point(engines):
    single, batched = engines
    grid = [0.25, 1.0, 4.0, 64.0]
    got = batched.run_grid(start_program(), [1, 2], grid)
    assert_same(got, single.run_grid(start_program(), [1, 2], grid), [start_program()] * 4)
    assert len({float(r.losses[0]) for r in got}) == 4  # each point its own scale
    batched.warmup([16], n_seeds=2)  # a batch of one: what dispatch runs
    losses, diverged = batched.dispatch(start_program(), [1, 2], 4.0)
    np.testing.assert_allclose(np.asarray(losses), got[2].losses, rtol=1e-6)
    assert not np.asarray(diverged).any()


SHAPES = [(3, 4), (5,)]


def steps(it, step, codes, n=3):
    """``n`` optimizer steps of ``step`` (``it.step``, maybe vmapped over ``codes``) from the
    same random start: the update and the new ``m, v`` of each step, stacked."""
    rng = np.random.default_rng(0)
    w = jnp.asarray(rng.standard_normal((2, 17)), jnp.float32)
    regs = jax.vmap(lambda c: it.init_regs(c, 2, 17))(codes)
    x = jnp.broadcast_to(w, (codes.n.shape[0], 2, 17))
    out = []
    for _ in range(n):
        g = jnp.asarray(rng.standard_normal((2, 17)), jnp.float32)
        regs, u = step(codes, regs, x, g)
        out.append(np.stack([u, *jax.vmap(it.state)(regs)]))
        x = x - u
    return np.stack(out)


def test_batched_and_unrolled_steps_equal_one_program_at_a_time():
    """Random programs, step by step: the interpreter vmapped over programs (the batched
    engine) and with the statement loop unrolled (the accelerator path: padding rows past a
    program's length are no-ops) give each program's own outputs."""
    programs = [p for p in LIB.values() if len(strip_dead(p).stmts) <= 4]
    programs += random_programs(16, 5, 4)
    lr = jnp.full((2, 1), 0.3, jnp.float32)
    outs = []
    for unroll, batched in ((False, False), (False, True), (True, False)):
        it = Interpreter(SHAPES, 4, unroll=unroll, check_finite=True)
        one = (lambda c, r, x, g, it=it: it.step(c, r, x, g, lr))
        codes = batching.stack([it.encode(p) for p in programs])
        if batched:
            outs.append(steps(it, jax.jit(jax.vmap(one, in_axes=(0, 0, 0, None))), codes))
            continue
        step1 = jax.jit(one)
        outs.append(steps(it, lambda *a: per_program(step1, *a), codes))
    for other in outs[1:]:
        np.testing.assert_allclose(other, outs[0], rtol=1e-5, atol=1e-6, equal_nan=True)


def per_program(step1, codes, regs, x, g):
    """``step1`` called once per program (its index not batched), results stacked."""
    res = [step1(*(jax.tree.map(lambda a: a[i], t) for t in (codes, regs, x)), g)
           for i in range(codes.n.shape[0])]
    return tuple(jax.tree.map(lambda *a: jnp.stack(a), *res))


def test_plan_covers_every_item_once_in_capped_padded_calls():
    buckets = [8, 16] * 70 + [32]
    calls = batching.plan(buckets)
    seen = sorted(i for _, chunk in calls for i in chunk)
    assert seen == list(range(len(buckets)))
    assert all(buckets[i] == b for b, chunk in calls for i in chunk)
    assert max(len(c) for _, c in calls) == batching.PROGRAM_BATCH
    assert [batching.padded_size(n) for n in (1, 2, 3, 5, 64)] == [1, 2, 4, 8, 64]
    assert batching.pad([4, 9, 11]) == [4, 9, 11, 11]


def test_default_batching_follows_the_backend_and_the_environment(monkeypatch):
    monkeypatch.delenv(batching.ENV, raising=False)
    assert batching.default_batching() is (jax.default_backend() != "cpu")
    monkeypatch.setenv(batching.ENV, "on")
    assert batching.default_batching() is True
    monkeypatch.setenv(batching.ENV, "OFF")
    assert batching.default_batching() is False
    monkeypatch.setenv(batching.ENV, "sometimes")
    with pytest.raises(batching.BatchingError, match="use on or off") as e:
        batching.default_batching()
    assert "\n" not in str(e.value)


def test_the_command_line_lets_processes_share_a_gpu(monkeypatch, capsys):
    """``optevo`` sets ``XLA_PYTHON_CLIENT_PREALLOCATE=false`` before JAX starts (the driver
    and its workers share one GPU), and leaves a value the user set."""
    from optevo.search.cli import main
    monkeypatch.delenv("XLA_PYTHON_CLIENT_PREALLOCATE", raising=False)
    with pytest.raises(SystemExit):
        main(["--version"])
    assert os.environ["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"
    monkeypatch.setenv("XLA_PYTHON_CLIENT_PREALLOCATE", "true")
    with pytest.raises(SystemExit):
        main(["--version"])
    assert os.environ["XLA_PYTHON_CLIENT_PREALLOCATE"] == "true"


def test_each_ray_worker_asks_for_an_equal_share_of_the_gpus():
    from optevo.search.core.workers import gpu_share
    assert gpu_share(0.0, 4) == 0.0
    assert [gpu_share(1.0, n) for n in (1, 2, 3, 4)] == [1.0, 0.5, 0.3333, 0.25]
    assert gpu_share(8.0, 2) == 1.0  # never more than one GPU per worker
    assert 3 * gpu_share(2.0, 3) <= 2.0

"""Hypergradient optimizers (proxy_tasks/baselines/hypergrad.py, Chandra et al. 2022): the
hypergradients are the derivatives they claim to be (finite differences), a stack with
hyper-learning-rate 0 is the plain optimizer, stacks adapt, and the baseline kinds run
through OptaxEngine."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from optevo.proxy_tasks import get_task, hypergrad as hg
from optevo.proxy_tasks.baselines.specs import baseline_spec, parse_spec, spec_text
from optevo.proxy_tasks.optax_engine import OptaxEngine

A = jnp.array([[3.0, 1.0, 0.0], [1.0, 2.0, 0.5], [0.0, 0.5, 1.0]])


def f(w):
    """A smooth, non-quadratic loss on a two-leaf pytree."""
    return 0.1 * (0.5 * w["x"] @ A @ w["x"] - w["x"].sum() + jnp.sum(jnp.log1p(w["y"] ** 2) + 0.5 * w["y"] ** 2))


GRAD = jax.jit(jax.grad(f))
W0 = {"x": jnp.array([1.0, -2.0, 0.5]), "y": jnp.array([0.3, -0.7])}
SCHED = (lambda count: 1.0 / (1.0 + 0.1 * count))


def run(opt, steps, perturb=None):
    """``steps`` optimizer steps on ``f`` from ``W0``; ``perturb(state)`` is applied to the
    state just before the last update. Returns (final weights, final state)."""
    w, state, update = W0, opt.init(W0), jax.jit(opt.update)
    for i in range(steps):
        if perturb is not None and i == steps - 1:
            state = perturb(state)
        u, state = update(GRAD(w), state, w)
        w = optax.apply_updates(w, u)
    return w, state


def fd(opt, steps, perturb_by, eps=1e-3):
    """Central finite difference of ``f`` after ``steps`` steps with respect to the
    quantity that ``perturb_by(state, delta)`` shifts by ``delta`` before the last update."""
    hi = f(run(opt, steps, lambda s: perturb_by(s, eps))[0])
    lo = f(run(opt, steps, lambda s: perturb_by(s, -eps))[0])
    return float((hi - lo) / (2 * eps))


def test_sgd_tuned_by_sgd_hypergradient_matches_finite_differences():
    # h0 at step k is d f(theta_k) / d alpha, alpha being the rate used at step k-1 (after
    # its own update; shifting alpha before that update shifts it after by the same amount)
    opt = hg.hyper_sgd(0.05, 0.02, levels=1, schedule=SCHED)
    for k in (2, 4, 6):
        _, state = run(opt, k + 1)
        numeric = fd(opt, k, lambda s, d: s._replace(k0=s.k0 + d))
        assert float(state.h0[0]) == pytest.approx(numeric, rel=2e-3, abs=1e-4)
        # and the rate moved against it: alpha_{k+1} = alpha_k - eta h0
        _, before = run(opt, k)
        assert float(state.k0[0]) == pytest.approx(float(before.k0[0]) - 0.02 * numeric,
                                                   rel=1e-3)
    assert float(state.h0[0]) != 0.0


def test_second_level_hypergradient_matches_finite_differences():
    # SGD / SGD / SGD: -taus[0] at step k is d f(theta_k) / d eta_1 (the level-1 step size)
    opt = hg.hyper_sgd(0.5, 1e-2, levels=3)
    k = 6
    _, state = run(opt, k + 1)
    numeric = fd(opt, k, lambda s, d: s._replace(etas=s.etas.at[0].add(d)), eps=1e-2)
    assert -float(state.taus[0]) == pytest.approx(numeric, rel=2e-3)
    assert abs(numeric) > 1e-3


@pytest.mark.parametrize("name", ["b1", "b2", "alpha"])
def test_adam_hypergradients_match_finite_differences(name):
    opt = hg.hyper_adam(0.05, 0.9, 0.99, 1e-4, levels=1)
    i = hg.adam_base().names.index(name)
    k = 4
    _, state = run(opt, k + 1)
    numeric = fd(opt, k, lambda s, d: s._replace(k0=s.k0.at[i].add(d)), eps=1e-3)
    assert float(state.h0[i]) == pytest.approx(numeric, rel=1e-2, abs=1e-4)


@pytest.mark.parametrize("levels", [0, 1, 3])
def test_zero_hyper_lr_is_the_plain_optimizer(levels):
    pairs = [(hg.hyper_sgd(0.1, 0.0, levels, SCHED), optax.sgd(lambda c: 0.1 * SCHED(c))),
             (hg.hyper_sgdm(0.05, 0.9, 0.0, levels), optax.sgd(0.05, momentum=0.9)),
             (hg.hyper_adam(0.01, 0.9, 0.999, 0.0, levels), optax.adam(0.01))]
    for ours, ref in pairs:
        wa, _ = run(ours, 8)
        wb, _ = run(ref, 8)
        for key in W0:
            np.testing.assert_allclose(wa[key], wb[key], rtol=1e-5, atol=1e-6)


def test_stacked_levels_adapt_every_step_size():
    opt = hg.hyper_sgd(0.01, 0.1, levels=3)
    w, state = run(opt, 30)
    assert float(f(w)) < float(f(run(hg.hyper_sgd(0.01, 0.0, levels=3), 30)[0]))
    assert float(state.k0[0]) > 0.02  # a too-small rate grows on a smooth problem
    assert np.all(np.asarray(state.etas[:2]) > 0.1) and float(state.etas[2]) == np.float32(0.1)
    hyper = hg.hyperparameters(run(hg.hyper_adam(0.01, 0.9, 0.99, 1e-3, 2), 10)[1],
                               hg.adam_base())
    assert 0 < float(hyper["b1"]) < 1 and float(hyper["b1"]) != pytest.approx(0.9, abs=1e-7)


def test_zero_gradient_coordinates_stay_finite():
    # Adam's sqrt(v) at v = 0 (a coordinate whose gradient is always 0) has no derivative
    opt = hg.hyper_adam(0.01, 0.9, 0.999, 1e-3, levels=2)
    g = {"x": jnp.array([1.0, 0.0, -2.0])}
    state = opt.init(g)
    for _ in range(3):
        u, state = opt.update(g, state)
    assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves((u, state)))


def test_specs_of_the_new_kinds():
    text = spec_text("hyper_sgd", levels=2, hyper_lr=0.01)
    assert text.endswith("levels=2")
    kind, h = parse_spec(text)
    assert kind == "hyper_sgd" and h["levels"] == 2 and isinstance(h["levels"], int)
    assert baseline_spec("hyper_adam") == spec_text("hyper_adam")
    assert parse_spec(baseline_spec("optax:hyper_sgdm levels=3"))[1]["levels"] == 3
    for bad in ("optax:hyper_sgd levels=1.5", "optax:hyper_sgd levels=-1",
                "optax:hyper_sgd momentum=0.9", "optax:nope"):
        with pytest.raises(ValueError):
            parse_spec(bad)


def test_new_kinds_run_through_the_optax_engine():
    task = get_task("quadratic", dim=6, steps=40, seeds=2)
    eng = OptaxEngine(task)
    plain, hyper0, stacked = eng.run([spec_text("adamw", learning_rate=0.05, weight_decay=0.0),
                                      spec_text("hyper_adam", learning_rate=0.05, levels=2,
                                                hyper_lr=0.0),
                                      spec_text("hyper_adam", learning_rate=0.05, levels=2,
                                                hyper_lr=1e-5)], [0, 1])
    np.testing.assert_allclose(hyper0.losses, plain.losses, rtol=1e-4)
    assert np.all(np.isfinite(stacked.losses)) and not np.allclose(stacked.losses, plain.losses)
    # levels is structural: one compiled function per height; hyper_lr is an argument
    assert {k[2] for k in eng._compiled} == {(), (("levels", 2),)}
    grid = eng.run_grid(spec_text("hyper_sgd", levels=1), [0, 1], [0.01, 0.1])
    assert len(grid) == 2 and all(np.all(np.isfinite(r.losses)) for r in grid)

"""The exported optax transformation trains exactly like optax's own optimizers.

A 2-layer MLP on a fixed subset of sklearn's digits, full batch, 300 steps, each training loop
one ``lax.scan`` under ``jax.jit``. The loss curves of a library program exported with
``to_optax`` and of the matching optax optimizer must agree to rtol 1e-5 at every step.
"""

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from sklearn.datasets import load_digits

from optevo.dsl import Program, Stmt, load, to_optax

PROGRAMS = Path(__file__).resolve().parents[1] / "configs" / "programs"
STEPS = 300
RTOL = 1e-5


def _data():
    x, y = load_digits(return_X_y=True)
    x = jnp.asarray(x[:256] / 16.0, jnp.float32)
    y = jnp.asarray(y[:256], jnp.int32)
    return x, y


X, Y = _data()


def _init_params():
    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    return {
        "l1": {"w": jax.random.normal(k1, (64, 32), jnp.float32) * 0.125,
               "b": jnp.zeros((32,), jnp.float32)},
        "l2": {"w": jax.random.normal(k2, (32, 10), jnp.float32) * 0.18,
               "b": jnp.zeros((10,), jnp.float32)},
    }


def _loss(params, x, y):
    h = jnp.tanh(x @ params["l1"]["w"] + params["l1"]["b"])
    logits = h @ params["l2"]["w"] + params["l2"]["b"]
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


def train(opt: optax.GradientTransformation, steps: int = STEPS) -> np.ndarray:
    """Full-batch training; returns the loss before each update (one jit, one scan)."""

    @jax.jit
    def run(params):
        def step(carry, _):
            params, state = carry
            loss, grads = jax.value_and_grad(_loss)(params, X, Y)
            updates, state = opt.update(grads, state, params)
            return (optax.apply_updates(params, updates), state), loss

        _, losses = jax.lax.scan(step, (params, opt.init(params)), None, length=steps)
        return losses

    return np.asarray(run(_init_params()))


def _assert_same_curve(ours, theirs):
    assert np.all(np.isfinite(ours)) and np.all(np.isfinite(theirs))
    assert ours[-1] < ours[0], "the optimizer should make progress on this task"
    np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=0)


CASES = {
    "lion": lambda: optax.lion(learning_rate=1e-4, b1=0.9, b2=0.99, weight_decay=0.01),
    "sgd": lambda: optax.sgd(learning_rate=0.01),
    "momentum": lambda: optax.sgd(learning_rate=0.01, momentum=0.9),
    "rmsprop": lambda: optax.rmsprop(learning_rate=1e-3, decay=0.9, eps=1e-8,
                                     eps_in_sqrt=False),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_optax(name):
    program = load(PROGRAMS / f"{name}.py")
    ours = train(to_optax(program, learning_rate=1.0))
    theirs = train(CASES[name]())
    _assert_same_curve(ours, theirs)


def test_nesterov_matches_optax():
    ours = train(to_optax(load(PROGRAMS / "nesterov.py")))
    theirs = train(optax.sgd(learning_rate=0.01, momentum=0.9, nesterov=True))
    _assert_same_curve(ours, theirs)


def test_interp_constant_arithmetic_is_double_precision():
    """interp(g, m, 0.9) computes 1 - 0.9 in double precision as optax computes 1 - b1:
    in float32 it would round differently (0.100000024 instead of 0.1)."""
    assert np.float32(1.0 - 0.9) != np.float32(1.0) - np.float32(0.9)
    opt = to_optax(load(PROGRAMS / "signum.py"))  # m = interp(g, m, 0.9)
    params = {"x": jnp.ones(3)}
    _, state = opt.update(params, opt.init(params), params)  # g = 1, m = 0
    assert state.m["x"].dtype == jnp.float32
    np.testing.assert_array_equal(np.asarray(state.m["x"]), np.full(3, np.float32(1.0 - 0.9)))


def test_missing_params_is_a_clear_error():
    opt = to_optax(load(PROGRAMS / "lion.py"))
    params = _init_params()
    grads = jax.tree.map(jnp.ones_like, params)
    state = opt.init(params)
    with pytest.raises(ValueError, match="pass params to update"):
        opt.update(grads, state)
    with pytest.raises(ValueError, match="pass params to update"):
        jax.jit(opt.update)(grads, state)
    # and with params it works
    updates, _ = opt.update(grads, state, params)
    assert jax.tree.structure(updates) == jax.tree.structure(params)


def test_schedule_as_learning_rate():
    schedule = optax.cosine_decay_schedule(init_value=1.0, decay_steps=STEPS, alpha=0.05)
    program = load(PROGRAMS / "lion.py")
    ours = train(to_optax(program, learning_rate=schedule))
    theirs = train(optax.lion(learning_rate=lambda count: schedule(count) * 1e-4,
                              b1=0.9, b2=0.99, weight_decay=0.01))
    _assert_same_curve(ours, theirs)
    # the schedule is really applied: the constant-lr curve is different
    constant = train(to_optax(program, learning_rate=1.0))
    assert not np.allclose(ours[50:], constant[50:], rtol=1e-4)


def test_chains_with_other_transformations():
    program = load(PROGRAMS / "lion.py")
    ours = train(optax.chain(optax.clip_by_global_norm(0.1), to_optax(program),
                             optax.scale(2.0)))
    theirs = train(optax.chain(optax.clip_by_global_norm(0.1),
                               optax.lion(learning_rate=1e-4, b1=0.9, b2=0.99,
                                          weight_decay=0.01),
                               optax.scale(2.0)))
    _assert_same_curve(ours, theirs)


def test_scalar_update_is_broadcast_over_the_parameters():
    """A program whose update is a scalar (here lr * 0.5) still gives a full pytree."""
    program = Program((Stmt("update", "mul", ("lr", 0.5)),))
    opt = to_optax(program, learning_rate=0.1)
    params = _init_params()
    updates, state = opt.update(jax.tree.map(jnp.ones_like, params), opt.init(params), params)
    for u, p in zip(jax.tree.leaves(updates), jax.tree.leaves(params)):
        assert u.shape == p.shape and u.dtype == p.dtype
        np.testing.assert_allclose(np.asarray(u), -0.05, rtol=1e-6)
    assert int(state.count) == 1


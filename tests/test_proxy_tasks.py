"""Tests of the built-in proxy tasks, the task registry and the fitness helpers."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from optevo.proxy_tasks import Task, fitness, get_task, register, task_names
from optevo.proxy_tasks import base as tasks_base

BUILTIN = ["digits_mlp", "text_lm", "quadratic", "rosenbrock", "binary_regression",
           "deep_linear", "diagonal_scales"]
# Small settings so the whole file stays fast; the checks do not depend on the defaults.
SMALL = {
    "digits_mlp": dict(steps=5, batch_size=16, hidden=8),
    "text_lm": dict(steps=5, batch_size=16, hidden=16, n_chars=20_000, n_val_windows=64),
    "quadratic": dict(steps=5, dim=8),
    "rosenbrock": dict(steps=5, dim=4),
    "binary_regression": dict(steps=5, dim=8, rows=6),
    "deep_linear": dict(steps=5, dim=6, depth=2, init_scale=1.0),
    "diagonal_scales": dict(steps=5, dim=8),
}
# Plain gradient-descent step sizes that reliably lower each task's training loss.
GD_LR = {"digits_mlp": 0.5, "text_lm": 0.5, "quadratic": 0.05, "rosenbrock": 1e-4,
         "binary_regression": 1e-3, "deep_linear": 0.05, "diagonal_scales": 0.5}

_TASKS = {}


def small_task(name):
    if name not in _TASKS:
        _TASKS[name] = get_task(name, **SMALL[name])
    return _TASKS[name]


def leaves(tree):
    return jax.tree_util.tree_leaves(tree)


def trees_equal(a, b):
    la, lb = leaves(a), leaves(b)
    return (jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
            and all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(la, lb)))


def test_builtin_tasks_registered():
    names = task_names()
    assert names == sorted(names)
    for n in BUILTIN:
        assert n in names


@pytest.mark.parametrize("name", BUILTIN)
def test_default_construction_and_attributes(name):
    t = get_task(name)
    assert isinstance(t, Task) and t.name == name
    assert t.steps > 0 and t.seeds >= 1 and t.batch_size >= 0 and t.max_abs_weight > 0
    assert isinstance(t.describe(), str) and name in t.describe()


@pytest.mark.parametrize("name", BUILTIN)
def test_init_params_float32_and_deterministic(name):
    t = small_task(name)
    p1 = t.init_params(jax.random.PRNGKey(3))
    p2 = t.init_params(jax.random.PRNGKey(3))
    p3 = t.init_params(jax.random.PRNGKey(4))
    assert len(leaves(p1)) >= 1
    for leaf in leaves(p1):
        assert isinstance(leaf, jax.Array) and leaf.dtype == jnp.float32
        assert np.all(np.isfinite(np.asarray(leaf)))
    assert trees_equal(p1, p2)
    assert not trees_equal(p1, p3)


@pytest.mark.parametrize("name", BUILTIN)
def test_train_batch_deterministic_and_jittable(name):
    t = small_task(name)
    k = jax.random.PRNGKey(7)
    b1, b2 = t.train_batch(k), t.train_batch(k)
    assert trees_equal(b1, b2)
    bj = jax.jit(t.train_batch)(k)
    assert trees_equal(b1, bj)
    b3 = t.train_batch(jax.random.PRNGKey(8))
    assert not trees_equal(b1, b3)


@pytest.mark.parametrize("name", BUILTIN)
def test_losses_finite_scalars_jittable_with_finite_grads(name):
    t = small_task(name)
    p = t.init_params(jax.random.PRNGKey(0))
    b = t.train_batch(jax.random.PRNGKey(1))
    for value in (t.loss(p, b), jax.jit(t.loss)(p, b), t.val_loss(p), jax.jit(t.val_loss)(p)):
        assert jnp.shape(value) == () and math.isfinite(float(value))
    assert float(t.val_loss(p)) > 0
    np.testing.assert_allclose(float(jax.jit(t.loss)(p, b)), float(t.loss(p, b)), rtol=1e-5)
    g = jax.jit(jax.grad(t.loss))(p, b)
    assert jax.tree_util.tree_structure(g) == jax.tree_util.tree_structure(p)
    for leaf in leaves(g):
        assert np.all(np.isfinite(np.asarray(leaf)))
    assert any(float(jnp.max(jnp.abs(leaf))) > 0 for leaf in leaves(g))
    for key, value in t.metrics(p).items():
        assert isinstance(key, str) and math.isfinite(float(value))
    lr = t.lr_schedule(0, t.steps)
    assert jnp.shape(lr) == () and math.isfinite(float(lr))


@pytest.mark.parametrize("name", BUILTIN)
def test_gradient_descent_lowers_training_loss(name):
    t = small_task(name)
    p = t.init_params(jax.random.PRNGKey(0))
    batch = t.train_batch(jax.random.PRNGKey(1))  # a fixed batch: the loss must go down on it
    step_lr = GD_LR[name]

    @jax.jit
    def step(p):
        g = jax.grad(t.loss)(p, batch)
        return jax.tree_util.tree_map(lambda w, d: w - step_lr * d, p, g)

    before = float(t.loss(p, batch))
    for _ in range(10):
        p = step(p)
    after = float(t.loss(p, batch))
    assert after < before


def test_engine_loop_runs_and_is_reproducible():
    """The documented engine loop with a small SGD program gives the same result twice."""
    t = small_task("digits_mlp")

    def run(seed):
        k_init, k_data = jax.random.split(jax.random.PRNGKey(seed))
        params = t.init_params(k_init)

        def body(params, step):
            batch = t.train_batch(jax.random.fold_in(k_data, step))
            g = jax.grad(t.loss)(params, batch)
            lr = t.lr_schedule(step, t.steps) * 1.0
            return jax.tree_util.tree_map(lambda w, d: w - 0.1 * lr * d, params, g), None

        params, _ = jax.lax.scan(body, params, jnp.arange(t.steps))
        return t.val_loss(params)

    f = jax.jit(run)
    assert float(f(0)) == float(f(0))
    assert float(f(0)) < float(t.val_loss(t.init_params(jax.random.split(jax.random.PRNGKey(0))[0])))


def test_get_task_overrides():
    t = get_task("digits_mlp", steps=7, batch_size=5, hidden=6, seeds=3)
    assert (t.steps, t.batch_size, t.seeds) == (7, 5, 3)
    p = t.init_params(jax.random.PRNGKey(0))
    assert p["w1"].shape == (64, 6) and p["w2"].shape == (6, 10)
    assert t.train_batch(jax.random.PRNGKey(0))["x"].shape == (5, 64)
    q = get_task("quadratic", dim=5, noise=0.0)
    assert q.init_params(jax.random.PRNGKey(0))["x"].shape == (5,)
    lm = get_task("text_lm", n_chars=20_000, context=4, batch_size=3, n_val_windows=16)
    assert lm.train_batch(jax.random.PRNGKey(0)).shape == (3, 5)


def test_unknown_task_lists_known_names():
    with pytest.raises(KeyError) as info:
        get_task("no_such_task")
    msg = str(info.value)
    assert "no_such_task" in msg
    for n in BUILTIN:
        assert n in msg


def test_user_defined_task_registers_and_works():
    name = "test_user_linear_regression"

    @register(name)
    class LinearRegression(Task):
        def __init__(self, dim: int = 3, steps: int = 20, seeds: int = 2):
            self.dim, self.steps, self.seeds, self.batch_size = dim, steps, seeds, 8
            self.w_true = jnp.arange(1, dim + 1, dtype=jnp.float32)

        def init_params(self, key):
            return {"w": jnp.zeros((self.dim,), jnp.float32)}

        def train_batch(self, key):
            x = jax.random.normal(key, (self.batch_size, self.dim))
            return x, x @ self.w_true

        def loss(self, params, batch):
            x, y = batch
            return jnp.mean((x @ params["w"] - y) ** 2)

        def val_loss(self, params):
            return jnp.sum((params["w"] - self.w_true) ** 2) + 1e-6

    try:
        assert name in task_names()
        t = get_task(name, dim=4)
        assert t.name == name and t.dim == 4 and t.steps == 20
        p = t.init_params(jax.random.PRNGKey(0))
        v0 = float(t.val_loss(p))
        for s in range(t.steps):
            g = jax.grad(t.loss)(p, t.train_batch(jax.random.PRNGKey(s)))
            p = jax.tree_util.tree_map(lambda w, d: w - 0.1 * d, p, g)
        assert float(t.val_loss(p)) < v0
        assert t.metrics(p) == {} and float(t.lr_schedule(0, 10)) == 1.0
        with pytest.raises(ValueError):
            register(name)(LinearRegression)
    finally:
        tasks_base._REGISTRY.pop(name, None)


# --- fitness ----------------------------------------------------------------------------------
def test_aggregate_mean_and_stderr():
    a = fitness.aggregate([1.0, 2.0, 3.0, 4.0])
    assert a.mean == pytest.approx(2.5)
    assert a.stderr == pytest.approx(np.std([1, 2, 3, 4], ddof=1) / 2.0)
    assert (a.any_diverged, a.all_diverged, a.n_diverged) == (False, False, 0)
    one = fitness.aggregate([0.7], [False])
    assert one.mean == pytest.approx(0.7) and one.stderr == 0.0


def test_aggregate_diverged_seed_gives_worst_value():
    a = fitness.aggregate([0.1, 0.2, 0.3], [False, True, False])
    assert a.mean == float("inf") and a.stderr == float("inf")
    assert a.any_diverged and not a.all_diverged and a.n_diverged == 1
    b = fitness.aggregate([0.1, 0.2], [True, True])
    assert b.mean == float("inf") and b.any_diverged and b.all_diverged
    c = fitness.aggregate([0.1, float("nan"), 0.3])  # a non-finite loss counts as diverged
    assert c.mean == float("inf") and c.any_diverged and c.n_diverged == 1
    d = fitness.aggregate([0.1, float("inf")], [False, False])
    assert d.mean == float("inf") and d.n_diverged == 1
    assert fitness.aggregate([0.1, 0.2]).mean < c.mean
    with pytest.raises(ValueError):
        fitness.aggregate([0.1, 0.2], [False])
    with pytest.raises(ValueError):
        fitness.aggregate([])


def test_is_diverged():
    assert not fitness.is_diverged(0.5, 3.0, 1e3)
    assert fitness.is_diverged(float("nan"), 3.0, 1e3)
    assert fitness.is_diverged(float("inf"), 3.0, 1e3)
    assert fitness.is_diverged(-float("inf"), 3.0, 1e3)
    assert fitness.is_diverged(0.5, float("nan"), 1e3)
    assert fitness.is_diverged(0.5, float("inf"), 1e3)
    # blown-up weights with a perfect-looking loss are still diverged
    assert fitness.is_diverged(0.0, 5e4, 1e3)
    assert not fitness.is_diverged(0.0, 999.0, 1e3)
    # works on jax / numpy scalars
    assert fitness.is_diverged(jnp.float32(jnp.nan), jnp.float32(1.0), 1e3)
    assert not fitness.is_diverged(np.float32(0.3), jnp.float32(1.0), 1e3)


def test_normalize():
    assert fitness.normalize(0.5, 2.0) == pytest.approx(0.25)
    assert fitness.normalize(2.0, 2.0) == pytest.approx(1.0)
    assert fitness.normalize(float("inf"), 2.0) == float("inf")
    assert fitness.normalize(float("nan"), 2.0) == float("inf")
    for bad in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError):
            fitness.normalize(1.0, bad)


@pytest.mark.parametrize("name", BUILTIN)
def test_blown_up_run_is_flagged(name):
    """A huge update makes the run diverge by the task's own max_abs_weight."""
    t = small_task(name)
    p = t.init_params(jax.random.PRNGKey(0))
    p = jax.tree_util.tree_map(lambda w: w + 10.0 * t.max_abs_weight, p)
    wmax = max(float(jnp.max(jnp.abs(leaf))) for leaf in leaves(p))
    assert fitness.is_diverged(t.val_loss(p), wmax, t.max_abs_weight)

"""The Lion-K library and its recognition (``simplify/lion_k.py``; Chen, Liang, Liu, Liu 2023),
and exported Muon against ``optax.contrib.muon``."""

import importlib.util

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from optevo.dsl import parse, update_fn
from optevo.dsl.library import example_program, library_dir, library_program
from optevo.search.cli import main
from optevo.simplify.lion_k import NotLionK, recognize

MEMBERS = {"lion": "L1", "momentum_wd": "half_sq_L2", "normalized_momentum": "L2_leaf",
           "huber_lion": "huber", "muon": "nuclear"}


@pytest.mark.parametrize("name", sorted(MEMBERS))
def test_library_member_is_recognised(name):
    text = (library_dir() / f"{name}.py").read_text().lower()
    for word in ("k(x) = ||x||_1" if name == "lion" else "k(x)", "k*(y)",
                 "regulariser" if name == "momentum_wd" else "1/lambda"):
        assert word in text, f"{name}.py's comment names K, K* and the constraint"
    lk = recognize(library_program(name))
    assert lk.member.key == MEMBERS[name]
    assert lk.uses_lr and lk.gradient == "g" and lk.slot == "m"


def test_lion_settings():
    lk = recognize(library_program("lion"))
    assert (lk.b1, lk.b2) == pytest.approx((0.9, 0.99))
    assert lk.lam == pytest.approx(0.01) and lk.scale == pytest.approx(1e-4)
    assert lk.bound == pytest.approx(100.0)
    assert any("||w||_inf <= 1/lambda = 100" in line for line in lk.lines())


def test_member_settings():
    muon = recognize(library_program("muon"))
    assert (muon.b1, muon.b2, muon.lam, muon.scale) == pytest.approx((0.95, 0.95, 0.01, 0.02))
    assert any("||W||_op <= 1/lambda = 100" in line for line in muon.lines())
    huber = recognize(library_program("huber_lion"))
    assert huber.k == pytest.approx(1000.0) and huber.lam == pytest.approx(0.01)
    wd = recognize(library_program("momentum_wd"))
    assert wd.lam == pytest.approx(5e-4) and not wd.member.constraint


def test_raw_search_output_is_lion_through_the_simplifier():
    lk = recognize(example_program("raw_search_output"))
    assert lk.member.key == "L1" and lk.member.optimizer == "Lion"
    assert lk.slot == "v" and lk.gradient == "arcsin(clip(g, lr))"
    assert lk.b1 == pytest.approx(0.9) and lk.b2 == pytest.approx(0.99822, rel=1e-4)
    assert lk.lam == pytest.approx(0.4602, rel=1e-3)


def test_sgd_style_momentum_and_nesterov():
    """optax.sgd's trace g + 0.9 m is 10 x an average: Lion-K with b2 = 0.9; Nesterov's
    look-ahead is interp(g, m, 0.9^2)."""
    mom, nest = recognize(library_program("momentum")), recognize(library_program("nesterov"))
    assert (mom.b1, mom.b2, mom.scale, mom.lam) == pytest.approx((0.9, 0.9, 0.1, 0.0))
    assert (nest.b1, nest.b2) == pytest.approx((0.81, 0.9))
    sgd = recognize(library_program("sgd"))
    assert sgd.b2 is None and sgd.b1 == 0 and sgd.member.key == "half_sq_L2"


@pytest.mark.parametrize("name,reason", [
    ("adamw", "two live state slots"), ("rmsprop", "the update has a term"),
    ("powersign", "the update has a term")])
def test_not_lion_k(name, reason):
    with pytest.raises(NotLionK, match=reason) as e:
        recognize(library_program(name))
    assert str(e.value).startswith("not a Lion-K program: ") and "\n" not in str(e.value)


@pytest.mark.parametrize("body,reason", [
    ("  c = interp(g, m, 0.9)\n  d = tanh(c)\n  update = d * lr\n  m = interp(g, m, 0.99)\n",
     "not the gradient of a known K"),
    ("  c = interp(g, m, 0.9)\n  d = sign(c)\n  e = w * -0.1\n  d = d + e\n"
     "  update = d * lr\n  m = interp(g, m, 0.99)\n", "grows the weights"),
    ("  c = interp(g, m, 0.9)\n  d = sign(c)\n  update = d * lr\n  m = interp(g, m, 1.5)\n",
     "is not an average"),
    ("  q = exp(g)\n  c = interp(q, m, 0.9)\n  d = sign(c)\n  update = d * lr\n"
     "  m = interp(q, m, 0.99)\n", r"the gradient enters as exp\(g\)"),
])
def test_what_differs_is_named(body, reason):
    with pytest.raises(NotLionK, match=reason):
        recognize(parse(f"def train(w, g, m, v, lr):\n{body}  return update, m, v\n"))


def test_with_weight_decay_rewrites_lambda():
    lk = recognize(library_program("lion"))
    p = lk.with_weight_decay(0.5)
    assert recognize(p).lam == pytest.approx(0.5)
    rng = np.random.default_rng(0)
    w, g = ({"a": rng.standard_normal((3, 2)).astype(np.float32)} for _ in range(2))
    z = {"a": np.zeros((3, 2), np.float32)}
    u0 = update_fn(lk.program)(w, g, z, z, 2.0)[0]["a"]
    u1 = update_fn(p)(w, g, z, z, 2.0)[0]["a"]
    np.testing.assert_allclose(u1 - u0, 1e-4 * 2.0 * (0.5 - 0.01) * w["a"], rtol=1e-4)


# --- exported Muon == optax.contrib.muon --------------------------------------------------------

def _matrix_task():
    """Least squares through two matrices (all parameters 2-D, rows >= columns, so optax's
    width scale sqrt(max(1, cols / rows)) is 1 and it gives no leaf to AdamW), with a target
    large enough that 300 steps at lr 0.02 stay far from the optimum (near it, Muon's
    unit-size steps oscillate and any rounding difference grows chaotically)."""
    k = jax.random.split(jax.random.PRNGKey(0), 5)
    x = jax.random.normal(k[0], (64, 8))
    y = x @ jax.random.normal(k[1], (8, 4)) @ jax.random.normal(k[2], (4, 4)) * 10.0
    params = {"a": jax.random.normal(k[3], (8, 6)) * 0.3,
              "b": jax.random.normal(k[4], (6, 4)) * 0.3}
    return params, lambda p: jnp.mean((x @ p["a"] @ p["b"] - y) ** 2)


def _train(opt, params, loss, steps=300):
    @jax.jit
    def run(p):
        def body(c, _):
            p, s = c
            value, g = jax.value_and_grad(loss)(p)
            u, s = opt.update(g, s, p)
            return (optax.apply_updates(p, u), s), value
        return jax.lax.scan(body, (p, opt.init(p)), None, length=steps)[1]
    return np.asarray(run(params))


def test_exported_muon_equals_optax_contrib_muon(tmp_path):
    """`optevo export configs/programs/muon.py --format optax` trains like
    optax.contrib.muon(learning_rate=0.02, beta=0.95, weight_decay=0.01, nesterov=False)
    (ns_coeffs (3.4445, -4.7750, 2.0315), 5 steps, eps 1e-8, frobenius preconditioning:
    the defaults) to rtol 1e-5 over 300 steps."""
    out = tmp_path / "muon_export.py"
    assert main(["export", str(library_dir() / "muon.py"), "--format", "optax",
                 "-o", str(out)]) == 0
    spec = importlib.util.spec_from_file_location("muon_export", out)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    params, loss = _matrix_task()
    ours = _train(mod.discovered(learning_rate=0.02), params, loss)  # optax units: lr * 0.02
    ref = _train(optax.contrib.muon(learning_rate=0.02, beta=0.95, weight_decay=0.01,
                                    nesterov=False), params, loss)
    assert ref[-1] < 0.75 * ref[0]  # it trains
    np.testing.assert_allclose(ours, ref, rtol=1e-5)
    other = _train(optax.contrib.muon(learning_rate=0.02, beta=0.9, weight_decay=0.01,
                                      nesterov=False), params, loss)
    assert not np.allclose(other, ref, rtol=1e-5)  # the comparison can fail

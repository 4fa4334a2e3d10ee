"""Decay sites (``optevo.dsl.decay``): the constants a tuner scales on the weight-decay axis,
and decoupled decay for a program without one."""

import numpy as np
import pytest

from optevo.dsl import parse
from optevo.dsl.canon import program_hash
from optevo.dsl.decay import (DECOUPLED, decay_sites, scale_decay, tunable_decay,
                              with_decoupled_decay)
from optevo.dsl.execute import run
from optevo.dsl.library import library_program


def P(body: str):
    return parse("def train(w, g, m, v, lr):\n" + body + "  return update, m, v\n")


def site_text(p):
    return [p.stmts[i].text() for i, _ in decay_sites(p)]


def test_w_times_c_added_to_the_update():
    assert site_text(library_program("adam_style")) == ["wd = w * 0.01"]
    assert site_text(library_program("lion")) == ["wd = w * 0.01"]


def test_an_odd_function_of_w_times_c():
    p = P("  a = sinh(w)\n  b = a * 0.958\n  u = g + b\n  update = u * lr\n")
    assert site_text(p) == ["b = a * 0.958"]
    p = P("  a = tanh(w)\n  a = arctan(a)\n  b = 0.5 * a\n  update = g - b\n")
    assert site_text(p) == ["b = 0.5 * a"]


def test_a_decay_inside_the_lr_multiply():
    p = P("  b = w * 0.01\n  u = g + b\n  l = lr * 0.001\n  update = u * l\n")
    assert site_text(p) == ["b = w * 0.01"]
    p = P("  s = w * lr\n  b = s * 0.02\n  update = g + b\n")  # w * lr * c: still a term
    assert site_text(p) == ["b = s * 0.02"]


def test_no_site():
    for name in ("sgd", "momentum", "signum", "nesterov", "rmsprop"):
        assert decay_sites(library_program(name)) == [], name
    assert decay_sites(P("  wd = w * 0.5\n  update = g * lr\n")) == []  # dead
    assert decay_sites(P("  b = w * 0.01\n  c = g + b\n  u = sign(c)\n"
                         "  update = u * lr\n")) == []  # inside a sign: not a scale
    assert decay_sites(P("  b = w * 0.01\n  update = b * g\n")) == []  # times a tensor
    assert decay_sites(P("  c = cosh(w)\n  b = c * 0.1\n  update = g + b\n")) == []  # even
    assert decay_sites(P("  update = w - 1.0\n")) == []  # a shift, not a scale


def test_scaling_scales_the_sites_and_nothing_else():
    p = library_program("adam_style")
    assert program_hash(scale_decay(p, 1.0)) == program_hash(p)
    q = scale_decay(p, 3.0)
    changed = [(a.text(), b.text()) for a, b in zip(p.stmts, q.stmts) if a != b]
    assert changed == [("wd = w * 0.01", "wd = w * 0.03")]
    assert decay_sites(scale_decay(p, 0.0)) == decay_sites(p)  # off, still a site


def test_decoupled_decay_is_added_as_optax_adds_it():
    sgd = library_program("sgd")
    p, added = tunable_decay(sgd)
    assert added and len(decay_sites(p)) == 1
    assert tunable_decay(library_program("adamw")) == (library_program("adamw"), False)
    rng = np.random.default_rng(0)
    w, g = (rng.normal(size=(5,)).astype(np.float32) for _ in range(2))
    z = np.zeros(5, np.float32)
    u0 = np.asarray(run(sgd, w=w, g=g, m=z, v=z, lr=np.float32(0.5))[0])
    u1 = np.asarray(run(p, w=w, g=g, m=z, v=z, lr=np.float32(0.5))[0])
    np.testing.assert_allclose(u1 - u0, 0.5 * DECOUPLED * w, rtol=1e-2, atol=1e-9)  # float32
    off = with_decoupled_decay(sgd, 0.0)
    np.testing.assert_array_equal(np.asarray(run(off, w=w, g=g, m=z, v=z,
                                                 lr=np.float32(0.5))[0]), u0)


def test_funnel_candidates_are_all_tuned_on_decay():
    from optevo.search.funnel.candidates import optax_candidate, program_candidate
    from optevo.proxy_tasks.baselines.specs import parse_spec, spec_text
    c = program_candidate("sgd", library_program("sgd"), False, "test")
    assert c.has_wd and c.decay_added and decay_sites(parse(c.text))
    c = program_candidate("lion", library_program("lion"), False, "test")
    assert c.has_wd and not c.decay_added
    c = optax_candidate("h", spec_text("hyper_adam"), "test")
    assert c.has_wd and c.decay_added and parse_spec(c.text)[1]["weight_decay"] == 1e-4
    with pytest.raises(ValueError):
        optax_candidate("x", "optax:nope", "test")

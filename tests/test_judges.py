"""The planted checks' judges (optevo.simplify.judges) on the library programs and on
near-misses written to fool a reading of the text."""

import pytest

from optevo.dsl import parse
from optevo.dsl.library import library_program
from optevo.simplify.judges import (depends_on, normalization_kind, normalization_report,
                                    orthogonalize_kind, reads_kind, sign_behaviour_kind,
                                    sign_behaviour_report, sign_kind)


def _program(body: str):
    return parse("def train(w, g, m, v, lr):\n  " + body.replace("; ", "\n  ")
                 + "\n  update = update * lr\n  return update, m, v\n")


@pytest.mark.parametrize("name", ["adam_style", "adamw", "rmsprop", "adabelief"])
def test_the_adam_family_is_normalized_per_coordinate_by_a_running_estimate(name):
    assert normalization_kind(library_program(name)) == "adaptive"


@pytest.mark.parametrize("name, kind", [
    ("sgd", ""), ("momentum", ""), ("nesterov", ""),  # not scale-free
    ("signum", "sign"), ("lion", "sign"), ("signsgd", "sign"),  # no magnitude kept
    ("muon", "global"), ("normalized_momentum", "global"),  # scale shared by coordinates
])
def test_the_rest_of_the_library_is_not(name, kind):
    assert normalization_kind(library_program(name)) == kind


@pytest.mark.parametrize("body, kind", [
    # Adam written another way: the square root of the running mean square, by hand
    ("m = interp(g, m, 0.9); t = g * g; v = interp(t, v, 0.99); s = sqrt(v); update = m / s",
     "adaptive"),
    # normalized by the current gradient, not by a running estimate: unbounded steps
    ("m = interp(g, m, 0.9); a = abs(g); update = m / a", "current"),
    # a sign without the sign op: tanh of a huge multiple
    ("m = interp(g, m, 0.9); t = m / 1e-9; update = tanh(t)", "sign"),
    ("n = norm(g); update = g / n", "global"),
    # a running mean of g, not of its magnitude: it crosses zero, so its steps are unbounded
    ("m = interp(g, m, 0.9); v = interp(g, v, 0.99); update = m / v", "current"),
])
def test_near_misses_are_judged_by_behaviour(body, kind):
    assert normalization_kind(_program(body)) == kind, normalization_report(_program(body))


@pytest.mark.parametrize("path, kind", [
    ("configs/examples/planted/tanh_adam_growing.py", "adaptive"),  # found: Adam's shape
    ("configs/examples/planted/sin_adamax.py", ""),  # found: running |sin g|, not scale-free
    ("configs/examples/planted/arctan_norm.py", ""),  # found: running |arctan m|, bounded m
])
def test_what_the_adam_check_found_is_judged_by_behaviour(path, kind):
    from optevo.search.core.views import load_ref
    program = load_ref(path)[0]
    assert normalization_kind(program) == kind, normalization_report(program)


def test_a_program_that_overflows_on_the_probe_is_diverged():
    assert normalization_kind(_program("t = exp(g); t = exp(t); update = exp(t)")) == "diverged"


@pytest.mark.parametrize("name, kind", [("muon", "momentum"), ("adam_style", ""),
                                        ("signum", ""), ("lion", "")])
def test_the_muon_judge_on_the_library(name, kind):
    assert orthogonalize_kind(library_program(name)) == kind


@pytest.mark.parametrize("body, kind", [
    ("update = orthogonalize(g)", "gradient"),
    # orthogonalize of AdamW's direction reads the momentum: found
    ("m = interp(g, m, 0.9); t = square(g); v = interp(t, v, 0.999); s = sqrt(v); "
     "u = m / s; update = orthogonalize(u)", "momentum"),
    # interp(g, g, v) is g, whatever the text says
    ("t = interp(g, g, v); update = orthogonalize(t); v = square(g)", "gradient"),
    # an orthogonalize that does not feed the update
    ("m = interp(g, m, 0.9); t = orthogonalize(m); update = m * 1.0", ""),
])
def test_the_muon_judge_reads_what_the_argument_computes(body, kind):
    assert orthogonalize_kind(_program(body)) == kind


def test_sign_and_muon_judges_are_one_rule():
    p = library_program("signum")
    assert sign_kind(p) == reads_kind(p, "sign") == "momentum"


def test_reads_lr_by_behaviour():
    assert depends_on(library_program("adam_style"), "lr")
    # lr read, but through a sign: the step no longer depends on it
    assert not depends_on(parse("def train(w, g, m, v, lr):\n  m = interp(g, m, 0.9)\n"
                                "  t = m * lr\n  update = sign(t)\n  return update, m, v\n"),
                          "lr")
    assert not depends_on(parse("def train(w, g, m, v, lr):\n  update = sign(g)\n"
                                "  return update, m, v\n"), "lr")


SIZES = (6e-4, 0.027, 2.5)  # configs/planted.yaml's gradient sizes (smallest, median, largest)


@pytest.mark.parametrize("name, kind", [
    ("signum", "momentum"), ("lion", "momentum"),  # the targets
    ("huber_lion", ""),  # clip(1000 c, 1): linear where |c| < 1/1000, as at size 6e-4
    ("signsgd", "gradient"),  # a sign with no memory
    ("sgd", ""), ("momentum", ""), ("nesterov", ""), ("momentum_wd", ""),  # a continuum
    ("adam_style", ""), ("adamw", ""), ("rmsprop", ""), ("adabelief", ""),
    ("muon", ""), ("normalized_momentum", ""), ("addsign", ""), ("powersign", ""),
])
def test_the_sign_judge_on_the_library(name, kind):
    p = library_program(name)
    assert sign_behaviour_kind(p, SIZES) == kind, sign_behaviour_report(p, SIZES)


def test_a_soft_sign_counts_only_at_sizes_where_it_saturates():
    # Huber-Lion is a sign where |c| > 1/1000: at the task's two larger sizes and at 0.01
    assert sign_behaviour_kind(library_program("huber_lion"), (0.01,) + SIZES[1:]) == \
        "momentum"
    soft = _program("m = interp(g, m, 0.9); t = m * 1000.0; update = tanh(t)")
    assert sign_behaviour_kind(soft, (0.1, 1.0)) == "momentum"
    assert sign_behaviour_kind(soft, (1e-3, 0.1, 1.0)) == ""


@pytest.mark.parametrize("body, kind", [
    # a clipped momentum plus a box term read from w: a sign of momentum where |m| > c
    ("m = interp(g, m, 0.9); t = clip(m, 1e-6); d = w * 0.81; t = t / 1e-6; "
     "update = t + d", "momentum"),
    # the sign of the current gradient, written without the sign op
    ("t = g * 1e9; update = tanh(t)", "gradient"),
    # the sign pointing uphill
    ("m = interp(g, m, 0.9); t = sign(m); update = negative(t)", ""),
    # a sign of momentum whose size is a continuum (times |g|): not a sign
    ("m = interp(g, m, 0.9); t = sign(m); a = abs(g); update = t * a", ""),
    ("m = interp(g, m, 0.9); t = exp(g); t = exp(t); t = exp(t); s = sign(m); update = s * t",
     "diverged"),
])
def test_the_sign_judge_reads_behaviour_not_text(body, kind):
    p = _program(body)
    assert sign_behaviour_kind(p, SIZES) == kind, sign_behaviour_report(p, SIZES)


def test_the_judges_probe_at_the_lr_they_are_given():
    # the step size arctanh(1.5 lr) is NaN at lr = 1 and fine at the program's own lr, 0.5:
    # a running-mean-|g| normalization (AdaMax with a mean), as the Adam check's seed 4 found
    body = "s = lr * 1.5; s = arctanh(s); a = abs(g); v = interp(a, v, 0.99); " \
           "u = g / v; update = u * s"
    p = _program(body)
    assert normalization_kind(p) == "diverged"
    assert normalization_kind(p, lr=0.5) == "adaptive", normalization_report(p, lr=0.5)
    signum = _program("s = lr * 1.5; s = arctanh(s); m = interp(g, m, 0.9); t = sign(m); "
                      "update = t * s")
    assert sign_behaviour_kind(signum, SIZES) == "diverged"
    assert sign_behaviour_kind(signum, SIZES, lr=0.5) == "momentum"

"""The planted checks' judges (optevo.simplify.judges) on the library programs and on
near-misses written to fool a reading of the text."""

import pytest

from optevo.dsl import parse
from optevo.dsl.library import library_program
from optevo.simplify.judges import (depends_on, normalization_kind, normalization_report,
                                    orthogonalize_kind, reads_kind, sign_kind)


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

"""The native step (``optevo.proxy_tasks.native``, opt-in with ``OPTEVO_NATIVE=on``): the
same losses and divergence flags as the interpreter on every program it runs, the
interpreter for any other, and one-line errors where it cannot be used."""

import numpy as np
import pytest

from optevo.dsl import parse
from optevo.dsl.interpreter import encoded_form
from optevo.dsl.library import library, start_program
from optevo.dsl.random import random_program
from optevo.proxy_tasks import get_task, native
from optevo.proxy_tasks.engine import FastEngine
from optevo.search.cli import main

BLOW_UP = parse("def train(w, g, m, v, lr):\n  update = w * -3.0\n  return update, m, v\n")
# a statement overflows while the update stays finite (every coordinate: the run would
# train on without the finite check, which makes it diverge)
OVERFLOW = parse("def train(w, g, m, v, lr):\n  k = g * 0.0\n  k = k + 1e30\n  k = k * k\n"
                 "  c = g / k\n  update = g * lr\n  update = update + c\n"
                 "  return update, m, v\n")
# the same, the overflow read only through sign (a finite value), then dropped
SIGN_OF_BAD = parse("def train(w, g, m, v, lr):\n  k = g * 0.0\n  k = k + 1e30\n"
                    "  k = k * k\n  s = sign(k)\n  s = s * 0.0\n  update = g * lr\n"
                    "  update = update + s\n  return update, m, v\n")
# statements the step does not know: exp (not exact IEEE), norm (a reduction)
OTHERS = [parse("def train(w, g, m, v, lr):\n  e = exp(g)\n  update = e * lr\n"
                "  return update, m, v\n"),
          parse("def train(w, g, m, v, lr):\n  n = norm(g)\n  update = g / n\n"
                "  update = update * lr\n  return update, m, v\n")]


@pytest.fixture(scope="module")
def engines(tmp_path_factory, request):
    mp = pytest.MonkeyPatch()
    mp.setenv("OPTEVO_NATIVE_CACHE", str(tmp_path_factory.mktemp("native")))
    request.addfinalizer(mp.undo)
    task = get_task("digits_mlp", hidden=8, batch_size=16)
    return (FastEngine(task, steps=40, buckets=(16,), native_step=False),
            FastEngine(task, steps=40, buckets=(16,), native_step=True))


def random_native(engine, n, seed=0):
    rng, out = np.random.default_rng(seed), []
    while len(out) < n:
        p = random_program(rng, int(rng.integers(4, 24)))
        if 1 <= len(encoded_form(p).stmts) <= 16 and engine.runs_native(p):
            out.append(p)
    return out


def assert_same(got, want, programs):
    for p, a, b in zip(programs, got, want):
        np.testing.assert_array_equal(a.diverged, b.diverged, err_msg=p.text())
        np.testing.assert_allclose(a.losses, b.losses, rtol=1e-5, err_msg=p.text())


def test_native_runs_equal_the_interpreter(engines):
    interp, nat = engines
    lib = [p for p in library().values()
           if len(encoded_form(p).stmts) <= 16 and nat.runs_native(p)]
    assert start_program() in lib and len(lib) >= 8
    programs = lib + [BLOW_UP, OVERFLOW, SIGN_OF_BAD] + random_native(nat, 25)
    assert all(nat.runs_native(p) for p in programs)
    seeds, scales = [0, 5], np.array([1.0, 3.0], np.float32)
    got = nat.run(programs, seeds, scales)
    assert_same(got, interp.run(programs, seeds, scales), programs)
    for p in (BLOW_UP, OVERFLOW, SIGN_OF_BAD):
        assert got[programs.index(p)].diverged.all(), p.text()
    assert not got[0].diverged.any()


def test_other_programs_run_in_the_interpreter(engines):
    interp, nat = engines
    assert not any(nat.runs_native(p) for p in OTHERS)
    assert not interp.runs_native(start_program())  # off: never
    assert_same(nat.run(OTHERS, [1, 2]), interp.run(OTHERS, [1, 2]), OTHERS)


def test_the_switch_and_its_errors(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv(native.ENV, raising=False)
    assert native.wanted() is False
    monkeypatch.setenv(native.ENV, "ON")
    assert native.wanted() is True
    monkeypatch.setenv(native.ENV, "sometimes")
    with pytest.raises(native.NativeError, match="use on or off"):
        native.wanted()
    assert main(["eval", "lion", "--task", "quadratic", "--steps", "3", "--seeds", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "OPTEVO_NATIVE='sometimes'" in err, err
    # no compiler, a compiler that fails: one line each, and nothing left behind
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    with pytest.raises(native.NativeError, match="no C.. compiler") as e:
        native.build(tmp_path / "out" / "step.so")
    assert "\n" not in str(e.value)
    monkeypatch.setenv("CXX", "false")
    with pytest.raises(native.NativeError, match="building tiled_step.cc failed"):
        native.build(tmp_path / "out" / "step.so")
    assert list((tmp_path / "out").iterdir()) == []


def test_a_damaged_library_is_one_line_and_removed(monkeypatch, tmp_path):
    monkeypatch.setenv("OPTEVO_NATIVE_CACHE", str(tmp_path))
    monkeypatch.setattr(native, "_LOADED", [])  # as in a fresh process
    path = native.library_path()
    path.write_bytes(b"not a shared library")
    with pytest.raises(native.NativeError, match="cannot load") as e:
        native.load()
    assert "\n" not in str(e.value) and not path.exists()


def test_the_library_is_named_by_what_it_was_built_from(monkeypatch, tmp_path):
    a = native.library_path(str(tmp_path))
    assert a == native.library_path(str(tmp_path)) and a.parent == tmp_path
    monkeypatch.setenv("CXX", "clang++")
    assert native.library_path(str(tmp_path)) != a

"""``optevo analyze``: recognition on the command line, and the constraint over training."""

import re

import jax
import numpy as np
import pytest

from optevo.dsl.library import example_program, library_dir, library_program
from optevo.proxy_tasks import get_task
from optevo.search.cli import main
from optevo.search.cli.analyze import analyze
from optevo.simplify.lion_k_trace import Trace

RAW = str(library_dir().parent / "examples" / "raw_search_output.py")


def run(capsys, *argv):
    rc = main(["analyze", *argv])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def figures(out):
    m = re.search(r"lambda \* q\(w\): start ([0-9.e+-]+), end ([0-9.e+-]+)", out)
    return float(m.group(1)), float(m.group(2))


def test_lion(capsys):
    rc, out, _ = run(capsys, str(library_dir() / "lion.py"))
    assert rc == 0
    assert "Lion-K program: Lion, K = L1" in out
    assert "subject to ||w||_inf <= 1/lambda = 100" in out


def test_raw_search_output_is_lion(capsys):
    rc, out, _ = run(capsys, RAW)
    assert rc == 0 and "after the exact simplification" in out
    assert "Lion-K program: Lion, K = L1" in out and "G      = arcsin(clip(g, lr))" in out


def test_adamw_is_not_lion_k(capsys):
    rc, out, _ = run(capsys, "adamw")  # a library name works too
    lines = [x for x in out.splitlines() if x.startswith("not a Lion-K program")]
    assert rc == 1 and len(lines) == 1 and "two live state slots" in lines[0]


def test_quadratic_ends_inside(capsys, tmp_path):
    """The program as written: lambda |w|_inf starts and ends well inside the bound."""
    png = tmp_path / "lion.png"
    rc, out, _ = run(capsys, "lion", "--task", "quadratic", "--steps", "60", "--out", str(png))
    start, end = figures(out)
    assert rc == 0 and png.stat().st_size > 1000
    assert 0 < end <= 1.0 and 0 < start <= 1.0
    assert "inside the feasible set from the start" in out


def test_quadratic_two_phases(capsys, tmp_path):
    """lambda = 1 and a larger lr: lambda |w|_inf starts near 2.5, falls into the set and
    stays at or below 1 (to the 1% the decaying lr leaves above the bound)."""
    png = tmp_path / "lion2.png"
    rc, out, _ = run(capsys, "lion", "--task", "quadratic", "--weight-decay", "1",
                     "--lr-scale", "1000", "--steps", "150", "--out", str(png))
    start, end = figures(out)
    assert rc == 0 and png.exists()
    assert start > 2.0 and end <= 1.01
    assert "phase 1: outside until step" in out and "lambda set to 1" in out


def test_trace_entry_step():
    t = Trace(np.array([2.0, 1.5, 1.005, 0.9, 1.0]), 1.0, 1.0, 0.5)
    assert t.entered == 2
    assert Trace(np.array([0.5, 2.0]), 1.0, 1.0, 1.0).entered is None
    assert Trace(np.array([0.5, 0.6]), 1.0, 1.0, 1.0).entered == 0


def test_library_api_and_muon_spectral_norm():
    """Muon on a task with matrices: the traced quantity is the largest spectral norm."""
    task = get_task("digits_mlp", hidden=8, batch_size=16)
    res = analyze(library_program("muon"), task, steps=20, weight_decay=10.0, lr_scale=5.0)
    assert res.lion_k.member.key == "nuclear" and res.lion_k.lam == 10.0
    assert len(res.trace.values) == 21 and np.all(np.isfinite(res.trace.values))
    w0 = jax.tree.leaves(task.init_params(jax.random.split(jax.random.PRNGKey(0))[0]))
    spectral = max(np.linalg.norm(np.asarray(x), 2) if x.ndim == 2 else np.abs(x).max()
                   for x in w0)
    assert res.trace.values[0] == pytest.approx(10.0 * spectral, rel=1e-5)
    assert analyze(example_program("raw_search_output")).lion_k.member.key == "L1"
    assert analyze(library_program("adamw")).lion_k is None


@pytest.mark.parametrize("argv,msg", [
    (["lion", "--lr-scale", "0"], "--lr-scale must be a positive number"),
    (["lion", "--weight-decay", "-1"], "--weight-decay must be >= 0"),
    (["no_such_program"], "expected a library program"),
])
def test_bad_arguments(capsys, argv, msg):
    rc, _, err = run(capsys, *argv)
    assert rc == 2 and msg in err

"""The library of known optimizers in configs/programs: every file is a valid program."""

from pathlib import Path

import jax
import jax.numpy as jnp
import pytest

from optevo.dsl import INPUTS, check, load, parse, update_fn

ROOT = Path(__file__).resolve().parents[1]
PROGRAMS = ROOT / "configs" / "programs"
FILES = sorted(PROGRAMS.glob("*.py"))

EXPECTED = {"sgd", "momentum", "nesterov", "adam_style", "adamw", "lion", "signsgd", "signum",
            "powersign", "addsign", "rmsprop", "adabelief"}


def test_library_is_complete():
    assert EXPECTED <= {f.stem for f in FILES}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_parses_round_trips_and_checks(path):
    text = path.read_text()
    assert text.lstrip().startswith("#"), "each file starts with a comment citing its source"
    assert "def train(w, g, m, v, lr):" in text
    program = load(path)
    kinds = check(program)
    assert len(kinds) == len(program.stmts) > 0
    assert program.returns == ("update", "m", "v")
    assert parse(program.text()) == program
    assert parse(program.text(), filename=str(path)).text() == program.text()
    # the file's statements are already in canonical form (two-space indent, canonical text)
    body = [line for line in text.splitlines() if line.startswith("  ")]
    assert body == program.text().splitlines()[1:], "the file is in canonical text form"


def _tree(key):
    k1, k2, k3 = jax.random.split(key, 3)
    return {"dense": {"kernel": jax.random.normal(k1, (5, 3)), "bias": jax.random.normal(k2, (3,))},
            "scale": jax.random.normal(k3, ())}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_update_is_finite_over_a_few_steps(path):
    f = jax.jit(update_fn(load(path)))
    w = _tree(jax.random.PRNGKey(0))
    m = v = jax.tree.map(jnp.zeros_like, w)
    moved = False
    for t in range(5):
        g = _tree(jax.random.PRNGKey(t + 1))
        update, m, v = f(w, g, m, v, 1.0)
        for x in (update, m, v):
            assert jax.tree.structure(x) == jax.tree.structure(w)
            assert all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in jax.tree.leaves(x))
        moved |= any(bool(jnp.any(leaf != 0)) for leaf in jax.tree.leaves(update))
        # programs scale lr themselves: steps are small relative to weights of order 1
        assert max(float(jnp.max(jnp.abs(leaf))) for leaf in jax.tree.leaves(update)) < 1.0
        w = jax.tree.map(lambda a, b: a - b, w, update)
    assert moved


# The paper's programs, verbatim from the shared reference (programs/adamw.py, lion.py).
PAPER_ADAMW = """
def train(w, g, m, v, lr):
  g2 = square(g)
  m = interp(g, m, 0.9)
  v = interp(g2, v, 0.999)
  sqrt_v = sqrt(v)
  update = m / sqrt_v
  wd = w * 0.01
  update = update + wd
  lr = lr * 0.001
  update = update * lr
  return update, m, v
"""

PAPER_LION = """
def train(w, g, m, v, lr):
  update = interp(g, m, 0.9)
  update = sign(update)
  m = interp(g, m, 0.99)
  wd = w * 0.01
  update = update + wd
  lr = lr * 0.0001
  update = update * lr
  return update, m, v
"""


@pytest.mark.parametrize("file,text", [("adam_style.py", PAPER_ADAMW), ("lion.py", PAPER_LION)])
def test_matches_the_papers_programs(file, text):
    """adam_style.py is the paper's start program; lion.py is the paper's Lion."""
    assert load(PROGRAMS / file) == parse(text)


def test_inputs_are_the_papers():
    assert INPUTS == ("w", "g", "m", "v", "lr")


def test_dsl_load_takes_library_names_and_files(tmp_path):
    """``optevo.dsl.load`` names programs as the CLI does (issue #22): a library name or a
    file; a file's errors still name the file, an unknown name lists the library."""
    from optevo.dsl import ProgramError
    from optevo.dsl.library import library_program
    assert load("lion") == library_program("lion")
    path = tmp_path / "p.py"
    path.write_text(library_program("sgd").text())
    assert load(path) == library_program("sgd") and load(str(path)) == load(path)
    with pytest.raises(ProgramError, match="did you mean lion"):
        load("lionn")
    with pytest.raises(ProgramError, match="cannot read file"):
        load(tmp_path / "missing.py")

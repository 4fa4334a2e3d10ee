"""Long programs: every walk over a program's expression DAG iterates (issue #19).

A search may produce programs of up to the largest ``search.max_length`` the config allows
(``MAX``; decoupled decay adds ``decay.ADDED`` statements), whose DAG can be one chain as
deep as the program is long. Before, the simplifier (``_product``, the rebuild of a
factored product), the Lion-K reader and ``Graph.pyfloat`` recursed once per link and died
with a RecursionError traceback at about 900 statements. Here chains of ``N`` live
statements (900, 2000 and ``MAX``), written as a user would write them, go through parse,
hash, canonical form, the exact simplifier, ``analyze``, decay, encoding, fingerprint and
export, and the CLI commands finish without a traceback.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from optevo.dsl import parse
from optevo.dsl.canon import canonical_form, program_hash
from optevo.dsl.codegen import to_module_source
from optevo.dsl.decay import ADDED, tunable_decay
from optevo.dsl.fingerprint import fingerprint
from optevo.dsl.interpreter import EXTRA_ROWS, Interpreter
from optevo.dsl.liveness import strip_dead
from optevo.search.core.config import SearchConfig
from optevo.simplify.exact import simplify_exact
from optevo.simplify.lion_k_trace import analyze

MAX = next(m.le for m in SearchConfig.model_fields["max_length"].metadata
           if getattr(m, "le", None) is not None)

MIXED = ("x{i} = x{p} - g", "x{i} = interp(g, x{p}, 0.9)", "x{i} = x{p} / 3.0",
         "x{i} = -x{p}", "x{i} = x{p} * g", "x{i} = interp(x{p}, m, 0.5)")
# shape -> (the chain's statements, cycled; the statements after it, reading x{k})
SHAPES = {
    "mul": (("x{i} = x{p} * g",), ("update = x{k} * lr",)),
    "factor": (("x{i} = x{p} * g",), ("y = x{k} * w", "z = m * w", "update = y + z")),
    "lion": (("x{i} = x{p} + g",), ("d = sign(x{k})", "update = d * lr",
                                    "m = interp(g, m, 0.99)")),
    "mixed": (MIXED, ("y = sin(m)", "z = max(y, w)", "u = x{k} + z", "update = u * lr")),
}


def chain(n: int, shape: str) -> str:
    """A program of ``n`` live statements: ``x1 = g + m``, a chain ``x2 .. xk`` each reading
    the one before, then the shape's tail."""
    steps, tail = SHAPES[shape]
    k = n - len(tail)
    lines = ["def train(w, g, m, v, lr):", "  x1 = g + m"]
    lines += ["  " + steps[i % len(steps)].format(i=i, p=i - 1) for i in range(2, k + 1)]
    lines += ["  " + t.format(k=k) for t in tail]
    lines.append("  return update, m, v")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("n", [900, 2000, MAX])
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_long_chain_parses_hashes_simplifies_and_exports(shape, n):
    program = parse(chain(n, shape), "chain.py")
    assert len(program.stmts) == len(strip_dead(program).stmts) == n
    digest = program_hash(program)
    assert program_hash(canonical_form(program)) == digest
    for strict in (True, False):
        simple = simplify_exact(program, strict=strict)
        assert program_hash(simplify_exact(simple, strict=strict)) == program_hash(simple)
    result = analyze(program)  # recognition only: nothing trains
    if shape == "lion":  # a deep but linear c = (k - 1) g + m: Lion, read through the chain
        assert result.lion_k is not None and result.lion_k.member.key == "L1", result.reason
    else:
        assert result.lion_k is None and result.reason.startswith("not a Lion-K program")
    decayed, added = tunable_decay(program)
    assert added and len(decayed.stmts) == n + ADDED
    compile(to_module_source(program), "exported.py", "exec")


def test_longest_search_program_encodes_and_fingerprints():
    """The engines' and the fingerprint's paths take the longest program a search makes."""
    program, _ = tunable_decay(parse(chain(MAX, "mixed")))
    code = Interpreter([(6, 4), (8,)], MAX + ADDED).encode(program)
    assert code.rows.shape[0] == MAX + ADDED + EXTRA_ROWS  # the moves after the statements
    assert len(fingerprint(program, steps=1)) == 16


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "optevo.search.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("shape,commands", [
    ("factor", (("simplify", "--exact-only"), ("export", "--format", "optax", "-o", "out.py"))),
    ("mul", (("analyze",),)),
])
def test_cli_on_the_longest_program(tmp_path, shape, commands):
    (tmp_path / "chain.py").write_text(chain(MAX, shape))
    for command in commands:
        r = _cli(command[0], "chain.py", *command[1:], cwd=tmp_path)
        assert "Traceback" not in r.stderr and "Error" not in r.stderr, r.stderr[-2000:]
        assert r.returncode == (1 if command[0] == "analyze" else 0), r.stderr[-2000:]
    if any(c[0] == "export" for c in commands):
        compile((tmp_path / "out.py").read_text(), "out.py", "exec")

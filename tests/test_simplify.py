"""The simplifier (optevo.simplify): exact passes checked by running programs on random inputs
over several steps (library programs, the paper's raw search output, random mutants), the
fitness-guided passes on digits_mlp, and the ``optevo simplify`` command."""

import argparse
import json
import re

import jax.numpy as jnp
import numpy as np
import pytest

from optevo.dsl.library import example_program

import optevo.dsl.ops as ops
from optevo.dsl import Program, ProgramError, Stmt, check, parse, run
from optevo.dsl.canon import program_hash
from optevo.dsl.library import library
from optevo.dsl.liveness import live_state
from optevo.dsl.random import defined_before, random_const, random_program
from optevo.search.core.mutations import MUTATIONS, NoSite, default_weights
from optevo.simplify import simplify_exact, simplify_exact_report, simplify_guided
from optevo.simplify.guided import round_sig, significant_digits

RAW = example_program("raw_search_output").text()  # the paper's raw winner
HEAD = "def train(w, g, m, v, lr):\n"
SHAPES = [(6, 5), (7,)]


# --- running programs: updates and live state per step, from m = v = 0, w <- w - update -----

def _inputs(seed, steps, shapes=SHAPES, lr_max=1.5):
    rng = np.random.default_rng(seed)
    tree = lambda s: [jnp.asarray(rng.standard_normal(sh) * s, jnp.float32) for sh in shapes]
    return (tree(1.0), [tree(float(np.exp(rng.uniform(-3, 1)))) for _ in range(steps)],
            [float(np.float32(x)) for x in rng.uniform(0.05, lr_max, steps)])


def _trajectory(p, inputs):
    w, gs, lrs = inputs
    m = v = [jnp.zeros_like(x) for x in w]
    bc = (lambda x: x if isinstance(x, list) else
          [jnp.broadcast_to(jnp.asarray(x, jnp.float32), leaf.shape) for leaf in w])
    slots = [0] + [1 + i for i, s in enumerate("mv") if s in live_state(p)]
    out = []
    for g, lr in zip(gs, lrs):
        res = [bc(x) for x in run(p, w, g, m, v, jnp.float32(lr))]
        u, m, v = res
        w = [a - b for a, b in zip(w, u)]
        out.append([np.concatenate([np.asarray(x).ravel() for x in res[j]]) for j in slots])
    return out


def _bitwise(a, b):
    na = np.isnan(a)
    return np.array_equal(na, np.isnan(b)) and np.array_equal(a[~na], b[~na]) and \
        np.array_equal(np.signbit(a[~na]), np.signbit(b[~na]))


def _close(a, b, rtol, atol_rel=1e-6):
    fin = np.isfinite(a)
    if not np.array_equal(fin, np.isfinite(b)) or \
            not np.array_equal(a[~fin], b[~fin], equal_nan=True):
        return False
    scale = np.abs(a[fin]).max() if fin.any() else 0.0
    return bool(np.all(np.abs(a[fin] - b[fin]) <= rtol * np.abs(a[fin]) + atol_rel * scale))


def _same(p, q, inputs, close=None):
    """q computes what p computes: bitwise, or ``close(a, b)`` per output and step."""
    assert live_state(q) <= live_state(p)
    for sa, sb in zip(_trajectory(p, inputs), _trajectory(q, inputs)):
        for a, b in zip(sa, sb):
            if not (_bitwise(a, b) if close is None else close(a, b)):
                return False
    return True


# --- the paper's raw program --------------------------------------------------------------

def test_raw_exact_passes_give_at_most_9_statements_computing_the_same(monkeypatch):
    raw = parse(RAW)
    p, steps = simplify_exact_report(raw)
    assert len(p.stmts) <= 9, p.text()
    assert [s.op for s in p.stmts].count("sign") == 1 and live_state(p) == {"v"}
    assert any("dead" in s for s in steps) and any("sign" in s for s in steps)
    assert any("merge interp" in s for s in steps)
    inputs = _inputs(0, 100, [(40, 25), (30,)], lr_max=1.0)  # lr <= 1: arcsin(clip(g, lr))
    strict = simplify_exact(raw, strict=True)
    assert len(strict.stmts) == 12 and _same(raw, strict, inputs)

    def compare():
        ta, tb = _trajectory(raw, inputs), _trajectory(p, inputs)
        pairs = [(a, b) for sa, sb in zip(ta, tb) for a, b in zip(sa, sb)]
        worst = max(float(np.max(np.abs(a - b)) / np.max(np.abs(a))) for a, b in pairs)
        off = sum(int(np.sum(np.abs(a - b) > 1e-4 * np.max(np.abs(a)))) for a, b in pairs)
        return pairs, worst, off / sum(a.size for a, _ in pairs)

    # as the engines compute: m / (|m| + 1e-8) is sign(m) but where |m| is tiny
    _, worst, frac = compare()
    print(f"\nraw -> {len(p.stmts)} statements; 100 steps: max |difference| / max |value| "
          f"{worst:.1e}, share of elements off by more than 1e-4 of it {frac:.1e}")
    assert frac < 1e-3
    # without the epsilon, only rounding is left (the raw v = interp(g, interp(g, v, 0.9),
    # 1.109) itself cancels: (1 - 1.109) g + 1.109 * 0.1 g loses ~6 bits per step)
    monkeypatch.setattr(ops, "EPS", 1e-30)
    pairs, worst, frac = compare()
    print(f"with the division epsilon at 1e-30: {worst:.1e}, share {frac:.1e}")
    assert 0 < worst < 1e-4 and all(_close(a, b, 1e-3, 1e-4) for a, b in pairs)


# --- library programs and rules -----------------------------------------------------------

@pytest.mark.parametrize("name", sorted(library()))
def test_library_programs(name):
    p = library()[name]
    inputs = _inputs(1, 20)
    strict, loose = simplify_exact(p, strict=True), simplify_exact(p)
    for q in (strict, loose):
        check(q)
        assert len(q.stmts) <= len(p.stmts)
        assert simplify_exact(q, strict=q is strict) == q  # idempotent
    assert _same(p, strict, inputs)
    assert _same(p, loose, inputs, lambda a, b: _close(a, b, 1e-5))


def _prog(body, returns="update, m, v"):
    return parse(HEAD + "".join(f"  {line.strip()}\n" for line in body.split(";")) +
                 f"  return {returns}\n")


@pytest.mark.parametrize("body,strict,expect", [
    ("update = g * 1.0", True, 0), ("update = 1.0 * g", True, 0),
    ("update = g - 0.0", True, 0), ("update = g + -0.0", True, 0),
    ("update = g + 0.0", True, 1), ("update = g + 0.0", False, 0),
    ("update = g / 1.0", True, 0), ("t = 2.0 / 1.0; update = g * t", False, 2),
    ("t = 0.1 / 3.0; t = t / 1.0; update = g * t", True, 3),  # t is a double: kept
    ("t = 0.1 / 3.0; t = negative(t); t = negative(t); update = g * t", True, 4),
    ("t = negative(g); update = negative(t)", True, 0),
    ("t = sign(g); update = sign(t)", True, 1), ("t = negative(g); update = abs(t)", True, 1),
    ("t = 0.5 * 0.25; update = g * t", True, 1),  # folded: 0.125 exactly
    ("t = 0.1 * 3.0; update = g * t", True, 1),  # folded: float32(0.1) * 3.0 rounds alike
    ("t = 0.1 * 0.1; update = g * t", True, 2),  # float32(0.1) ** 2 rounds apart: kept
    ("t = sqrt(4.0); update = g * t", True, 2),  # sqrt runs in XLA float32: kept
    ("update = 0.5 * 0.5", True, 1),  # a constant output is written `0.25 * 1.0`
    ("a = g * lr; b = lr * g; update = a + b", True, 2),  # duplicate merged
    ("t = g * g; t = sqrt(t); update = g / t", False, 1),
    ("t = square(g); t = sqrt(t); update = g / t", False, 1),
    ("t = abs(g); update = g / t", False, 1), ("t = abs(g); update = g / t", True, 2),
    ("t = w * lr; a = abs(w); update = t / a", False, 2),
    ("a = interp(g, m, 0.9); m = interp(g, a, 0.5); update = m * lr", False, 2),
    ("a = interp(g, m, 0.9); m = interp(a, m, 0.5); update = m * lr", False, 2),
    ("a = g * 0.5; update = a * 3.0", False, 1), ("a = g * 0.5; update = a * 3.0", True, 2),
    ("a = g * lr; b = lr * w; update = a + b", False, 2),
    ("a = g * lr; b = lr * 2.0; b = b * w; update = a - b", False, 3),
    # outputs are named after their slot only where no later statement reads that input
    ("nv = interp(g, v, 0.9); update = nv + v | update, m, nv", True, 2),
    ("u = v * lr; v = interp(g, v, 0.9) | v, u, v", True, 1),  # m slot dead
    # properties read from the op rows: idempotent, involution, absorbs
    ("t = max(g, g); update = t * lr", True, 1), ("t = min(lr, lr); update = g * t", True, 1),
    ("t = max(0.9, 0.9); update = g * t", True, 2),  # a float32 max of a double: kept
    ("c = 0.1; t = negative(c); t = negative(t); update = g * t", True, 3),  # likewise
    ("t = abs(g); update = sqrt(t)", True, 1), ("t = negative(g); update = square(t)", True, 1),
    ("t = abs(g); t = negative(t); t = log(t); update = t * lr", True, 2),
    # named constants are their numbers; a constant output is a literal statement
    ("c = 0.5; update = g * c", True, 1), ("c = 1.0; update = g * c", True, 0),
    ("eps = 1e-8; t = abs(g); t = t + eps; update = g / t", True, 3),
    ("update = 0.5", True, 1), ("c = 0.5; update = c * c", True, 1),
])
def test_rules(body, strict, expect, monkeypatch):
    p = _prog(*body.split(" | "))
    q = simplify_exact(p, strict=strict)
    check(q)
    assert len(q.stmts) == expect, q.text()
    assert simplify_exact(q, strict=strict) == q
    inputs = _inputs(2, 4)
    if strict:
        assert _same(p, q, inputs)
    else:  # the epsilon-level part is measured in test_sign_rewrite_is_equal_up_to_...
        monkeypatch.setattr(ops, "EPS", 1e-30)
        assert _same(p, q, inputs, lambda a, b: _close(a, b, 1e-5))


def test_sign_rewrite_is_equal_up_to_the_safe_division_epsilon():
    """x / sqrt(x*x) and friends vs sign(x) at magnitudes 1e-12..1e18: the difference is at
    most 1e-8 / (|x| + 1e-8) plus one float32 rounding, and none for 0.25 <= |x| <= 1e18."""
    mag = np.logspace(-12, 18, 3001)
    x = np.float32(np.concatenate([mag, -mag, [0.0]]))
    xs = [jnp.asarray(x)]
    sign = np.sign(x)
    bound = 1e-8 / (np.abs(x.astype(np.float64)) + 1e-8) + 2.0 ** -23
    worst = {}
    for body in ("t = g * g; t = sqrt(t); update = g / t", "t = abs(g); update = g / t",
                 "t = square(g); t = sqrt(t); update = g / t"):
        p = _prog(body)
        assert [s.op for s in simplify_exact(p).stmts] == ["sign"]
        got = np.asarray(run(p, xs, xs, xs, xs, jnp.float32(1.0))[0][0])
        diff = np.abs(got - sign)
        assert np.all(diff <= bound) and np.all(diff[np.abs(x) >= 0.25] == 0)
        worst[body] = float(diff.max())
    print("\nmax |x / D(x) - sign(x)|:", worst, "(at |x| ~ 1e-8)")


# --- thousands of random mutants ----------------------------------------------------------

BAITS = [  # short blocks that trigger the rules; x is the argument they replace, z another
    ["y = mul(x, 1.0)"], ["y = add(x, 0.0)"], ["y = add(x, -0.0)"], ["y = sub(x, 0.0)"],
    ["y = div(x, 1.0)"], ["a = negative(x)", "y = negative(a)"],
    ["a = mul(x, x)", "a = sqrt(a)", "y = div(x, a)"], ["a = abs(x)", "y = div(x, a)"],
    ["a = square(x)", "a = sqrt(a)", "y = mul(x, z)", "y = div(y, a)"],
    ["a = interp(x, z, C)", "y = interp(x, a, C)"], ["a = interp(x, z, C)", "y = interp(a, z, C)"],
    ["a = mul(x, C)", "y = mul(a, C)"], ["a = mul(x, z)", "b = mul(q, z)", "y = add(a, b)"],
    ["a = mul(x, z)", "b = mul(z, q)", "y = sub(a, b)"], ["a = mul(D, D)", "y = mul(x, a)"],
    ["a = add(D, D)", "y = add(x, a)"], ["a = sign(x)", "y = sign(a)"],
    ["a = negative(x)", "y = abs(a)"], ["y = max(x, x)"], ["a = abs(x)", "y = sqrt(a)"],
    ["a = negative(x)", "y = square(a)"], ["a = literal(C)", "y = mul(x, a)"],
]


def bait(rng, p):
    """Insert a rule-triggering block in front of a statement and feed it one argument."""
    sites = [(i, j) for i, s in enumerate(p.stmts) for j, a in enumerate(s.args)
             if isinstance(a, str)]
    if not sites:
        raise NoSite("no variable argument")
    i, j = sites[rng.integers(len(sites))]
    names = defined_before(p, i)
    tag = f"b{rng.integers(10 ** 6)}"
    env = {"x": p.stmts[i].args[j], "z": names[rng.integers(len(names))],
           "q": names[rng.integers(len(names))], "a": tag + "a", "b": tag + "b", "y": tag + "y"}
    const = {"C": lambda: random_const(rng),
             "D": lambda: float(rng.choice([0.5, 2.0, 3.0, 0.25, -1.0, 0.75, 1e-3]))}
    block = []
    for line in BAITS[rng.integers(len(BAITS))]:
        target, call = line.split(" = ")
        op, rest = call[:-1].split("(")
        args = tuple(const[t]() if t in const else float(t) if t[0] in "-0123456789"
                     else env[t] for t in rest.split(", "))
        block.append(Stmt(env[target], op, args))
    s = p.stmts[i]
    fed = Stmt(s.target, s.op, s.args[:j] + (env["y"],) + s.args[j + 1:])
    return p.replace(stmts=p.stmts[:i] + tuple(block) + (fed,) + p.stmts[i + 1:])


@pytest.fixture(scope="module")
def mutants():
    rng = np.random.default_rng(2024)
    bases = list(library().values()) + [parse(RAW)]
    bases += [random_program(rng, int(rng.integers(3, 10))) for _ in range(30)]
    pool, out = list(bases), []
    # the mutations a default search draws (wrap's x = op(x) chains are off by default)
    kinds = [k for k, w in default_weights().items() if w > 0] + ["bait"] * 3
    while len(out) < 2000:
        p = pool[rng.integers(len(pool))]
        for _ in range(int(rng.integers(1, 4))):
            k = kinds[rng.integers(len(kinds))]
            try:
                p = bait(rng, p) if k == "bait" else MUTATIONS[k](rng, p)
            except NoSite:
                pass
        try:
            check(p)
        except ProgramError:
            continue
        if len(p.stmts) <= 30:
            out.append(p)
            if rng.random() < 0.3:
                pool.append(p)
    return bases + out


def test_strict_passes_are_bitwise_on_mutants(mutants):
    inputs = _inputs(4, 3)
    shorter = 0
    for p in mutants:
        q = simplify_exact(p, strict=True)
        check(q)
        assert simplify_exact(q, strict=True) == q and simplify_exact(simplify_exact(p)) == \
            simplify_exact(p)  # idempotent
        shorter += len(q.stmts) < len(p.stmts)
        assert _same(p, q, inputs), f"{p.text()}\n{q.text()}"
    print(f"\n{len(mutants)} programs, bitwise equal after the strict passes; "
          f"{shorter} got shorter")
    assert shorter > len(mutants) // 2


def test_loose_passes_are_equal_up_to_rounding_on_mutants(mutants, monkeypatch):
    """The non-strict rewrites that fire (sign, interp merge, reassociation, x + 0.0): with the
    division epsilon shrunk to 1e-30 (so that x / (|x| + eps) is sign(x) but for |x| < 1e-23)
    the results agree to 1e-3. Random programs can be arbitrarily ill-conditioned (a division
    by a difference of nearly equal values amplifies one rounding without bound; x / |x| is
    NaN at infinity where sign is 1), so a small share of them is allowed to differ."""
    monkeypatch.setattr(ops, "EPS", 1e-30)
    inputs = _inputs(5, 3)
    changed, differ = 0, []
    for p in mutants:
        q = simplify_exact(p)
        if q == simplify_exact(p, strict=True):
            continue
        changed += 1
        if not _same(p, q, inputs, lambda a, b: _close(a, b, 1e-3)):
            differ.append(p)
    print(f"\nloose passes changed {changed} of {len(mutants)} programs further; "
          f"{len(differ)} differ by more than 1e-3 (ill-conditioned)")
    assert changed > 200 and len(differ) <= 0.02 * changed


# --- fitness-guided passes ----------------------------------------------------------------

_NUM = r"-?[\d.]+(?:e-?\d+)?"
LION_FORM = re.compile(rf"""def train\(w, g, m, v, lr\):
  (\w+) = interp\(g, (m|v), {_NUM}\)
  (\w+) = sign\(\1\)
  (\w+) = w \* {_NUM}
  (\w+) = \3 \+ \4
  (\w+) = lr \* {_NUM}
  update = \5 \* \6
  \2 = interp\(g, \2, {_NUM}\)
  return update, m, v
""")


def lion_form(p: Program) -> bool:
    """update = (sign(interp(g, S, b1)) + w * c) * (lr * c'), S = interp(g, S, b2), as the
    exact passes write it (canonical order)."""
    return LION_FORM.fullmatch(simplify_exact(p).text()) is not None


def test_lion_form_recognizer_and_rounding_helpers():
    assert significant_digits(0.8999999761581421) == 16 and significant_digits(0.00022) == 2
    assert round_sig(0.0002171761734643951, 2) == 0.00022
    assert lion_form(simplify_exact(library()["lion"]))
    assert not lion_form(simplify_exact(parse(RAW)))  # clip and arcsin are still there
    assert not lion_form(simplify_exact(library()["signum"]))


def test_guided_passes_turn_the_raw_program_into_lion():
    """digits_mlp at its default 300 steps on 4 seeds (the full 16-seed run is
    scripts/experiments/simplify_raw.py); lr scale 32, which tuning finds for the raw program there."""
    from optevo.proxy_tasks import get_task
    from optevo.proxy_tasks.engine import enable_compile_cache
    from optevo.proxy_tasks.evaluate import Evaluator
    enable_compile_cache()
    ev = Evaluator(get_task("digits_mlp"), seeds=4)
    start = simplify_exact(parse(RAW))
    final, steps = simplify_guided(start, ev, tolerance=0.01, lr_scale=32.0)
    print("\n" + "\n".join(s.text() for s in steps) + "\n" + final.text())
    assert lion_form(final), final.text()
    assert len(final.stmts) == 7 and "clip" not in final.text() and "arcsin" not in final.text()
    first = steps[0].loss_before
    for s in steps:
        assert s.loss_after <= 1.01 * min(s.loss_before, first)
    assert {s.kind for s in steps} == {"remove", "round"}


# --- the command --------------------------------------------------------------------------

def _cli(argv):
    from optevo.search.cli.simplify import add_parser
    ap = argparse.ArgumentParser(prog="optevo")
    add_parser(ap.add_subparsers(dest="command", required=True))
    args = ap.parse_args(["simplify"] + argv)
    return args.fn(args)


def test_command_exact_only_on_a_file_and_a_run_dir(tmp_path, capsys):
    f = tmp_path / "raw.py"
    f.write_text(RAW)
    assert _cli([str(f), "--exact-only"]) == 0
    out = capsys.readouterr().out
    prog = parse(out[out.index("def train"):])
    assert len(prog.stmts) <= 9 and "# exact passes" in out
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    recs = [{"id": 1, "program": library()["adamw"].text(), "loss": 0.5, "cached": False},
            {"id": 2, "program": RAW, "loss": 0.25, "cached": False},
            {"id": 3, "program": library()["sgd"].text(), "loss": None, "cached": True}]
    for r in recs:  # as the search logs them
        r["hash"] = program_hash(parse(r["program"]))
    (run_dir / "evaluations.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    (run_dir / "config.yaml").write_text(
        "task:\n  name: digits_mlp\n  steps: 20\n  seeds: 2\n  options: {hidden: 8}\n")
    assert _cli([str(run_dir), "--exact-only"]) == 0
    out = capsys.readouterr().out
    assert "id 2" in out and parse(out[out.index("def train"):]) == prog

    from optevo.search.core.config import load_config
    from optevo.search.cli.simplify import evaluator_for
    ns = argparse.Namespace(task=None, steps=None, seeds=None, fresh=None)
    ev = evaluator_for(ns, load_config(run_dir / "config.yaml").task)
    assert (ev.task.name, ev.steps, ev.seeds, ev.task.hidden) == ("digits_mlp", 20, [0, 1], 8)


def test_command_errors(tmp_path):
    from optevo.dsl.errors import OptevoError
    f = tmp_path / "raw.py"
    f.write_text(RAW)
    for argv in ([str(tmp_path / "nope.py"), "--exact-only"], [str(tmp_path), "--exact-only"],
                 [str(f)], [str(f), "--tolerance", "-1"], [str(f), "--lr-scale", "x"],
                 [str(f), "--task", "no_such_task", "--lr-scale", "1"]):
        with pytest.raises(OptevoError):  # a one-line error the CLI prints with exit 2
            _cli(argv)
    (tmp_path / "evaluations.jsonl").write_text(
        json.dumps({"id": 1, "hash": "0",
                    "program": "def train(w, g, m, v, lr):\n  update = foo(g)\n"
                    "  return update, m, v\n", "loss": 0.1}) + "\n")
    with pytest.raises(ProgramError):
        _cli([str(tmp_path), "--exact-only"])


def test_long_constant_chains_merge_without_overflow():
    """Long chains of constant products merge into a few statements in one rebuild (the
    old link-by-link pass was quadratic: scripts/bench/simplify.py), stopping where the
    product would overflow (it used to build an inf constant and fail), and the result
    computes what the chain computes."""
    import numpy as np
    from optevo.dsl.execute import run

    def chain(n, c):
        body = [f"  t{i} = t{i - 1} * {c(i)}" for i in range(1, n)]
        return parse("\n".join(["def train(w, g, m, v, lr):", "  t0 = g * 2.0", *body,
                                f"  update = t{n - 1} * lr", "  return update, m, v"]) + "\n")
    big = simplify_exact(chain(3000, lambda i: 1.5))  # 1.5^3000 overflows float32
    assert 2 < len(big.stmts) <= 20  # log(1.5^3000) / log(3.4e38) = 14 segments
    assert all(np.isfinite(a) for s in big.stmts for a in s.args if isinstance(a, float))
    p = chain(400, lambda i: 1.5 if i % 2 else 0.7)
    out = simplify_exact(p)
    assert len(out.stmts) == 2
    g = np.array([0.5, -2.0, 3.0], np.float32)
    a, b = (np.asarray(run(q, g, g, g, g, np.float32(1.0))[0]) for q in (p, out))
    np.testing.assert_allclose(a, b, rtol=1e-3)

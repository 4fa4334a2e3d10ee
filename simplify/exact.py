"""Exact simplification: a shorter program that computes the same thing.

The program is read into an expression DAG (as in ``optevo.dsl.canon``: one node per distinct
computation, so reassigned names, duplicates and dead code disappear), rewritten by local
rules as nodes are built, and written back in canonical order: temporaries ``t0, t1, ...``,
outputs named ``update``, ``m``, ``v`` where that clobbers nothing. Liveness is across steps
(``dsl.liveness``): state overwritten before it is read is dead; a dead slot returns its input.

``strict=True`` keeps results **bitwise identical** (any NaN equals any NaN) in float32 in
both engines at every step, on the inputs the engines feed a program (no subnormals: XLA
flushes them in every arithmetic op, ``x * 1`` too; ``dsl/canon.py``, "What equal means").
Passes: dead code; inlining literals (``epsilon = 1e-8`` is the number); merging duplicates
(ops are deterministic); and what the op rows (``dsl/ops.py``) state: units (those
``program_hash`` applies too: ``x * 1``, ``x - 0.0``, ``x + (-0.0)``; ``x / 1`` for
non-constant ``x``: ``1 + 1e-8`` is 1 in float32 and a Python-float denominator meets a
float32 array), involutions (``negative(negative(x))``), idempotence (``sign(sign(x))``,
``abs(abs(x))``, ``max(x, x)``, ``min(x, x)``), absorbed inner ops (``abs(negative(x))``;
``sqrt``, ``log*`` and ``square`` of ``abs`` or ``negative``), and folding (``c1 + c2``,
``c1 - c2``, ``c1 * c2`` of constants into the double the reference executor computes,
``0.4015291 * 0.1661706`` into ``0.0667223...``, when no engine can tell: the reference
computes that very double; the interpreter computes the statement in float32 on
``float32(c1)``, ``float32(c2)``, and the fold computes that result too and requires it to
be the double rounded to float32, the value the interpreter loads for the folded constant
(never when the result underflows, where XLA flushes); a folded double that is no float32
value is not written as ``interp``'s weight, where the interpreter rounds a constant
otherwise; ``simplify/fold.py`` gives the argument, ``tests/test_equivalences.py`` runs both
engines before and after, bit for bit). A rewrite to an existing node never replaces a
float32 result by a Python double (``max(0.9, 0.9)`` stays). Nothing else is folded:
``sqrt``, ``tanh``... of constants run in float32 through XLA, safe division adds 1e-8 in
double in the reference and in float32 in the interpreter, ``interp`` rounds its weight in
double, so their results are not provably the same; a chain ``(c1 * c2) * c3`` folds on
only where the check above holds for each link (the reference goes on in double, the
interpreter rounds in between). (``program_hash`` does not fold, so folding can change the
hash, never the results.) A constant output is written as a literal statement
(``update = 0.25``).

``strict=False`` (default) adds rewrites that are equal **up to the safe-division epsilon
and float32 rounding**, as the paper's simplification uses them:

* ``x / sqrt(x * x)``, ``x / sqrt(square(x))``, ``x / abs(x)`` -> ``sign(x)`` and
  ``(x * y) / D(x)`` -> ``sign(x) * y``. Safe division makes the left ``x / (|x| + 1e-8)``:
  it differs from ``sign(x)`` by ``1e-8 / (|x| + 1e-8)`` plus one rounding (< 1e-4 for
  ``|x| > 1e-4``; exactly 0 for ``0.25 <= |x| < 1.8e19``, above which ``x * x`` overflows);
  both are 0 at ``x = 0``; for ``|x|`` near 1e-8 they differ by O(1).
* ``interp(x, x, a)`` -> ``x`` (any weight ``a``): ``(1 - a) x + a x = x`` in real
  arithmetic; in float32 the engines round ``1 - a``, both products and the sum, so it is
  off by at most about ``(2 |1 - a| + |a| + 1)`` roundings of ``|x|`` (3 for ``0 <= a <=
  1``; an ``x`` so tiny that ``a x`` underflows is off by up to ``2^-126``), and it is NaN
  where ``x`` is not when ``a`` is not finite or ``x`` is infinite and ``a`` is outside
  ``(0, 1)`` (``0 * inf``, ``inf - inf``). Not strict: no weight makes it bit for bit in
  every engine (``dsl/canon.py`` lists the failures, so the hash leaves it alone). It is
  what makes three ``interp(g, g, c)`` programs of a run one RMSprop in ``best_distinct``.
* ``interp(a, interp(a, b, c1), c2)`` -> ``interp(a, b, c1 c2)`` and
  ``interp(interp(a, b, c1), b, c2)`` -> ``interp(a, b, 1 - (1 - c1)(1 - c2))``, constant
  weights: ``(1-c2) a + c2 ((1-c1) a + c1 b) = (1 - c1 c2) a + c1 c2 b`` in real arithmetic;
  the new weight is rounded to float32 and the sums round differently.
* ``(x * c1) * c2`` -> ``x * float32(c1 c2)`` when the inner product has no other reader,
  and ``P * F + Q * F`` -> ``(P + Q) * F`` (also ``-``; over single-reader product chains)
  when the program gets shorter: reassociation, equal up to rounding.
* ``x + 0.0`` -> ``x``: equal except that ``-0.0 + 0.0`` is ``+0.0``.

Entry points: :func:`simplify_exact` and :func:`simplify_exact_report`.
"""

from __future__ import annotations

import math

from typing import List, Tuple

from optevo.dsl.liveness import live_mask, strip_dead
from optevo.dsl.program import Program, check

from .graph import CONST, Graph, f32


# --- rewrites that need use counts (tried one at a time, kept if the program gets shorter) --

def _product(g: Graph, n: int, uses) -> List[int]:
    """Factors of ``n``, flattening products that nothing else reads (left to right, with
    an explicit stack: a product chain may be as long as the program)."""
    out, stack = [], [n]
    while stack:
        x = stack.pop()
        if g.ops[x] == "mul" and uses.get(x, 0) == 1:
            stack.extend(reversed(g.args[x]))
        else:
            out.append(x)
    return out


def _prod_expr(g: Graph, factors: List[int]):
    factors = sorted(factors, key=lambda f: g.ops[f] == CONST)  # constants last
    e = factors[0]
    for f in factors[1:]:
        e = ("mul", e, f)
    return e


def _candidates(g: Graph, n: int, uses):
    op, a = g.ops[n], g.args[n]
    if op == "mul":
        for i in (0, 1):
            c2, x = g.value(a[i]), a[1 - i]
            if type(c2) is float and g.ops[x] == "mul" and uses.get(x) == 1:
                for j in (0, 1):
                    c1 = g.value(g.args[x][j])
                    merged = f32(c1 * c2) if type(c1) is float else None
                    # never merge into inf or a flushed 0 (x * c1 * c2 may stay finite)
                    if merged is not None and math.isfinite(merged) and \
                            (merged != 0.0 or c1 * c2 == 0.0):
                        yield "merge constants (equal up to rounding)", \
                            ("mul", g.args[x][1 - j], (CONST, merged))
    if op in ("add", "sub") and a[0] != a[1]:
        fp = [f for x in g.args[a[0]] for f in _product(g, x, uses)] \
            if g.ops[a[0]] == "mul" and uses.get(a[0]) == 1 else [a[0]]
        fq = [f for x in g.args[a[1]] for f in _product(g, x, uses)] \
            if g.ops[a[1]] == "mul" and uses.get(a[1]) == 1 else [a[1]]
        for f in dict.fromkeys(fp):
            if f in fq and len(fp) > 1 and len(fq) > 1:
                rp, rq = list(fp), list(fq)
                rp.remove(f)
                rq.remove(f)
                yield "factor out a common factor (equal up to rounding)", \
                    ("mul", (op, _prod_expr(g, rp), _prod_expr(g, rq)), f)


def _merge_constant_chains(g: Graph) -> Graph:
    """Every chain ``((x * c1) * c2) * ...`` whose inner products nothing else reads becomes
    ``x * (c1 c2 ...)`` in one rebuild (the rule "merge constants" of :func:`_candidates`,
    applied to all chains at once: linear, where rewriting a chain link by link is
    quadratic). A product that would overflow or flush to 0 stops the merge there."""
    uses = g.uses()

    def split(n):  # (the other argument, the constant) of ``n = x * c``, or None
        if g.ops[n] != "mul":
            return None
        for i in (0, 1):
            c = g.value(g.args[n][i])
            if type(c) is float and type(g.value(g.args[n][1 - i])) is not float:
                return g.args[n][1 - i], c
        return None

    inner = {split(n)[0] for n in g.live_ops() if split(n) and split(split(n)[0])
             and uses.get(split(n)[0]) == 1}
    override = {}
    for n in g.live_ops():
        if n in inner or not split(n):
            continue
        (x, c), top, merged = split(n), n, 0
        while split(x) and uses.get(x) == 1:
            y, c1 = split(x)
            prod = f32(c * c1)
            if not math.isfinite(prod) or (prod == 0.0 and c * c1 != 0.0):
                if merged:  # close this segment; a new one starts at x
                    override[top] = ("mul", x, (CONST, c))
                top, c, x, merged = x, c1, y, 0
                continue
            x, c, merged = y, prod, merged + 1
        if merged:
            override[top] = ("mul", x, (CONST, c))
    if not override:
        return g
    before = g.cost()
    out = g.copy(override)
    if out.log is not None:
        out.log.append(f"merge constants (equal up to rounding): {len(override)} chain(s), "
                       f"{before} -> {out.cost()} statements")
    return out


def global_pass(g: Graph) -> Graph:
    """Try the use-count rewrites node by node in dependency order, keeping one that makes
    the program cheaper. After a rewrite the scan goes on from where it was, not from the
    start (a chain of n rewrites cost O(n^2) graph copies that way, O(n^3) time: 2,000
    statements took a minute); what a rewrite enables earlier in the order is found by the
    next round of :func:`simplify_exact_report`."""
    i = 0
    while True:
        uses, base, ops = g.uses(), g.cost(), g.live_ops()
        for i in range(max(0, i - 1), len(ops)):
            n = ops[i]
            for rule, expr in _candidates(g, n, uses):
                trial = g.copy({n: expr}, log=None)
                if trial.cost() < base:
                    before = g.text(n)
                    g = g.copy({n: expr})
                    if g.log is not None:
                        g.log.append(f"{rule}: {before} -> {g.text(g.map[n])}")
                    break
            else:
                continue
            break
        else:
            return g


def simplify_exact_report(program: Program, strict: bool = False) -> Tuple[Program, List[str]]:
    """The simplified program and one line per step applied (see the module docstring)."""
    check(program)
    steps: List[str] = []
    mask = live_mask(program)
    dead = [s.text() for s, keep in zip(program.stmts, mask) if not keep]
    if dead:
        steps.append(f"remove {len(dead)} dead statement{'s' if len(dead) > 1 else ''} "
                     f"(no present or future update reads them): {'; '.join(dead)}")
    current = strip_dead(program)
    for _ in range(20):
        g = Graph.from_program(current, strict, steps)
        if not strict:
            g = global_pass(_merge_constant_chains(g))
        new = g.to_program()
        if new == current:
            break
        current = new
    if len(current.stmts) < sum(mask):
        steps.append(f"{sum(mask)} live statements -> {len(current.stmts)} "
                     f"(duplicates merged, rewritten parts dropped)")
    steps.append("rename temporaries canonically (t0, t1, ... in dependency order)")
    return current, steps


def simplify_exact(program: Program, strict: bool = False) -> Program:
    """``program`` simplified by the exact passes (``strict``: bitwise identical results)."""
    return simplify_exact_report(program, strict)[0]

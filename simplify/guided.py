"""Fitness-guided simplification: drop what the task does not need, round constants.

After the exact passes (:mod:`optevo.simplify.exact`), two kinds of edits are tried, each as
one batch of candidates trained together (one ``Evaluator.evaluate`` call):

* *remove a call*: replace one statement's result by one of its variable arguments, i.e.
  delete the statement and let its readers use that argument instead (``a = b`` copies are
  not statements, so this is a renaming of later uses; deleting a statement that reassigns
  a name is the case "replace by the name's previous value"). The result goes through the
  exact passes again, which drops whatever became dead.
* *round a constant* to 1, 2, 3 or 4 significant digits.

A candidate is acceptable when it trains without diverging and its mean loss ``new``
satisfies ``new <= (1 + tolerance) * old`` (``old``: the current program's loss; any
improvement passes) and ``new <= (1 + tolerance) * start`` (``start``: the loss of the exact
simplification of the input), so the end result is never more than ``tolerance`` worse
than what it started from, however many steps were taken. Each round applies the
acceptable candidate that leaves the fewest statements (for rounding: the fewest digits),
ties broken by the lower loss. Removals are tried first; rounding when no removal passes.

Losses are deterministic for a given evaluator (fixed seeds), so no step is a lucky draw;
``lr_scale`` multiplies the program's ``lr`` input during every evaluation. A program
whose learning rate is far from right for the task barely trains and then every edit looks
harmless, so callers tune it first (``optevo simplify`` does: ``Evaluator.tune`` by the
one tuning rule).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, List, Optional, Sequence, Tuple

from optevo.dsl.program import Program, Stmt

from .exact import simplify_exact
from .graph import CONST, IN, Graph

DIGITS = (1, 2, 3, 4)


@dataclasses.dataclass
class Step:
    """One accepted edit and its effect on fitness (mean validation loss)."""

    kind: str  # "remove" or "round"
    description: str
    loss_before: float
    loss_after: float
    statements: int
    program: Program

    @property
    def change(self) -> float:
        """Relative change of the loss (negative: better)."""
        return self.loss_after / self.loss_before - 1.0

    def text(self) -> str:
        return (f"{self.description}: loss {self.loss_before:.4f} -> {self.loss_after:.4f} "
                f"({self.change:+.2%}), {self.statements} statements")

    __str__ = text


def significant_digits(c: float) -> int:
    """Significant digits of the shortest text that reads back as ``c``."""
    mant = repr(abs(float(c))).split("e")[0].replace(".", "").lstrip("0")
    return max(1, len(mant.rstrip("0")) if mant else 1)


def round_sig(c: float, digits: int) -> float:
    return float(f"{float(c):.{digits - 1}e}")


def removal_candidates(program: Program, strict: bool = False) -> List[Tuple[str, Program]]:
    """Every program obtained by replacing one statement's result by one of its variable
    arguments, simplified exactly; ``(description, program)``, distinct, unlike ``program``."""
    g = Graph.from_program(program, strict=True)
    seen = {program.text()}
    out = []
    for n in g.live_ops():
        for a in dict.fromkeys(g.args[n]):
            if g.ops[a] == CONST:
                continue
            cand = simplify_exact(g.copy({n: a}, log=None).to_program(), strict)
            if cand.text() in seen:
                continue
            seen.add(cand.text())
            what = g.args[a][0] if g.ops[a] == IN else g.text(a, 1)
            out.append((f"replace {g.text(n, 2)} by {what}", cand))
    return out


def rounding_candidates(program: Program, digits: Sequence[int] = DIGITS,
                        strict: bool = False) -> List[Tuple[int, str, Program]]:
    """``(digits, description, program)`` for each constant rounded to fewer digits."""
    out, seen = [], {program.text()}
    for i, s in enumerate(program.stmts):
        for j, c in enumerate(s.args):
            if isinstance(c, str) or not math.isfinite(c) or c == 0:
                continue
            for d in digits:
                if d >= significant_digits(c):
                    break
                r = round_sig(c, d)
                if r == c or r == 0:
                    continue
                args = list(s.args)
                args[j] = r
                stmts = list(program.stmts)
                stmts[i] = Stmt(s.target, s.op, tuple(args))
                cand = simplify_exact(program.replace(stmts=stmts), strict)
                if cand.text() not in seen:
                    seen.add(cand.text())
                    out.append((d, f"round {c!r} -> {r!r} in `{s.text()}`", cand))
    return out


def simplify_guided(program: Program, evaluator, tolerance: float = 0.01,
                    max_rounds: int = 50, lr_scale: float = 1.0, strict: bool = False,
                    digits: Sequence[int] = DIGITS,
                    progress: Optional[Callable[[str], None]] = None
                    ) -> Tuple[Program, List[Step]]:
    """Simplify ``program`` on ``evaluator``'s task; returns the result and accepted steps.

    ``tolerance``: relative loss increase allowed (see the module docstring);
    ``max_rounds``: evaluation batches at most; ``lr_scale``: learning-rate scale used in
    every evaluation; ``strict``: passed to the exact passes; ``progress``: called with one
    line per accepted step."""
    if tolerance < 0:
        raise ValueError("tolerance must be >= 0")

    def losses(programs):
        scores = evaluator.evaluate(programs, lr_scales=lr_scale)
        return [math.inf if s.diverged else s.loss for s in scores]

    current = simplify_exact(program, strict)
    start = losses([current])[0]
    if not math.isfinite(start):
        raise ValueError("the program diverges on this task: nothing to compare with")
    loss, steps = start, []
    rounds, phase = 0, "remove"
    while rounds < max_rounds:
        if phase == "remove":
            cands = [(len(p.stmts), d, p) for d, p in removal_candidates(current, strict)]
        else:
            cands = [(k, d, p) for k, d, p in rounding_candidates(current, digits, strict)]
        if cands:
            rounds += 1
            got = losses([p for _, _, p in cands])
            limit = (1.0 + tolerance) * min(loss, start)  # any improvement also passes
            ok = [(key, new, d, p) for (key, d, p), new in zip(cands, got) if new <= limit]
        else:
            ok = []
        if ok:
            _, new, desc, p = min(ok, key=lambda x: (x[0], x[1]))
            steps.append(Step(phase, desc, loss, new, len(p.stmts), p))
            if progress:
                progress(steps[-1].text())
            current, loss, phase = p, new, "remove"
        elif phase == "remove":
            phase = "round"
        else:
            break
    return current, steps

"""The one tuning rule: a line search on a log grid, as a resumable step.

A number means something only next to tuned baselines on the same seeds, and a tuning rule
that differs from one place to another makes two tables incomparable. So every tuned figure
in optevo (the start's calibration, the held-out re-check, the funnel's stages, guided
simplification, ``optevo eval``, the scripts) comes from :class:`LineRule`:

* points ``centre * ratio ** k`` for integer ``k`` in ``[lo, hi]``;
* while the best point is at an edge, the line grows by one point on that side, at most
  ``max_extend`` points per side (``grow_down=False``: never below ``lo``, for a weight-decay
  factor whose "off" point brackets it from below); the upper edge grows only while its loss
  is finite;
* ties (and an all-diverged line) take the smallest ``k``; a best point still at an edge is
  reported (``Line.at_edge``);
* ``with_off``: one more point, :data:`OFF` (the setting switched off: factor 0), which wins
  only when strictly better than the line's best, and is never "at an edge".

:meth:`LineRule.step` is a pure function of the losses known so far (grid index -> mean
loss, ``inf`` for a diverged run): it returns the indices still missing, or the decision.
Because it reads nothing else, a tuning interrupted at any moment and resumed from its saved
losses decides exactly as an uninterrupted one (the funnel relies on this), and several
lines may share their jobs (a suite's tasks, each tuned on its own, train every task at
each multiplier once). :func:`tune_line` drives one line to its decision; :class:`Coordinate`
chains two axes, learning rate first, then weight decay at the chosen learning rate, in
passes while the decay moves.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

OFF = -99  # the grid index of "switched off" (factor 0), e.g. weight decay off


@dataclasses.dataclass(frozen=True)
class Line:
    """A decided line: the best grid index (or :data:`OFF`), its loss, whether it sits at a
    grown-out edge, the span ``(lo, hi)`` searched, and every loss the decision read."""

    best: int
    loss: float
    at_edge: bool
    span: Tuple[int, int]
    losses: Dict[int, float]


@dataclasses.dataclass(frozen=True)
class LineRule:
    """The rule of the module docstring, with its grid (``max_extend=0``: a fixed grid)."""

    ratio: float = 2.0
    lo: int = -4
    hi: int = 4
    max_extend: int = 4
    grow_down: bool = True
    with_off: bool = False
    centre: float = 1.0  # the setting at index 0, unless the caller gives one

    def value(self, k: int, centre: Optional[float] = None) -> float:
        """The setting at grid index ``k``: ``centre * ratio ** k`` (0 for :data:`OFF`)."""
        if k == OFF:
            return 0.0
        return (self.centre if centre is None else centre) * self.ratio ** k

    def step(self, losses: Mapping[int, float]) -> Tuple[List[int], Optional[Line]]:
        """``(missing indices, None)``, or ``([], the decision)`` once nothing is missing;
        ``losses`` needs only ``in`` and ``[]``."""
        lo, hi = self.lo, self.hi
        while True:
            missing = [k for k in range(lo, hi + 1) if k not in losses]
            if self.with_off and OFF not in losses:
                missing.append(OFF)
            if missing:
                return missing, None
            best = min(range(lo, hi + 1), key=lambda k: (losses[k], k))
            if best == lo and self.grow_down and lo > self.lo - self.max_extend:
                lo -= 1
            elif best == hi and hi < self.hi + self.max_extend and math.isfinite(losses[best]):
                hi += 1
            else:
                break
        edge = best == hi or (self.grow_down and best == lo)
        seen = {k: losses[k] for k in range(lo, hi + 1)}
        if self.with_off:
            seen[OFF] = losses[OFF]
            if losses[OFF] < losses[best]:
                best, edge = OFF, False
        return [], Line(best, losses[best], edge, (lo, hi), seen)


def tune_line(evaluate: Callable[[List[int]], Sequence[float]], rule: LineRule,
              known: Optional[Mapping[int, float]] = None) -> Line:
    """Drive ``rule`` to its decision: ``evaluate`` maps a list of grid indices to their mean
    losses (one batch of jobs per call); ``known`` losses are not asked for again."""
    losses: Dict[int, float] = dict(known or {})
    while True:
        missing, line = rule.step(losses)
        if line is not None:
            return line
        losses.update(zip(missing, evaluate(missing)))


class _Axis:
    """One axis of a two-axis lookup as the mapping :meth:`LineRule.step` reads."""

    def __init__(self, lookup, fixed: int, first: bool):
        self.lookup, self.fixed, self.first = lookup, fixed, first

    def _key(self, i):
        return (i, self.fixed) if self.first else (self.fixed, i)

    def __contains__(self, i) -> bool:
        return self.lookup(*self._key(i)) is not None

    def __getitem__(self, i) -> float:
        return self.lookup(*self._key(i))


PASSES = 3  # coordinate passes at most: lr, then decay, again while the decay moved


@dataclasses.dataclass(frozen=True)
class Coordinate:
    """Two axes tuned coordinate-wise: the learning-rate line at the second axis's index 0
    (its setting as given), then, where ``wd`` is set, the weight-decay line (with its off
    point) at the chosen learning rate; then again, the lr line at the chosen decay and the
    decay line at that lr, while the decay moved, at most ``passes`` times. One pass is not
    enough where the axes interact (AdamW's decay sits inside its lr multiply). ``lookup(k,
    j)`` is the mean loss at lr index ``k`` and wd index ``j``, or None where not known yet."""

    lr: LineRule
    wd: Optional[LineRule] = None
    passes: int = PASSES

    def step(self, lookup: Callable[[int, int], Optional[float]]
             ) -> Tuple[List[Tuple[int, int]], Optional[Tuple[Line, Optional[Line]]]]:
        """``(missing (k, j) pairs, None)``, or ``([], (lr line, wd line or None))``."""
        j = 0
        for _ in range(self.passes):
            missing, lr = self.lr.step(_Axis(lookup, j, True))
            if lr is None:
                return [(k, j) for k in missing], None
            if self.wd is None:
                return [], (lr, None)
            missing, wd = self.wd.step(_Axis(lookup, lr.best, False))
            if wd is None:
                return [(lr.best, i) for i in missing], None
            if wd.best == j:
                break
            j = wd.best
        return [], (lr, wd)

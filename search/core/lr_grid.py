"""Scores that do not reward a learning-rate constant (``search.lr_grid``).

With a grid of ``G`` points (odd) and ratio ``r``, a child is trained at the multipliers
``m * r**k``, ``k = -(G-1)/2 .. (G-1)/2``, where ``m`` is the multiplier it inherits from its
parent (the start's is 1, relative to its calibrated lr), every seed at every point in one
engine call (``Job.grid``). Its fitness is the best point's (lowest mean loss; a tie goes to
the point nearest ``m``), and that point's multiplier is the one it passes on. So a mutant
that only rescales its lr constant by a factor the grid spans scores what its parent does:
the rescaling is a move along the grid, not a discovery. ``G = 1`` is the plain search: one
point, the inherited multiplier (always 1), no extra training.

Cost: ``G`` times the seed-runs of a child (measured in BENCHMARKS.md, "lr grid").
"""

from __future__ import annotations

from typing import List, Tuple, Union

from .jobs import Result
from .scoring import Fitness

Scale = Union[float, List[float]]


class LrGrid:
    def __init__(self, size: int = 1, ratio: float = 2.0):
        if size < 1 or size % 2 == 0:
            raise ValueError(f"lr grid size must be odd and >= 1, got {size}")
        self.size, self.ratio = int(size), float(ratio)
        h = self.size // 2
        self.offsets = tuple(range(-h, h + 1))

    @property
    def points(self) -> Tuple[float, ...]:
        """The job's ``grid`` (empty for a one-point grid: the plain job)."""
        return tuple(self.ratio ** k for k in self.offsets) if self.size > 1 else ()

    @staticmethod
    def scales(base: Scale, mult: float) -> Scale:
        """The calibrated scale (one, or one per task) times a member's multiplier."""
        if mult == 1.0:
            return base
        return [b * mult for b in base] if isinstance(base, (list, tuple)) else base * mult

    def best(self, result: Result, score) -> Tuple[Result, float, Fitness]:
        """The result at the best point (by ``score(result).value``, ties to the centre),
        that point's factor on the inherited multiplier and its fitness (``score`` of it);
        a plain result is its own best."""
        if self.size == 1:
            return result, 1.0, score(result)
        parts = [result.grid_point(i, self.size) for i in range(self.size)]
        fits = [score(p) for p in parts]
        i = min(range(self.size), key=lambda i: (fits[i].value, abs(self.offsets[i])))
        return parts[i], self.ratio ** self.offsets[i], fits[i]

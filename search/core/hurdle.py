"""Hurdles (AutoML-Zero, Real et al. 2020): a new child is first trained on the first ``H``
of its fitness seeds; if that figure is worse than the ``quantile`` of the population's
figures on the same seeds, it stops there (its fitness is that figure, ``stopped``);
otherwise it is trained on the remaining seeds and its fitness is over all of them, exactly
as without a hurdle.
"""

from __future__ import annotations

from typing import List, Sequence

from .jobs import Result
from .population import Population
from .scoring import Scorer


class Hurdle:
    def __init__(self, seeds: int, quantile: float, task_seeds: Sequence[int]):
        self.n, self.quantile = int(seeds), float(quantile)
        self.task_seeds = list(task_seeds)  # each task's number of fitness seeds

    def _seeds(self, lo: int, hi=None):
        per_task = [list(range(lo, n if hi is None else hi)) for n in self.task_seeds]
        return per_task[0] if len(per_task) == 1 else per_task

    def first_seeds(self) -> List:
        """The seeds of a new child's first job: each task's first ``H``."""
        return self._seeds(0, self.n)

    def rest_seeds(self) -> List:
        """The seeds of a cleared child's second job: each task's others."""
        return self._seeds(self.n)

    def figure(self, result: Result, scorer: Scorer) -> float:
        """The hurdle figure of a result over all seeds (the start program's)."""
        return scorer(result.first_seeds(self.n)).value

    def stops(self, result: Result, population: Population, scorer: Scorer) -> bool:
        """Whether a child's result on the hurdle seeds stops it there: diverged, or worse
        than the population's ``quantile``."""
        fit = scorer(result)
        return fit.diverged or fit.value > population.hurdle_threshold(self.quantile)

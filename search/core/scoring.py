"""From a worker's result to a fitness: one task, or a weighted suite of tasks.

One task: the fitness is the mean final validation loss over the seeds, ``inf`` if any seed
diverged (``optevo.proxy_tasks.fitness.aggregate``); ``normalized`` divides it by the tuned
start's.

A suite (``task:`` lists several tasks with weights ``w_t``): losses of different tasks are
not comparable, so each task's mean ``L_t`` is divided by the tuned start's ``B_t`` on that
task (the calibration), and the fitness is the weighted geometric mean of the ratios,

    fitness = exp( sum_t w_t log(L_t / B_t) / sum_t w_t ),

which is already normalized (the tuned start scores exactly 1). A child that diverges on any
task gets the worst fitness, ``inf``. Its standard error is propagated from the tasks'
(delta method, independent tasks): ``se = fitness * sqrt(sum_t (w_t/W)^2 (se_t/L_t)^2)``.
Paired comparisons on the same seeds (held-out) use the per-seed suite score
``d_s = sum_t w_t log(L_ts / R_ts) / W`` (log units: -0.01 is about 1% better).
"""

from __future__ import annotations

import math
from typing import List, NamedTuple, Optional, Sequence

import numpy as np

from optevo.proxy_tasks.fitness import WORST, aggregate

from .jobs import Result


class Fitness(NamedTuple):
    value: float  # lower is better; inf if any seed of any task diverged
    stderr: float
    diverged: bool
    task_means: List[float]  # each task's mean loss (inf where diverged)


class Scorer:
    """Fitness of results; ``baselines`` (the tuned start's mean loss per task) are needed
    for a suite only: an uncalibrated suite scorer refuses to score (ValueError)."""

    def __init__(self, weights: Sequence[float] = (1.0,),
                 baselines: Optional[Sequence[float]] = None):
        top = max(float(w) for w in weights)  # relative weights: no sum overflows to inf
        self.weights = [float(w) / top for w in weights]
        self.baselines = None if baselines is None else [float(b) for b in baselines]
        if self.baselines is not None and len(self.baselines) != len(weights):
            raise ValueError(f"{len(self.baselines)} baselines for a suite of {len(weights)} "
                             "tasks")

    def _calibrated(self):
        if self.suite and self.baselines is None:
            raise ValueError("a suite's fitness needs one baseline per task (the tuned "
                             "start's loss: the search's calibration)")

    @property
    def suite(self) -> bool:
        return len(self.weights) > 1

    def with_baselines(self, baselines: Sequence[float]) -> "Scorer":
        """The same weights, scored relative to ``baselines`` (a suite's calibration)."""
        return Scorer(self.weights, baselines)

    def __call__(self, result: Result) -> Fitness:
        self._calibrated()
        aggs = [aggregate(r.losses, r.diverged) for r in result.parts]
        means = [a.mean for a in aggs]
        if not self.suite:
            return Fitness(aggs[0].mean, aggs[0].stderr, aggs[0].any_diverged, means)
        if any(a.any_diverged for a in aggs):
            return Fitness(WORST, WORST, True, means)
        total = sum(self.weights)
        value = math.exp(sum(w * math.log(m / b) for w, m, b in
                             zip(self.weights, means, self.baselines)) / total)
        rel = math.sqrt(sum((w / total * a.stderr / a.mean) ** 2
                            for w, a in zip(self.weights, aggs)))
        return Fitness(value, value * rel, False, means)

    def per_seed(self, result: Result, reference: Result) -> np.ndarray:
        """Per-seed paired differences to ``reference`` trained on the same seeds: the loss
        difference for one task, the weighted mean log ratio for a suite."""
        self._calibrated()
        mine, ref = result.parts, reference.parts
        if not self.suite:
            return np.asarray(mine[0].losses, np.float64) - np.asarray(ref[0].losses, np.float64)
        total = sum(self.weights)
        return sum(w * (np.log(np.asarray(a.losses, np.float64)) -
                        np.log(np.asarray(b.losses, np.float64)))
                   for w, a, b in zip(self.weights, mine, ref)) / total

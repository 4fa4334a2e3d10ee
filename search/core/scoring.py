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
from typing import Dict, List, NamedTuple, Optional, Sequence

import numpy as np

from optevo.proxy_tasks.fitness import WORST, aggregate


class Fitness(NamedTuple):
    value: float  # lower is better; inf if any seed of any task diverged
    stderr: float
    diverged: bool
    task_means: List[float]  # each task's mean loss (inf where diverged)


def task_results(result: Dict) -> List[Dict]:
    """Each task's part of a worker result (a one-task result is its own only part)."""
    return result.get("tasks") or [result]


def with_parts(result: Dict, parts: List[Dict]) -> Dict:
    """``result`` holding the per-task ``parts`` (each with ``losses`` and ``diverged``): one
    task's at the top; a suite's under ``tasks``, their seeds concatenated at the top."""
    out = {**result, "losses": parts[0]["losses"], "diverged": parts[0]["diverged"]}
    if len(parts) > 1:
        out.update(tasks=parts, losses=[x for p in parts for x in p["losses"]],
                   diverged=[x for p in parts for x in p["diverged"]])
    return out


class Scorer:
    """Fitness of results; ``baselines`` (the tuned start's mean loss per task) are needed
    for a suite only."""

    def __init__(self, weights: Sequence[float] = (1.0,),
                 baselines: Optional[Sequence[float]] = None):
        self.weights = [float(w) for w in weights]
        self.baselines = None if baselines is None else [float(b) for b in baselines]
        if self.suite and (self.baselines is None or len(self.baselines) != len(weights)):
            raise ValueError("a suite's fitness needs one baseline per task")

    @property
    def suite(self) -> bool:
        return len(self.weights) > 1

    def __call__(self, result: Dict) -> Fitness:
        aggs = [aggregate(r["losses"], r["diverged"]) for r in task_results(result)]
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

    def per_seed(self, result: Dict, reference: Dict) -> np.ndarray:
        """Per-seed paired differences to ``reference`` trained on the same seeds: the loss
        difference for one task, the weighted mean log ratio for a suite."""
        mine, ref = task_results(result), task_results(reference)
        if not self.suite:
            return np.asarray(mine[0]["losses"], np.float64) - \
                np.asarray(ref[0]["losses"], np.float64)
        total = sum(self.weights)
        return sum(w * (np.log(np.asarray(a["losses"], np.float64)) -
                        np.log(np.asarray(b["losses"], np.float64)))
                   for w, a, b in zip(self.weights, mine, ref)) / total

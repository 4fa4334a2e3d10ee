"""Score programs on a task: train on several seeds, aggregate, normalize against AdamW.

:class:`Evaluator` is what the CLI, the search and the benchmarks call. It owns one engine
(fast or reference), runs the AdamW start program on the same seeds as the baseline, and
returns one :class:`Score` per program.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from optevo.dsl.library import start_program
from optevo.dsl.program import Program

from .tasks.base import Task, get_task
from .engine import DEFAULT_BUCKETS, FastEngine, JitEngine, SeedRuns
from .fitness import aggregate, normalize

ENGINES = ("fast", "jit")


@dataclasses.dataclass
class Score:
    """Fitness of one program on one task: mean final validation loss over seeds (``inf``
    if any seed diverged), its standard error, and the ratio to the AdamW start program's
    mean on the same seeds (``normalized`` < 1: better than the start)."""

    loss: float
    stderr: float
    diverged: bool
    n_diverged: int
    normalized: float
    losses: List[float]
    seeds: List[int]
    seconds: float

    def to_json(self) -> Dict:
        fin = (lambda x: x if math.isfinite(x) else None)
        return {"loss": fin(self.loss), "stderr": fin(self.stderr), "diverged": self.diverged,
                "n_diverged": self.n_diverged, "normalized": fin(self.normalized),
                "losses": [fin(x) for x in self.losses], "seeds": list(self.seeds),
                "seconds": round(self.seconds, 4)}


class Evaluator:
    """Trains programs on ``task`` with ``seeds`` (default ``range(task.seeds)``)."""

    def __init__(self, task: Union[str, Task], steps: Optional[int] = None,
                 seeds: Union[int, Sequence[int], None] = None, engine: str = "fast",
                 buckets: Sequence[int] = DEFAULT_BUCKETS, baseline: Optional[Program] = None):
        self.task = get_task(task) if isinstance(task, str) else task
        if engine not in ENGINES:
            raise ValueError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
        self.engine = FastEngine(self.task, steps, buckets) if engine == "fast" \
            else JitEngine(self.task, steps)
        if seeds is None:
            seeds = self.task.seeds
        self.seeds = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
        self.baseline_program = baseline or start_program()
        self._baselines: Dict[Tuple, float] = {}

    @property
    def steps(self) -> int:
        return self.engine.steps

    def runs(self, programs: Sequence[Program], seeds=None, lr_scales=None) -> List[SeedRuns]:
        return self.engine.run(programs, self.seeds if seeds is None else seeds, lr_scales)

    def baseline(self, seeds=None) -> float:
        """Mean loss of the AdamW start program on ``seeds`` (cached)."""
        seeds = tuple(self.seeds if seeds is None else seeds)
        if seeds not in self._baselines:
            r = self.runs([self.baseline_program], seeds)[0]
            self._baselines[seeds] = aggregate(r.losses, r.diverged).mean
        return self._baselines[seeds]

    def score_runs(self, runs: SeedRuns, seeds) -> Score:
        agg = aggregate(runs.losses, runs.diverged)
        return Score(agg.mean, agg.stderr, agg.any_diverged, agg.n_diverged,
                     normalize(agg.mean, self.baseline(seeds)), [float(x) for x in runs.losses],
                     list(seeds), runs.seconds)

    def evaluate(self, programs: Sequence[Program], seeds=None, lr_scales=None) -> List[Score]:
        """Scores of ``programs`` (one batch), normalized against the start program."""
        seeds = self.seeds if seeds is None else list(seeds)
        return [self.score_runs(r, seeds) for r in self.runs(programs, seeds, lr_scales)]

    def tune(self, program: Program, grid: Sequence[float], seeds=None):
        """Mean loss for each learning-rate scale in ``grid`` (the same seeds for each) and
        the best scale. Returns (best_scale, best_score, all_scores); ``at_edge`` tells
        whether the best scale is the grid's first or last point (then widen the grid)."""
        seeds = self.seeds if seeds is None else list(seeds)
        runs = self.engine.run_grid(program, seeds, grid)
        scores = [self.score_runs(r, seeds) for r in runs]
        best = int(np.argmin([s.loss for s in scores]))
        return Tuned(float(grid[best]), scores[best], scores, best in (0, len(grid) - 1))


@dataclasses.dataclass
class Tuned:
    scale: float
    score: Score
    scores: List[Score]
    at_edge: bool

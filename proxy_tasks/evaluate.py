"""Score programs on a task: train on several seeds, aggregate, normalize against AdamW.

:class:`Evaluator` is what the CLI, the search and the benchmarks call. It owns one engine
(fast or reference), runs the AdamW start program on the same seeds as the baseline, and
returns one :class:`Score` per program.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Dict, List, Optional, Sequence, Tuple, Union


from optevo.dsl.library import start_program
from optevo.dsl.program import Program

from .tasks.base import Task, get_task
from .engine import DEFAULT_BUCKETS, FastEngine, SeedRuns
from .jit_engine import JitEngine
from .fitness import aggregate, normalize
from .tuning import LineRule, tune_line

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
        self._optax = None

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

    def tune(self, program: Union[Program, str], rule: LineRule, seeds=None,
             centre: Optional[float] = None) -> "Tuned":
        """The learning-rate multiplier of ``program`` (or an optax baseline's spec line) by
        the one tuning rule (``tuning.LineRule``, points ``centre * ratio ** k``; a rule with
        ``max_extend=0`` is a fixed grid), on the same seeds for every point. ``at_edge``:
        the best point is at a grown-out edge of the line."""
        seeds = self.seeds if seeds is None else list(seeds)
        engine = self._optax_engine() if isinstance(program, str) else self.engine
        scores: Dict[int, Score] = {}

        def evaluate(ks):
            runs = engine.run_grid(program, seeds, [rule.value(k, centre) for k in ks])
            scores.update((k, self.score_runs(r, seeds)) for k, r in zip(ks, runs))
            return [scores[k].loss for k in ks]
        line = tune_line(evaluate, rule)
        return Tuned(rule.value(line.best, centre), scores[line.best],
                     [scores[k] for k in sorted(line.losses)], line.at_edge)

    def _optax_engine(self):
        if self._optax is None:
            from .optax_engine import OptaxEngine
            self._optax = OptaxEngine(self.task, self.steps)
        return self._optax


@dataclasses.dataclass
class Tuned:
    scale: float
    score: Score
    scores: List[Score]  # every point the decision read, by multiplier
    at_edge: bool

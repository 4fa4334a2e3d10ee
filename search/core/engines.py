"""What one worker runs: the spec it is built from (plain data, sent to every worker) and
its evaluation, one fast engine (``optevo.proxy_tasks``), compiled once, that trains
batches of jobs. The pools that hold workers (in-process, Ray) are in ``workers.py``.

Pools take :class:`~.jobs.Job` s and give back :class:`~.jobs.Result` s (``jobs.py``): a job
carries its seeds and learning-rate multiplier, and a job whose text starts with ``optax:``
names an optax baseline (``optevo.proxy_tasks.baselines.specs``) rather than a program.
Consecutive jobs of a batch with the same seeds and multipliers train in one engine call.
"""

from __future__ import annotations

import dataclasses
from typing import List, Sequence, Tuple

from optevo.dsl.decay import ADDED  # the held-out check may add decoupled decay
from optevo.dsl.errors import OptevoError
from optevo.proxy_tasks.engine import buckets_for

from . import plugins
from .jobs import Job, Result

# A search's children are rarely under 16 live statements (the AdamW start has 10, its
# children grow), so its workers compile buckets from 16: one compile fewer per worker.
SEARCH_SMALLEST_BUCKET = 16


class WorkerError(OptevoError):
    """A worker that cannot start (its task, a plugin, its engine), or a lost Ray: one line."""


@dataclasses.dataclass(frozen=True)
class EvalSpec:
    """What a worker needs to build its engine (plain data, sent to every worker)."""

    task: str
    options: Dict
    steps: Optional[int]
    seeds: Tuple[int, ...]
    buckets: Tuple[int, ...]
    plugins: Tuple = ()  # plugins.Plugin: imported by the worker before the task is built


@dataclasses.dataclass(frozen=True)
class SuiteSpec:
    """Several tasks (a suite): every item is trained on each of them."""

    tasks: Tuple[EvalSpec, ...]


def eval_spec(cfg):
    """What a search's workers build, from its config (``config.Config``): an
    :class:`EvalSpec`, or a :class:`SuiteSpec` when ``task`` lists several tasks."""
    found = plugins.import_plugins(cfg.plugins)
    specs = tuple(EvalSpec(t.name, dict(t.options), t.steps, tuple(range(t.seeds)),
                           buckets_for(cfg.search.max_length + ADDED, SEARCH_SMALLEST_BUCKET),
                           found)
                  for t in cfg.tasks)
    return specs[0] if len(specs) == 1 else SuiteSpec(specs)


def evaluation(spec, name: str = "local"):
    """The engine side of a worker for ``spec`` (one task or a suite)."""
    return SuiteEvaluation(spec, name) if isinstance(spec, SuiteSpec) else Evaluation(spec, name)


class Evaluation:
    """The engine side of a worker: builds the task and engine, trains jobs."""

    def __init__(self, spec: EvalSpec, name: str = "local"):
        from optevo.proxy_tasks import get_task
        from optevo.proxy_tasks.engine import FastEngine, enable_compile_cache
        enable_compile_cache()
        plugins.load(spec.plugins)
        self.spec = spec
        self.name = name
        self.engine = FastEngine(get_task(spec.task, **spec.options), spec.steps, spec.buckets)
        self._optax = None

    def _engine_for(self, text: str):
        from optevo.proxy_tasks.baselines.specs import is_spec
        if not is_spec(text):
            return self.engine
        if self._optax is None:
            from optevo.proxy_tasks.optax_engine import OptaxEngine
            self._optax = OptaxEngine(self.engine.task, self.spec.steps)
        return self._optax

    def run(self, jobs: Sequence[Job]) -> List[Result]:
        """Train every job on its seeds (None: this task's fitness seeds) at its lr
        multiplier (None: 1); consecutive programs sharing both train in one engine call."""
        from optevo.dsl import parse
        out: List[Result] = []
        for (engine, seeds, scales, grid), group in _groups(jobs, self._engine_for):
            seeds = list(self.spec.seeds if seeds is None else seeds)
            if grid:  # every seed at every point, grid-major (Result.grid_point)
                base = 1.0 if scales is None else float(scales)
                scales = [base * g for g in grid for _ in seeds]
                seeds = seeds * len(grid)
            texts = [j.text for j in group]
            runs = engine.run(texts if engine is self._optax else [parse(x) for x in texts],
                              seeds, scales)
            out += [Result(j.id, [float(x) for x in r.losses], [bool(x) for x in r.diverged],
                           seeds, r.seconds, self.name) for j, r in zip(group, runs)]
        return out


def _groups(jobs: Sequence[Job], engine_for):
    """Runs of consecutive jobs with the same engine, seeds, lr multipliers and grid."""
    out = []
    for j in jobs:
        key = (engine_for(j.text), j.seeds, j.lr_scales, j.grid)
        if out and out[-1][0][0] is key[0] and out[-1][0][1:] == key[1:]:
            out[-1][1].append(j)
        else:
            out.append((key, [j]))
    return out


class SuiteEvaluation:
    """One :class:`Evaluation` per task of a suite: every job is trained on each task (its
    ``seeds``: None, one list for all, or one list per task; its ``lr_scales``: None, one
    float for all, or one per task); a result holds each task's part (``Result.tasks``)."""

    def __init__(self, spec: SuiteSpec, name: str = "local"):
        self.spec, self.name = spec, name
        self.parts = [Evaluation(s, name) for s in spec.tasks]

    def run(self, jobs: Sequence[Job]) -> List[Result]:
        n = len(self.parts)
        per_task = [part.run([_task_job(j, t, n) for j in jobs])
                    for t, part in enumerate(self.parts)]
        return [Result.of_parts(dataclasses.replace(rs[0], seconds=sum(r.seconds for r in rs)),
                                list(rs)) for rs in zip(*per_task)]


def _task_job(job: Job, t: int, n: int) -> Job:
    """Task ``t``'s share of a suite job: its own seeds and lr multiplier."""
    scales = job.lr_scales
    if isinstance(scales, (list, tuple)):
        if len(scales) != n:
            raise ValueError(f"{len(scales)} lr scales for a suite of {n} tasks")
        scales = scales[t]
    seeds = job.seeds
    if seeds is not None and isinstance(seeds[0], (list, tuple)):
        seeds = seeds[t]
    return dataclasses.replace(job, seeds=None if seeds is None else tuple(seeds),
                               lr_scales=scales)

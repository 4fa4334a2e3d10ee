"""Evaluation workers: in-process for debugging and deterministic runs, or Ray actors.

Each worker owns one fast engine (``optevo.proxy_tasks``), compiled once, and trains batches
of jobs. A Ray worker pins itself to one core: on 2 cores, pinned workers ran 1.7-2x faster
than unpinned workers sharing both cores. The driver never waits for all workers at once:
:meth:`RayPool.poll` returns whatever finished (``ray.wait``). A worker that dies is
replaced, and its in-flight batches are sent again.

Pools take :class:`~.jobs.Job` s and give back :class:`~.jobs.Result` s (``jobs.py``): a job
carries its seeds and learning-rate multiplier, and a job whose text starts with ``optax:``
names an optax baseline (``optevo.proxy_tasks.baselines.specs``) rather than a program.
Consecutive jobs of a batch with the same seeds and multipliers train in one engine call.
Every user of a pool (search, tuning, held-out, funnel) builds it with :func:`make_pool`.
"""

from __future__ import annotations

import dataclasses
import os
import re
import time
import warnings
from typing import Dict, List, Optional, Sequence, Tuple

from optevo.dsl.decay import ADDED  # the held-out check may add decoupled decay
from optevo.dsl.errors import OptevoError
from optevo.proxy_tasks.engine import buckets_for

from . import plugins
from .jobs import Job, Result
from .raylet import RaylWatch, close_watches

# A search's children are rarely under 16 live statements (the AdamW start has 10, its
# children grow), so its workers compile buckets from 16: one compile fewer per worker.
SEARCH_SMALLEST_BUCKET = 16


class WorkerError(OptevoError):
    """A worker that cannot start (its task, a plugin, its engine), or a lost Ray: one line."""


def _cause(e: BaseException) -> str:
    """The last ``SomeError: message`` line of a Ray error's text (the worker's own
    exception), without its module path; else the error's first line."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    errs = [ln for ln in lines if re.match(r"^[\w.]*(Error|Exception|Exit|Interrupt)\b", ln)]
    line = errs[-1] if errs else (lines[0] if lines else type(e).__name__)
    return re.sub(r"^(\w+\.)+(?=\w+(Error|Exception))", "", line)


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
            from optevo.proxy_tasks.engine import OptaxEngine
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


class InProcessPool:
    """Evaluates each batch at once, in the driver's process (``--workers 0``)."""

    def __init__(self, spec):
        self.evaluation = evaluation(spec, "local")
        self._done: List[Result] = []
        self.restarts = 0

    @property
    def free_slots(self) -> int:
        return 0 if self._done else 1

    @property
    def in_flight(self) -> int:
        return len(self._done)

    def submit(self, jobs: Sequence[Job]):
        self._done += self.evaluation.run(jobs)

    def poll(self, timeout: float = 0.0) -> List[Result]:
        done, self._done = self._done, []
        return done

    def release_workers(self):
        pass

    def shutdown(self):
        pass


def _ray_worker_class():
    import ray

    @ray.remote(num_cpus=1, max_restarts=0)
    class Worker:
        def __init__(self, spec, index: int, pin: bool):
            # one core per worker: XLA's own threads would only compete for it
            os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")
            self.core = None
            if pin and hasattr(os, "sched_setaffinity"):
                cores = sorted(os.sched_getaffinity(0))
                self.core = cores[index % len(cores)]
                os.sched_setaffinity(0, {self.core})
            self.evaluation = evaluation(spec, f"w{index}")

        def ready(self):
            node = ray.get_runtime_context().get_node_id()
            return {"pid": os.getpid(), "core": self.core, "node": node}

        def run(self, jobs):
            return self.evaluation.run(jobs)

    return Worker


REPLACE_WAIT = 20.0  # seconds a replacement worker may take to start before another is tried


class RayPool:
    """``n`` Ray actors, each with up to ``depth`` batches queued so it never idles. Where
    the pool started a local Ray, a :class:`RaylWatch` turns the loss of its raylet into a
    one-line :class:`WorkerError` within seconds instead of a hang."""

    def __init__(self, spec: EvalSpec, n: int, address: Optional[str] = None,
                 pin: bool = True, depth: int = 2):
        import ray
        self.ray = ray
        self.watch = None
        # Ray starts its processes with fork+exec, which is safe; the warning Python gives
        # for a fork in a multithreaded (JAX) process would only clutter the console
        warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called",
                                category=RuntimeWarning)
        if not ray.is_initialized():
            if address:
                ray.init(address=address, logging_level="ERROR", log_to_driver=False)
            else:
                # address="local": a Ray of its own, never a cluster that `ray start` (or
                # ray.cluster_utils) left on this machine, which ray.init() would join
                ray.init(address="local", num_cpus=max(n, os.cpu_count() or 1),
                         include_dashboard=False, logging_level="ERROR", log_to_driver=False)
                self.watch = RaylWatch.local(WorkerError)
        self.spec, self.pin, self.depth = spec, pin, depth
        self.Worker = _ray_worker_class()
        self.pending: Dict = {}  # ObjectRef -> (worker index, actor, jobs)
        self.restarts = 0
        self.workers = [self._start(i) for i in range(n)]
        try:
            self.nodes = [r["node"] for r in self.wait_ready(self.workers)]  # Ray node ids
        except BaseException:
            self.shutdown()
            raise

    def _start(self, index: int):
        return self.Worker.remote(self.spec, index, self.pin)

    def wait_ready(self, actors=None, timeout: Optional[float] = None):
        """Wait until ``actors`` (default all) have built their engines; a worker whose
        start-up raised (an unknown task, a plugin that fails to import) stops the run with
        its error as one line (:class:`WorkerError`), instead of being restarted forever.
        ``timeout``: Ray's ``GetTimeoutError`` after that many seconds (not converted)."""
        refs = [w.ready.remote() for w in (self.workers if actors is None else actors)]
        try:
            return self.ray.get(refs, timeout=timeout)
        except self.ray.exceptions.GetTimeoutError:
            raise
        except (self.ray.exceptions.RayError, KeyError, ValueError) as e:
            cause = _cause(e)
            hint = ("; a task registered in your own script is unknown to the workers: put it "
                    "in a module and list it under plugins: (or --import it)"
                    if "unknown task" in cause else "")
            raise WorkerError(f"a Ray worker failed to start: {cause}{hint}") from None

    def _load(self) -> List[int]:
        load = [0] * len(self.workers)
        for wi, *_ in self.pending.values():
            load[wi] += 1
        return load

    @property
    def free_slots(self) -> int:
        return sum(max(0, self.depth - x) for x in self._load())

    @property
    def in_flight(self) -> int:
        return len(self.pending)

    def submit(self, jobs: Sequence[Job]):
        if self.watch:
            self.watch.check()
        load = self._load()
        wi = min(range(len(load)), key=lambda i: load[i])
        jobs = list(jobs)
        ref = self.workers[wi].run.remote(jobs)
        self.pending[ref] = (wi, self.workers[wi], jobs)

    def poll(self, timeout: float = 1.0) -> List[Result]:
        if self.watch:
            self.watch.check()
        if not self.pending:
            return []
        ready, _ = self.ray.wait(list(self.pending), num_returns=1, timeout=timeout)
        if ready:  # take everything else that is already done, without waiting
            more, _ = self.ray.wait([r for r in self.pending if r not in ready],
                                    num_returns=len(self.pending) - len(ready), timeout=0)
            ready += more
        out = []
        for ref in ready:
            wi, actor, jobs = self.pending.pop(ref)
            try:
                out += self.ray.get(ref)
            except (self.ray.exceptions.RayActorError, self.ray.exceptions.WorkerCrashedError,
                    self.ray.exceptions.ObjectLostError):
                if self.workers[wi] is actor:  # not replaced yet by an earlier failure
                    self._replace(wi)
                self.submit(jobs)  # evaluated again on a live worker
        return out

    def _replace(self, wi: int):
        self.restarts += 1
        try:
            self.ray.kill(self.workers[wi])
        except Exception:
            pass
        # a replacement that cannot start stops the run; one waits here for a free CPU (a
        # cluster that lost a node: until a node joins). One not ready in REPLACE_WAIT s is
        # started again: Ray may place it on the node being lost, where it never starts
        while True:
            self.workers[wi] = self._start(wi)
            try:
                self.nodes[wi] = self.wait_ready([self.workers[wi]], REPLACE_WAIT)[0]["node"]
                return
            except self.ray.exceptions.GetTimeoutError:
                if self.watch:
                    self.watch.check()
                try:
                    self.ray.kill(self.workers[wi])
                except Exception:
                    pass
        # other batches queued on the dead actor fail too; they are resubmitted as they
        # surface, without replacing the new actor again

    def release_workers(self):
        """End the workers but keep Ray up (the funnel's next stage starts new ones)."""
        for w in self.workers:
            try:
                self.ray.kill(w)
            except Exception:
                pass
        self.workers, self.pending = [], {}

    def shutdown(self):
        """End the workers and the local Ray this pool started (every process of it)."""
        if self.watch and self.watch.lost:
            return  # Ray calls would block; the watcher ends the process if they do
        for w in self.workers:
            try:
                self.ray.kill(w)
            except Exception:
                pass
        close_watches()  # this pool's, and one an earlier pool of this Ray started
        self.ray.shutdown()


def make_pool(spec, workers: int, address: Optional[str] = None, pin: bool = True):
    """``workers`` Ray actors (joining the cluster at ``address``, or a local Ray), or the
    in-process pool for ``workers`` <= 0."""
    if workers <= 0:
        return InProcessPool(spec)
    return RayPool(spec, workers, address, pin)


def shutdown_ray():
    """End a Ray this process started and no pool holds any more (the funnel between pools)."""
    import sys
    if "ray" in sys.modules:
        import ray
        if ray.is_initialized():
            close_watches()
            ray.shutdown()


def wait_all(pool, timeout: float = 600.0) -> List[Result]:
    """Everything in flight, waiting for it; :class:`WorkerError` (one line) if jobs are
    still in flight after ``timeout`` seconds: a partial list is never returned as whole."""
    out, t0 = [], time.time()
    while pool.in_flight and time.time() - t0 < timeout:
        out += pool.poll(1.0)
    if pool.in_flight:
        raise WorkerError(f"{pool.in_flight} job(s) still in flight after {timeout:g} s; "
                          f"{len(out)} finished")
    return out

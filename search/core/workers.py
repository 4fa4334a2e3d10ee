"""Evaluation workers: in-process for debugging and deterministic runs, or Ray actors, each
holding one evaluation (``engines.py``: the spec a worker is built from, its engine).

A Ray worker pins itself to one core: on 2 cores, pinned workers ran 1.7-2x faster than
unpinned workers sharing both cores. The driver never waits for all workers at once:
:meth:`RayPool.poll` returns whatever finished (``ray.wait``). A worker that dies (its
process, or its whole node) is replaced without stopping the others: its in-flight batches
go to live workers (or wait for one), and the replacement takes work once it has started
(on a cluster that lost a node: once a node with a free CPU joins).
Every user of a pool (search, tuning, held-out, funnel) builds it with :func:`make_pool`.
"""

from __future__ import annotations

import math
import os
import re
import time
import warnings
from typing import Dict, List, Optional, Sequence

from .engines import (SEARCH_SMALLEST_BUCKET, EvalSpec, Evaluation,  # noqa: F401 (re-exported)
                      SuiteEvaluation, SuiteSpec, WorkerError, eval_spec, evaluation)
from .jobs import Job, Result
from .raylet import RaylWatch, close_watches


def _cause(e: BaseException) -> str:
    """The last ``SomeError: message`` line of a Ray error's text (the worker's own
    exception), without its module path; else the error's first line."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    errs = [ln for ln in lines if re.match(r"^[\w.]*(Error|Exception|Exit|Interrupt)\b", ln)]
    line = errs[-1] if errs else (lines[0] if lines else type(e).__name__)
    return re.sub(r"^(\w+\.)+(?=\w+(Error|Exception))", "", line)


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
            # several workers may share one GPU (optevo.search.cli.share_accelerator)
            os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
            self.core = None
            if pin and hasattr(os, "sched_setaffinity"):
                cores = sorted(os.sched_getaffinity(0))
                self.core = cores[index % len(cores)]
                os.sched_setaffinity(0, {self.core})
            self.evaluation = evaluation(spec, f"w{index}")

        def ready(self):
            node = ray.get_runtime_context().get_node_id()
            return {"pid": os.getpid(), "core": self.core, "node": node,
                    "gpus": [str(x) for x in ray.get_gpu_ids()]}

        def run(self, jobs):
            return self.evaluation.run(jobs)

    return Worker


def gpu_share(gpus: float, n: int) -> float:
    """The GPUs each of ``n`` workers asks Ray for on a cluster with ``gpus`` of them: an
    equal share, at most one (Ray hides the GPUs from an actor that asks for none), rounded
    down to Ray's 4 decimals so that the ``n`` shares fit; 0 without GPUs."""
    return math.floor(min(1.0, gpus / n) * 1e4) / 1e4 if gpus > 0 else 0.0


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
        self.gpu_share = gpu_share(ray.cluster_resources().get("GPU", 0.0), n)
        self.Worker = _ray_worker_class()
        self.pending: Dict = {}  # ObjectRef -> (worker index, actor, jobs)
        self.starting: Dict = {}  # a replacement's ready() ObjectRef -> worker index
        self._since: Dict[int, float] = {}  # worker index -> when its replacement started
        self.backlog: List[List[Job]] = []  # batches waiting for any worker to start
        self.restarts = 0
        self.workers = [self._start(i) for i in range(n)]
        try:
            self.nodes = [r["node"] for r in self.wait_ready(self.workers)]  # Ray node ids
        except BaseException:
            self.shutdown()
            raise

    def _start(self, index: int):
        actor = self.Worker.options(num_gpus=self.gpu_share) if self.gpu_share else self.Worker
        return actor.remote(self.spec, index, self.pin)

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
            raise self._start_error(e) from None

    @staticmethod
    def _start_error(e: BaseException) -> WorkerError:
        cause = _cause(e)
        hint = ("; a task registered in your own script is unknown to the workers: put it "
                "in a module and list it under plugins: (or --import it)"
                if "unknown task" in cause else "")
        return WorkerError(f"a Ray worker failed to start: {cause}{hint}")

    def _load(self) -> List[int]:
        """Batches queued per worker; a worker still starting counts as full."""
        load = [self.depth if wi in self.starting.values() else 0
                for wi in range(len(self.workers))]
        for wi, *_ in self.pending.values():
            load[wi] += 1
        return load

    @property
    def free_slots(self) -> int:
        return 0 if self.backlog else sum(max(0, self.depth - x) for x in self._load())

    @property
    def in_flight(self) -> int:
        return len(self.pending) + len(self.backlog)

    def submit(self, jobs: Sequence[Job]):
        if self.watch:
            self.watch.check()
        load = self._load()
        live = [i for i in range(len(load)) if i not in self.starting.values()]
        if not live:  # every worker is being replaced: the batch waits for one
            self.backlog.append(list(jobs))
            return
        wi = min(live, key=lambda i: load[i])
        jobs = list(jobs)
        ref = self.workers[wi].run.remote(jobs)
        self.pending[ref] = (wi, self.workers[wi], jobs)

    def poll(self, timeout: float = 1.0) -> List[Result]:
        if self.watch:
            self.watch.check()
        refs = list(self.pending) + list(self.starting)
        if not refs:
            return []
        ready, _ = self.ray.wait(refs, num_returns=1, timeout=timeout)
        if ready:  # take everything else that is already done, without waiting
            more, _ = self.ray.wait([r for r in refs if r not in ready],
                                    num_returns=len(refs) - len(ready), timeout=0)
            ready += more
        out = []
        for ref in ready:
            if ref in self.starting:
                self._started(ref)
                continue
            wi, actor, jobs = self.pending.pop(ref)
            try:
                out += self.ray.get(ref)
            except (self.ray.exceptions.RayActorError, self.ray.exceptions.WorkerCrashedError,
                    self.ray.exceptions.ObjectLostError):
                if self.workers[wi] is actor:  # not replaced yet by an earlier failure
                    self._replace(wi)
                self.submit(jobs)  # evaluated again on a live worker (or queued for one)
        self._restart_slow()
        while self.backlog and len(self.starting) < len(self.workers):
            self.submit(self.backlog.pop(0))
        return out

    def _replace(self, wi: int, again: bool = False):
        """Kill worker ``wi`` and start a replacement, without waiting for it: the other
        workers go on, and it takes work once its ``ready`` answers (:meth:`_started`).
        Other batches queued on the dead actor fail too; they are resubmitted as they
        surface, without replacing the new actor again. ``again``: the same replacement,
        tried again (not counted as another restart)."""
        self.restarts += not again
        try:
            self.ray.kill(self.workers[wi])
        except Exception:
            pass
        self.workers[wi] = self._start(wi)
        self.starting[self.workers[wi].ready.remote()] = wi
        self._since[wi] = time.time()

    def _started(self, ref):
        """A replacement's ``ready`` answered: it works from now on; if its start-up raised,
        the run stops (one line); if it died unstarted (placed on a node being lost), it is
        started again."""
        wi = self.starting.pop(ref)
        try:
            self.nodes[wi] = self.ray.get(ref)["node"]
        except self.ray.exceptions.RayActorError as e:
            if getattr(e, "actor_init_failed", True):
                raise self._start_error(e) from None
            self._replace(wi, again=True)
        except (self.ray.exceptions.RayError, KeyError, ValueError) as e:
            raise self._start_error(e) from None

    def _restart_slow(self):
        """A replacement not started within REPLACE_WAIT s is started again: Ray may have
        placed it on a node being lost, where it never starts; one waiting for a free CPU
        (a cluster that lost a node, until a node joins) only waits again."""
        now = time.time()
        for ref, wi in list(self.starting.items()):
            if now - self._since[wi] > REPLACE_WAIT:
                del self.starting[ref]
                self._replace(wi, again=True)

    def release_workers(self):
        """End the workers but keep Ray up (the funnel's next stage starts new ones)."""
        for w in self.workers:
            try:
                self.ray.kill(w)
            except Exception:
                pass
        self.workers, self.pending, self.starting, self.backlog = [], {}, {}, []

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

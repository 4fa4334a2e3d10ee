"""Regularized evolution over a pool of evaluation workers (the loop; its data is
``state.EvolutionState``).

In the shape of AutoML-Zero's ``regularized_evolution.cc``:

* :meth:`RegularizedEvolution.init`: calibrate the start program (its lr multiplier tuned
  on a log grid on the fitness seeds, each task's own for a suite: ``tuning.tune_tasks``);
  every child is then trained at that multiplier and scored relative to the tuned start
  (``scoring.Scorer``); the population is P copies of the start (or, on resume, load the
  checkpoint and replay the log lines written after it);
* :meth:`RegularizedEvolution.run`: while workers have free slots, :meth:`select` a parent
  (tournament of T), :meth:`mutate` it into a child, and :meth:`evaluate` batches of children
  whose hash is unknown; results join the population as they arrive, the oldest member
  leaves. A child whose hash is cached (or already in flight) takes that fitness without
  training. With a hurdle (``search.hurdle_seeds``) a new child trains on its first seeds,
  and only if it beats the population's ``hurdle_quantile`` there, on the rest.

Every child is logged (append-only) before the next checkpoint; a checkpoint is written
atomically every ``checkpoint.every_seconds``. A killed driver loses only the children in
flight, and resume trains no program twice.
"""

from __future__ import annotations

import math
import time
from typing import Dict, List, Optional

from optevo.dsl.canon import program_hash
from optevo.dsl.errors import OptevoError
from optevo.dsl.fingerprint import fingerprint
from optevo.dsl.library import find_program
from optevo.dsl.matrix_ops import set_searchable
from optevo.dsl.parse import parse
from optevo.proxy_tasks.fitness import normalize

from . import mutations
from .population import CacheEntry, Member, Population
from .rundir import Record, RunDir, RunDirError
from .scoring import Scorer, task_results, with_parts
from .state import Child, EvolutionState, check_resume
from .tuning import tune_tasks

CALIBRATION = dict(lo=-4, hi=8, max_extend=6)  # start's lr multipliers 2^-4..2^8, grown to 2^±14


class SearchError(OptevoError):
    """A search that cannot go on (e.g. a start program that diverges at every lr)."""


class RegularizedEvolution:
    """The search loop. ``cfg`` is a validated search config (``config.Config``); ``pool``
    a worker pool (``workers.make_pool``); ``progress`` is called with the loop now and
    then (``progress.Progress``)."""

    def __init__(self, cfg, run_dir, pool, progress=None):
        self.cfg = cfg
        self.rundir = RunDir(run_dir).create()
        self.pool = pool
        self.progress = progress
        self.weights = dict(cfg.search.mutations)
        self.task_weights = [t.weight for t in cfg.tasks]
        self.scorer = Scorer(self.task_weights[:1])  # a suite's is set by the calibration
        self.state: Optional[EvolutionState] = None
        self.pending: Dict[str, List[Child]] = {}  # hash in flight -> children waiting on it
        self.hash_of_id: Dict[int, str] = {}  # trained child id in flight -> its hash
        self.hurdle = cfg.search.hurdle_seeds  # None: every child trained on all its seeds
        self.cleared: Dict[int, Dict] = {}  # child id -> its hurdle result, rest in flight
        self.use_fingerprint = cfg.search.fingerprint  # a second cache key (dsl.fingerprint)
        set_searchable(cfg.search.matrix_ops)  # the driver draws mutations
        self.fp_in_flight: Dict[str, str] = {}  # fingerprint in flight -> hash in flight
        self.fp_of_hash: Dict[str, str] = {}
        self.worker_pids: Dict[str, int] = {}
        self.stalled = False
        self.stopped = False  # by a signal (run's ``stop``), before its budget was spent
        self._t0 = time.perf_counter()

    # --- clock ------------------------------------------------------------------------------
    def elapsed(self) -> float:
        """Seconds of search over every session of this run."""
        return self.state.elapsed + (time.perf_counter() - self._t0)

    @property
    def in_flight(self) -> int:
        return len(self.hash_of_id)

    def checkpoint(self):
        now = time.perf_counter()
        self.state.elapsed += now - self._t0
        self._t0 = now
        self.rundir.write_checkpoint(self.state.to_json())
        self.last_checkpoint = now

    # --- init -------------------------------------------------------------------------------
    def init(self, resume: bool = False):
        """A fresh state with the start program trained, or the checkpoint plus the log
        lines written after it."""
        saved = check_resume(self.rundir, self.cfg.search.population) if resume else None
        n_lines = self.rundir.repair_log()
        if resume and saved is None:
            if n_lines > 1:
                raise RunDirError(f"{self.rundir.path}: no checkpoint, but its log holds "
                                  f"{n_lines} records; nothing resumes from a log alone")
            # stopped before its first checkpoint: at most the start program was logged
            self.rundir.log.path.unlink(missing_ok=True)
            resume = False
        self.rundir.open_log()
        self._t0 = time.perf_counter()
        if not resume:
            self.state = EvolutionState.fresh(self.cfg.seed, self.cfg.search.population)
            self._evaluate_start()
            return
        self.state = saved
        if len(self.task_weights) > 1:
            self.scorer = Scorer(self.task_weights, self.state.task_baselines)
        for rec in self.rundir.records()[self.state.log_lines:n_lines]:
            self._replay(rec)
            self.state.log_lines += 1
            self.state.log_last_id = rec.id
        self.state.done = False  # a finished run goes on if its budget was raised
        self._t0 = time.perf_counter()

    def _evaluate_start(self):
        prog = find_program(self.cfg.search.start)
        child = Child(0, None, None, program_hash(prog), prog.text())
        self.state.next_id = 1
        lines = tune_tasks(self.pool, "start", child.program, len(self.cfg.tasks),
                           **CALIBRATION)
        for task, line in zip(self.cfg.tasks, lines):
            if not math.isfinite(line.loss):
                raise SearchError(f"the start program {self.cfg.search.start} diverges on "
                                  f"{task.name} at every lr multiplier from "
                                  f"{min(line.points):g} to {max(line.points):g}: nothing to "
                                  "normalize by")
        # each task at its own tuned multiplier
        parts = [task_results(line.results[line.best])[t] for t, line in enumerate(lines)]
        res = with_parts(dict(lines[0].results[lines[0].best], id=0), parts)
        if len(lines) > 1:
            self.state.task_baselines = [line.loss for line in lines]
            self.scorer = Scorer(self.task_weights, self.state.task_baselines)
            self.state.lr_scale = [line.best for line in lines]
            self.state.calibration = [line.to_json() for line in lines]
        else:
            self.state.lr_scale, self.state.calibration = lines[0].best, lines[0].to_json()
        fit = self.scorer(res)
        self.state.baseline = fit.value
        entry = CacheEntry(fit.value, 1.0, fit.stderr, False, 0)
        if self.hurdle:
            entry.hurdle = self.scorer(_first_seeds(res, self.hurdle)).value
        self.state.cache.put(child.hash, entry,
                             fingerprint(prog) if self.use_fingerprint else None)
        self._log(child, entry, cached=False, result=res, fit=fit)
        member = self._member(child, entry)
        self.state.population = Population(self.cfg.search.population,
                                           [member] * self.cfg.search.population)
        self.state.best = member
        self.state.n_trained = 1

    # --- select, mutate, evaluate -------------------------------------------------------------
    def select(self) -> Member:
        """Tournament selection: the best of T members drawn without replacement."""
        return self.state.population.tournament(self.state.rng, self.cfg.search.tournament)

    def mutate(self, parent: Member) -> Optional[Child]:
        """A valid child of ``parent`` that computes something else, or None if the mutation
        retries ran out (counted in ``failed_mutations``)."""
        s = self.state
        try:
            res = mutations.mutate(s.rng, parse(parent.program), parent.hash, self.weights,
                         program_hash, self.cfg.search.max_length,
                         self.cfg.search.max_mutation_tries, s.rejected)
        except mutations.MutationFailed:
            s.failed_mutations += 1
            return None
        s.n_generated += 1
        s.mutation_counts[res.mutation] += 1
        child = Child(s.next_id, parent.id, res.mutation, res.hash, res.child.text())
        s.next_id += 1
        return child

    def evaluate(self, budget_left: int) -> bool:
        """Draw children until one batch needs training and send it to the pool; children
        with a known (or in-flight) hash take that fitness on the spot. Returns whether a
        batch was sent."""
        batch, s = [], self.state
        for _ in range(50 * self.cfg.workers.batch):
            if len(batch) >= min(self.cfg.workers.batch, budget_left):
                break
            child = self.mutate(self.select())
            if child is None:
                continue
            entry, fp = s.cache.lookup(child.hash), None
            if entry is None and self.use_fingerprint and child.hash not in self.pending:
                fp = fingerprint(parse(child.program))
                entry = s.cache.lookup_fingerprint(fp)
                if entry is None and fp in self.fp_in_flight:
                    s.cache.misses -= 1  # a hit: it will share the in-flight result
                    s.cache.hits += 1
                    s.cache.fingerprint_hits += 1
                    self.pending[self.fp_in_flight[fp]].append(child)
                    continue
            if entry is not None:
                self._log(child, entry, cached=True, by_fingerprint=fp is not None)
                self._join(self._member(child, entry), trained=False)
            elif child.hash in self.pending:
                s.cache.misses -= 1  # counted as a hit: it will share the in-flight result
                s.cache.hits += 1
                self.pending[child.hash].append(child)
            else:
                if fp is not None:
                    self.fp_in_flight[fp], self.fp_of_hash[child.hash] = child.hash, fp
                self.pending[child.hash] = [child]
                self.hash_of_id[child.id] = child.hash
                batch.append((child.id, child.program))
        if batch:
            seeds = None if not self.hurdle else self._seeds(lambda n: range(self.hurdle))
            self.pool.submit(batch, seeds, self.state.lr_scale)
        return bool(batch)

    def _seeds(self, which):
        """Explicit seeds of a job: ``which(n)`` of each task's ``range(n)`` fitness seeds."""
        per_task = [list(which(t.seeds)) for t in self.cfg.tasks]
        return per_task[0] if len(per_task) == 1 else per_task

    def _hurdle(self, result: Dict) -> bool:
        """A child's result on the hurdle seeds: stop it there (its figure is worse than the
        population's ``hurdle_quantile``; returns True) or send it on to the rest."""
        fit = self.scorer(result)
        bar = self.state.population.hurdle_threshold(self.cfg.search.hurdle_quantile)
        if fit.diverged or fit.value > bar:
            return True
        self.cleared[result["id"]] = result
        self.pool.submit([(f"{result['id']}+", self._program_of(result["id"]))],
                         self._seeds(lambda n: range(self.hurdle, n)), self.state.lr_scale)
        return False

    def _program_of(self, ident: int) -> str:
        return next(c.program for c in self.pending[self.hash_of_id[ident]] if c.id == ident)

    # --- results join the population ------------------------------------------------------------
    def _member(self, child: Child, entry: CacheEntry) -> Member:
        return Member(child.id, child.parent, child.mutation, child.hash, child.program,
                      entry.loss, entry.normalized, entry.hurdle)

    def _join(self, member: Member, trained: bool):
        """A child joins the population (the oldest member leaves)."""
        s = self.state
        s.population.add(member)
        if trained:
            s.n_trained += 1
            s.since_improvement += 1
        else:
            s.n_cached += 1
        if s.best is None or member.loss < s.best.loss:
            s.best = member
            s.since_improvement = 0
        ra = self.cfg.search.restart_after
        if ra and s.since_improvement >= ra and s.best is not None:
            # restart: the population becomes copies of the best program so far
            s.population = Population(self.cfg.search.population,
                                      [s.best] * self.cfg.search.population)
            s.since_improvement = 0
            s.restarts += 1

    def _log(self, child: Child, entry: CacheEntry, cached: bool, result=None, fit=None,
             by_fingerprint: bool = False):
        fin = (lambda x: x if math.isfinite(x) else None)
        self.rundir.append(Record(
            child.id, child.parent, child.mutation, child.hash, child.program,
            fin(entry.loss), fin(entry.normalized), fin(entry.stderr), entry.diverged, cached,
            None if cached else result["worker"],
            0.0 if cached else round(result["seconds"], 4), round(self.elapsed(), 3),
            None if cached else [fin(x) for x in result["losses"]],
            [fin(x) for x in fit.task_means] if fit and self.scorer.suite else None,
            entry.hurdle, entry.stopped, by_fingerprint))
        self.state.log_lines += 1
        self.state.log_last_id = child.id

    def _apply(self, result: Dict):
        self._note_worker(result)
        hurdle, stopped = None, False
        if self.hurdle and isinstance(result["id"], str):  # the rest of a cleared child
            first = self.cleared.pop(int(result["id"][:-1]))
            hurdle = self.scorer(first).value
            result = _joined(first, result)
        elif self.hurdle:
            stopped = self._hurdle(result)
            if not stopped:
                return
            hurdle = self.scorer(result).value
            self.state.n_stopped += 1
        children = self.pending.pop(self.hash_of_id.pop(result["id"]))
        fit = self.scorer(result)
        entry = CacheEntry(fit.value, normalize(fit.value, self.state.baseline), fit.stderr,
                           fit.diverged, result["id"], len(children), hurdle, stopped)
        fp = self.fp_of_hash.pop(children[0].hash, None)
        self.fp_in_flight.pop(fp, None)
        self.state.cache.put(children[0].hash, entry, fp)
        for k, child in enumerate(children):
            self._log(child, entry, cached=k > 0, result=result, fit=fit,
                      by_fingerprint=child.hash != children[0].hash)
            self._join(self._member(child, entry), trained=k == 0)

    def _note_worker(self, result: Dict):
        """Keep RUN_DIR/workers.json (worker name -> pid) current, for users and tests."""
        name, pid = result.get("worker"), result.get("pid")
        if name and self.worker_pids.get(name) != pid:
            self.worker_pids[name] = pid
            self.rundir.write_workers(self.worker_pids)

    def _replay(self, rec: Record):
        """Apply one logged child that the checkpoint does not hold yet (resume)."""
        inf = (lambda x: math.inf if x is None else x)
        s = self.state
        if not rec.cached:
            s.cache.put(rec.hash, CacheEntry(inf(rec.loss), inf(rec.normalized),
                                             inf(rec.stderr), rec.diverged, rec.id,
                                             hurdle=rec.hurdle, stopped=rec.stopped),
                        fingerprint(parse(rec.program)) if self.use_fingerprint else None)
            s.n_stopped += rec.stopped
        else:
            s.cache.hits += 1
            s.cache.fingerprint_hits += rec.fingerprint_hit
        s.next_id = max(s.next_id, rec.id + 1)
        self._join(Member(rec.id, rec.parent, rec.mutation, rec.hash, rec.program,
                          inf(rec.loss), inf(rec.normalized), rec.hurdle),
                   trained=not rec.cached)

    # --- run --------------------------------------------------------------------------------
    def budget_left(self) -> int:
        max_evals = self.cfg.search.max_evals
        left = (max_evals - self.state.n_trained - self.in_flight) if max_evals else 10 ** 9
        limit = self.cfg.search.time_limit
        if limit is not None and self.elapsed() >= limit:
            return 0
        return left

    def run(self, resume: bool = False, stop=None) -> "RegularizedEvolution":
        """Run (or resume) the search until its budget is spent, or until ``stop``
        (``stopping.Stop``) is requested: then the step in progress ends whole, a final
        checkpoint is written and :attr:`stopped` is set (children in flight are not
        logged; a resume draws them again)."""
        self.init(resume)
        self.checkpoint()
        every = self.cfg.checkpoint.every_seconds
        s = self.state
        try:
            idle_fills = 0
            while not s.done:
                if stop is not None and stop.requested:
                    self.stopped = True
                    self.checkpoint()
                    break
                while self.pool.free_slots and self.budget_left() > 0:
                    if not self.evaluate(self.budget_left()):
                        idle_fills += 1
                        break
                    idle_fills = 0
                if idle_fills > 200 and not self.hash_of_id:
                    # every child drawn for a long while was cached: evolution is stuck
                    self.stalled = True
                    s.done = True
                try:
                    done = self.pool.poll(0.5)
                except OptevoError:  # workers lost (e.g. the local Ray): keep what is logged
                    self.checkpoint()
                    raise
                for _, results in done:
                    for r in results:
                        self._apply(r)
                if self.budget_left() <= 0 and not self.hash_of_id:
                    s.done = True
                if time.perf_counter() - self.last_checkpoint >= every:
                    self.checkpoint()
                if self.progress:
                    self.progress(self)
        finally:
            if s.done:
                self.checkpoint()
            self.rundir.close()
        return self


def _first_seeds(result: Dict, n: int) -> Dict:
    """``result`` cut to each task's first ``n`` seeds (the hurdle figure of a full run)."""
    return with_parts(result, [{k: r[k][:n] for k in ("losses", "diverged")}
                               for r in task_results(result)])


def _joined(first: Dict, rest: Dict) -> Dict:
    """The hurdle result and the rest of a child as one result over all its seeds (in order)."""
    return with_parts({**first, "seconds": first["seconds"] + rest["seconds"]},
                      [{k: a[k] + b[k] for k in ("losses", "diverged")}
                       for a, b in zip(task_results(first), task_results(rest))])

"""Regularized evolution over a pool of evaluation workers (the loop; its data is
``state.EvolutionState``).

In the shape of AutoML-Zero's ``regularized_evolution.cc`` (Real et al. 2020), with its
parts passed in by the caller (``run.build_search``): the run directory, the pool (the
evaluator), the scorer and the mutator (which owns the op table the search draws from).

* :meth:`RegularizedEvolution.init` (``start.py``): calibrate the start program
  (``tuning.calibrate_start``: its lr multiplier tuned on the fitness seeds, each task's own
  for a suite, then its weight decay); every child is then trained at that multiplier and
  scored relative to the tuned start; the population is P copies of the start with its decay
  constant tuned. On resume: the checkpoint, then the log lines written after it.
* :meth:`RegularizedEvolution.run`: while workers have free slots, :meth:`select` a parent
  (tournament of T), :meth:`mutate` it into a child, and :meth:`evaluate` batches of children
  whose hash is unknown; :meth:`apply` takes each result back: the child is logged and joins
  the population (``EvolutionState.join``), the oldest member leaves. A child whose hash
  (or fingerprint) is cached or already in flight takes that fitness without training
  (``inflight.InFlight``). With a hurdle (``hurdle.Hurdle``) a new child trains on its first
  seeds, and only if it beats the population's ``hurdle_quantile`` there, on the rest.
  With ``search.lr_grid`` > 1 (``lr_grid.LrGrid``) a child trains at a few lr multipliers
  around its parent's; its best point is its fitness and the multiplier it passes on.

Every child is logged (append-only, :meth:`log`) before the next checkpoint; a checkpoint is
written atomically every ``checkpoint.every_seconds``. A killed driver loses only the
children in flight, and resume trains no program twice. A search whose draws are all cached
for a long while ends as ``stalled`` (``summary.json`` says so); one that can never draw or
score another child (``state.cannot_go_on``: the tuned start's fitness not positive and
finite, or no member with a finite fitness left once the children in flight are back) ends
as :attr:`halted`, with its final checkpoint.
"""

from __future__ import annotations

import math
import time
from typing import Optional

from optevo.dsl.canon import program_hash
from optevo.dsl.errors import OptevoError
from optevo.dsl.fingerprint import fingerprint
from optevo.dsl.parse import parse
from optevo.proxy_tasks.fitness import normalize

from .hurdle import Hurdle
from .seeding import Seeder
from .inflight import InFlight
from .jobs import CHILD, Job, JobId, Result
from .lr_grid import LrGrid
from .mutations import MutationFailed
from .population import CacheEntry, Member, NoFiniteMember
from .rundir import Record
from .start import begin, open_state
from .start import calibrated_start  # noqa: F401 (re-exported)
from .state import EvolutionState, cannot_go_on

STALL_FILLS = 200  # rounds in a row that drew only cached children, nothing in flight


def _fin(x):
    return x if x is not None and math.isfinite(x) else None


def record(child: Member, entry: CacheEntry, result: Optional[Result], suite_fit,
           elapsed: float, by_fingerprint: bool = False) -> Record:
    """The log's record of ``child``: trained for ``result``, or cached (no result);
    ``suite_fit``: a suite's fitness of it (each task's loss is logged), else None."""
    return Record(
        id=child.id, parent=child.parent, mutation=child.mutation, hash=child.hash,
        program=child.program, loss=_fin(entry.loss), normalized=_fin(entry.normalized),
        stderr=_fin(entry.stderr), diverged=entry.diverged, cached=result is None,
        worker=result and result.worker, seconds=round(result.seconds, 4) if result else 0.0,
        time=round(elapsed, 3), losses=result and [_fin(x) for x in result.losses],
        task_losses=[_fin(x) for x in suite_fit.task_means] if suite_fit else None,
        hurdle=entry.hurdle, stopped=entry.stopped, fingerprint_hit=by_fingerprint,
        lr_mult=entry.lr_mult, island=child.island)


class RegularizedEvolution:
    """The search loop. ``cfg``: a validated search config (``config.Config``); ``rundir``
    (``rundir.RunDir``), ``pool`` (``workers.make_pool``), ``scorer`` (``scoring.Scorer``)
    and ``mutator`` (``mutations.Mutator``) come from the caller; ``progress`` is called
    with the loop now and then (``progress.Progress``)."""

    def __init__(self, cfg, rundir, pool, scorer, mutator, progress=None):
        self.cfg, self.rundir, self.pool = cfg, rundir.create(), pool
        self.scorer, self.mutator, self.progress = scorer, mutator, progress
        s = cfg.search
        self.hurdle = Hurdle(s.hurdle_seeds, s.hurdle_quantile, [t.seeds for t in cfg.tasks]) \
            if s.hurdle_seeds else None
        self.flight, self.grid = InFlight(), LrGrid(s.lr_grid, s.lr_grid_ratio)
        self.state: Optional[EvolutionState] = None  # made by init
        self.stalled = self.stopped = self.starved = False  # see run and select
        self.halted: Optional[str] = None  # why the search cannot go on (state.cannot_go_on)
        self.seeder: Optional[Seeder] = None  # search.seed_population (made by init)
        self._t0 = self.last_checkpoint = time.perf_counter()

    # --- clock and checkpoints ------------------------------------------------------------
    def elapsed(self) -> float:
        """Seconds of search over every session of this run."""
        return self.state.elapsed + (time.perf_counter() - self._t0)

    def checkpoint(self):
        now = time.perf_counter()
        self.state.elapsed += now - self._t0
        self._t0 = self.last_checkpoint = now
        self.rundir.write_checkpoint(self.state.to_json())

    # --- init -----------------------------------------------------------------------------
    def init(self, resume: bool = False):
        """A fresh state with the start program calibrated, or the checkpoint plus the log
        lines written after it (``start.open_state``, ``start.begin``)."""
        self.state, fresh = open_state(self.cfg, self.rundir, self.fingerprint_of, resume)
        self.rundir.open_log(self.state.run_id)  # a new log's first line names the run
        self._t0 = time.perf_counter()
        if fresh:
            begin(self)
        elif self.state.task_baselines:
            self.scorer = self.scorer.with_baselines(self.state.task_baselines)
        self.seeder = Seeder(self.state) if self.state.seed_list else None

    def fingerprint_of(self, program: str) -> Optional[str]:  # the second cache key, if on
        return fingerprint(parse(program)) if self.cfg.search.fingerprint else None

    # --- select, mutate, evaluate ---------------------------------------------------------
    def select(self) -> Optional[Member]:
        """Tournament selection: the best of T members drawn without replacement (None, and
        :attr:`starved` set, where no member has a finite fitness)."""
        try:
            s = self.state  # islands take turns to give the next parent
            return s.population.tournament(s.rng, self.cfg.search.tournament,
                                           s.n_generated % s.population.islands)
        except NoFiniteMember:
            self.starved = True

    def mutate(self, parent: Member) -> Optional[Member]:
        """A valid child of ``parent`` that computes something else, or None if the mutation
        retries ran out (counted in ``failed_mutations``); first, the seeds of
        ``search.seed_population`` (``seeding.py``), as children of no parent."""
        s = self.state
        seed = self.seeder.child(parent.island) if self.seeder else None
        if seed is not None:
            return seed
        try:
            res = self.mutator(s.rng, parse(parent.program), parent.hash, program_hash,
                               s.rejected)
        except MutationFailed:
            s.failed_mutations += 1
            return None
        s.n_generated += 1
        s.mutation_counts[res.mutation] += 1
        s.next_id += 1
        return Member(s.next_id - 1, parent.id, res.mutation, res.hash, res.child.text(),
                      lr_mult=parent.lr_mult, island=parent.island)  # both inherited

    def evaluate(self, budget_left: int) -> bool:
        """Draw children until one batch needs training and send it to the pool; children
        with a known (or in-flight) hash take that fitness. Returns whether a batch was sent."""
        batch, s, n = [], self.state, min(self.cfg.workers.batch, budget_left)
        for _ in range(50 * self.cfg.workers.batch):
            if len(batch) >= n:
                break
            parent = self.select()
            if parent is None:
                break
            child = self.mutate(parent)
            if child is None:
                continue
            entry, fp = s.cache.get(child.hash), None
            if entry is None and self.flight.shared(child.hash, None) is None:
                fp = self.fingerprint_of(child.program)
                entry = None if fp is None else s.cache.get_by_fingerprint(fp)
            shared = None if entry else self.flight.shared(child.hash, fp)
            s.cache.count(entry or shared, by_fingerprint=(entry or shared) and fp is not None)
            if entry is not None:
                self.log(child, entry, by_fingerprint=fp is not None)
                self.state.join(child.scored(entry), False, self.cfg.search.restart_after)
            elif shared is not None:
                self.flight.wait(shared, child)
            else:
                self.flight.start(child, fp)
                batch.append(child)
        if batch:
            seeds = self.hurdle.first_seeds() if self.hurdle else None
            self.pool.submit([Job(JobId.child(c.id), c.program, seeds,
                                  self.grid.scales(s.lr_scale, c.lr_mult), self.grid.points)
                              for c in batch])
        return bool(batch)

    def apply(self, result: Result):
        """A worker's result: the children trained (and waiting) for it join the population,
        or, past a hurdle, the rest of the child's seeds go to training."""
        self.rundir.note_worker(result.worker, result.pid)
        ident, hurdle, stopped = result.id.subject, None, False
        if self.hurdle and result.id.purpose != CHILD:  # the rest of a cleared child
            first = self.flight.cleared.pop(ident)
            hurdle, result = self.scorer(first).value, first.joined(result)
        elif self.hurdle:
            if not self.hurdle.stops(result, self.state.population, self.scorer):
                self.flight.cleared[ident] = result
                self.pool.submit([Job(JobId.child(ident, rest=True), self.flight.program_of(
                    ident), self.hurdle.rest_seeds(), self.state.lr_scale)])
                return
            hurdle, stopped = self.scorer(result).value, True
            self.state.n_stopped += 1
        children, fp = self.flight.finish(ident)
        result, factor, fit = self.grid.best(result, self.scorer)
        entry = CacheEntry(fit.value, normalize(fit.value, self.state.baseline), fit.stderr,
                           fit.diverged, ident, hurdle, stopped, children[0].lr_mult * factor)
        self.state.cache.put(children[0].hash, entry, fp)
        for k, child in enumerate(children):
            self.log(child, entry, result if k == 0 else None, fit,
                     by_fingerprint=child.hash != children[0].hash)
            self.state.join(child.scored(entry), k == 0, self.cfg.search.restart_after)

    # --- the log --------------------------------------------------------------------------
    def log(self, child: Member, entry: CacheEntry, result: Optional[Result] = None,
            fit=None, by_fingerprint: bool = False):
        """Append ``child`` to the log: trained for ``result``, or cached (no result)."""
        self.rundir.append(record(child, entry, result, fit if self.scorer.suite else None,
                                  self.elapsed(), by_fingerprint))
        self.state.log_lines, self.state.log_last_id = self.state.log_lines + 1, child.id

    # --- run ------------------------------------------------------------------------------
    def budget_left(self) -> int:
        limit, max_evals = self.cfg.search.time_limit, self.cfg.search.max_evals
        if limit is not None and self.elapsed() >= limit:
            return 0
        return max_evals - self.state.n_trained - len(self.flight) if max_evals else 10 ** 9

    def run(self, resume: bool = False, stop=None) -> "RegularizedEvolution":
        """Run (or resume) the search until its budget is spent, or until ``stop`` (``Stop``)
        is requested: the step in progress ends whole, a final checkpoint is written and
        :attr:`stopped` is set (children in flight are not logged; a resume redraws them); or
        until it cannot go on (:attr:`halted`, the reason; a final checkpoint)."""
        self.init(resume)
        self.checkpoint()
        s, idle_fills = self.state, 0
        self.halted = cannot_go_on(s)
        s.done = s.done or bool(self.halted)
        try:
            while not s.done:
                if stop is not None and stop.requested:
                    self.stopped = True
                    break
                self.starved = False
                while self.pool.free_slots and self.budget_left() > 0:
                    if not self.evaluate(self.budget_left()):
                        idle_fills += 1
                        break
                    idle_fills = 0
                self.stalled = idle_fills > STALL_FILLS and not len(self.flight)
                for r in self._poll():
                    self.apply(r)
                if self.starved and not len(self.flight):
                    self.halted = cannot_go_on(s)
                s.done = bool(self.halted) or self.stalled or (self.budget_left() <= 0
                                                               and not len(self.flight))
                if time.perf_counter() - self.last_checkpoint >= self.cfg.checkpoint.every_seconds:
                    self.checkpoint()
                if self.progress:
                    self.progress(self)
        finally:
            if s.done or self.stopped:
                self.checkpoint()
            self.rundir.close()
        return self

    def _poll(self):
        try:
            return self.pool.poll(0.5)
        except OptevoError:  # workers lost (e.g. the local Ray): keep what is logged
            self.checkpoint()
            raise

"""The evolution state: plain data that the loop (``evolution.py``) reads and changes.

Everything a search needs to continue after a kill is here, and nothing else: the population
(regularized evolution's queue), the equivalence cache (hash -> fitness), the RNG, the id
counter and the statistics. :meth:`EvolutionState.to_json` / :meth:`from_json` round-trip it
exactly (the RNG state included), which is what ``checkpoint.json`` holds. Children in
flight are not part of the state: a killed driver loses them, and none is ever logged twice.
"""

from __future__ import annotations

import collections
import dataclasses
import math
from typing import Callable, Dict, List, Optional, Union

import numpy as np

from optevo.dsl.errors import OptevoError
from optevo.dsl.parse import parse

from .population import CacheEntry, FitnessCache, Member, Population
from .rundir import CHECKPOINT, Record, RunDir, RunDirError

CHECKPOINT_VERSION = 2  # 1: cache entries held a count of sharing children (read too)
VERSIONS = (1, 2)


@dataclasses.dataclass
class EvolutionState:
    population: Population
    cache: FitnessCache
    rng: np.random.Generator
    next_id: int = 0
    n_trained: int = 0
    n_cached: int = 0
    n_generated: int = 0
    n_stopped: int = 0  # trained children stopped at the hurdle (search.hurdle_seeds)
    failed_mutations: int = 0
    rejected: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    mutation_counts: collections.Counter = dataclasses.field(
        default_factory=collections.Counter)
    baseline: float = math.nan  # the tuned start's loss: normalized = loss / baseline
    lr_scale: Union[float, List[float]] = 1.0  # the start's tuned lr multiplier (one per
    # task of a suite): every child's lr input is scaled by it
    task_baselines: Optional[List[float]] = None  # a suite: the tuned start's loss per task
    calibration: Optional[Dict] = None  # the start's lr line search (tuning.Tuned.to_json)
    decay: Optional[Dict] = None  # the start's decay tuning: factor, added, line
    best: Optional[Member] = None
    since_improvement: int = 0
    restarts: int = 0
    elapsed: float = 0.0  # seconds of search before the current session
    log_lines: int = 0  # records of evaluations.jsonl this state includes
    log_last_id: Optional[int] = None  # the id of the last of them (checked on resume)
    done: bool = False

    @classmethod
    def fresh(cls, seed: int, population_size: int) -> "EvolutionState":
        return cls(Population(population_size), FitnessCache(), np.random.default_rng(seed))

    def join(self, member: Member, trained: bool, restart_after: Optional[int] = None):
        """A child joins the population (the oldest member leaves); after ``restart_after``
        trained children without improvement, the population becomes copies of the best."""
        self.population.add(member)
        self.n_trained, self.n_cached = self.n_trained + trained, self.n_cached + (not trained)
        self.since_improvement += trained
        if self.best is None or member.loss < self.best.loss:
            self.best, self.since_improvement = member, 0
        if restart_after and self.since_improvement >= restart_after:
            self.population = Population(self.population.size,
                                         [self.best] * self.population.size)
            self.since_improvement, self.restarts = 0, self.restarts + 1

    def replay(self, rec: Record, fingerprint_of: Callable[[str], Optional[str]],
               restart_after: Optional[int] = None):
        """Apply one logged child that the checkpoint does not hold yet (resume), exactly as
        the loop applied it: its cache entry (a trained one), its count, its place."""
        inf = (lambda x: math.inf if x is None else x)
        if not rec.cached:
            self.cache.put(rec.hash, CacheEntry(inf(rec.loss), inf(rec.normalized),
                                                inf(rec.stderr), rec.diverged, rec.id,
                                                rec.hurdle, rec.stopped, rec.lr_mult),
                           fingerprint_of(rec.program))
            self.n_stopped += rec.stopped
        self.cache.count(hit=rec.cached, by_fingerprint=rec.fingerprint_hit)
        self.next_id = max(self.next_id, rec.id + 1)
        self.join(Member(rec.id, rec.parent, rec.mutation, rec.hash, rec.program,
                         inf(rec.loss), inf(rec.normalized), rec.hurdle, rec.lr_mult),
                  not rec.cached, restart_after)
        self.log_lines, self.log_last_id = self.log_lines + 1, rec.id

    def to_json(self) -> Dict:
        return {
            "version": CHECKPOINT_VERSION, "next_id": self.next_id,
            "n_trained": self.n_trained, "n_cached": self.n_cached,
            "n_generated": self.n_generated, "n_stopped": self.n_stopped,
            "rejected": dict(self.rejected),
            "mutations": dict(self.mutation_counts), "rng": self.rng.bit_generator.state,
            "population": self.population.to_json(), "cache": self.cache.to_json(),
            "baseline": self.baseline, "lr_scale": self.lr_scale,
            "task_baselines": self.task_baselines,
            "calibration": self.calibration, "decay": self.decay,
            "best": self.best.to_json() if self.best else None,
            "since_improvement": self.since_improvement, "restarts": self.restarts,
            "elapsed": self.elapsed, "log_lines": self.log_lines,
            "log_last_id": self.log_last_id,
            "failed_mutations": self.failed_mutations, "done": self.done,
        }

    @classmethod
    def from_json(cls, s: Dict, population_size: int) -> "EvolutionState":
        """The state of a checkpoint; ``population_size`` comes from the (possibly resumed
        with a new budget) config. Raises ValueError for an unknown checkpoint version, and
        KeyError, TypeError, ... for a damaged one (``evolution.check_resume`` turns them into
        one line)."""
        if not isinstance(s, dict) or s.get("version") not in VERSIONS:
            raise ValueError(f"checkpoint version {s.get('version') if isinstance(s, dict) else None}"
                             " is not supported")
        rng = np.random.default_rng()
        rng.bit_generator.state = s["rng"]
        return cls(
            population=Population(population_size,
                                  [Member.from_json(m) for m in s["population"]]),
            cache=FitnessCache.from_json(s["cache"], s["version"]), rng=rng, next_id=s["next_id"],
            n_trained=s["n_trained"], n_cached=s["n_cached"], n_generated=s["n_generated"],
            n_stopped=s.get("n_stopped", 0),
            failed_mutations=s.get("failed_mutations", 0),
            rejected=collections.Counter(s["rejected"]),
            mutation_counts=collections.Counter(s["mutations"]), baseline=s["baseline"],
            lr_scale=s.get("lr_scale", 1.0), calibration=s.get("calibration"),
            decay=s.get("decay"),
            task_baselines=s.get("task_baselines"),
            best=Member.from_json(s["best"]) if s["best"] else None,
            since_improvement=s["since_improvement"], restarts=s["restarts"],
            elapsed=float(s["elapsed"]), log_lines=int(s["log_lines"]),
            log_last_id=s.get("log_last_id"), done=bool(s.get("done", False)))


_DAMAGE = (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError)


def check_resume(rundir: RunDir, population_size: int) -> Optional[EvolutionState]:
    """The checkpoint of ``rundir`` as a state, checked against its log, or None if it has no
    checkpoint; a damaged checkpoint, or a log that lacks records the checkpoint counts (a
    torn or cut line it already included), is a one-line :class:`RunDirError`: resume never
    drifts from what the log holds. Reads only; called before anything is started."""
    saved = rundir.read_checkpoint()
    if saved is None:
        return None
    path = rundir.file(CHECKPOINT)
    try:
        state = EvolutionState.from_json(saved, population_size)
        for m in list(state.population.members) + ([state.best] if state.best else []):
            if not isinstance(m.program, str) or not isinstance(m.id, int):
                raise TypeError(f"member {m.id!r}: program or id of the wrong type")
            parse(m.program)
    except OptevoError as e:
        raise RunDirError(f"{path}: damaged checkpoint ({e})") from None
    except _DAMAGE as e:
        raise RunDirError(f"{path}: damaged checkpoint ({type(e).__name__}: {e}); start a "
                          "new run, or restore the file") from None
    records = rundir.records()  # a torn last line is not counted
    n = len(records)
    if n < state.log_lines:
        raise RunDirError(f"{rundir.log.path}: holds {n} complete records but the checkpoint "
                          f"counts {state.log_lines}: the log lost records the checkpoint "
                          "includes; nothing resumes from a log behind its checkpoint")
    if state.log_last_id is not None and state.log_lines and \
            records[state.log_lines - 1].id != state.log_last_id:
        raise RunDirError(f"{rundir.log.path}: record {state.log_lines} has id "
                          f"{records[state.log_lines - 1].id}, the checkpoint's last is "
                          f"{state.log_last_id}: the log does not match its checkpoint")
    return state


def resumed(rundir: RunDir, population_size: int,
            fingerprint_of: Callable[[str], Optional[str]],
            restart_after: Optional[int] = None) -> Optional[EvolutionState]:
    """The state of a run to resume: its checkpoint (:func:`check_resume`) with the log lines
    written after it replayed, or None where the run stopped before its first checkpoint
    (during the start's calibration: at most the start was logged, and it starts again)."""
    saved = check_resume(rundir, population_size)
    n_lines = rundir.repair_log()
    if saved is None:
        if n_lines > 1:
            raise RunDirError(f"{rundir.path}: no checkpoint, but its log holds {n_lines} "
                              "records; nothing resumes from a log alone")
        rundir.log.path.unlink(missing_ok=True)
        return None
    for rec in rundir.records()[saved.log_lines:n_lines]:
        saved.replay(rec, fingerprint_of, restart_after)
    saved.done = False  # a finished run goes on if its budget was raised
    return saved

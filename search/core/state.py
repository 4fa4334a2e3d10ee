"""The evolution state: plain data that the loop (``evolution.py``) reads and changes.

Everything a search needs to continue after a kill is here, and nothing else: the population
(regularized evolution's queue), the equivalence cache (hash -> fitness), the RNG, the id
counter and the statistics. :meth:`EvolutionState.to_json` / :meth:`from_json` round-trip it
exactly (the RNG state included), which is what ``checkpoint.json`` holds, with the run's id
(``run.json``). Children in flight are not part of the state: a killed driver loses them, and
none is ever logged twice.

Resume trusts nothing it did not write (:func:`check_resume`): the checkpoint, the log's first
line and ``run.json`` must name the same run; the checkpoint's counts must be its own
(``n_trained + n_cached == log_lines``, every logged child counted once), its record count and
last id those of the log, its members the log's records; no id may be logged twice. Anything
else is a one-line :class:`RunDirError`, raised before any file is touched. A search that can
never draw or score another child (:func:`cannot_go_on`) stops with a one-line
:class:`CannotGoOn`, and its resume says the same line.
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
from .seeding import SEED
from .rundir import CHECKPOINT, Record, RunDir, RunDirError

CHECKPOINT_VERSION = 3  # 1: cache entries held a count of sharing children; 3: the run id
VERSIONS = (1, 2, 3)  # 1 and 2 (no run id) resume a run written before run ids


class CannotGoOn(OptevoError):
    """A search that can never draw or score another child (one line, see
    :func:`cannot_go_on`): it stops with a final checkpoint and a summary that says why."""


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
    run_id: Optional[str] = None  # the run's id (run.json); None: written before run ids
    seed_list: List[str] = dataclasses.field(default_factory=list)  # search.seed_population
    seeded: int = 0  # seeded children logged (seeding.py)
    migrate_every: int = 0  # search.islands: children joined between migrations (0: never)
    migrant: str = "best"  # search.migrant: each island's best or a random member
    migrations: int = 0

    @classmethod
    def fresh(cls, seed: int, population_size: int, islands: int = 1) -> "EvolutionState":
        return cls(Population(population_size, islands=islands), FitnessCache(),
                   np.random.default_rng(seed))

    def begin(self, start: Member, cal, baseline: float):
        """The state of a new run once its start program was calibrated (``cal``: a
        ``tuning.Calibration``), scored (``start``, its fitness ``baseline``) and logged: the
        population is P copies of it."""
        self.lr_scale, self.task_baselines, self.calibration = (cal.lr_scale, cal.task_baselines,
                                                                cal.lines)
        self.decay, self.baseline, self.next_id = cal.decay, baseline, 1
        self.population = Population.filled(self.population.size, start,
                                            self.population.islands)
        self.best, self.n_trained = start, 1

    def join(self, member: Member, trained: bool, restart_after: Optional[int] = None):
        """A child joins the population (the oldest member leaves); after ``restart_after``
        trained children without improvement, the population becomes copies of the best."""
        self.population.add(member)
        self.seeded += member.mutation == SEED
        self.n_trained, self.n_cached = self.n_trained + trained, self.n_cached + (not trained)
        if self.migrate_every and (self.n_trained + self.n_cached) % self.migrate_every == 0:
            self.migrations += bool(self.population.migrate(self.rng, self.migrant))
        self.since_improvement += trained
        if self.best is None or member.loss < self.best.loss:
            self.best, self.since_improvement = member, 0
        if restart_after and self.since_improvement >= restart_after:
            self.population = Population.filled(self.population.size, self.best,
                                                self.population.islands)
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
                         inf(rec.loss), inf(rec.normalized), rec.hurdle, rec.lr_mult,
                         rec.island),
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
            "seed_list": self.seed_list, "seeded": self.seeded,
            "migrate_every": self.migrate_every, "migrant": self.migrant,
            "migrations": self.migrations,
            "log_last_id": self.log_last_id,
            "failed_mutations": self.failed_mutations, "done": self.done,
            "run_id": self.run_id,
        }

    @classmethod
    def from_json(cls, s: Dict, population_size: int) -> "EvolutionState":
        """The state of a checkpoint; ``population_size`` comes from the (possibly resumed
        with a new budget) config. Raises ValueError for an unknown checkpoint version, and
        KeyError, TypeError, ... for a damaged one (:func:`check_resume` turns them into one
        line)."""
        if not isinstance(s, dict) or s.get("version") not in VERSIONS:
            raise ValueError(f"checkpoint version {s.get('version') if isinstance(s, dict) else None}"
                             " is not supported")
        rng = np.random.default_rng()
        rng.bit_generator.state = s["rng"]
        return cls(
            population=_population(population_size, s["population"]),
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
            log_last_id=s.get("log_last_id"), done=bool(s.get("done", False)),
            run_id=_text_or_none(s.get("run_id"), "run_id"),
            seed_list=[str(x) for x in s.get("seed_list", [])], seeded=int(s.get("seeded", 0)),
            migrate_every=int(s.get("migrate_every", 0)), migrant=str(s.get("migrant", "best")),
            migrations=int(s.get("migrations", 0)))


def _population(size: int, rows) -> Population:
    """The checkpoint's population: its members on the islands they name."""
    members = [Member.from_json(m) for m in rows]
    return Population(size, members, 1 + max((m.island for m in members), default=0))


def _text_or_none(v, key: str):
    if v is not None and not isinstance(v, str):
        raise TypeError(f"{key} must be text or null, got {type(v).__name__}")
    return v


_DAMAGE = (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError)


def cannot_go_on(state: EvolutionState) -> Optional[str]:
    """Why the search of ``state`` can never draw or score another child, or None: the tuned
    start's fitness is not a positive finite number (every child is scored relative to it),
    or no member of the population has a finite fitness (only members with one are parents,
    and only children of parents join)."""
    b = state.baseline
    if not (isinstance(b, (int, float)) and math.isfinite(b) and b > 0):
        return (f"the tuned start's fitness is {b!r}, and every child is scored relative to "
                "it (loss / the start's): use a task whose loss at the start is positive and "
                "finite")
    if not any(math.isfinite(m.loss) for m in state.population.members):
        return ("no member of its population has a finite fitness (each diverged or scored "
                "NaN), so no parent can ever be drawn; start a new run, e.g. with a larger "
                "search.population or other task weights")
    return None


def halt_line(path, reason: str) -> str:
    """The one line of :class:`CannotGoOn` for the run in ``path``."""
    return f"{path}: the search cannot go on: {reason}"


def check_resume(rundir: RunDir, population_size: int,
                 fingerprint_of: Callable[[str], Optional[str]] = lambda program: None,
                 restart_after: Optional[int] = None) -> Optional[EvolutionState]:
    """The state to resume ``rundir`` from: its checkpoint, checked against ``run.json`` and
    the log (module doc), with the log lines written after it replayed exactly as the loop
    applied them; or None where the run stopped before its first checkpoint (during the
    start's calibration: at most the start was logged, and it starts again). Reads only: a
    refusal (a one-line :class:`RunDirError`, or :class:`CannotGoOn`) leaves every file as it
    was. A torn last line of the log is not counted (``resumed`` drops it)."""
    run_id = rundir.run_id()
    records = rundir.records()
    _check_log(rundir, records, run_id)
    saved = rundir.read_checkpoint()
    if saved is None:
        if len(records) > 1:
            raise RunDirError(f"{rundir.path}: no checkpoint, but its log holds {len(records)} "
                              "records; nothing resumes from a log alone")
        return None
    path = rundir.file(CHECKPOINT)
    try:
        state = EvolutionState.from_json(saved, population_size)
        for m in list(state.population.members) + ([state.best] if state.best else []):
            if not isinstance(m.program, str) or not isinstance(m.id, int):
                raise TypeError(f"member {m.id!r}: program or id of the wrong type")
            parse(m.program)
        _check_against_log(rundir, state, records, run_id)
        for rec in records[state.log_lines:]:
            state.replay(rec, fingerprint_of, restart_after)
    except RunDirError:
        raise
    except OptevoError as e:
        raise RunDirError(f"{path}: damaged checkpoint ({e})") from None
    except _DAMAGE as e:
        raise RunDirError(f"{path}: damaged checkpoint ({type(e).__name__}: {e}); start a "
                          "new run, or restore the file") from None
    reason = cannot_go_on(state)
    if reason:
        raise CannotGoOn(halt_line(rundir.path, reason))
    return state


def _check_log(rundir: RunDir, records: List[Record], run_id: Optional[str]):
    """No id logged twice, and the log's first line names the run of ``run.json``."""
    first: Dict[int, int] = {}
    for r in records:
        if r.id in first:
            raise RunDirError(f"{rundir.log.path}:{r.line}: id {r.id} is logged a second time "
                              f"(first at line {first[r.id]}): a duplicated record; nothing "
                              "resumes from a log that holds one")
        first[r.id] = r.line
    logged = rundir.log_run_id() if records else run_id
    if logged != run_id:
        raise RunDirError(f"{rundir.log.path}: {_written(logged)}, but {_this(run_id)}: not "
                          "this run's log")


def _written(run_id) -> str:
    return "names no run id" if run_id is None else f"written by run {run_id!r}"


def _this(run_id) -> str:
    return (f"this run directory is run {run_id!r} (run.json)" if run_id is not None else
            "this run directory has no run.json (only a run written before run ids has no id "
            "anywhere)")


def _check_against_log(rundir: RunDir, state: EvolutionState, records: List[Record],
                       run_id: Optional[str]):
    """The checkpoint is this run's and counts the first ``log_lines`` records of the log."""
    ckpt, log, n = rundir.file(CHECKPOINT), rundir.log.path, len(records)
    if state.run_id != run_id:
        raise RunDirError(f"{ckpt}: {_written(state.run_id)}, but {_this(run_id)}: a "
                          "checkpoint from another run; restore this run's own")
    if state.log_lines < 1 or state.n_trained + state.n_cached != state.log_lines:
        raise RunDirError(f"{ckpt}: counts {state.log_lines} logged records, but "
                          f"{state.n_trained} trained and {state.n_cached} cached children "
                          "(the start is logged before the first checkpoint): a damaged or "
                          "edited checkpoint; restore this run's own")
    if n < state.log_lines:
        raise RunDirError(f"{log}: holds {n} complete records but the checkpoint "
                          f"counts {state.log_lines}: the log lost records the checkpoint "
                          "includes; nothing resumes from a log behind its checkpoint")
    if records[state.log_lines - 1].id != state.log_last_id:
        raise RunDirError(f"{log}: record {state.log_lines} has id "
                          f"{records[state.log_lines - 1].id}, the checkpoint's last is "
                          f"{state.log_last_id}: the log does not match its checkpoint")
    if not len(state.population):
        raise RunDirError(f"{ckpt}: the population is empty, though the start fills it before "
                          "the first checkpoint: a damaged or edited checkpoint")
    logged = {r.id: r.hash for r in records[:state.log_lines]}
    for m in list(state.population.members) + ([state.best] if state.best else []):
        if logged.get(m.id) != m.hash:
            raise RunDirError(f"{ckpt}: its member id {m.id} (hash {m.hash}) is not the log's"
                              f" record {m.id}: the log does not match its checkpoint")
    if state.next_id <= max(logged):
        raise RunDirError(f"{ckpt}: next id {state.next_id}, but the log holds id "
                          f"{max(logged)}: a damaged or edited checkpoint")


def resumed(rundir: RunDir, population_size: int,
            fingerprint_of: Callable[[str], Optional[str]],
            restart_after: Optional[int] = None) -> Optional[EvolutionState]:
    """The state of a run to resume (:func:`check_resume`), after which a torn last line of
    the log is dropped; None where the run starts again (its log removed)."""
    state = check_resume(rundir, population_size, fingerprint_of, restart_after)
    rundir.repair_log()
    if state is None:
        rundir.log.path.unlink(missing_ok=True)
        return None
    state.done = False  # a finished run goes on if its budget was raised
    return state

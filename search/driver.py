"""The search driver: regularized evolution over a pool of evaluation workers.

Loop: while workers have free slots, draw children (tournament, mutate) until a batch of
children with unknown hashes is ready; children whose hash is cached (or already in flight)
take that fitness without training. Results join the population as they arrive, oldest
members leave. Every child is logged (append-only); a checkpoint is written atomically every
``checkpoint.every_seconds``. ``resume`` replays the log lines written after the checkpoint,
so a killed driver loses only the children that were in flight.
"""

from __future__ import annotations

import collections
import json
import math
import time
from typing import Dict, List, Optional

import numpy as np

from optevo.dsl.canon import program_hash
from optevo.dsl.library import library_names, library_program
from optevo.dsl.parse import load, parse
from optevo.dsl.program import Program
from optevo.proxy_tasks.fitness import aggregate, normalize

from .mutations import MutationFailed, mutate
from .population import CacheEntry, FitnessCache, Member, Population
from .rundir import RunDir, atomic_write
from .workers import EvalSpec

CHECKPOINT_VERSION = 1


def start_program(spec: str) -> Program:
    """A library name (``adam_style``) or a path to a program file."""
    if spec in library_names():
        return library_program(spec)
    return load(spec)


def buckets_for(max_length: int):
    b = [16]
    while b[-1] < max_length:
        b.append(b[-1] * 2)
    return tuple(b)


def eval_spec(cfg) -> EvalSpec:
    return EvalSpec(cfg.task.name, dict(cfg.task.options), cfg.task.steps,
                    tuple(range(cfg.task.seeds)), buckets_for(cfg.search.max_length))


class Search:
    def __init__(self, cfg, run_dir, pool=None, progress=None):
        self.cfg = cfg
        self.run = RunDir(run_dir).create()
        self.pool = pool
        self.progress = progress
        self.weights = dict(cfg.search.mutations)

    # --- state ------------------------------------------------------------------------------
    def _fresh_state(self):
        self.rng = np.random.default_rng(self.cfg.seed)
        self.population = Population(self.cfg.search.population)
        self.cache = FitnessCache()
        self.next_id = 0
        self.n_trained = self.n_cached = self.n_generated = 0
        self.rejected: collections.Counter = collections.Counter()
        self.mutation_counts: collections.Counter = collections.Counter()
        self.baseline = math.nan
        self.best: Optional[Member] = None
        self.since_improvement = 0
        self.restarts = 0
        self.elapsed0 = 0.0
        self.log_lines = 0
        self.failed_mutations = 0

    def state(self) -> Dict:
        return {
            "version": CHECKPOINT_VERSION, "next_id": self.next_id,
            "n_trained": self.n_trained, "n_cached": self.n_cached,
            "n_generated": self.n_generated, "rejected": dict(self.rejected),
            "mutations": dict(self.mutation_counts), "rng": self.rng.bit_generator.state,
            "population": self.population.to_json(), "cache": self.cache.to_json(),
            "baseline": self.baseline, "best": self.best.to_json() if self.best else None,
            "since_improvement": self.since_improvement, "restarts": self.restarts,
            "elapsed": self.elapsed(), "log_lines": self.log_lines,
            "failed_mutations": self.failed_mutations, "done": getattr(self, "done", False),
        }

    def load_state(self, s: Dict):
        if s.get("version") != CHECKPOINT_VERSION:
            raise ValueError(f"checkpoint version {s.get('version')} is not supported")
        self._fresh_state()
        self.next_id = s["next_id"]
        self.n_trained, self.n_cached = s["n_trained"], s["n_cached"]
        self.n_generated = s["n_generated"]
        self.rejected.update(s["rejected"])
        self.mutation_counts.update(s["mutations"])
        self.rng.bit_generator.state = s["rng"]
        self.population = Population(self.cfg.search.population,
                                     [Member.from_json(m) for m in s["population"]])
        self.cache = FitnessCache.from_json(s["cache"])
        self.baseline = s["baseline"]
        self.best = Member.from_json(s["best"]) if s["best"] else None
        self.since_improvement, self.restarts = s["since_improvement"], s["restarts"]
        self.elapsed0, self.log_lines = s["elapsed"], s["log_lines"]
        self.failed_mutations = s.get("failed_mutations", 0)
        self.done = s.get("done", False)

    def elapsed(self) -> float:
        return self.elapsed0 + (time.perf_counter() - self.t_start)

    # --- events ---------------------------------------------------------------------------
    def _log(self, rec: Dict):
        self.run.append(rec)
        self.log_lines += 1

    def _join(self, member: Member, trained: bool):
        """A child joins the population (the oldest member leaves)."""
        self.population.add(member)
        if trained:
            self.n_trained += 1
            self.since_improvement += 1
        else:
            self.n_cached += 1
        if self.best is None or member.loss < self.best.loss:
            self.best = member
            self.since_improvement = 0
        ra = self.cfg.search.restart_after
        if ra and self.since_improvement >= ra and self.best is not None:
            # restart: the population becomes copies of the best program so far
            self.population = Population(self.cfg.search.population,
                                         [self.best] * self.cfg.search.population)
            self.since_improvement = 0
            self.restarts += 1

    def _score(self, result: Dict):
        agg = aggregate(result["losses"], result["diverged"])
        return agg.mean, agg.stderr, agg.any_diverged

    def _record(self, child: Dict, entry: CacheEntry, cached: bool, result=None) -> Dict:
        rec = {"id": child["id"], "parent": child["parent"], "mutation": child["mutation"],
               "hash": child["hash"], "program": child["program"],
               "loss": entry.loss if math.isfinite(entry.loss) else None,
               "normalized": entry.normalized if math.isfinite(entry.normalized) else None,
               "stderr": entry.stderr if math.isfinite(entry.stderr) else None,
               "diverged": entry.diverged, "cached": cached,
               "worker": None if cached else result["worker"],
               "seconds": 0.0 if cached else round(result["seconds"], 4),
               "time": round(self.elapsed(), 3)}
        if not cached:
            rec["losses"] = [x if math.isfinite(x) else None for x in result["losses"]]
        return rec

    def _member(self, child: Dict, entry: CacheEntry) -> Member:
        return Member(child["id"], child["parent"], child["mutation"], child["hash"],
                      child["program"], entry.loss, entry.normalized)

    def _note_worker(self, result: Dict):
        """Keep RUN_DIR/workers.json (worker name -> pid) current, for users and tests."""
        name, pid = result.get("worker"), result.get("pid")
        if name and self.worker_pids.get(name) != pid:
            self.worker_pids[name] = pid
            atomic_write(self.run.file("workers.json"), json.dumps(self.worker_pids))

    def _apply_result(self, result: Dict):
        self._note_worker(result)
        children = self.pending.pop(self.hash_of_id.pop(result["id"]))
        loss, stderr, diverged = self._score(result)
        entry = CacheEntry(loss, normalize(loss, self.baseline), stderr, diverged,
                           result["id"], len(children))
        self.cache.put(children[0]["hash"], entry)
        for k, child in enumerate(children):
            self._log(self._record(child, entry, cached=k > 0, result=result))
            self._join(self._member(child, entry), trained=k == 0)

    def _replay(self, rec: Dict):
        """Apply one logged child that the checkpoint does not hold yet (resume)."""
        inf = (lambda x: math.inf if x is None else x)
        if not rec["cached"]:
            self.cache.put(rec["hash"], CacheEntry(inf(rec["loss"]), inf(rec["normalized"]),
                                                   inf(rec["stderr"]), rec["diverged"],
                                                   rec["id"]))
        else:
            self.cache.hits += 1
        self.next_id = max(self.next_id, rec["id"] + 1)
        self._join(Member(rec["id"], rec["parent"], rec["mutation"], rec["hash"],
                          rec["program"], inf(rec["loss"]), inf(rec["normalized"])),
                   trained=not rec["cached"])

    # --- children ---------------------------------------------------------------------------
    def _new_child(self) -> Optional[Dict]:
        parent = self.population.tournament(self.rng, self.cfg.search.tournament)
        try:
            res = mutate(self.rng, parse(parent.program), parent.hash, self.weights,
                         program_hash, self.cfg.search.max_length,
                         self.cfg.search.max_mutation_tries, self.rejected)
        except MutationFailed:
            self.failed_mutations += 1
            return None
        self.n_generated += 1
        self.mutation_counts[res.mutation] += 1
        child = {"id": self.next_id, "parent": parent.id, "mutation": res.mutation,
                 "hash": res.hash, "program": res.child.text()}
        self.next_id += 1
        return child

    def _fill(self, budget_left: int) -> List:
        """One batch of children that need training (cache hits are applied on the spot)."""
        batch = []
        for _ in range(50 * self.cfg.workers.batch):
            if len(batch) >= min(self.cfg.workers.batch, budget_left):
                break
            child = self._new_child()
            if child is None:
                continue
            h = child["hash"]
            entry = self.cache.lookup(h)
            if entry is not None:
                self._log(self._record(child, entry, cached=True))
                self._join(self._member(child, entry), trained=False)
            elif h in self.pending:
                self.cache.misses -= 1  # counted as a hit: it will share the in-flight result
                self.cache.hits += 1
                self.pending[h].append(child)
            else:
                self.pending[h] = [child]
                self.hash_of_id[child["id"]] = h
                batch.append((child["id"], child["program"]))
        return batch

    # --- the loop ---------------------------------------------------------------------------
    def _budget_left(self) -> int:
        max_evals = self.cfg.search.max_evals
        in_flight = len(self.hash_of_id)
        left = (max_evals - self.n_trained - in_flight) if max_evals else 10 ** 9
        limit = self.cfg.search.time_limit
        if limit is not None and self.elapsed() >= limit:
            return 0
        return left

    def _start(self):
        prog = start_program(self.cfg.search.start)
        h = program_hash(prog)
        child = {"id": 0, "parent": None, "mutation": None, "hash": h, "program": prog.text()}
        self.next_id = 1
        self.pool.submit([(0, child["program"])])
        results = []
        while not results:
            results = self.pool.poll(1.0)
        res = results[0][1][0]
        loss, stderr, diverged = self._score(res)
        if diverged:
            raise RuntimeError("the start program diverged on this task: nothing to normalize by")
        self.baseline = loss
        entry = CacheEntry(loss, 1.0, stderr, False, 0)
        self.cache.put(h, entry)
        self._log(self._record(child, entry, cached=False, result=res))
        member = self._member(child, entry)
        self.population = Population(self.cfg.search.population,
                                     [member] * self.cfg.search.population)
        self.best = member
        self.n_trained = 1

    def checkpoint(self):
        self.run.write_checkpoint(self.state())
        self.last_checkpoint = time.perf_counter()

    def execute(self, resume: bool = False):
        """Run (or resume) the search until its budget is spent; returns the final state."""
        self.t_start = time.perf_counter()
        self.pending: Dict[str, List[Dict]] = {}
        self.hash_of_id: Dict[int, str] = {}
        self.worker_pids: Dict[str, int] = {}
        self.stalled = False
        self.done = False
        n_lines = self.run.repair_log()
        self.run.open_log()
        if resume:
            state = self.run.read_checkpoint()
            if state is None:
                raise FileNotFoundError(f"{self.run.path}: no checkpoint to resume from")
            self.load_state(state)
            for rec in self.run.list_records()[self.log_lines:n_lines]:
                self._replay(rec)
                self.log_lines += 1
            self.t_start = time.perf_counter()
            self.done = False  # a finished run goes on if its budget was raised
        else:
            self._fresh_state()
            self._start()
        self.checkpoint()
        every = self.cfg.checkpoint.every_seconds
        try:
            idle_fills = 0
            while not self.done:
                while self.pool.free_slots and self._budget_left() > 0:
                    batch = self._fill(self._budget_left())
                    if not batch:
                        idle_fills += 1
                        break
                    idle_fills = 0
                    self.pool.submit(batch)
                if idle_fills > 200 and not self.hash_of_id:
                    # every child drawn for a long while was cached: evolution is stuck
                    self.stalled = True
                    self.done = True
                for _, results in self.pool.poll(0.5):
                    for r in results:
                        self._apply_result(r)
                if self._budget_left() <= 0 and not self.hash_of_id:
                    self.done = True
                if time.perf_counter() - self.last_checkpoint >= every:
                    self.checkpoint()
                if self.progress:
                    self.progress(self)
        finally:
            if self.done:
                self.checkpoint()
            self.run.close()
        return self

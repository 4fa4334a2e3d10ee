"""Run the funnel: stages in order, jobs on worker pools, results appended to
``results.jsonl``, tables and reports written per stage (``report.py``).

Only candidates whose mean paired difference to the ``reference`` baseline on the eval seeds
is below ``-pass_margin_se`` standard errors go on to the next stage, at most the stage's
``keep`` of them (the lowest mean loss first: successive halving); baselines run on every
stage. Every finished job is one line of ``results.jsonl`` (append-only, a torn last line
dropped on resume) and a resumed funnel skips it, so it writes the same tables as an
uninterrupted one. The tuning rules are in ``plan.py``.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from optevo.dsl.errors import OptevoError
from optevo.dsl.interpreter import encoded_form
from optevo.dsl.parse import parse
from optevo.proxy_tasks.engine import buckets_for

from ..core.jobs import Job
from ..core.rundir import JsonLines, RunDirError, atomic_write, exclusive
from ..core.workers import EvalSpec, make_pool, shutdown_ray
from . import report as rep
from .candidates import Candidate
from .config import FUNNEL_JSON, RESULTS, TIMING, FunnelConfig, Stage
from .plan import job_key, plan, seeds_of

TUNING = 2  # what a job means: 2, decay tuned everywhere, in passes (funnel.json "tuning")


class Results:
    """``results.jsonl``: one line per finished job (append-only, flushed per line), and the
    finished jobs by key (:func:`~.plan.job_key`, made from each line's fields, so a file
    written under an earlier key format resumes too)."""

    FIELDS = ("stage", "candidate", "lr_k", "wd_j", "group")

    def __init__(self, path: Path):
        self.log = JsonLines(path)
        self.path = self.log.path
        self.log.repair()  # a line torn by a kill
        self.by_key: Dict[str, Dict] = {}
        for i, rec in enumerate(self.log.read(), 1):
            try:
                self.by_key[self.key_of(rec)] = rec
            except (KeyError, TypeError) as e:
                raise RunDirError(f"{self.path}:{i}: not a funnel job record ({type(e).__name__}:"
                                  f" {e})") from None
        self.log.open()

    @classmethod
    def key_of(cls, rec: Dict) -> str:
        return job_key(*(rec[f] for f in cls.FIELDS))

    def add(self, rec: Dict):
        self.log.append(rec)
        self.by_key[self.key_of(rec)] = rec

    def close(self):
        self.log.close()


def _buckets(cands: List[Candidate]) -> Tuple[int, ...]:
    """One interpreter bucket: the one that holds the longest candidate (one compile)."""
    n = max([len(encoded_form(parse(c.text)).stmts) for c in cands if not c.optax] + [1])
    return buckets_for(n)[-1:]


class TimeUp(Exception):
    """The funnel's ``--minutes`` were spent: every finished job is kept (``--resume``)."""


class Funnel:
    def __init__(self, cfg: FunnelConfig, out: Path, candidates: List[Candidate],
                 workers: int, address: Optional[str], log=sys.stdout,
                 seconds: Optional[float] = None):
        self.cfg, self.out, self.cands = cfg, Path(out), candidates
        self.workers, self.address, self.log = workers, address, log
        self.deadline = None if seconds is None else time.time() + seconds
        self.results = Results(self.out / RESULTS)
        self.pool = None

    def say(self, msg: str):
        print(msg, file=self.log, flush=True)

    def _make_pool(self, stage: Stage, cands: List[Candidate]):
        spec = EvalSpec(stage.task, stage.task_options(), stage.steps,
                        tuple(seeds_of(stage, "t")), _buckets(cands))
        return make_pool(spec, self.workers, self.address, self.cfg.workers.pin_cores)

    def _close_pool(self, final: bool):
        """Between stages the workers end and Ray stays up; at the end, Ray too."""
        if self.pool is None:
            if final:
                shutdown_ray()
            return
        if final:
            self.pool.shutdown()
        else:
            self.pool.release_workers()
        self.pool = None

    def run_stage(self, si: int, stage: Stage, cands: List[Candidate]) -> Dict[str, Dict]:
        inflight = {}  # job id -> its candidate
        done_names = set()
        n_jobs, last, said = 0, time.time(), None
        while True:
            todo, decisions = [], {}  # (job id, candidate) still to send
            for c in cands:
                missing, dec = plan(stage, c, self.results.by_key, as_ids=True)
                if dec is not None:
                    decisions[c.name] = dec
                    if c.name not in done_names:
                        done_names.add(c.name)
                        self.say(f"  {c.name}: lr x{dec['lr_mult']:.4g}"
                                 + ("" if not c.has_wd else ", wd off" if dec["wd_factor"]
                                    == 0 else f", wd x{dec['wd_factor']:.4g}")
                                 + f", tuning loss {dec['tune_loss']:.4f}")
                else:
                    todo += [(x, c) for x in missing if x not in inflight]
            if len(decisions) == len(cands):
                return decisions
            if self.deadline is not None and time.time() > self.deadline:
                self._save_elapsed()
                raise TimeUp(f"{stage.name}: {len(decisions)}/{len(cands)} optimizers "
                             f"settled, {n_jobs} jobs done here")
            if self.pool is None:
                self.pool = self._make_pool(stage, cands)
            for ident, c in todo:
                if self.pool.free_slots <= 0:
                    break
                self.pool.submit([Job(ident, c.setting_text(stage, ident.wd),
                                      seeds_of(stage, ident.seeds),
                                      stage.lr_rule.value(ident.lr))])
                inflight[ident] = c.name
            for res in self.pool.poll(1.0):
                name, group = inflight.pop(res.id), res.id.seeds
                key = job_key(stage.name, name, res.id.lr, res.id.wd, group)
                self.results.add({
                    "key": key, "stage": stage.name, "candidate": name, "lr_k": res.id.lr,
                    "wd_j": res.id.wd, "group": group, "seeds": res.seeds,
                    "losses": [x if math.isfinite(x) else None for x in res.losses],
                    "diverged": res.diverged, "seconds": round(res.seconds, 4),
                    "worker": res.worker})
                n_jobs += 1
            if time.time() - last > 30 and (n_jobs, len(decisions)) != said:
                last, said = time.time(), (n_jobs, len(decisions))
                self.say(f"  {stage.name}: {n_jobs} jobs done here, {len(decisions)}/"
                         f"{len(cands)} optimizers settled")
                self._save_elapsed()

    def _save_elapsed(self) -> float:
        """Wall time over every session of this funnel (kept across kills and resumes)."""
        elapsed = self._before + time.time() - self._t0
        atomic_write(self.out / TIMING, json.dumps({"elapsed": elapsed}))
        return elapsed

    def execute(self) -> int:
        with exclusive(self.out):  # one writer per funnel directory
            return self._execute()

    def _execute(self) -> int:
        self._t0 = time.time()
        timing_path = self.out / TIMING
        self._before = _elapsed_before(timing_path)
        baselines = [c for c in self.cands if c.baseline]
        alive = [c for c in self.cands if not c.baseline]
        stage_rows = []
        prev_cost = None
        try:
            for si, stage in enumerate(self.cfg.stages):
                cost = rep.stage_cost(stage)
                self.say(f"stage {si + 1}/{len(self.cfg.stages)} {stage.name}: "
                         f"{cost['describe']}; {len(alive)} candidates + "
                         f"{len(baselines)} baselines; {cost['gflop']:.3g} GFLOP per run"
                         + (f" ({cost['gflop'] / prev_cost:.1f}x the stage below)"
                            if prev_cost else ""))
                prev_cost = cost["gflop"]
                decisions = self.run_stage(si, stage, baselines + alive)
                self._close_pool(final=False)
                rows = rep.stage_rows(self.cfg, stage, decisions)
                stage_rows.append((stage, rows, cost))
                text = rep.stage_markdown(self.cfg, si, stage, rows)
                atomic_write(self.out / rep.stage_file(si, stage), text)
                self.say(text)
                passed = {r["candidate"] for r in rows if r["passes"] or self.cfg.keep_all}
                rank = {r["candidate"]: i for i, r in enumerate(rows)}  # best first
                # the next stage sends the best-ranked candidates' jobs first: a ladder or
                # funnel stopped part-way has settled the ones that matter most
                alive = sorted((c for c in alive if c.name in passed),
                               key=lambda c: rank.get(c.name, len(rank)))
                self._save_elapsed()
                if not alive:
                    self.say("no candidate passed; the remaining stages run the baselines only")
        finally:
            self._close_pool(final=True)
            self.results.close()
        elapsed = self._save_elapsed()
        rep.write_report(self.out, self.cfg, self.cands, stage_rows, self.results.path, elapsed)
        self.say(f"funnel done in {elapsed:.1f} s: {self.out / 'report.md'}")
        return 0


def new_funnel_dir(out, cfg: FunnelConfig, cands: List[Candidate]) -> Path:
    """Create the funnel directory ``out`` holding ``funnel.json`` (config and candidates);
    refused if ``out`` already holds a funnel."""
    out = Path(out)
    if (out / FUNNEL_JSON).exists():
        raise RunDirError(f"{out}: already holds a funnel; continue it with --resume {out}"
                          " or choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / FUNNEL_JSON, json.dumps(
        {"config": cfg.to_json(), "candidates": [c.__dict__ for c in cands],
         "tuning": TUNING}, indent=1))
    return out


def add_funnel_candidates(out, new: List[Candidate]) -> None:
    """Append ``new`` to the candidates saved in the funnel directory ``out`` (under its write
    lock; ``funnel.json`` rewritten atomically). The jobs already in ``results.jsonl`` keep
    their meaning: a job's key names its candidate, and the new names are distinct."""
    out = Path(out)
    with exclusive(out):
        saved_funnel(out)  # refuses a damaged or older funnel
        path = out / FUNNEL_JSON
        saved = json.loads(path.read_text(encoding="utf-8"))
        names = {c["name"] for c in saved["candidates"]}
        clash = sorted(names & {c.name for c in new})
        if clash:
            raise RunDirError(f"{path}: already has candidate(s) {', '.join(clash)}")
        saved["candidates"] += [c.__dict__ for c in new]
        atomic_write(path, json.dumps(saved, indent=1))


def _elapsed_before(path: Path) -> float:
    """Seconds of earlier sessions (``timing.json``); a damaged file is one line."""
    if not path.exists():
        return 0.0
    try:
        value = json.loads(path.read_text(encoding="utf-8"))["elapsed"]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"elapsed is {type(value).__name__}, not a number")
        return float(value)
    except (ValueError, TypeError, KeyError) as e:
        raise RunDirError(f"{path}: damaged ({type(e).__name__}: {e}); delete it to count "
                          "the time from now") from None


def saved_funnel(out) -> Tuple[FunnelConfig, List[Candidate]]:
    """The config and candidates saved in the funnel directory ``out``."""
    out = Path(out)
    if not (out / FUNNEL_JSON).exists():
        raise RunDirError(f"{out}: not a funnel directory (no {FUNNEL_JSON})")
    path = out / FUNNEL_JSON
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        cands = [Candidate(**c) for c in saved["candidates"]]
        if saved.get("tuning") != TUNING:
            raise RunDirError(f"{path}: this funnel was started by an optevo that tuned the "
                              "learning rate and weight decay in one pass, and decay only "
                              "where a program had `w * c`; its jobs mean something else "
                              "now: finish it with that version, or start it again")
        for c in cands:
            if not all(isinstance(getattr(c, k), str) for k in ("name", "text", "source")) or \
                    not all(isinstance(getattr(c, k), bool) for k in ("baseline", "optax",
                                                                    "has_wd")):
                raise TypeError(f"candidate {c.name!r} has a field of the wrong type")
        return FunnelConfig.from_json(saved["config"]), cands
    except (ValueError, TypeError, KeyError, AttributeError) as e:  # JSON, shape, types
        if isinstance(e, OptevoError):  # a config error already says where
            raise
        raise RunDirError(f"{path}: damaged ({type(e).__name__}: {e}); start the funnel "
                          "again in a new directory") from None

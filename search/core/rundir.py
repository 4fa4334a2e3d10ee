"""The run directory: the ONLY code that reads or writes a search run's files.

    RUN_DIR/config.yaml          the resolved config the run used
    RUN_DIR/run.json             the run's id (``run_id``, random, written at creation)
    RUN_DIR/evaluations.jsonl    one :class:`Record` per child that joined the population
                                 (append-only; ``cached: true`` marks a child that took the
                                 fitness of an equivalent program trained before)
    RUN_DIR/checkpoint.json      the evolution state (``state.EvolutionState``), replaced
                                 atomically
    RUN_DIR/workers.json         worker name -> process id
    RUN_DIR/holdout.jsonl        the best programs re-evaluated on fresh seeds
    RUN_DIR/report.md, summary.json   the final report

Invariants: one writer per file; the id in ``run.json`` is also in the checkpoint and in the
log's first line (``"run": ID`` beside the start's record; record readers ignore it), so that
resume (``state.check_resume``) tells this run's files from another's (a run written before
run ids has none anywhere); ``evaluations.jsonl`` is only appended to, each line flushed as
it is written, and the checkpoint is written only after the log is synced, so the log is
never behind the checkpoint; a line torn by a kill (no final newline) is dropped by
:meth:`JsonLines.repair` before anything is appended. Nothing here is ever unpickled or
executed: every file is JSON, YAML or program text, and the plugins ``config.yaml`` names
are not imported when it is read (:meth:`RunDir.config`). A missing or unreadable file raises
:class:`RunDirError` (one line naming the file and, for the log, the line).

:class:`JsonLines` is the append-only log both the search and the funnel (``results.jsonl``)
use; :func:`best_distinct` is the one definition of "the best distinct programs of a run"
(distinct: no two with the same hash, simplified hash or functional fingerprint).
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import json
import math
import uuid
from pathlib import Path
from typing import Dict, Iterator, List, Optional

from optevo.dsl.files import read_text

from . import rowcheck
from .distinct import iter_distinct
from .files import LOCK, JsonLines, RunDirError, atomic_write, exclusive  # noqa: F401
from .rowcheck import checked_rows

LOG = "evaluations.jsonl"
CHECKPOINT = "checkpoint.json"
CONFIG = "config.yaml"
META = "run.json"
HOLDOUT = "holdout.jsonl"
REPORT = "report.md"
SUMMARY = "summary.json"
WORKERS = "workers.json"
LEGACY_SUMMARY = {  # summary.json keys before 0.2 -> the names that say whose figure it is
    "best_id": "holdout_best_id", "best_holdout_loss": "holdout_best_loss",
    "best_holdout_stderr": "holdout_best_stderr",
    "diff_vs_tuned_start": "holdout_best_diff_vs_tuned_start",
    "diff_vs_tuned_start_stderr": "holdout_best_diff_vs_tuned_start_stderr",
    "diff_vs_tuned_adamw": "holdout_best_diff_vs_tuned_adamw",
    "diff_vs_tuned_adamw_stderr": "holdout_best_diff_vs_tuned_adamw_stderr",
    "best_diff_vs_baselines": "holdout_best_diff_vs_baselines",
    "best_fitness": "selection_best_fitness", "best_normalized": "selection_best_normalized"}


def _finite(x):
    return x if x is None or math.isfinite(x) else None


@dataclasses.dataclass(frozen=True)
class Record:
    """One line of ``evaluations.jsonl``: a child that joined the population.

    ``loss`` (mean over the fitness seeds), ``normalized`` and ``stderr`` are ``None`` for a
    diverged child; ``losses`` (per seed) is present for trained children only; ``line`` is
    the line of the log it was read from (0 when not read from a file). In a suite search
    ``loss`` is the suite fitness (``scoring``: the weighted geometric mean of the tasks'
    loss ratios to the tuned start, so ``loss == normalized``) and ``task_losses`` holds each
    task's mean loss."""

    id: int
    parent: Optional[int]
    mutation: Optional[str]
    hash: str
    program: str
    loss: Optional[float]
    normalized: Optional[float]
    stderr: Optional[float]
    diverged: bool
    cached: bool
    worker: Optional[str] = None
    seconds: float = 0.0
    time: float = 0.0
    losses: Optional[List[Optional[float]]] = None
    task_losses: Optional[List[Optional[float]]] = None  # a suite: each task's mean loss
    hurdle: Optional[float] = None  # its fitness on the hurdle seeds (search.hurdle_seeds)
    stopped: bool = False  # stopped at the hurdle: loss is the hurdle figure
    fingerprint_hit: bool = False  # cached by functional fingerprint, not by hash
    lr_mult: float = 1.0  # its lr multiplier (search.lr_grid; written only when not 1)
    island: int = 0  # its island (search.islands; written only when not 0)
    line: int = dataclasses.field(default=0, compare=False, repr=False)

    def to_json(self) -> Dict:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
             if f.name != "line"}
        for k in ("loss", "normalized", "stderr"):
            d[k] = _finite(d[k])
        for k in ("losses", "task_losses"):
            if d[k] is None:
                del d[k]
            else:
                d[k] = [_finite(x) for x in d[k]]
        if not self.fingerprint_hit:
            del d["fingerprint_hit"]
        if self.lr_mult == 1.0:
            del d["lr_mult"]
        if self.island == 0:
            del d["island"]
        if self.hurdle is None:
            del d["hurdle"], d["stopped"]
        else:
            d["hurdle"] = _finite(self.hurdle)
        return d

    @classmethod
    def from_json(cls, d: Dict, line: int = 0) -> "Record":
        """A record from one parsed log line; a missing field or one of the wrong type is a
        ValueError naming it (the reader adds the file and line)."""
        try:
            hurdle = d.get("hurdle")
            return cls(
                id=_want(d, "id", int), parent=_want(d, "parent", int, None),
                mutation=_want(d, "mutation", str, None), hash=_want(d, "hash", str),
                program=_want(d, "program", str), loss=_num(d, "loss"),
                normalized=_num(d, "normalized"), stderr=_num(d, "stderr"),
                diverged=_want(d, "diverged", bool, d.get("loss") is None),
                cached=_want(d, "cached", bool, False), worker=_want(d, "worker", str, None),
                seconds=float(_num(d, "seconds", 0.0)), time=float(_num(d, "time", 0.0)),
                losses=_nums(d, "losses"), task_losses=_nums(d, "task_losses"),
                hurdle=(math.inf if hurdle is None else _num(d, "hurdle")) if "hurdle" in d
                else None,
                stopped=_want(d, "stopped", bool, False),
                fingerprint_hit=_want(d, "fingerprint_hit", bool, False),
                lr_mult=float(_num(d, "lr_mult", 1.0)), island=_island(d), line=line)
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"not an evaluation record ({type(e).__name__}: {e})") from None


_REQUIRED = object()


def _want(d: Dict, key: str, kind, default=_REQUIRED):
    """``d[key]`` if it is a ``kind`` (not a bool for int), ``default`` if absent or null
    where a default is given."""
    if key not in d or d[key] is None and default is not _REQUIRED:
        if default is _REQUIRED:
            raise KeyError(key)
        return default
    v = d[key]
    if not isinstance(v, kind) or (kind is int and isinstance(v, bool)):
        raise TypeError(f"{key} must be {kind.__name__}, got {type(v).__name__}")
    return v


def _is_num(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _num(d: Dict, key: str, default=None):
    v = d.get(key, default)
    if v is None or _is_num(v):
        return v
    raise TypeError(f"{key} must be a number or null, got {type(v).__name__}")


def _island(d: Dict) -> int:
    v = _want(d, "island", int, 0)
    if v < 0:
        raise ValueError(f"island must be >= 0, got {v}")
    return v


def _nums(d: Dict, key: str):
    v = d.get(key)
    if v is None or isinstance(v, list) and all(x is None or _is_num(x) for x in v):
        return v
    raise TypeError(f"{key} must be a list of numbers")


def best_distinct(records: List[Record], k: Optional[int] = None,
                  include_start: bool = True, merge: bool = True) -> List[Record]:
    """The best ``k`` (all if None) distinct programs of a run, ranked by (loss, id): for each
    hash the trained record with the lowest finite loss; diverged programs are left out, and
    so is the start program (id 0) unless ``include_start``. With ``merge`` (the default) a
    record is also left out when it is equivalent to one ranked above it (or to one left out
    so): the same ``program_hash`` as hashed today, the same hash after exact simplification
    (``simplify_exact``, not strict: ``interp(g, g, c)`` is ``g`` up to rounding for every
    ``c``), or the same functional fingerprint (``dsl/fingerprint.py``, default digits and
    steps). So no two programs listed have equal fingerprints or equal simplified hashes
    (``search/core/distinct.py``: the keys, their cost, the lazy walk :func:`iter_distinct`:
    a top ``k`` computes the keys of about ``k`` records; all of them, of every record)."""
    return list(itertools.islice(iter_distinct(records, include_start, merge), k))


def hash_counts(records: List[Record]) -> Dict[str, int]:
    """How many logged children (trained or cached) share each hash."""
    return dict(collections.Counter(r.hash for r in records))


class RunDir:
    """A search run's directory (see the module docstring for its files)."""

    def __init__(self, path):
        self.path = Path(path)
        self.log = JsonLines(self.path / LOG)
        self._pids: Dict[str, int] = {}  # workers.json as this process last wrote it
        self._stamp: Optional[str] = None  # the run id a new log's first line carries

    @classmethod
    def existing(cls, path) -> "RunDir":
        """An existing run directory, or :class:`RunDirError` saying what is missing."""
        path = Path(path)
        if not path.is_dir():
            raise RunDirError(f"{path}: no such run directory")
        if not (path / LOG).exists():
            raise RunDirError(f"{path}: not a run directory (no {LOG})")
        return cls(path)

    def create(self) -> "RunDir":
        self.path.mkdir(parents=True, exist_ok=True)
        return self

    def file(self, name: str) -> Path:
        return self.path / name

    def exists(self) -> bool:
        """Does the directory already hold a run (a checkpoint or a log)?"""
        return self.file(CHECKPOINT).exists() or self.file(LOG).exists()

    # --- the evaluation log -----------------------------------------------------------------
    def repair_log(self) -> int:
        return self.log.repair()

    def open_log(self, run_id: Optional[str] = None):
        """Open the log to append to; the first line of a new (empty) log carries ``run_id``."""
        self.log.open()
        self._stamp = run_id if self.log.path.stat().st_size == 0 else None

    def append(self, record: Record):
        """Append one record; flushed at once so a killed driver loses nothing written."""
        d = record.to_json()
        if self._stamp:
            d, self._stamp = {"run": self._stamp, **d}, None
        self.log.append(d)

    def log_run_id(self):
        """The run id in the log's first line (None where it has none, or no line)."""
        first = next(self.log.read(), None)
        return None if first is None else first.get("run")

    def close(self):
        self.log.close()

    def records(self) -> List[Record]:
        """Every complete record of the log, in order (a torn last line is skipped)."""
        out = []
        for i, d in enumerate(self.log.read(), 1):
            try:
                out.append(Record.from_json(d, i))
            except ValueError as e:
                raise RunDirError(f"{self.log.path}:{i}: {e}") from None
        return out

    def nonempty_records(self) -> List[Record]:
        records = self.records()
        if not records:
            raise RunDirError(f"{self.log.path}: no evaluations yet")
        return records

    def record(self, ident) -> Record:
        """The record with id ``ident`` (an int or its text)."""
        try:
            key = int(ident)
        except (TypeError, ValueError):
            raise RunDirError(f"{ident!r} is not an evaluation id (a whole number)") from None
        records = self.nonempty_records()
        for r in records:
            if r.id == key:
                return r
        ids = [r.id for r in records]
        raise RunDirError(f"{self.path}: no evaluation with id {key} "
                          f"(ids {min(ids)}..{max(ids)})")

    # --- checkpoints ----------------------------------------------------------------------
    def write_checkpoint(self, state: Dict):
        self.log.sync()  # the log is never behind the checkpoint
        atomic_write(self.file(CHECKPOINT), json.dumps(state))

    def read_checkpoint(self) -> Optional[Dict]:
        return self._read_json(CHECKPOINT, "checkpoint")

    def _read_json(self, name: str, what: str) -> Optional[Dict]:
        """The JSON file ``name`` (None if it is not there), or a one-line error."""
        p = self.file(name)
        if not p.exists():
            return None
        try:
            return json.loads(read_text(p, "utf-8"))
        except OSError as e:
            raise RunDirError(f"{p}: unreadable {what} ({e.strerror or e})") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise RunDirError(f"{p}: unreadable {what} ({e})") from None

    # --- the run id, config, workers, held-out results, reports -----------------------------
    def run_id(self) -> Optional[str]:
        """The run's id (``run.json``); None for a run written before run ids."""
        d = self._read_json(META, "run.json")
        if d is None or isinstance(d, dict) and isinstance(d.get("run_id"), str) and d["run_id"]:
            return None if d is None else d["run_id"]
        raise RunDirError(f"{self.file(META)}: damaged (expected {{\"run_id\": TEXT}})")

    def new_run_id(self, keep: bool = False) -> str:
        """Write a new random id to ``run.json``, returned (``keep``: the one there, if any)."""
        run_id = (self.run_id() if keep else None) or uuid.uuid4().hex[:16]
        atomic_write(self.create().file(META), json.dumps({"run_id": run_id}) + "\n")
        return run_id

    def write_config(self, text: str):
        atomic_write(self.file(CONFIG), text)

    def config(self):
        """The run's validated config, or None if it has no ``config.yaml``. Its ``plugins``
        are never imported (reading a run runs none of its code): a config that names a task
        or mutation only a plugin registers is a one-line ``ConfigError`` naming the plugin."""
        from .config import load_config
        p = self.file(CONFIG)
        return load_config(p, import_plugins=False) if p.exists() else None

    def note_worker(self, name: str, pid: int):
        """Keep ``workers.json`` (worker name -> pid) current, for users and tests."""
        if self._pids.get(name) != pid:
            self._pids[name] = pid
            self.write_workers(self._pids)

    def write_workers(self, pids: Dict[str, int]):
        atomic_write(self.file(WORKERS), json.dumps(pids))

    def write_holdout(self, rows: List[Dict]):
        atomic_write(self.file(HOLDOUT), "".join(json.dumps(r) + "\n" for r in rows))

    def holdout_rows(self) -> List[Dict]:
        path = self.file(HOLDOUT)
        return checked_rows(path, JsonLines(path).read(), rowcheck.HOLDOUT)

    def write_report(self, text: str):
        atomic_write(self.file(REPORT), text)

    def write_summary(self, summary: Dict):
        atomic_write(self.file(SUMMARY), json.dumps(summary, indent=1))

    def summary(self) -> Optional[Dict]:
        """The finished run's ``summary.json`` (None while the run has not finished); one
        written before version 0.2 has its keys renamed to today's (``LEGACY_SUMMARY``)."""
        d = self._read_json(SUMMARY, "summary")
        if isinstance(d, dict) and "holdout_best_id" not in d:
            d = {LEGACY_SUMMARY.get(k, k): v for k, v in d.items()}
        return d

"""The discover pipeline's state (``discover.json``) and its steps, in order: searches, the
search from the best, the funnel, survivors and report (see the package docstring).

``discover.json`` is written atomically and holds everything a resume needs: the resolved
search config, the funnel config, the options (searches, top, the per-search time limit and
evaluation cap, workers), the chosen best start and the steps done. What is finished is read
from the step's own files first (a search's ``summary.json``, the funnel's ``summary.json``),
so a kill between a step's last write and the state's update loses nothing.
"""

from __future__ import annotations

import copy
import json
import math
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

from optevo.dsl.parse import parse
from optevo.simplify import simplify_exact

from ..core.config import Config, config_from_dict, config_to_dict
from ..core.yaml_config import ConfigError, Loc
from ..core.rundir import (CHECKPOINT, LOG, SUMMARY, RunDir, RunDirError, atomic_write,
                           best_distinct, exclusive)
from ..funnel.candidates import Candidate, make_candidates
from ..funnel.config import FUNNEL_JSON, FunnelConfig
from ..funnel.runner import Funnel, new_funnel_dir, saved_funnel
from . import report
from .layout import BEST_START, FUNNEL_DIR, REPORT, STATE, search_names
from .plots import axis_factors

VERSION = 1


def default_out(cfg: Config) -> Path:
    return Path(f"runs/discover-{cfg.name or 'run'}-{time.strftime('%Y%m%d-%H%M%S')}")


def _bad(option: str, message: str) -> ConfigError:
    return ConfigError(Loc(option), message)


def new_discover(out, cfg: Config, funnel_cfg: FunnelConfig, searches: int = 5,
                 minutes: Optional[float] = None, top: Optional[int] = None,
                 workers: Optional[int] = None, source: str = "") -> Path:
    """Create OUT holding ``discover.json``; refused (:class:`RunDirError`) if OUT is a file, a
    discover directory already, or a non-empty directory. ``minutes``: the searches' wall time,
    shared equally by the ``searches + 1`` searches (each ``search.time_limit``; the held-out
    re-checks and the funnel come on top); their ``search.max_evals`` is then null unless the
    config sets it. ``top``: candidates for the funnel (default the funnel config's
    ``top_k``). ``workers``: overrides ``workers.count`` and the funnel's ``workers``."""
    out = Path(out)
    if searches < 1:
        raise _bad("--searches", f"expected an integer >= 1, got {searches}")
    if top is not None and top < 1:
        raise _bad("--top", f"expected an integer >= 1, got {top}")
    if workers is not None and workers < 0:
        raise _bad("--workers", f"expected an integer >= 0, got {workers}")
    if minutes is not None and not (math.isfinite(minutes) and minutes > 0):
        raise _bad("--minutes", f"expected a number > 0, got {minutes}")
    if out.exists() and not out.is_dir():
        raise RunDirError(f"{out}: exists and is not a directory")
    if (out / STATE).exists():
        raise RunDirError(f"{out}: already holds a discover run; continue it with "
                          f"--resume {out} or choose another --out")
    if out.is_dir() and any(out.iterdir()):
        raise RunDirError(f"{out}: exists and is not empty; choose another --out")
    time_limit, max_evals = cfg.search.time_limit, cfg.search.max_evals
    if minutes is not None:
        time_limit = round(minutes * 60.0 / (searches + 1), 3)
        max_evals = max_evals if "max_evals" in cfg.search.model_fields_set else None
    state = {"version": VERSION, "source": source, "config": config_to_dict(cfg),
             "funnel_config": funnel_cfg.to_json(),
             "options": {"searches": searches, "minutes": minutes,
                         "top": top if top is not None else funnel_cfg.top_k,
                         "workers": workers, "time_limit": time_limit,
                         "max_evals": max_evals},
             "best_start": None, "done": [], "created": time.time()}
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / STATE, json.dumps(state, indent=1))
    return out


def load_state(out) -> Dict:
    out = Path(out)
    path = out / STATE
    if not out.is_dir():
        raise RunDirError(f"{out}: no such discover directory")
    if not path.exists():
        raise RunDirError(f"{out}: not a discover directory (no {STATE})")
    try:
        state = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RunDirError(f"{path}: unreadable ({e})") from None
    if not isinstance(state, dict) or state.get("version") != VERSION:
        raise RunDirError(f"{path}: not a discover state of version {VERSION}")
    return state


class Discover:
    """The pipeline in the directory ``out`` (made by :func:`new_discover`)."""

    def __init__(self, out, workers: Optional[int] = None, log=sys.stdout):
        self.out, self.log = Path(out), log
        self.state = load_state(self.out)
        self.opts = self.state["options"]
        self.workers = self.opts["workers"] if workers is None else workers
        self.src = f"{self.out / STATE}"
        self.cfg = config_from_dict(self.state["config"], self.src)
        self.names = search_names(self.opts["searches"])

    def say(self, msg: str):
        print(f"optevo discover: {msg}", file=self.log, flush=True)

    def _save(self):
        atomic_write(self.out / STATE, json.dumps(self.state, indent=1))

    def _done(self, step: str):
        if step not in self.state["done"]:
            self.state["done"].append(step)
            self._save()

    # --- searches -----------------------------------------------------------------------------
    def search_config(self, i: int, start: Optional[str] = None) -> Config:
        """The config of search ``i`` (1-based; ``searches + 1`` is the one from the best)."""
        d = copy.deepcopy(self.state["config"])
        d["seed"] = d["seed"] + i - 1
        d["name"] = f"{d['name']}-{self.names[i - 1]}"
        d["search"].update(time_limit=self.opts["time_limit"], max_evals=self.opts["max_evals"])
        if start is not None:
            d["search"]["start"] = start
        if self.workers is not None:
            d["workers"]["count"] = self.workers
        return config_from_dict(d, self.src)

    def run_one_search(self, i: int, cfg: Config):
        from ..core.run import run_search
        name = self.names[i - 1]
        d = self.out / name
        if (d / SUMMARY).exists():
            self.say(f"{name}: finished before (summary.json); skipped")
        else:
            resume = (d / CHECKPOINT).exists()
            if not resume and (d / LOG).exists():
                (d / LOG).unlink()  # written before the first checkpoint: the start at most
            self.say(f"{name}: {'resumed' if resume else 'started'} (seed {cfg.seed}, "
                     f"start {cfg.search.start}, time limit {cfg.search.time_limit} s, "
                     f"max evals {cfg.search.max_evals})")
            run_search(cfg, d, resume=resume, out=self.log)
        self._done(name)

    def choose_best_start(self) -> Dict:
        """The best program of search-1..S by held-out loss relative to its tuned start (the
        best by fitness where a search has no held-out figure), written to best-start.py."""
        if self.state["best_start"] and (self.out / BEST_START).exists():
            return self.state["best_start"]
        best = None
        for name in self.names[:-1]:
            run = RunDir.existing(self.out / name)
            s = run.summary()
            if s.get("holdout_best_id") is not None and s.get("tuned_start_holdout_loss"):
                rec = run.record(s["holdout_best_id"])
                key = (0, s["holdout_best_loss"] / s["tuned_start_holdout_loss"])
            else:
                top = best_distinct(run.records(), 1, include_start=False)
                if not top:
                    continue
                rec, key = top[0], (1, top[0].normalized)
            if best is None or key < best[0]:
                best = (key, name, rec)
        if best is None:
            raise RunDirError(f"{self.out}: no search trained a program besides the start; "
                              "nothing to start the last search from")
        (by_holdout, figure), name, rec = best
        program = simplify_exact(parse(rec.program), strict=True)
        atomic_write(self.out / BEST_START, f"# optevo discover: best of {name} "
                     f"(id {rec.id})\n" + program.text())
        self.state["best_start"] = {"search": name, "id": rec.id, "normalized": rec.normalized,
                                    "holdout_ratio": figure if by_holdout == 0 else None}
        self._save()
        self._done("best_start")
        return self.state["best_start"]

    # --- funnel -------------------------------------------------------------------------------
    def candidates(self, fcfg: FunnelConfig) -> List[Candidate]:
        """Baselines, then the ``top`` distinct programs of all searches together, ranked by
        fitness relative to the tuned start of search-1..S (``plots.axis_factors``)."""
        dirs = [self.out / n for n in self.names]
        factors = axis_factors(self.out, self.names, self.state)
        usable = [d for d in dirs  # make_candidates refuses a run with nothing but the start
                  if best_distinct(RunDir.existing(d).records(), 1, include_start=False)]
        cands = make_candidates(fcfg, [str(d) for d in usable], self.opts["top"],
                                say=self.say) if usable else []
        progs = [c for c in cands if not c.baseline]
        if not progs:
            raise RunDirError(f"{self.out}: the searches trained no program besides the "
                              "start; nothing for the funnel")

        def fitness(c: Candidate) -> float:
            run, ident = c.name.rsplit("#", 1)
            r = RunDir(self.out / run).record(ident)
            return math.inf if r.normalized is None else r.normalized * factors[run]
        ranked = sorted(progs, key=lambda c: (fitness(c), c.name))[:self.opts["top"]]
        return [c for c in cands if c.baseline] + ranked

    def run_funnel(self):
        fdir = self.out / FUNNEL_DIR
        if (fdir / FUNNEL_JSON).exists():
            fcfg, cands = saved_funnel(fdir)
        else:
            fcfg = FunnelConfig.from_json(self.state["funnel_config"])
            cands = self.candidates(fcfg)
            new_funnel_dir(fdir, fcfg, cands)
        if "funnel" in self.state["done"] and (fdir / SUMMARY).exists():
            self.say("funnel: finished before; skipped")
            return
        workers = fcfg.workers.count if self.workers is None else self.workers
        address = fcfg.workers.address or self.cfg.workers.address
        self.say(f"funnel: {fdir}; {sum(not c.baseline for c in cands)} candidates "
                 f"({', '.join(c.name for c in cands if not c.baseline)}), "
                 f"{len(fcfg.stages)} stages; {workers or 'no'} Ray workers")
        Funnel(fcfg, fdir, cands, workers, address, log=self.log).execute()
        self._done("funnel")

    # --- all ----------------------------------------------------------------------------------
    def execute(self) -> int:
        with exclusive(self.out):  # one discover per directory (its steps lock their own)
            return self._execute()

    def _execute(self) -> int:
        for i in range(1, self.opts["searches"] + 1):
            self.run_one_search(i, self.search_config(i))
        best = self.choose_best_start()
        self.say(f"the best so far is {best['search']}#{best['id']}; one more search from "
                 f"it ({BEST_START})")
        n = self.opts["searches"] + 1
        self.run_one_search(n, self.search_config(n, str((self.out / BEST_START).resolve())))
        self.run_funnel()
        text = report.write(self.out, self.state, self.names)
        self._done("report")
        self.say(f"done: {self.out / REPORT}")
        print(text, file=self.log, flush=True)
        return 0


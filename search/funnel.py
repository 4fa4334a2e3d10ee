"""Funnel selection: re-check programs on progressively larger tasks (METHOD.md, "Generalization").

``optevo funnel RUN_DIR|PROGRAM... [--config configs/funnel.yaml] [--top K] [--workers N]
[--address ADDR] [--resume DIR] [--out DIR]``. Candidates are the top K distinct programs of a
search run (simplified) and/or program files. At every stage each candidate and each baseline
(optax AdamW, optax Lion, the AdamW start program) is tuned the same way:

1. learning-rate multiplier ``lr_ratio ** k`` for ``k`` in ``lr_range`` on the tuning seeds;
   while the best ``k`` is at an edge, the grid grows by one point on that side (at most
   ``max_extend`` per side); a best point still at the edge is flagged ``(edge)``;
2. then, where the optimizer has a weight-decay constant (a live ``x = w * c`` in a program,
   ``weight_decay`` of an optax baseline), its factor ``wd_ratio ** j``, ``j`` in
   ``wd_range``, and factor 0 (decay off), at that multiplier; the line grows upwards by
   the same edge rule (off brackets it from below). Coordinate-wise: one pass, lr first;
3. the chosen setting is trained on ``eval_seeds`` fresh seeds (never used for tuning).

Only candidates whose mean paired difference to the ``reference`` baseline on the eval seeds
is below ``-pass_margin_se`` standard errors go on to the next stage; baselines run on every
stage. A job is (candidate, setting, seed group) with groups of ``tune_seeds`` seeds, so one
compiled loop serves a stage; every finished job is one line of ``results.jsonl`` and
``--resume`` skips it. Every decision is a function of those lines, so a resumed funnel
writes the same tables as an uninterrupted one. Reports: ``optevo.search.funnel_report``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from .funnel_config import (FUNNEL_JSON, RESULTS, TIMING, WD_OFF, Candidate, FunnelConfig,
                            Stage, load_funnel_config, make_candidates, usage_error)
from .rundir import atomic_write

EVAL_SEED_BASE = 1_000_000  # tuning seeds are 0..T-1; eval seeds never overlap them


def job_key(stage: str, cand: str, k: int, j: int, group: str) -> str:
    return f"{stage}|{cand}|{k}|{j}|{group}"


def seeds_of(stage: Stage, group: str) -> List[int]:
    t = stage.tune_seeds
    if group == "t":
        return list(range(t))
    i = int(group[1:])
    return [EVAL_SEED_BASE + i * t + s for s in range(t)]


def mean_loss(rec: Dict) -> float:
    if any(rec["diverged"]) or any(x is None or not math.isfinite(x) for x in rec["losses"]):
        return math.inf
    return sum(rec["losses"]) / len(rec["losses"])


def _line_search(stage, cand, results, fixed, lo0, hi0, axis) -> Tuple[List, Optional[Tuple]]:
    """Grow ``[lo, hi]`` around ``[lo0, hi0]`` while the best point is at an edge. Returns
    (missing jobs, None) or ([], (best, at_edge, points)). The weight-decay line never grows
    downwards: factor 0 (off) brackets it from below."""
    low_open = axis == "lr"
    def key(i):
        k, j = (i, fixed) if axis == "lr" else (fixed, i)
        return job_key(stage.name, cand.name, k, j, "t")

    lo, hi = lo0, hi0
    while True:
        missing = [key(i) for i in range(lo, hi + 1) if key(i) not in results]
        if missing:
            return missing, None
        scores = [(mean_loss(results[key(i)]), i) for i in range(lo, hi + 1)]
        best = min(scores)[1]  # ties (all diverged): the smallest point
        if low_open and best == lo and lo > lo0 - stage.max_extend:
            lo -= 1
        elif best == hi and hi < hi0 + stage.max_extend and math.isfinite(min(scores)[0]):
            hi += 1
        else:
            return [], (best, best == hi or (low_open and best == lo), (lo, hi))


def plan(stage: Stage, cand: Candidate, results: Dict[str, Dict]):
    """What ``cand`` still needs on ``stage``: (missing job keys, None), or ([], decision)."""
    missing, lr = _line_search(stage, cand, results, 0, *stage.lr_range, "lr")
    if missing:
        return missing, None
    k, lr_edge, lr_span = lr
    j, wd_edge, wd_span = 0, False, None
    if cand.has_wd:  # the factor line, and weight decay switched off
        off = job_key(stage.name, cand.name, k, WD_OFF, "t")
        missing, wd = _line_search(stage, cand, results, k, *stage.wd_range, "wd")
        missing += [off] if off not in results else []
        if missing:
            return missing, None
        j, wd_edge, wd_span = wd
        if mean_loss(results[off]) < mean_loss(
                results[job_key(stage.name, cand.name, k, j, "t")]):
            j, wd_edge = WD_OFF, False
    groups = [f"e{i}" for i in range(stage.eval_seeds // stage.tune_seeds)]
    keys = [job_key(stage.name, cand.name, k, j, g) for g in groups]
    missing = [x for x in keys if x not in results]
    if missing:
        return missing, None
    losses, diverged = [], []
    for x in keys:
        losses += [math.inf if v is None else v for v in results[x]["losses"]]
        diverged += results[x]["diverged"]
    tune = mean_loss(results[job_key(stage.name, cand.name, k, j, "t")])
    return [], {"candidate": cand.name, "baseline": cand.baseline, "lr_k": k, "wd_j": j,
                "lr_mult": stage.lr_ratio ** k,
                "wd_factor": stage.wd_factor(j) if cand.has_wd else None,
                "lr_edge": lr_edge, "wd_edge": wd_edge,
                "lr_span": list(lr_span), "wd_span": list(wd_span) if wd_span else None,
                "tune_loss": tune, "losses": losses, "diverged": diverged,
                "eval_seeds": [s for g in groups for s in seeds_of(stage, g)]}


def parse_key(key: str) -> Tuple[str, str, int, int, str]:
    s, c, k, j, g = key.rsplit("|", 4)
    return s, c, int(k), int(j), g


class Results:
    """``results.jsonl``: one line per finished job, append-only, flushed per line."""

    def __init__(self, path: Path):
        self.path = path
        self.by_key: Dict[str, Dict] = {}
        if path.exists():
            data = path.read_bytes()
            end = data.rfind(b"\n") + 1
            if end != len(data):  # a line torn by a kill
                with open(path, "r+b") as f:
                    f.truncate(end)
            for line in data[:end].decode().splitlines():
                rec = json.loads(line)
                self.by_key[rec["key"]] = rec
        self._f = open(path, "a", buffering=1)

    def add(self, rec: Dict):
        self._f.write(json.dumps(rec, separators=(",", ":")) + "\n")
        self._f.flush()
        self.by_key[rec["key"]] = rec

    def close(self):
        self._f.close()


def _buckets(cands: List[Candidate]) -> Tuple[int, ...]:
    from optevo.dsl.liveness import strip_dead
    from optevo.dsl.parse import parse
    n = max([len(strip_dead(parse(c.text)).stmts) for c in cands if not c.optax] + [1])
    b = 8
    while b < n:
        b *= 2
    return (b,)


class Funnel:
    def __init__(self, cfg: FunnelConfig, out: Path, candidates: List[Candidate],
                 workers: int, address: Optional[str], log=sys.stdout):
        self.cfg, self.out, self.cands = cfg, Path(out), candidates
        self.workers, self.address, self.log = workers, address, log
        self.results = Results(self.out / RESULTS)
        self.pool = None

    def say(self, msg: str):
        print(msg, file=self.log, flush=True)

    def _make_pool(self, stage: Stage, cands: List[Candidate]):
        from .workers import EvalSpec, InProcessPool, RayPool
        spec = EvalSpec(stage.task, stage.task_options(), stage.steps,
                        tuple(seeds_of(stage, "t")), _buckets(cands))
        if self.workers <= 0:
            return InProcessPool(spec)
        return RayPool(spec, self.workers, self.address, self.cfg.pin_cores)

    def _close_pool(self, final: bool):
        if self.pool is None:
            if final and self.workers > 0 and "ray" in sys.modules:
                import ray
                if ray.is_initialized():
                    ray.shutdown()
            return
        if final:
            self.pool.shutdown()
        elif hasattr(self.pool, "ray"):  # keep Ray up for the next stage; drop the workers
            for w in self.pool.workers:
                try:
                    self.pool.ray.kill(w)
                except Exception:
                    pass
        self.pool = None

    def run_stage(self, si: int, stage: Stage, cands: List[Candidate]) -> Dict[str, Dict]:
        by_name = {c.name: c for c in cands}
        inflight = set()
        done_names = set()
        n_jobs, last = 0, time.time()
        while True:
            todo, decisions = [], {}
            for c in cands:
                missing, dec = plan(stage, c, self.results.by_key)
                if dec is not None:
                    decisions[c.name] = dec
                    if c.name not in done_names:
                        done_names.add(c.name)
                        self.say(f"  {c.name}: lr x{dec['lr_mult']:.4g}"
                                 + ("" if not c.has_wd else ", wd off" if dec["wd_factor"]
                                    == 0 else f", wd x{dec['wd_factor']:.4g}")
                                 + f", tuning loss {dec['tune_loss']:.4f}")
                else:
                    todo += [x for x in missing if x not in inflight]
            if len(decisions) == len(cands):
                return decisions
            if self.pool is None:
                self.pool = self._make_pool(stage, cands)
            for key in todo:
                if self.pool.free_slots <= 0:
                    break
                _, name, k, j, group = parse_key(key)
                c = by_name[name]
                self.pool.submit([(key, c.setting_text(stage, j))], seeds_of(stage, group),
                                 stage.lr_ratio ** k)
                inflight.add(key)
            for items, recs in self.pool.poll(1.0):
                for rec in recs:
                    key = rec["id"]
                    _, name, k, j, group = parse_key(key)
                    self.results.add({
                        "key": key, "stage": stage.name, "candidate": name, "lr_k": k,
                        "wd_j": j, "group": group, "seeds": rec["seeds"],
                        "losses": [x if math.isfinite(x) else None for x in rec["losses"]],
                        "diverged": rec["diverged"], "seconds": round(rec["seconds"], 4),
                        "worker": rec["worker"]})
                    inflight.discard(key)
                    n_jobs += 1
            if time.time() - last > 30:
                last = time.time()
                self.say(f"  {stage.name}: {n_jobs} jobs done here, {len(decisions)}/"
                         f"{len(cands)} optimizers settled")
                self._save_elapsed()

    def _save_elapsed(self) -> float:
        """Wall time over every session of this funnel (kept across kills and resumes)."""
        elapsed = self._before + time.time() - self._t0
        atomic_write(self.out / TIMING, json.dumps({"elapsed": elapsed}))
        return elapsed

    def execute(self) -> int:
        from . import funnel_report as rep
        self._t0 = time.time()
        timing_path = self.out / TIMING
        self._before = json.loads(timing_path.read_text())["elapsed"] \
            if timing_path.exists() else 0.0
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
                passed = {r["candidate"] for r in rows if r["passes"]}
                alive = [c for c in alive if c.name in passed]
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


def add_parser(subparsers):
    p = subparsers.add_parser(
        "funnel", help="re-tune and re-check a run's best programs (or program files) on "
                       "progressively larger tasks")
    p.add_argument("inputs", nargs="*", metavar="RUN_DIR|PROGRAM",
                   help="a search run directory (its top K programs) and/or program files")
    p.add_argument("--config", default=None,
                   help="funnel config (default: configs/funnel.yaml)")
    p.add_argument("--top", type=int, help="programs taken from each run directory")
    p.add_argument("--workers", type=int, help="Ray workers (0: in-process, no Ray)")
    p.add_argument("--address", help="join a running Ray cluster")
    p.add_argument("--resume", metavar="DIR", help="continue a killed (or finished) funnel")
    p.add_argument("--out", metavar="DIR",
                   help="funnel directory (default RUN_DIR/funnel, or runs/funnel-TIME)")
    p.set_defaults(fn=cmd_funnel)
    return p


def cmd_funnel(args) -> int:
    from optevo.proxy_tasks.engine import enable_compile_cache
    enable_compile_cache()
    if args.resume:
        out = Path(args.resume)
        if not (out / FUNNEL_JSON).exists():
            raise usage_error(f"{out}: not a funnel directory (no {FUNNEL_JSON})")
        if args.inputs or args.config or args.top is not None:
            raise usage_error("--resume takes no inputs, --config or --top (they are saved)")
        saved = json.loads((out / FUNNEL_JSON).read_text())
        cfg = FunnelConfig.from_json(saved["config"])
        cands = [Candidate(**c) for c in saved["candidates"]]
    else:
        if not args.inputs:
            raise usage_error("give a RUN_DIR or program files, or --resume DIR")
        cfg = load_funnel_config(args.config)
        top = cfg.top_k if args.top is None else args.top
        if top < 1:
            raise usage_error("--top must be at least 1")
        cands = make_candidates(cfg, args.inputs, top)
        if args.out:
            out = Path(args.out)
        elif len(args.inputs) == 1 and os.path.isdir(args.inputs[0]):
            out = Path(args.inputs[0]) / "funnel"
        else:
            out = Path(f"runs/funnel-{time.strftime('%Y%m%d-%H%M%S')}")
        if (out / FUNNEL_JSON).exists():
            raise usage_error(f"{out}: already holds a funnel; continue it with --resume {out}"
                              " or choose another --out")
        out.mkdir(parents=True, exist_ok=True)
        atomic_write(out / FUNNEL_JSON, json.dumps(
            {"config": cfg.to_json(), "candidates": [c.__dict__ for c in cands]}, indent=1))
    workers = cfg.workers if args.workers is None else args.workers
    address = args.address or cfg.address
    print(f"optevo funnel: {out}; {sum(not c.baseline for c in cands)} candidates, "
          f"baselines {', '.join(c.name for c in cands if c.baseline)}; "
          f"{len(cfg.stages)} stages; {workers or 'no'} Ray workers", flush=True)
    return Funnel(cfg, out, cands, workers, address).execute()


def main(argv=None) -> int:
    from optevo.dsl.program import ProgramError
    from .cli import UsageError
    ap = argparse.ArgumentParser(prog="optevo")
    add_parser(ap.add_subparsers(dest="command", required=True))
    args = ap.parse_args(["funnel", *(sys.argv[1:] if argv is None else argv)])
    try:
        return args.fn(args)
    except (ProgramError, UsageError) as e:
        print(f"optevo: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

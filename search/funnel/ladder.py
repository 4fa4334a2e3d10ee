"""The ladder check: does a funnel rank well-known optimizers as published studies at scale do?

``optevo ladder [FUNNEL_CONFIG]`` runs the funnel with every candidate kept on every stage
(``keep_all``): the config's baselines, the library programs of :data:`KNOWN` and, for check
(d), more programs (mutants of the AdamW start and of Muon, drawn by the search's own
mutations; search outputs or files given on the command line). Each is tuned on learning
rate and weight decay by the funnel's one rule (``plan.py``) and trained on fresh seeds. The
checks, each with its figure (paired difference to the reference, tuned AdamW, on the same
fresh seeds; negative: better than AdamW):

- (a) on the final stage tuned AdamW beats SGD and SGD with momentum by more than 3 SE.
  Evidence: on transformer language models Adam is far ahead of SGD with momentum
  (Kunstner et al. 2023, arXiv 2304.13960; Zhao et al. 2024, arXiv 2407.07972; Orvieto &
  Gower 2025: signed momentum closes most of the gap, SGD does not), a gap that opens with
  the batch size (Srećković, Geiping & Orvieto 2025, arXiv 2506.12543: SGD with momentum
  matches Adam at small batch), which is why the default final stage runs batch 256.
- (b) on the final stage tuned Muon beats tuned AdamW by more than 2 SE (Jordan et al. 2024;
  Wen et al. 2025, arXiv 2509.02046: matrix-based optimizers 1.3-1.4x faster than AdamW at
  0.1B parameters).
- (c) on every upper stage (all but the first; a one-stage funnel's only stage) at batch 64
  or less, tuned Lion and signum do not beat tuned AdamW by more than 1 SE (Chen et al.
  2023: Lion's gain over AdamW shrinks at small batch; Zhao et al. 2024: signum and Lion
  match Adam, not beat it).
- (d) the two upper stages (the last two) agree: Spearman's rho over every program's tuned
  mean loss at least :data:`MIN_RHO`, with a bootstrap 95% interval, over at least
  :data:`MIN_PROGRAMS` programs of which at least :data:`MIN_COMPETITIVE` are competitive
  (mean loss within ``competitive`` x the reference's on both upper stages).

A check that cannot be judged (a program missing, fewer than two stages, no upper stage at
batch 64 or less for (c)) is reported as such and does not pass. The ladder directory is a
funnel directory (``--resume`` continues it); ``ladder.md`` and ``ladder.json`` hold the
table and checks.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from optevo.proxy_tasks.fitness import bootstrap_spearman, spearman

from ..core.rundir import atomic_write
from . import report as rep
from .candidates import Candidate
from .config import FunnelConfig, Stage
from .plan import plan
from .runner import Results

# library programs every ladder tunes (configs/programs)
KNOWN = ("adamw", "sgd", "momentum", "nesterov", "signum", "lion", "rmsprop", "adabelief",
         "muon")
MIN_RHO, MIN_PROGRAMS, MIN_COMPETITIVE = 0.7, 45, 20
COMPETITIVE = 1.1  # within this ratio of the reference's mean loss on both upper stages


def stage_batch(stage: Stage) -> Optional[int]:
    return getattr(stage.make_task(), "batch_size", None)


def stage_tables(cfg: FunnelConfig, cands: Sequence[Candidate], done: Dict[str, Dict]
                 ) -> List[Dict[str, Dict]]:
    """Each stage's rows (``report.stage_rows``) by candidate, from the finished jobs
    ``done`` (``Results.by_key``); a candidate not settled on a stage is absent there."""
    out = []
    for stage in cfg.stages:
        decisions = {}
        for c in cands:
            dec = plan(stage, c, done)[1]
            if dec is not None:
                decisions[c.name] = dec
        rows = rep.stage_rows(cfg, stage, decisions) if cfg.reference in decisions else []
        out.append({r["candidate"]: r for r in rows})
    return out


def _diff(row: Optional[Dict]) -> Optional[Dict]:
    """A row's paired difference to the reference and its SE (None if not computed)."""
    if row is None or "diff" not in row:
        return None
    return {"diff": row["diff"], "se": row["diff_se"], "z": row["diff"] / row["diff_se"]
            if row["diff_se"] > 0 else math.copysign(math.inf, row["diff"] or 1.0)}


def _judge(name: str, claim: str, figures: Dict, ok: Optional[bool], why: str = "") -> Dict:
    return {"check": name, "claim": claim, "figures": figures,
            "status": "pass" if ok else "not judged" if ok is None else "fail", "why": why}


def check_known(cfg: FunnelConfig, tables: Sequence[Dict[str, Dict]]) -> List[Dict]:
    """Checks (a) and (b) on the final stage's rows, (c) on every upper stage (all but the
    first, the search's own proxy) whose batch is at most 64."""
    ref, final = cfg.reference, tables[-1]
    out = []

    def figs(rows, names):
        return {n: _diff(rows.get(n)) for n in names}

    f = figs(final, ("sgd", "momentum"))
    ok = None if any(v is None for v in f.values()) else all(v["z"] > 3 for v in f.values())
    out.append(_judge("a", f"{ref} beats sgd and momentum by more than 3 SE (final stage)", f,
                      ok, "" if ok is not None else "sgd or momentum not settled or diverged"))
    f = figs(final, ("muon",))
    ok = None if f["muon"] is None else f["muon"]["z"] < -2
    out.append(_judge("b", f"muon beats {ref} by more than 2 SE (final stage)", f, ok,
                      "" if ok is not None else "muon not settled or diverged"))
    upper = range(1 if len(cfg.stages) > 1 else 0, len(cfg.stages))
    small = [i for i in upper if (stage_batch(cfg.stages[i]) or math.inf) <= 64]
    f = {f"{n} on {cfg.stages[i].name}": _diff(tables[i].get(n))
         for i in small for n in ("lion", "signum")}
    claim = f"lion and signum do not beat {ref} by more than 1 SE on upper stages at batch <= 64"
    if not small:
        out.append(_judge("c", claim, f, None, "no upper stage has a batch of 64 or less"))
    else:
        ok = None if any(v is None for v in f.values()) else all(v["z"] >= -1 for v in f.values())
        out.append(_judge("c", claim, f, ok, "" if ok is not None else
                          "lion or signum not settled or diverged"))
    return out


def check_agreement(cfg: FunnelConfig, lower: Dict[str, Dict], upper: Dict[str, Dict],
                    competitive: float = COMPETITIVE, seed: int = 0) -> Dict:
    """Check (d): Spearman's rho of the two upper stages' tuned mean losses over every
    program settled on both with no seed diverged (a program diverged on both would only
    add a tie at the bottom of both rankings; they are counted apart)."""
    both = sorted(set(lower) & set(upper))
    names = [n for n in both if "mean" in lower[n] and "mean" in upper[n]]
    x = np.array([lower[n]["mean"] for n in names], np.float64)
    y = np.array([upper[n]["mean"] for n in names], np.float64)
    ref = cfg.reference
    comp = [i for i, n in enumerate(names)
            if ref in lower and ref in upper
            and x[i] <= competitive * lower[ref]["mean"]
            and y[i] <= competitive * upper[ref]["mean"]]
    figures = {"n": len(names), "diverged": len(both) - len(names), "competitive": len(comp),
               "competitive_ratio": competitive}
    if len(names) >= 3:
        figures["rho"] = spearman(x, y)
        figures["rho_95"] = list(bootstrap_spearman(x, y, 1000, seed))
    if len(comp) >= 3:
        figures["rho_competitive"] = spearman(x[comp], y[comp])
        figures["rho_competitive_95"] = list(bootstrap_spearman(x[comp], y[comp], 1000, seed))
    claim = (f"the upper stages agree: Spearman >= {MIN_RHO} over >= {MIN_PROGRAMS} programs, "
             f">= {MIN_COMPETITIVE} competitive")
    if len(names) < MIN_PROGRAMS or len(comp) < MIN_COMPETITIVE:
        return _judge("d", claim, figures, None,
                      f"{len(names)} programs ({len(comp)} competitive): too few to judge")
    return _judge("d", claim, figures, figures["rho"] >= MIN_RHO)


def ladder_checks(cfg: FunnelConfig, cands: Sequence[Candidate], out: Path,
                  competitive: float = COMPETITIVE) -> Dict:
    """Every check, the per-stage table (paired diff vs the reference) and each stage's
    measured seconds per seed-run, from the funnel directory ``out``."""
    path = Path(out) / "results.jsonl"
    res = Results(path)
    res.close()
    tables = stage_tables(cfg, cands, res.by_key)
    checks = check_known(cfg, tables)
    if len(cfg.stages) >= 2:
        checks.append(check_agreement(cfg, tables[-2], tables[-1], competitive))
    else:
        checks.append(_judge("d", "the upper stages agree", {}, None, "fewer than two stages"))
    measured = rep.measured_seconds(path, cands)
    per_opt = optimizer_seconds(res.by_key.values())
    rows = {c.name: [_row(t.get(c.name)) for t in tables] for c in cands}
    stages = [{"name": s.name, "describe": s.make_task().describe(),
               "s_per_seed_run": measured.get(s.name), "batch": stage_batch(s),
               "s_per_optimizer": _median(per_opt.get(s.name, {}).values())}
              for s in cfg.stages]
    return {"reference": cfg.reference, "stages": stages, "rows": rows, "checks": checks,
            "funnel_estimate": funnel_estimate(cfg, stages, sum(c.baseline for c in cands)),
            "passed": all(c["status"] == "pass" for c in checks)}


def optimizer_seconds(records) -> Dict[str, Dict[str, float]]:
    """Seconds of worker time each optimizer took on each stage (its tuning and fresh-seed
    jobs, summed), by stage then optimizer, from the funnel's job records."""
    out: Dict[str, Dict[str, float]] = {}
    for r in records:
        st = out.setdefault(r["stage"], {})
        st[r["candidate"]] = st.get(r["candidate"], 0.0) + float(r["seconds"])
    return out


def _median(xs) -> Optional[float]:
    xs = sorted(xs)
    return None if not xs else float(np.median(xs))


def funnel_estimate(cfg: FunnelConfig, stages: List[Dict], n_baselines: int,
                    n_candidates: int = 6) -> Dict:
    """What a funnel of ``n_candidates`` plus the baselines would take, if every candidate
    passed every stage (the worst case) up to each stage's ``keep``: per stage, optimizers
    times the median optimizer's worker seconds there, over the config's workers."""
    workers = max(1, cfg.workers.count)
    alive, total, per_stage = n_candidates, 0.0, []
    for stage, st in zip(cfg.stages, stages):
        s = (n_baselines + alive) * (st["s_per_optimizer"] or 0.0) / workers
        per_stage.append(s)
        total += s
        alive = min(alive, stage.keep) if stage.keep else alive
    return {"candidates": n_candidates, "baselines": n_baselines, "workers": workers,
            "seconds_per_stage": per_stage, "seconds": total}


def _row(r: Optional[Dict]) -> Optional[Dict]:
    if r is None:
        return None
    keep = ("mean", "ratio", "diff", "diff_se", "lr_mult", "wd_factor", "lr_edge", "wd_edge",
            "diverged", "decay_added")
    return {k: r.get(k) for k in keep}


def _fmt_cell(r: Optional[Dict], ref: bool) -> str:
    if r is None:
        return "not run"
    if r["diverged"]:
        return "diverged"
    edge = " (edge)" if r["lr_edge"] or r["wd_edge"] else ""
    if ref:
        return f"{r['mean']:.4f}{edge}"
    return f"{r['diff']:+.4f} ± {r['diff_se']:.4f}{edge}" if r.get("diff") is not None \
        else f"{r['mean']:.4f}{edge}"


def _fmt_figures(c: Dict) -> str:
    f = c["figures"]
    if c["check"] == "d":
        parts = [f"{f.get('n', 0)} programs ({f.get('competitive', 0)} competitive, "
                 f"{f.get('diverged', 0)} diverged left out)"]
        if "rho" in f:
            parts.append(f"rho {f['rho']:.2f} [{f['rho_95'][0]:.2f}, {f['rho_95'][1]:.2f}]")
        if "rho_competitive" in f:
            lo, hi = f["rho_competitive_95"]
            parts.append(f"competitive rho {f['rho_competitive']:.2f} [{lo:.2f}, {hi:.2f}]")
        return "; ".join(parts)
    return "; ".join(f"{n}: " + ("—" if v is None else
                                 f"{v['diff']:+.4f} ± {v['se']:.4f} ({v['z']:+.1f} SE)")
                     for n, v in f.items())


def ladder_markdown(result: Dict, order: Sequence[str]) -> str:
    ref = result["reference"]
    st = result["stages"]
    lines = [f"| optimizer | " + " | ".join(s["name"] for s in st) + " |",
             "|---|" + "---|" * len(st),
             "| s per seed-run | " + " | ".join(
                 "—" if s["s_per_seed_run"] is None else f"{s['s_per_seed_run']:.3g}"
                 for s in st) + " |"]
    for name in order:
        cells = result["rows"].get(name)
        if cells is not None:
            lines.append(f"| {name} | " + " | ".join(_fmt_cell(r, name == ref) for r in cells)
                         + " |")
    lines += ["", f"Cells: mean paired difference of tuned validation loss to tuned `{ref}` "
              f"(its row: its mean loss) ± standard error, on each stage's fresh seeds; "
              f"negative is better than `{ref}`.", "",
              "| check | claim | figures | result |", "|---|---|---|---|"]
    for c in result["checks"]:
        verdict = c["status"] + (f" ({c['why']})" if c["why"] else "")
        lines.append(f"| ({c['check']}) | {c['claim']} | {_fmt_figures(c)} | {verdict} |")
    lines.append("")
    lines.append("Stages: " + "; ".join(f"{s['name']}: {s['describe']}" for s in st) + ".")
    est = result["funnel_estimate"]
    lines += ["", f"Cost: worker seconds per optimizer (median over optimizers, tuning and "
              f"fresh seeds): " + ", ".join(
                  f"{s['name']} {s['s_per_optimizer']:.0f} s" if s["s_per_optimizer"]
                  else f"{s['name']} —" for s in st) + ". A funnel of "
              f"{est['candidates']} candidates and the {est['baselines']} baseline(s), every "
              f"candidate passing each stage (up to its `keep`), would take about "
              f"{est['seconds'] / 60:.0f} min on {est['workers']} workers (estimated from "
              f"those medians)."]
    return "\n".join(lines) + "\n"


def write_ladder(out: Path, result: Dict, order: Sequence[str]) -> str:
    text = ladder_markdown(result, order)
    atomic_write(Path(out) / "ladder.md", text)
    atomic_write(Path(out) / "ladder.json", json.dumps(result, indent=1, default=float))
    return text

"""The funnel's tuning plan: which jobs a candidate still needs on a stage, and the decision
once they are done (a pure function of the finished jobs' results).

At every stage each candidate and each baseline is tuned the same way:

1. learning-rate multiplier ``lr_ratio ** k`` for ``k`` in ``lr_range`` on the tuning seeds;
   while the best ``k`` is at an edge, the grid grows by one point on that side (at most
   ``max_extend`` per side); a best point still at the edge is flagged ``(edge)``;
2. then, where the optimizer has a weight-decay constant, its factor ``wd_ratio ** j``,
   ``j`` in ``wd_range``, and factor 0 (decay off), at that multiplier; the line grows
   upwards by the same edge rule (off brackets it from below). Coordinate-wise: one pass,
   lr first;
3. the chosen setting is trained on ``eval_seeds`` fresh seeds (never used for tuning).

A job is (stage, candidate, lr point, wd point, seed group) with groups of ``tune_seeds``
seeds, named by :func:`job_key`. Because every decision is a function of the finished jobs,
a resumed funnel decides exactly as an uninterrupted one.
"""

from __future__ import annotations

import math
from typing import Dict, List, Optional, Tuple

from .candidates import Candidate
from .config import WD_OFF, Stage

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

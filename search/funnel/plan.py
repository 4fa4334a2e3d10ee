"""The funnel's tuning plan: which jobs a candidate still needs on a stage, and the decision
once they are done (a pure function of the finished jobs' results).

At every stage each candidate and each baseline is tuned by the one rule
(``optevo.proxy_tasks.tuning.Coordinate``):

1. learning-rate multiplier ``lr_ratio ** k`` for ``k`` in ``lr_range`` on the tuning seeds;
   while the best ``k`` is at an edge, the grid grows by one point on that side (at most
   ``max_extend`` per side); a best point still at the edge is flagged ``(edge)``;
2. then its weight-decay factor ``wd_ratio ** j`` (every candidate has one: a program's
   decay sites, or decoupled decay added; a baseline's ``weight_decay``),
   ``j`` in ``wd_range``, and factor 0 (decay off), at that multiplier; the line grows
   upwards by the same edge rule (off brackets it from below). Coordinate-wise, lr first,
   and again (lr at the chosen decay, decay at that lr) while the decay moved, at most
   ``PASSES`` times;
3. the chosen setting is trained on ``eval_seeds`` fresh seeds (never used for tuning).

A job is (stage, candidate, lr point, wd point, seed group) with groups of ``tune_seeds``
seeds: a :class:`~..core.jobs.JobId` (purpose ``funnel``), named in ``results.jsonl`` by
:func:`job_key`. Because every decision is a function of the finished jobs, a resumed funnel
decides exactly as an uninterrupted one.
"""

from __future__ import annotations

import math
from typing import Dict, List

from optevo.proxy_tasks.seeds import fresh_seeds
from optevo.proxy_tasks.tuning import Coordinate

from ..core.jobs import FUNNEL, JobId
from .candidates import Candidate
from .config import Stage


def job_id(stage: str, cand: str, k: int, j: int, group: str) -> JobId:
    return JobId(FUNNEL, f"{stage}/{cand}", k, j, group)


def job_key(stage: str, cand: str, k: int, j: int, group: str) -> str:
    """The text of a funnel job's id (the key of its line in ``results.jsonl``)."""
    return str(job_id(stage, cand, k, j, group))


def seeds_of(stage: Stage, group: str) -> List[int]:
    """Group ``t``: the tuning seeds ``0..T-1``; group ``eI``: the I-th fresh group."""
    t = stage.tune_seeds
    return list(range(t)) if group == "t" else fresh_seeds(t, int(group[1:]) * t)


def mean_loss(rec: Dict) -> float:
    if any(rec["diverged"]) or any(x is None or not math.isfinite(x) for x in rec["losses"]):
        return math.inf
    return sum(rec["losses"]) / len(rec["losses"])


def plan(stage: Stage, cand: Candidate, results: Dict[str, Dict], as_ids: bool = False):
    """What ``cand`` still needs on ``stage``: (missing job keys, None), or ([], decision);
    ``as_ids``: the missing jobs as :class:`JobId` s."""
    def key(k, j, g="t"):
        return job_key(stage.name, cand.name, k, j, g)

    def out(missing):
        return [job_id(stage.name, cand.name, k, j, g) if as_ids else key(k, j, g)
                for k, j, g in missing], None

    def lookup(k, j):
        rec = results.get(key(k, j))
        return None if rec is None else mean_loss(rec)

    rule = Coordinate(stage.lr_rule, stage.wd_rule if cand.has_wd else None)
    missing, lines = rule.step(lookup)
    if missing:
        return out([(k, j, "t") for k, j in missing])
    lr, wd = lines
    k, j = lr.best, wd.best if wd else 0
    groups = [f"e{i}" for i in range(stage.eval_seeds // stage.tune_seeds)]
    keys = [key(k, j, g) for g in groups]
    if any(x not in results for x in keys):
        return out([(k, j, g) for g, x in zip(groups, keys) if x not in results])
    losses, diverged = [], []
    for x in keys:
        losses += [math.inf if v is None else v for v in results[x]["losses"]]
        diverged += results[x]["diverged"]
    return [], {"candidate": cand.name, "baseline": cand.baseline, "lr_k": k, "wd_j": j,
                "decay_added": cand.decay_added,
                "lr_mult": stage.lr_rule.value(k),
                "wd_factor": stage.wd_factor(j) if cand.has_wd else None,
                "lr_edge": lr.at_edge, "wd_edge": bool(wd and wd.at_edge),
                "lr_span": list(lr.span), "wd_span": list(wd.span) if wd else None,
                "tune_loss": lookup(k, j), "losses": losses, "diverged": diverged,
                "eval_seeds": [s for g in groups for s in seeds_of(stage, g)]}

"""Learning-rate (and weight-decay) tuning on a worker pool: the calibration of a search's
start program and the tuned baselines of its held-out re-check.

DEVELOPERS.md principle 7: a number means something only next to tuned AdamW on the same
seeds. So before a search the start program's lr multiplier is tuned (a log grid, the search's
own fitness seeds), and the tuned start is the 1.0 of every normalized figure; at the end the
top programs are re-tuned around that multiplier, and optax AdamW gets its learning rate and
weight decay tuned as the funnel tunes them, before all are trained on fresh seeds.

The line search (:func:`tune_line`): points ``ratio ** k`` for ``k`` in ``[lo, hi]`` around a
centre; while the best point is at an edge the line grows by one point on that side (at most
``max_extend`` per side); a best point still at an edge is reported (``at_edge``). Ties and
all-diverged lines take the smallest multiplier. Scores are mean losses over the seeds, with
a diverged seed scoring ``inf`` (``optevo.proxy_tasks.fitness``).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, Dict, List, Sequence, Tuple

from optevo.proxy_tasks.baselines.specs import parse_spec, spec_text

from .scoring import Scorer, task_results

DEFAULT_ADAMW = spec_text("adamw")  # optax's defaults; weight decay 1e-4 (the funnel's too)


def run_jobs(pool, jobs: Sequence[Tuple[str, str, object, float]]) -> Dict[str, Dict]:
    """Train every job ``(key, text, seeds, lr_scale)`` on ``pool`` (``seeds`` None: the
    pool's fitness seeds); returns key -> the worker's result. Keeps the pool full."""
    todo, out = list(jobs), {}
    while todo or pool.in_flight:
        while todo and pool.free_slots:
            key, text, seeds, scale = todo.pop(0)
            pool.submit([(key, text)], seeds, scale)
        for _, results in pool.poll(0.5):
            for r in results:
                out[r["id"]] = r
    return out


def score(result: Dict, scorer=None) -> float:
    """``scorer``'s fitness of a result (``scoring.Scorer``; default the one-task fitness:
    the mean loss over the seeds, inf if any seed diverged)."""
    return (scorer or Scorer())(result).value


@dataclasses.dataclass
class Line:
    """The outcome of a line search: the best multiplier and what was tried."""

    best: float
    loss: float
    at_edge: bool
    points: Dict[float, float]  # multiplier -> mean loss
    results: Dict[float, Dict] = dataclasses.field(default_factory=dict, repr=False)

    def to_json(self) -> Dict:
        fin = (lambda x: x if math.isfinite(x) else None)
        return {"best": self.best, "loss": fin(self.loss), "at_edge": self.at_edge,
                "points": [[k, fin(v)] for k, v in sorted(self.points.items())]}


def tune_line(evaluate: Callable[[List[float]], List[float]], centre: float = 1.0,
              ratio: float = 2.0, lo: int = -4, hi: int = 4, max_extend: int = 4,
              grow_down: bool = True) -> Line:
    """Line search over ``centre * ratio ** k`` (see the module docstring); ``evaluate``
    maps a list of multipliers to their mean losses (one batch of jobs per call).
    ``grow_down=False``: the line never grows below ``lo`` (weight decay: "off" brackets
    it from below)."""
    losses: Dict[int, float] = {}

    def ensure(ks):
        new = [k for k in ks if k not in losses]
        if new:
            for k, v in zip(new, evaluate([centre * ratio ** k for k in new])):
                losses[k] = v

    a, b = lo, hi
    ensure(range(a, b + 1))
    while True:
        best = min(range(a, b + 1), key=lambda k: (losses[k], k))
        if best == a and grow_down and a > lo - max_extend:
            a -= 1
        elif best == b and b < hi + max_extend and math.isfinite(losses[best]):
            b += 1
        else:
            break
        ensure([a, b])
    return Line(centre * ratio ** best, losses[best], best == b or (grow_down and best == a),
                {centre * ratio ** k: losses[k] for k in range(a, b + 1)})


def suite_scales(base) -> bool:
    return isinstance(base, (list, tuple))


def job_scales(base, m: float):
    """The ``lr_scales`` of a job at the tuned value ``m`` (``Line.best``) of a line run with
    ``base``: ``m`` itself for one task (the line runs over absolute scales around ``base``),
    ``[b * m for b in base]`` for a suite (the line runs over one multiplier of every
    task's calibrated scale)."""
    return [b * m for b in base] if suite_scales(base) else m


def tune_program(pool, key: str, text: str, seeds=None, base=1.0, scorer=None,
                 **line) -> Line:
    """The lr scale of program (or optax spec) ``text`` on ``pool`` (its fitness seeds by
    default) around ``base`` (a float; or one scale per task of a suite, all multiplied by
    one factor), scored by ``scorer`` (``scoring.Scorer``; default: the mean loss). The
    job's lr scales are ``job_scales(base, Line.best)``; ``Line.results`` holds each point's
    raw worker result."""
    raw: Dict[float, Dict] = {}

    def evaluate(ms):
        res = run_jobs(pool, [(f"{key}@{m!r}", text, seeds, job_scales(base, m)) for m in ms])
        raw.update({m: res[f"{key}@{m!r}"] for m in ms})
        return [score(raw[m], scorer) for m in ms]
    found = tune_line(evaluate, 1.0 if suite_scales(base) else base, **line)
    found.results = raw
    return found


def tune_tasks(pool, key: str, text: str, n_tasks: int, seeds=None, **line) -> List[Line]:
    """Each task's own lr multiplier for ``text`` (one task, or a suite: ``n_tasks``). A
    task's loss depends only on its own multiplier, so one job per multiplier trains every
    task at it and serves every task's line search. ``Line.results`` holds the raw results
    (every task's part) by multiplier."""
    cache: Dict[float, Dict] = {}

    def train(ms):
        missing = [m for m in ms if m not in cache]
        arg = (lambda m: m if n_tasks == 1 else [m] * n_tasks)
        res = run_jobs(pool, [(f"{key}@{m!r}", text, seeds, arg(m)) for m in missing])
        cache.update({m: res[f"{key}@{m!r}"] for m in missing})

    lines = []
    for t in range(n_tasks):
        def evaluate(ms, t=t):
            train(ms)
            return [score(task_results(cache[m])[t]) for m in ms]
        found = tune_line(evaluate, 1.0, **line)
        found.results = dict(cache)  # whole results (every task), by multiplier
        lines.append(found)
    return lines


def tune_adamw(pool, n_tasks: int = 1, scorer=None, seeds=None, text: str = DEFAULT_ADAMW,
               wd_ratio: float = 3.0, wd_range: Tuple[int, int] = (-1, 1),
               max_extend: int = 8) -> Tuple[str, object, List[Line], Line]:
    """optax AdamW tuned as the funnel tunes it: its lr multiplier first (each task's own, for
    a suite), then its weight-decay factor ``wd_ratio ** j`` (grown upwards at the edge) or 0
    (off) at those multipliers, scored by ``scorer`` (default: the mean loss). Returns (the
    spec text with the tuned weight decay, the jobs' lr scales, the lr lines, the wd line)."""
    kind, h = parse_spec(text)
    lrs = tune_tasks(pool, "adamw", text, n_tasks, seeds, max_extend=max_extend)
    scales = lrs[0].best if n_tasks == 1 else [line.best for line in lrs]
    def with_wd(f):
        return spec_text(kind, **{**h, "weight_decay": h["weight_decay"] * f})

    def evaluate(factors):
        res = run_jobs(pool, [(f"adamw-wd@{f!r}", with_wd(f), seeds, scales) for f in factors])
        return [score(res[f"adamw-wd@{f!r}"], scorer) for f in factors]

    wd = tune_line(evaluate, 1.0, wd_ratio, wd_range[0], wd_range[1], max_extend=4,
                   grow_down=False)
    off = evaluate([0.0])[0]
    if off < wd.loss:
        wd = Line(0.0, off, False, {**wd.points, 0.0: off})
    else:
        wd.points[0.0] = off
    return with_wd(wd.best), scales, lrs, wd

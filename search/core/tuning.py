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

from optevo.proxy_tasks.fitness import aggregate
from optevo.proxy_tasks.optax_baselines import parse_spec, spec_text

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


def score(result: Dict) -> float:
    """Mean loss over the seeds; inf if any seed diverged."""
    return aggregate(result["losses"], result["diverged"]).mean


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


def tune_program(pool, key: str, text: str, seeds=None, centre: float = 1.0,
                 **line) -> Line:
    """The lr multiplier of program (or optax spec) ``text`` on ``pool`` (its fitness seeds
    by default); ``Line.results`` holds each multiplier's raw worker result."""
    raw: Dict[float, Dict] = {}

    def evaluate(scales):
        res = run_jobs(pool, [(f"{key}@{s!r}", text, seeds, s) for s in scales])
        raw.update({s: res[f"{key}@{s!r}"] for s in scales})
        return [score(raw[s]) for s in scales]
    found = tune_line(evaluate, centre, **line)
    found.results = raw
    return found


def tune_adamw(pool, seeds=None, text: str = DEFAULT_ADAMW, wd_ratio: float = 3.0,
               wd_range: Tuple[int, int] = (-1, 1), max_extend: int = 8
               ) -> Tuple[str, Line, Line]:
    """optax AdamW tuned as the funnel tunes it: its lr multiplier first, then its weight
    decay factor ``wd_ratio ** j`` (grown upwards at the edge) or 0 (off) at that lr.
    Returns (the tuned spec text with its lr multiplier folded in, lr line, wd line)."""
    kind, h = parse_spec(text)
    lr = tune_program(pool, "adamw", text, seeds, max_extend=max_extend)
    base = {**h, "learning_rate": h["learning_rate"] * lr.best}

    def with_wd(f):
        return spec_text(kind, **{**base, "weight_decay": h["weight_decay"] * f})

    def evaluate(factors):
        res = run_jobs(pool, [(f"adamw-wd@{f!r}", with_wd(f), seeds, 1.0) for f in factors])
        return [score(res[f"adamw-wd@{f!r}"]) for f in factors]

    wd = tune_line(evaluate, 1.0, wd_ratio, wd_range[0], wd_range[1], max_extend=4,
                   grow_down=False)
    off = evaluate([0.0])[0]
    if off < wd.loss:
        wd = Line(0.0, off, False, {**wd.points, 0.0: off})
    else:
        wd.points[0.0] = off
    return with_wd(wd.best), lr, wd

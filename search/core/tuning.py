"""Tuning on a worker pool, by the one rule (``optevo.proxy_tasks.tuning``): the calibration
of a search's start program and the tuned baselines of its held-out re-check.

A number means something only next to tuned baselines on the same seeds (Chen et al. 2023
tune every baseline). So before a search the start program's lr multiplier is tuned (a log
grid, the search's own fitness seeds; :func:`calibrate_start`), and the tuned start is the
1.0 of every normalized figure; at the end the top programs are re-tuned around that
multiplier (:func:`tune_program`), and optax AdamW gets its learning rate and then its weight
decay tuned (:func:`tune_adamw`), before all are trained on fresh seeds.

Each point of a line is one :class:`~.jobs.Job` (``JobId(TUNE, key, lr=k)``, or ``wd=j``
for the weight-decay line); scores are the :class:`~.scoring.Scorer`'s fitness (the mean
loss over the seeds for one task, ``inf`` if a seed diverged).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Dict, List, Optional, Sequence, Tuple, Union

from optevo.dsl.errors import OptevoError
from optevo.proxy_tasks.baselines.specs import parse_spec, spec_text
from optevo.proxy_tasks.tuning import Line, LineRule, tune_line

from .jobs import TUNE, Job, JobId, Result
from .scoring import Scorer

DEFAULT_ADAMW = spec_text("adamw")  # optax's defaults; weight decay 1e-4 (the funnel's too)
CALIBRATION = LineRule(lo=-4, hi=8, max_extend=6)  # the start: 2^-4..2^8, grown to 2^+-14
RETUNE = LineRule(lo=-2, hi=2, max_extend=4)  # programs: 2^-2..2^2 around the calibrated one
# baselines: 2^-4..2^4, grown up to 12 points per side. With 8, tuned AdamW's best on the
# planted task sat at the last point (2^12, "edge"); the next one (2^13) is worse.
BASELINE = LineRule(max_extend=12)
WEIGHT_DECAY = LineRule(ratio=3.0, lo=-1, hi=1, max_extend=4, grow_down=False, with_off=True)


class SearchError(OptevoError):
    """A search that cannot go on (e.g. a start program that diverges at every lr)."""


def run_jobs(pool, jobs: Sequence[Job]) -> Dict[JobId, Result]:
    """Train every job on ``pool``, keeping it full; returns id -> result."""
    todo, out = list(jobs), {}
    while todo or pool.in_flight:
        while todo and pool.free_slots:
            pool.submit([todo.pop(0)])
        for r in pool.poll(0.5):
            out[r.id] = r
    return out


@dataclasses.dataclass
class Tuned:
    """A decided line with its settings: ``centre * rule.ratio ** k`` at grid index ``k``."""

    line: Line
    rule: LineRule
    centre: float = 1.0
    results: Dict[int, Result] = dataclasses.field(default_factory=dict, repr=False)

    @property
    def best(self) -> float:
        return self.rule.value(self.line.best, self.centre)

    @property
    def loss(self) -> float:
        return self.line.loss

    @property
    def at_edge(self) -> bool:
        return self.line.at_edge

    @property
    def points(self) -> Dict[float, float]:
        """Setting -> loss, over every point the decision read."""
        return {self.rule.value(k, self.centre): v for k, v in self.line.losses.items()}

    def to_json(self) -> Dict:
        fin = (lambda x: x if math.isfinite(x) else None)
        return {"best": self.best, "loss": fin(self.loss), "at_edge": self.at_edge,
                "points": [[k, fin(v)] for k, v in sorted(self.points.items())]}


Scales = Union[float, List[float]]


def job_scales(base: Scales, m: float) -> Scales:
    """The lr multipliers of a job at the tuned value ``m`` (``Tuned.best``) of a line run
    with ``base``: ``m`` itself for one task (the line runs over multipliers around
    ``base``), ``[b * m for b in base]`` for a suite (over one factor of every task's)."""
    return [b * m for b in base] if isinstance(base, (list, tuple)) else m


def tune_program(pool, key: str, text: str, seeds=None, base: Scales = 1.0, scorer=None,
                 rule: LineRule = RETUNE) -> Tuned:
    """The lr multiplier of program (or optax spec) ``text`` on ``pool`` (its fitness seeds by
    default): ``rule``'s line around ``base`` (a float; or one multiplier per task of a
    suite, all scaled by one factor), scored by ``scorer`` (default: the mean loss). The
    job's multipliers are ``job_scales(base, Tuned.best)``."""
    scorer = scorer or Scorer()
    raw: Dict[int, Result] = {}
    centre = 1.0 if isinstance(base, (list, tuple)) else base

    def evaluate(ks):
        got = run_jobs(pool, [Job(JobId(TUNE, key, lr=k), text, seeds,
                                  job_scales(base, rule.value(k, centre))) for k in ks])
        raw.update({k: got[JobId(TUNE, key, lr=k)] for k in ks})
        return [scorer(raw[k]).value for k in ks]
    return Tuned(tune_line(evaluate, rule), rule, centre, raw)


def tune_tasks(pool, key: str, text: str, n_tasks: int, seeds=None,
               rule: LineRule = BASELINE) -> List[Tuned]:
    """Each task's own lr multiplier for ``text`` (one task, or a suite of ``n_tasks``). A
    task's loss depends only on its own multiplier, so one job per multiplier trains every
    task at it and serves every task's line; ``Tuned.results`` holds the whole results."""
    raw: Dict[int, Result] = {}
    losses: List[Dict[int, float]] = [{} for _ in range(n_tasks)]
    one = Scorer()
    while True:
        steps = [rule.step(known) for known in losses]
        missing = sorted({k for ks, _ in steps for k in ks})
        if not missing:
            return [Tuned(line, rule, 1.0, dict(raw)) for _, line in steps]
        scales = (lambda m: m if n_tasks == 1 else [m] * n_tasks)
        got = run_jobs(pool, [Job(JobId(TUNE, key, lr=k), text, seeds, scales(rule.value(k)))
                              for k in missing])
        for k in missing:
            raw[k] = got[JobId(TUNE, key, lr=k)]
            for t, part in enumerate(raw[k].parts):
                losses[t][k] = one(part).value


@dataclasses.dataclass
class Calibration:
    """The tuned start: its lr multiplier (one per task of a suite), its result there (each
    task at its own multiplier), the scorer relative to it, and the lines as JSON."""

    lr_scale: Scales
    result: Result
    scorer: Scorer
    task_baselines: Optional[List[float]]
    lines: Union[Dict, List[Dict]]


def calibrate_start(pool, text: str, scorer: Scorer, label: str, task_names: Sequence[str],
                    ident: JobId) -> Calibration:
    """Tune the start program ``text`` (named ``label``) on every task: each task's own lr
    multiplier (:data:`CALIBRATION`); a suite's scorer becomes relative to the tuned start.
    Raises :class:`SearchError` when it diverges on a task at every multiplier."""
    n = len(task_names)
    lines = tune_tasks(pool, "start", text, n, rule=CALIBRATION)
    for name, t in zip(task_names, lines):
        if not math.isfinite(t.loss):
            raise SearchError(f"the start program {label} diverges on {name} at every lr "
                              f"multiplier from {min(t.points):g} to {max(t.points):g}: "
                              "nothing to normalize by")
    parts = [t.results[t.line.best].parts[i] for i, t in enumerate(lines)]
    result = Result.of_parts(dataclasses.replace(lines[0].results[lines[0].line.best],
                                                 id=ident), parts)
    if n == 1:
        return Calibration(lines[0].best, result, scorer, None, lines[0].to_json())
    baselines = [t.loss for t in lines]
    return Calibration([t.best for t in lines], result, scorer.with_baselines(baselines),
                       baselines, [t.to_json() for t in lines])


def tune_adamw(pool, n_tasks: int = 1, scorer=None, seeds=None, text: str = DEFAULT_ADAMW,
               lr_rule: LineRule = BASELINE, wd_rule: LineRule = WEIGHT_DECAY
               ) -> Tuple[str, Scales, List[Tuned], Tuned]:
    """optax AdamW tuned as the funnel tunes it: its lr multiplier first (each task's own,
    for a suite), then its weight-decay factor (``wd_rule``: grown upwards at the edge, or 0,
    off) at those multipliers, scored by ``scorer`` (default: the mean loss). Returns (the
    spec with the tuned weight decay, the jobs' lr multipliers, the lr lines, the wd line)."""
    scorer = scorer or Scorer()
    kind, h = parse_spec(text)
    lrs = tune_tasks(pool, "adamw", text, n_tasks, seeds, lr_rule)
    scales = lrs[0].best if n_tasks == 1 else [t.best for t in lrs]

    def with_wd(f):
        return spec_text(kind, **{**h, "weight_decay": h["weight_decay"] * f})

    def evaluate(js):
        got = run_jobs(pool, [Job(JobId(TUNE, "adamw", wd=j), with_wd(wd_rule.value(j)),
                                  seeds, scales) for j in js])
        return [scorer(got[JobId(TUNE, "adamw", wd=j)]).value for j in js]
    wd = Tuned(tune_line(evaluate, wd_rule), wd_rule)
    return with_wd(wd.best), scales, lrs, wd

"""Tuning on a worker pool, by the one rule (``optevo.proxy_tasks.tuning``): the calibration
of a search's start program and the tuned baselines of its held-out re-check.

A number means something only next to tuned baselines on the same seeds (Chen et al. 2023
tune every baseline). So before a search the start program's lr multiplier is tuned (a log
grid, the search's own fitness seeds; :func:`calibrate_start`), and the tuned start is the
1.0 of every normalized figure; at the end the top programs are re-tuned around that
multiplier (:func:`tune_program`), and optax AdamW gets its learning rate and then its weight
decay tuned (:func:`tune_baseline`), before all are trained on fresh seeds.

Each point of a line is one :class:`~.jobs.Job` (``JobId(TUNE, key, lr=k)``, or ``wd=j``
for the weight-decay line); scores are the :class:`~.scoring.Scorer`'s fitness (the mean
loss over the seeds for one task, ``inf`` if a seed diverged).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

from optevo.dsl.decay import RATIO, scale_decay, tunable_decay
from optevo.dsl.errors import OptevoError
from optevo.dsl.parse import parse
from optevo.proxy_tasks.baselines.specs import parse_spec, spec_text
from optevo.proxy_tasks.tuning import OFF, PASSES, Line, LineRule, tune_line

from .jobs import TUNE, Job, JobId, Result
from .scoring import Scorer

DEFAULT_ADAMW = spec_text("adamw")  # optax's defaults; weight decay 1e-4 (the funnel's too)
BASE_DECAY = 1e-4  # where a baseline whose decay is off by default starts its decay line
CALIBRATION = LineRule(lo=-4, hi=8, max_extend=6)  # the start: 2^-4..2^8, grown to 2^+-14
RETUNE = LineRule(lo=-2, hi=2, max_extend=4)  # programs: 2^-2..2^2 around the calibrated one
# baselines: 2^-4..2^4, grown up to 12 points per side. With 8, tuned AdamW's best on the
# planted task sat at the last point (2^12, "edge"); the next one (2^13) is worse.
BASELINE = LineRule(max_extend=12)
# weight decay: factors 3^-1..3^1 of the program's own, grown upwards as far as the lr line
# (tuned AdamW's decay line stopped at its edge, x243, when it could grow 4 points); "off"
# brackets it from below
WEIGHT_DECAY = LineRule(ratio=RATIO, lo=-1, hi=1, max_extend=12, grow_down=False, with_off=True)


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


def line_on_pool(pool, rule: LineRule, job_at: Callable[[int], Job], scorer: Scorer,
                 known: Optional[Dict[int, Result]] = None) -> Tuple[Line, Dict[int, Result]]:
    """Drive ``rule``'s line with one job per grid index (``job_at(k)``), scored by
    ``scorer``; ``known`` results are not trained again. Returns the line and every result
    by index."""
    raw: Dict[int, Result] = dict(known or {})

    def evaluate(ks):
        jobs = {k: job_at(k) for k in ks}
        got = run_jobs(pool, list(jobs.values()))
        raw.update({k: got[j.id] for k, j in jobs.items()})
        return [scorer(raw[k]).value for k in ks]
    return tune_line(evaluate, rule, {k: scorer(r).value for k, r in raw.items()}), raw


def pass_key(key: str, p: int) -> str:
    """The job key of coordinate pass ``p`` (:func:`passes`): the key itself for the first."""
    return key if p == 0 else f"{key}.{p}"


def spec_with_decay(text: str, factor: float) -> str:
    """An optax baseline's spec with its weight decay times ``factor``; a kind whose decay is
    off by default starts from :data:`BASE_DECAY`, as programs' added decay does."""
    kind, h = parse_spec(text)
    return spec_text(kind, **{**h, "weight_decay": (h["weight_decay"] or BASE_DECAY) * factor})


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
    def factor(self) -> float:
        """The chosen setting, read as a decay factor (:func:`passes` compares them)."""
        return self.best

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
    centre = 1.0 if isinstance(base, (list, tuple)) else base
    line, raw = line_on_pool(pool, rule, lambda k: Job(
        JobId(TUNE, key, lr=k), text, seeds, job_scales(base, rule.value(k, centre))),
        scorer or Scorer())
    return Tuned(line, rule, centre, raw)


def tune_tasks(pool, key: str, text: str, n_tasks: int, seeds=None,
               rule: LineRule = BASELINE) -> List[Tuned]:
    """Each task's own lr multiplier for ``text`` (one task, or a suite of ``n_tasks``). A
    task's loss depends only on its own multiplier, so one job per multiplier trains every
    task at it and serves every task's line; ``Tuned.results`` holds the whole results."""
    raw: Dict[int, Result] = {}
    losses: List[Dict[int, float]] = [{} for _ in range(n_tasks)]
    while True:
        steps = [rule.step(known) for known in losses]
        missing = sorted({k for ks, _ in steps for k in ks})
        if not missing:
            return [Tuned(line, rule, 1.0, dict(raw)) for _, line in steps]
        got = run_jobs(pool, [Job(JobId(TUNE, key, lr=k), text, seeds,
                                  task_scales([rule.value(k)] * n_tasks)) for k in missing])
        for k in missing:
            raw[k] = got[JobId(TUNE, key, lr=k)]
            for t, part in enumerate(raw[k].parts):
                losses[t][k] = one_task(part)


def task_scales(values: List[float]) -> Scales:
    """Jobs' lr multipliers from one value per task: a float for one task, else the list."""
    return values[0] if len(values) == 1 else list(values)


@dataclasses.dataclass
class Calibration:
    """The tuned start: its program with its decay constant tuned (``decay``), its lr
    multiplier (one per task of a suite), its result there (each task at its own multiplier),
    the scorer relative to it, and the lines as JSON."""

    program: str
    lr_scale: Scales
    result: Result
    scorer: Scorer
    task_baselines: Optional[List[float]]
    lines: Union[Dict, List[Dict]]
    decay: Dict  # {"factor", "added", "line"}: the decay line, and whether optevo added it


def calibrate_start(pool, text: str, scorer: Scorer, label: str, task_names: Sequence[str],
                    ident: JobId) -> Calibration:
    """Tune the start program ``text`` (named ``label``) on every task by :func:`tune_both`:
    each task's own lr multiplier (:data:`CALIBRATION`), then its weight decay at those
    multipliers (:data:`WEIGHT_DECAY`: one factor for all tasks, as the constant is in the
    text), in passes. A suite's scorer becomes relative to the tuned start. Raises
    :class:`SearchError` when the start diverges on a task at every multiplier."""
    n = len(task_names)

    def tune_lr(current: str, key: str):
        lines = tune_tasks(pool, key, current, n, rule=CALIBRATION)
        for name, t in zip(task_names, lines):
            if not math.isfinite(t.loss):
                raise SearchError(f"the start program {label} diverges on {name} at every "
                                  f"lr multiplier from {min(t.points):g} to "
                                  f"{max(t.points):g}: nothing to normalize by")
        parts = [t.results[t.line.best].parts[i] for i, t in enumerate(lines)]
        at_lr = Result.of_parts(lines[0].results[lines[0].line.best], parts)
        lr_scorer = scorer if n == 1 else scorer.with_baselines([t.loss for t in lines])
        return task_scales([t.best for t in lines]), at_lr, lines, lr_scorer

    scales, lines, dec = tune_both(pool, text, "start", tune_lr)
    result = dataclasses.replace(dec.result, id=ident)
    if n == 1:
        return Calibration(dec.text, scales, result, scorer, None, lines[0].to_json(),
                           dec.to_json())
    baselines = [one_task(p) for p in result.parts]
    return Calibration(dec.text, scales, result, scorer.with_baselines(baselines), baselines,
                       [t.to_json() for t in lines], dec.to_json())


def passes(tune_lr, tune_wd, max_passes: int = PASSES):
    """Learning rate and weight decay, coordinate-wise in passes, as the one rule's
    ``Coordinate`` does it: ``tune_lr(factor, p)`` at decay ``factor`` (1: as given), then
    ``tune_wd(lr, p)`` at that lr, again while the decay factor moved, at most
    ``max_passes`` times. One pass is not enough where the axes interact: with AdamW's decay
    inside its lr multiply, the start's decay tuned to x243 on ``text_lm``, where the lr
    tuned before it was no longer the best (x3 better by 0.09, 5 paired SE). Returns (the
    last lr, the last decay, passes run, converged)."""
    factor = 1.0
    for p in range(max_passes):
        lr = tune_lr(factor, p)
        wd = tune_wd(lr, p)
        if wd.factor == factor:
            return lr, wd, p + 1, True
        factor = wd.factor
    return lr, wd, max_passes, False


def tune_both(pool, text: str, key: str, tune_lr, max_passes: int = PASSES):
    """A program's lr and decay by :func:`passes`: ``tune_lr(text, key)`` trains the
    program (with decoupled decay added where it has none) at a decay factor and returns
    the jobs' lr multipliers, the result there, what it tuned and the scorer to compare
    decays with; the decay line is :func:`tune_decay`. Returns (multipliers, what
    ``tune_lr`` tuned, the decay)."""
    program = tunable_decay(parse(text))[0]

    def lr(factor, p):
        return tune_lr(scale_decay(program, factor).text(), pass_key(key, p)), factor

    def wd(got, p):
        (scales, at_lr, _, scorer), factor = got
        return tune_decay(pool, pass_key(key, p), text, None, scales, scorer,
                          at_lr if factor == 1.0 else None)
    (got, _), dec, n, converged = passes(lr, wd, max_passes)
    return got[0], got[2], dataclasses.replace(dec, passes=n, converged=converged)


@dataclasses.dataclass
class Decayed:
    """A program with its weight decay tuned: its text at the chosen factor (``factor`` 0 and
    ``added``: the program as it was), the line, and the result at the choice."""

    text: str
    factor: float
    added: bool
    line: Tuned
    result: Result
    passes: int = 1  # coordinate passes (tune_both); converged: the last left the decay
    converged: bool = True

    def to_json(self) -> Dict:
        return {"factor": self.factor, "added": self.added, "line": self.line.to_json(),
                "passes": self.passes, "converged": self.converged}


def tune_decay(pool, key: str, text: str, seeds, scales: Scales, scorer: Scorer,
               at_one: Optional[Result] = None, rule: LineRule = WEIGHT_DECAY) -> Decayed:
    """The weight-decay factor of program ``text`` at the lr multipliers ``scales``: its
    decay sites scaled (``optevo.dsl.decay``), or decoupled decay added where it has none,
    by ``rule`` (off included). ``at_one``: the result at factor 1 if known (the program,
    decay added where it had none, already trained at ``scales``)."""
    program, added = tunable_decay(parse(text))
    found, raw = line_on_pool(pool, rule, lambda j: Job(
        JobId(TUNE, key, wd=j), scale_decay(program, rule.value(j)).text(), seeds, scales),
        scorer, None if at_one is None else {0: at_one})
    line, best = Tuned(found, rule), found.best
    # the program's text as trained (dsl.decay.at_factor computes the same program)
    chosen = text if best == OFF and added else scale_decay(program, line.best).text()
    return Decayed(chosen, line.best, added, line, raw[best])


def one_task(result: Result) -> float:
    """The one-task fitness of a result (or a suite result's part): its mean loss."""
    return Scorer()(result).value


def tune_baseline(pool, n_tasks: int = 1, scorer=None, seeds=None,
                  text: str = DEFAULT_ADAMW, lr_rule: LineRule = BASELINE,
                  wd_rule: LineRule = WEIGHT_DECAY) -> Tuple[str, Scales, List[Tuned], Tuned]:
    """An optax baseline (default AdamW) tuned as programs and the funnel are: its lr
    multiplier (each task's own, for a suite), then its weight-decay factor at those
    multipliers (``wd_rule``: grown upwards at the edge, or 0, off), in :func:`passes`,
    scored by ``scorer`` (default: the mean loss; a suite must give its own). A kind whose
    decay is off by default starts from :data:`BASE_DECAY`. Returns (the spec with the tuned
    weight decay, the jobs' lr multipliers, the lr lines, the wd line)."""
    if scorer is None and n_tasks > 1:
        raise ValueError("a suite's baseline is scored by the suite's scorer: give one")
    scorer = scorer or Scorer()
    kind = parse_spec(text)[0]

    def lr(factor, p):
        lines = tune_tasks(pool, pass_key(kind, p), spec_with_decay(text, factor), n_tasks,
                           seeds, lr_rule)
        return task_scales([t.best for t in lines]), lines

    def wd(got, p):
        key = pass_key(f"{kind}-wd", p)
        return Tuned(line_on_pool(pool, wd_rule, lambda j: Job(
            JobId(TUNE, key, wd=j), spec_with_decay(text, wd_rule.value(j)), seeds, got[0]),
            scorer)[0], wd_rule)
    (scales, lrs), wd_line, _, _ = passes(lr, wd)
    return spec_with_decay(text, wd_line.best), scales, lrs, wd_line

"""A program with the tuning it was scored at: what ``RUN_DIR:ID`` carries into ``eval``,
``export``, ``Run.to_optax`` and discover's survivors.

A search scores a child with its lr input scaled by the start's tuned multiplier (the
calibration) times the child's own (``search.lr_grid``), through the task's schedule, and with
its decay constants as they are in its text; the held-out re-check then tunes the best
programs again, on both axes, and reports them at that setting. A program taken out of its run
without these is not the program that was reported: exported at learning rate 1, a winner
trained at 0.330 in a user's script where its reported figure was 0.302 (issue #22). So:

* a re-checked program (``holdout.jsonl`` holds its id, or its hash) gets the re-check's lr
  multiplier and decay factor (decay applied to its text as the tuner applied it:
  ``dsl.decay.at_factor``): the setting of its held-out figure;
* any other logged program gets the search's: the start's multiplier times its ``lr_mult``;
  its decay as written;
* the schedule is the run's task's (``proxy_tasks.schedules.for_export``) over the task's
  steps. A task only a plugin registers is not imported (reading a run runs none of its
  code): the export then has no schedule and says so.

A program file or a library name carries nothing: multiplier 1, as written.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, Optional

from optevo.dsl import parse
from optevo.dsl.codegen import Schedule, Tuning
from optevo.dsl.decay import at_factor
from optevo.dsl.errors import OptevoError
from optevo.dsl.program import Program

from .rundir import RunDir
from .views import load_ref, split_ref


@dataclasses.dataclass
class TunedProgram:
    """A program (its tuned decay applied) and its tuned lr multiplier of the lr input."""

    program: Program
    label: str
    lr_multiplier: float = 1.0
    decay_factor: Optional[float] = None  # None: as written; 0 with decay_added: off
    decay_added: bool = False
    by: str = ""  # "the held-out re-check", "the search", "" (as written)
    task: Optional[str] = None  # the run's (first) task
    schedule: Optional[Schedule] = None
    schedule_note: str = ""  # why there is no schedule where the run had one

    @property
    def from_run(self) -> bool:
        return bool(self.by)

    def describe(self) -> str:
        """One line: what the defaults are and who chose them."""
        if not self.by:
            return f"{self.label}: as written (lr multiplier {self.lr_multiplier:g})"
        decay = ("" if self.decay_factor is None else
                 ", weight decay off" if self.decay_factor == 0 else
                 f", decay x{self.decay_factor:g}" + (" (decoupled, added)"
                                                     if self.decay_added else ""))
        sched = (f", {self.schedule.text}" if self.schedule else
                 f" ({self.schedule_note})" if self.schedule_note else ", constant lr")
        return (f"{self.label}: tuned by {self.by} on {self.task}: lr multiplier "
                f"x{self.lr_multiplier:g} of its lr input{decay}{sched}")

    def with_multiplier(self, lr_multiplier: Optional[float]) -> "TunedProgram":
        """Itself with its lr multiplier set by hand (None: unchanged)."""
        if lr_multiplier is None:
            return self
        by = f"{self.by}, then its lr multiplier set by hand" if self.by else ""
        return dataclasses.replace(self, lr_multiplier=float(lr_multiplier), by=by)

    def tuning(self) -> Tuning:
        """The export's defaults."""
        return Tuning(self.lr_multiplier, self.schedule, self.describe())


def _first(x) -> float:
    """A multiplier (a suite's per-task list: its first task's)."""
    return float(x[0] if isinstance(x, list) else x)


def _schedule(run: RunDir):
    """(task name, schedule, note) of the run's first task; a note says why there is no
    schedule where the run's task could not be built here."""
    try:
        cfg = run.config()
    except OptevoError as e:  # a task only a plugin knows: reading a run imports none
        return None, None, f"its schedule is not exported: {str(e).splitlines()[0]}"
    if cfg is None:
        return None, None, "the run has no config.yaml: its schedule is unknown"
    t = cfg.tasks[0]
    try:
        from optevo.proxy_tasks import get_task
        from optevo.proxy_tasks.tasks.schedules import for_export
        task = get_task(t.name, **t.options)
    except Exception as e:  # a plugin's task: not imported here
        return t.name, None, f"its schedule is not exported: {str(e).splitlines()[0]}"
    return t.name, for_export(task, t.steps or task.steps), ""


def _holdout_row(run: RunDir, rec) -> Optional[Dict]:
    if not run.file("holdout.jsonl").exists():
        return None
    rows = run.holdout_rows()
    return next((r for r in rows if r.get("id") == rec.id), None) or \
        next((r for r in rows if r.get("hash") == rec.hash and r.get("id") != 0), None)


def _start_scale(run: RunDir) -> float:
    summary = run.summary()
    if summary and summary.get("start_lr_scale") is not None:
        return _first(summary["start_lr_scale"])
    state = run.read_checkpoint() or {}
    return _first(state.get("lr_scale", 1.0))


def load_tuned(ref: str) -> TunedProgram:
    """The program ``ref`` names (``views.load_ref``) with its run's tuning where it is
    ``RUN_DIR:ID`` (see the module docstring)."""
    program, label = load_ref(ref)
    run_dir, ident = split_ref(ref)
    if run_dir is None:
        return TunedProgram(program, label)
    run = RunDir.existing(run_dir)
    rec = run.record(ident)
    task, sched, note = _schedule(run)
    row = _holdout_row(run, rec)
    if row is not None and row.get("lr_scale") is not None:
        wd = row.get("weight_decay_factor")
        factor = 1.0 if wd is None else float(wd)
        tuned, added = at_factor(parse(rec.program), factor)
        return TunedProgram(tuned, label, _first(row["lr_scale"]), factor, added,
                            "the held-out re-check", task, sched, note)
    return TunedProgram(program, label, _start_scale(run) * float(rec.lr_mult), None, False,
                        "the search", task, sched, note)

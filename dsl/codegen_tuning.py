"""The defaults an exported module carries (``dsl.codegen``): the tuning it was reported at.

:class:`Tuning` holds a tuned lr multiplier of the program's lr input and the
:class:`Schedule` it was tuned under; the module writes the schedule's function (its source
copied: the module stays self-contained), ``LEARNING_RATE`` (the peak, in optax's units:
multiplier times the program's lr unit, ``dsl.hyper``), ``TOTAL_STEPS`` and
``tuned_schedule()``, the default ``learning_rate``; and the exported function's docstring
says what ``learning_rate`` and each named hyperparameter is.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import textwrap
from typing import Callable, List, Optional, Tuple

from .program import format_const


@dataclasses.dataclass(frozen=True)
class Schedule:
    """The learning-rate schedule a program was tuned under, written into the module:
    ``fn`` a self-contained function of ``(step, total_steps)`` using only ``jnp`` (its
    source is copied, as ``per_leaf`` copies a matrix op's), ``args`` its further arguments,
    ``steps`` the run's length, ``text`` what it is in words, ``optax`` the optax call that
    computes it (a format over ``{peak}`` and ``{steps}``; None: no optax equivalent)."""

    fn: Callable
    steps: int
    text: str
    args: Tuple = ()
    optax: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class Tuning:
    """Where an exported program's defaults come from: ``lr_multiplier`` times its lr unit
    is the default learning rate (the peak of ``schedule`` when there is one); ``note`` says
    who tuned it (a run's re-check, the funnel, ``--lr-multiplier``)."""

    lr_multiplier: float = 1.0
    schedule: Optional[Schedule] = None
    note: str = ""


def copied_source(fn) -> Tuple[str, str]:
    """(name, source) of a self-contained function copied into an exported module under the
    private name ``_`` + its own (a matrix op's per-leaf function, a schedule)."""
    name = "_" + fn.__name__
    src = textwrap.dedent(inspect.getsource(fn))
    return name, src.replace(f"def {fn.__name__}(", f"def {name}(", 1)


def schedule_lines(schedule: Optional[Schedule], peak: float) -> List[str]:
    """``LEARNING_RATE``, ``TOTAL_STEPS``, the copied schedule function and
    ``tuned_schedule(peak, total_steps)``; nothing without a schedule."""
    if schedule is None:
        return []
    fn, src = copied_source(schedule.fn)
    extra = "".join(f", {a!r}" for a in schedule.args)
    same = (f" It is ``{schedule.optax.format(peak='peak', steps='total_steps')}``."
            if schedule.optax else "")
    return [
        f"LEARNING_RATE = {float(peak)!r}  # the tuned peak learning rate",
        f"TOTAL_STEPS = {int(schedule.steps)}  # the length of the runs it was tuned on",
        "",
        "",
        src, "",
        "def tuned_schedule(peak=LEARNING_RATE, total_steps=TOTAL_STEPS):",
        f'    """The learning rate as tuned: {json.dumps(schedule.text)[1:-1]}, peak ``peak``.'
        + same,
        "    Set ``total_steps`` to your run's length."
        '"""',
        f"    return lambda count: peak * {fn}(count, total_steps{extra})",
        "",
        "",
    ]


def arg_doc(hp, tuning: Tuning, mult: float) -> List[str]:
    if tuning.schedule:
        lr = ["``learning_rate``: a float or an optax schedule of the step count; by default",
              "``tuned_schedule()``, the schedule and peak it was tuned with."]
    else:
        lr = ["``learning_rate``: a float or an optax schedule of the step count; the default",
              "is " + ("its tuned value." if mult != 1.0 else "the program as written.")]
    if hp.unit_stmt is not None:
        lr.append(f"It is the step size in optax's units: the program's lr input times "
                  f"{format_const(hp.unit)}.")
    elif hp.reads_lr:
        lr.append("It is the program's ``lr`` input, which the program does not use as a plain "
                  "scale: a multiplier, not a step size in optax's units.")
    else:
        lr.append("WARNING: this program never reads its lr input: ``learning_rate`` and any "
                  "schedule have no effect on it.")
    roles = {"b": "the weight of a running average (interp)", "c": "a constant",
             "weight_decay": "the weight decay (in units of the learning rate where the "
                             "program multiplies it by lr)"}
    named = [f"``{h.name}`` ({format_const(h.value)}): {roles[h.role]}" +
             (", a factor of its decay terms" if h.role == "weight_decay" and
              h.sites[0][2] is not None else "") + "." for h in hp.named]
    return lr + ([""] + ["Named hyperparameters (``optax.inject_hyperparams`` can set them):"]
                 + named if named else [])

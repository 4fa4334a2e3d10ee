"""``optevo analyze PROGRAM [--task T] [--out PNG]``: is the program a Lion-K member, and
what does it solve (``optevo.simplify.lion_k_trace``, ``optevo.simplify.lion_k``).

PROGRAM is a program file, a library name or ``RUN_DIR:ID``. The program is simplified by
the exact passes and read as ``update = s * lr * (grad K(c) + lambda * w)``; K, K*, and the
implied constraint or regulariser are printed, or one line "not a Lion-K program: ..."
(exit status 1).
With ``--task``, the program trains on one seed in the engines' loop
(``optevo.proxy_tasks.engine.TrainLoop``, built here: ``optevo.simplify`` does not import the
proxy tasks) and ``lambda * q(w)`` (q: what the constraint bounds) is printed at the start
and end and drawn in a PNG (``--out``, default ``analyze-<program>-<task>.png``) with 1
marked. :func:`analyze` is the same from Python, with a task object.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Optional

from .common import UsageError, at_least

NOT_LION_K = 1  # exit status when the program is not of the Lion-K shape


def add_parser(subparsers):
    """Register the ``analyze`` subcommand on an argparse ``subparsers`` object."""
    p = subparsers.add_parser(
        "analyze", help="recognise a Lion-K program: K, K*, the implied constraint "
                        "(and, with --task, plot it over training)")
    p.add_argument("program", help="program file, library name, or RUN_DIR:ID")
    p.add_argument("--task", help="train on this proxy task and plot lambda * q(w)")
    p.add_argument("--out", help="output PNG (default analyze-<program>-<task>.png)")
    p.add_argument("--steps", type=int, help="training steps (default: the task's)")
    p.add_argument("--seed", type=int, default=0, help="the seed (default 0)")
    p.add_argument("--lr-scale", type=float, default=1.0,
                   help="multiply the program's lr input (default 1)")
    p.add_argument("--weight-decay", type=float,
                   help="replace lambda (default: the program's)")
    p.add_argument("--init-scale", type=float, default=1.0,
                   help="multiply the initial weights, e.g. to start outside the feasible "
                        "set (default 1)")
    p.set_defaults(fn=run)
    return p


def _load(ref: str):
    from optevo.dsl.library import find_program
    from optevo.search.core.views import load_ref
    head = str(ref).rpartition(":")[0]
    if head and Path(head).is_dir() or Path(ref).is_file():
        return load_ref(ref)
    return find_program(ref), str(ref)


def analyze(program, task=None, out=None, steps: Optional[int] = None, seed: int = 0,
            lr_scale: float = 1.0, init_scale: float = 1.0,
            weight_decay: Optional[float] = None):
    """``optevo.simplify.lion_k_trace.analyze`` of ``program``, trained (with ``task``) for
    ``steps`` (default: the task's) in the engines' loop of ``task``."""
    from optevo.simplify import lion_k_trace
    loop = None
    if task is not None:
        from optevo.proxy_tasks.engine import TrainLoop
        loop = TrainLoop(task, steps)
    return lion_k_trace.analyze(program, loop, out, seed=seed, lr_scale=lr_scale,
                                init_scale=init_scale, weight_decay=weight_decay)


def run(args, out=None) -> int:
    out = out or sys.stdout
    at_least("--steps", args.steps)
    if not 0 <= args.seed < 2 ** 32:
        raise UsageError("--seed must be an integer in 0 .. 2^32 - 1 (the engines' seeds)")
    for flag, v in (("--lr-scale", args.lr_scale), ("--init-scale", args.init_scale)):
        if not (math.isfinite(v) and v > 0):
            raise UsageError(f"{flag} must be a positive number")
    if args.weight_decay is not None and not (math.isfinite(args.weight_decay)
                                              and args.weight_decay >= 0):
        raise UsageError("--weight-decay must be >= 0")
    program, label = _load(args.program)
    task, png = None, None
    if args.task:
        from optevo.proxy_tasks import get_task
        task = get_task(args.task)
        png = args.out or f"analyze-{Path(label).stem or 'program'}-{args.task}.png"
        if not Path(png).resolve().parent.is_dir():
            raise UsageError(f"{Path(png).parent}: no such directory")
    result = analyze(program, task, png, steps=args.steps, seed=args.seed,
                     lr_scale=args.lr_scale, init_scale=args.init_scale,
                     weight_decay=args.weight_decay)
    print(f"# {label}, after the exact simplification:", file=out)
    out.write(result.program.text())
    for line in result.lines():
        print(line, file=out)
    return 0 if result.lion_k is not None else NOT_LION_K

"""``optevo simplify PROGRAM|RUN_DIR``: print a simplified program and the steps taken.

PROGRAM is a program file. RUN_DIR is a search run: its best program by loss in
``RUN_DIR/evaluations.jsonl`` is simplified on the run's task (``RUN_DIR/config.yaml``,
section ``task``: name, steps, seeds, options; a suite's first task), unless
``--task``/``--steps``/``--seeds`` say otherwise. The run's config is read only for the guided
passes, and its ``plugins`` are never imported (reading a run runs none of its code). Without
``--exact-only`` a task is needed (``--task`` for a file). ``--fresh N`` tunes the lr and
runs the guided passes on N seeds that neither selection nor any held-out figure reads
(``proxy_tasks.seeds.simplify_seeds``): a search's find, judged on the seeds that selected
it, keeps terms that fit only them (measured in ``seeds.py``). The learning rate scale is tuned
on the task first (``--lr-scale auto``, the default) so that a program whose own lr is wrong
for the task still trains and its parts can be judged.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

from .common import UsageError, at_least


def add_parser(subparsers):
    """Register the ``simplify`` subcommand on an argparse ``subparsers`` object."""
    p = subparsers.add_parser(
        "simplify", help="simplify a program (or a run's best): exact and fitness-guided passes")
    p.add_argument("target", metavar="PROGRAM|RUN_DIR",
                   help="a program file, or a run directory (its best program)")
    p.add_argument("--task", help="proxy task for the guided passes (default: the run's)")
    p.add_argument("--tolerance", type=float, default=0.01,
                   help="relative loss increase allowed (default 0.01)")
    p.add_argument("--exact-only", action="store_true",
                   help="only the exact passes (no training)")
    p.add_argument("--strict", action="store_true",
                   help="exact passes keep results bitwise (no epsilon/rounding-level rewrites)")
    p.add_argument("--seeds", type=int, help="number of seeds 0..K-1 (default: the run's/task's)")
    p.add_argument("--fresh", type=int, metavar="N",
                   help="tune and simplify on N seeds that no search selected on, instead of "
                        "0..K-1: for a search's find, which on the seeds that selected it keeps "
                        "terms that fit only them")
    p.add_argument("--steps", type=int, help="training steps (default: the run's/task's)")
    p.add_argument("--lr-scale", default="auto",
                   help="learning-rate scale for every evaluation, or 'auto' to tune it "
                        "(default auto)")
    p.add_argument("--max-rounds", type=int, default=50,
                   help="at most this many evaluation batches (default 50)")
    p.set_defaults(fn=run)
    return p


def best_of_run(run_dir: Path):
    """``(program, loss, id)`` of the run's best distinct program (lowest finite loss)."""
    from optevo.dsl.parse import parse
    from optevo.dsl.program import ProgramError
    from optevo.search.core.rundir import RunDir, RunDirError, best_distinct
    run = RunDir.existing(run_dir)
    best = best_distinct(run.records(), 1)
    if not best:
        raise RunDirError(f"{run.log.path}: no evaluated program with a finite loss")
    rec = best[0]
    try:
        program = parse(rec.program)
    except ProgramError as e:
        raise ProgramError(e.msg, rec.line, str(run.log.path)) from None
    return program, rec.loss, rec.id, run


def run_task(run_dir):
    """The task section of a run's config (a suite's first task; None without a config),
    read without importing the run's plugins."""
    from optevo.search.core.rundir import RunDir
    cfg = RunDir.existing(run_dir).config()
    return cfg.tasks[0] if cfg else None


def evaluator_for(args, task_cfg):
    from optevo.proxy_tasks import get_task
    from optevo.proxy_tasks.engine import enable_compile_cache
    from optevo.proxy_tasks.evaluate import Evaluator
    from optevo.proxy_tasks.seeds import simplify_seeds
    name = args.task or (task_cfg.name if task_cfg else None)
    if not name:
        raise UsageError("give --task NAME (or --exact-only)")
    options = dict(task_cfg.options) if task_cfg and name == task_cfg.name else {}
    steps = args.steps or (task_cfg.steps if task_cfg else None)
    seeds = simplify_seeds(args.fresh) if args.fresh else \
        args.seeds or (task_cfg.seeds if task_cfg else None)
    try:
        task = get_task(name, **options)
    except TypeError as e:
        raise UsageError(f"task {name}: {e}") from None
    enable_compile_cache()
    return Evaluator(task, steps=steps, seeds=seeds)


def run(args, out=None) -> int:
    from optevo.search.core.tuning import CALIBRATION
    from optevo.simplify import simplify_exact_report, simplify_guided
    out = out or sys.stdout
    say = (lambda s: print(s, file=out, flush=True))
    if args.tolerance is None or not args.tolerance >= 0:
        raise UsageError("--tolerance must be >= 0")
    for flag, v in (("--seeds", args.seeds), ("--steps", args.steps),
                    ("--max-rounds", args.max_rounds), ("--fresh", args.fresh)):
        at_least(flag, v)
    if args.seeds and args.fresh:
        raise UsageError("give --seeds (0..K-1) or --fresh (N unseen seeds), not both")
    scale = None
    if args.lr_scale != "auto":
        try:
            scale = float(args.lr_scale)
        except ValueError:
            scale = -1.0
        if not (math.isfinite(scale) and scale > 0):
            raise UsageError(f"--lr-scale must be 'auto' or a positive number, got {args.lr_scale!r}")
    target, run_dir = Path(args.target), None
    if target.is_dir():
        program, loss, pid, _ = best_of_run(target)
        run_dir = target
        say(f"# best program of {target}: id {pid}, loss {loss:.4f}")
    else:  # a file, a library name or RUN_DIR:ID (whose run's task is the default)
        from optevo.search.core.views import load_ref
        program = load_ref(args.target)[0]
        head, sep, _ = str(args.target).rpartition(":")
        if sep and Path(head).is_dir():
            run_dir = Path(head)
    say(f"# input: {len(program.stmts)} statements")
    exact, steps = simplify_exact_report(program, strict=args.strict)
    say(f"# exact passes{' (strict)' if args.strict else ''}: "
        f"{len(program.stmts)} -> {len(exact.stmts)} statements")
    for s in steps:
        say(f"#   {s}")
    if args.exact_only:
        out.write(exact.text())
        return 0
    ev = evaluator_for(args, run_task(run_dir) if run_dir is not None else None)
    say(f"# task {ev.task.name}: {ev.steps} steps, seeds {ev.seeds}, "
        f"tolerance {args.tolerance:g}")
    if scale is None:
        tuned = ev.tune(exact, CALIBRATION)
        scale = tuned.scale
        say(f"# lr scale {scale:g} (tuned for the exact-simplified program"
            f"{', at the edge of the line' if tuned.at_edge else ''})")
    else:
        say(f"# lr scale {scale:g}")
    try:
        final, gsteps = simplify_guided(
            exact, ev, tolerance=args.tolerance, max_rounds=args.max_rounds, lr_scale=scale,
            strict=args.strict, progress=lambda s: say(f"#   {s}"))
    except ValueError as e:
        raise UsageError(str(e)) from None
    if gsteps:
        first = gsteps[0].loss_before
        say(f"# guided passes: {len(gsteps)} steps, {len(exact.stmts)} -> "
            f"{len(final.stmts)} statements, loss {first:.4f} -> {gsteps[-1].loss_after:.4f}")
    else:
        say("# guided passes: nothing could go within the tolerance")
    out.write(final.text())
    return 0

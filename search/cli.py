"""The ``optevo`` command line.

Bad input (a malformed program, an unknown task, a missing file) prints one line naming the
file, line or key, and exits with status 2; no traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import List, Optional


class UsageError(Exception):
    """A user error: printed as one line, exit status 2."""


def _load_programs(paths):
    from optevo.dsl import load
    return [load(p) for p in paths]


def cmd_show(args) -> int:
    for p in _load_programs(args.program):
        sys.stdout.write(p.text())
    return 0


def _task(name: str):
    from optevo.proxy_tasks import get_task
    try:
        return get_task(name)
    except KeyError as e:
        raise UsageError(str(e.args[0])) from None


def cmd_eval(args) -> int:
    from optevo.proxy_tasks.evaluate import Evaluator
    programs = _load_programs(args.program)
    task = _task(args.task)
    if args.seeds is not None and args.seeds < 1:
        raise UsageError("--seeds must be at least 1")
    if args.steps is not None and args.steps < 1:
        raise UsageError("--steps must be at least 1")
    ev = Evaluator(task, steps=args.steps, seeds=args.seeds, engine=args.engine)
    scores = ev.evaluate(programs, lr_scales=args.lr_scale)
    if args.json:
        for path, s in zip(args.program, scores):
            rec = {"file": path, "task": task.name, "steps": ev.steps, "engine": args.engine,
                   "lr_scale": args.lr_scale, **s.to_json()}
            print(json.dumps(rec))
        return 0
    print(f"task {task.name}: {ev.steps} steps, seeds {ev.seeds}, engine {args.engine}, "
          f"lr scale {args.lr_scale}; AdamW start mean loss {ev.baseline():.4f}")
    width = max(len(p) for p in args.program)
    print(f"{'program':<{width}}  {'loss':>9}  {'stderr':>8}  {'vs AdamW':>8}")
    for path, s in zip(args.program, scores):
        if s.diverged:
            print(f"{path:<{width}}  {'diverged':>9}  {'':>8}  {'':>8}  "
                  f"({s.n_diverged}/{len(s.seeds)} seeds)")
        else:
            print(f"{path:<{width}}  {s.loss:9.4f}  {s.stderr:8.4f}  {s.normalized:8.3f}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="optevo", description="Discover optimizers by evolutionary program search.")
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("eval", help="train a task with program files and report their fitness")
    p.add_argument("program", nargs="+", help="program files (the paper's text form)")
    p.add_argument("--task", required=True, help="proxy task name (e.g. digits_mlp)")
    p.add_argument("--steps", type=int, help="training steps (default: the task's)")
    p.add_argument("--seeds", type=int, help="number of seeds, 0..K-1 (default: the task's)")
    p.add_argument("--lr-scale", type=float, default=1.0,
                   help="multiply the program's lr input by this (default 1)")
    p.add_argument("--engine", choices=["fast", "jit"], default="fast",
                   help="fast interpreter (default) or per-program jax.jit reference path")
    p.add_argument("--json", action="store_true", help="one JSON object per program")
    p.set_defaults(fn=cmd_eval)

    p = sub.add_parser("show", help="print programs in canonical form")
    p.add_argument("program", nargs="+")
    p.set_defaults(fn=cmd_show)
    return ap


def main(argv: Optional[List[str]] = None) -> int:
    from optevo.dsl.program import ProgramError
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except (ProgramError, UsageError) as e:
        print(f"optevo: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("optevo: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

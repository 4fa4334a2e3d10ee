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
    from pathlib import Path
    if len(args.program) == 1 and Path(args.program[0]).is_dir():
        from .inspect import show_run
        return show_run(args.program[0], args.top, args.json)
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
    from optevo.proxy_tasks.engine import enable_compile_cache
    from optevo.proxy_tasks.evaluate import Evaluator
    enable_compile_cache()
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


def _search_overrides(args):
    over = {}
    for key, flag, value in [("seed", "--seed", args.seed),
                             ("search.max_evals", "--max-evals", args.max_evals),
                             ("search.time_limit", "--time-limit", args.time_limit),
                             ("workers.count", "--workers", args.workers),
                             ("workers.address", "--address", args.address)]:
        if value is not None:
            over[key] = (value, flag)
    return over


def cmd_search(args) -> int:
    import time
    from pathlib import Path
    from .config import ConfigError, dump_config, load_config
    from .rundir import CONFIG, RunDir

    over = _search_overrides(args)
    plain = {k: v for k, (v, _) in over.items()}
    sources = {k: flag for k, (_, flag) in over.items()}
    try:
        if args.resume:
            run_dir = Path(args.resume)
            if not (run_dir / CONFIG).exists():
                raise UsageError(f"{run_dir}: not a run directory (no {CONFIG})")
            cfg = load_config(run_dir / CONFIG, plain, sources)
        else:
            if not args.config:
                raise UsageError("give a CONFIG file, or --resume RUN_DIR")
            cfg = load_config(args.config, plain, sources)
            name = cfg.name or Path(args.config).stem
            run_dir = Path(args.run_dir or f"runs/{name}-{time.strftime('%Y%m%d-%H%M%S')}")
            if RunDir(run_dir).exists():
                raise UsageError(f"{run_dir}: already holds a run; resume it with "
                                 f"--resume {run_dir} or choose another --run-dir")
    except ConfigError as e:
        raise UsageError(str(e)) from None
    from .run import run_search
    return run_search(cfg, run_dir, resume=bool(args.resume),
                      save_config=None if args.resume else dump_config)


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

    p = sub.add_parser("search", help="run (or resume) an evolutionary search")
    p.add_argument("config", nargs="?", help="YAML config (e.g. configs/quick.yaml)")
    p.add_argument("--run-dir", help="where to write the run (default runs/NAME-TIME)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a killed or finished run")
    p.add_argument("--workers", type=int, help="Ray workers (0: in-process, no Ray)")
    p.add_argument("--address", help="join a running Ray cluster (ray start --head)")
    p.add_argument("--seed", type=int, help="random seed of the search")
    p.add_argument("--max-evals", type=int, help="stop after this many trained children")
    p.add_argument("--time-limit", type=float, help="stop submitting after this many seconds")
    p.set_defaults(fn=cmd_search)

    from . import export_cmd, inspect
    p = sub.add_parser("show", help="print program files in canonical form, or the best "
                                    "programs of a run directory")
    p.add_argument("program", nargs="+", help="program files, or one RUN_DIR")
    inspect.add_show_arguments(p)
    p.set_defaults(fn=cmd_show)
    inspect.add_parser(sub)
    export_cmd.add_parser(sub)
    from optevo.simplify import command as simplify_command
    simplify_command.add_parser(sub)
    from .funnel import add_parser as add_funnel
    add_funnel(sub)
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
    except BrokenPipeError:  # output piped into head & co.
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())

"""``optevo eval PROGRAM... --task T``: train a task with program files, print their fitness."""

from __future__ import annotations

import json
import math

from . import UsageError, add_import, at_least


def add_parser(sub):
    p = sub.add_parser("eval", help="train a task with program files and report their fitness")
    p.add_argument("program", nargs="+",
                   help="programs: files, library names (lion) or RUN_DIR:ID")
    p.add_argument("--task", required=True, help="proxy task name (e.g. digits_mlp)")
    p.add_argument("--steps", type=int, help="training steps (default: the task's)")
    p.add_argument("--seeds", type=int, help="number of seeds, 0..K-1 (default: the task's)")
    p.add_argument("--lr-scale", type=float, default=1.0,
                   help="multiply the program's lr input by this (default 1)")
    p.add_argument("--engine", choices=["fast", "jit"], default="fast",
                   help="fast interpreter (default) or per-program jax.jit reference path")
    p.add_argument("--json", action="store_true", help="one JSON object per program")
    add_import(p)
    p.set_defaults(fn=run)
    return p


def run(args) -> int:
    from optevo.proxy_tasks import get_task
    from optevo.proxy_tasks.engine import enable_compile_cache
    from optevo.proxy_tasks.evaluate import Evaluator
    from optevo.search.core.plugins import import_plugins
    enable_compile_cache()
    import_plugins(args.imports)
    from optevo.search.core.inspect import load_ref
    programs = [load_ref(p)[0] for p in args.program]
    task = get_task(args.task)
    at_least("--seeds", args.seeds)
    if not (math.isfinite(args.lr_scale) and args.lr_scale > 0):
        raise UsageError(f"--lr-scale must be a finite number > 0, got {args.lr_scale}")
    at_least("--steps", args.steps)
    from optevo.dsl.interpreter import encoded_form
    from optevo.search.core.workers import buckets_for
    longest = max(len(encoded_form(p).stmts) for p in programs)  # the fast engine's buckets
    ev = Evaluator(task, steps=args.steps, seeds=args.seeds, engine=args.engine,
                   buckets=buckets_for(max(32, longest)))
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

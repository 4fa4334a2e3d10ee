"""``optevo eval PROGRAM... --task T [--baseline NAME]...``: train a task with programs and
optax baselines, print their fitness.

A program is a file, a library name or ``RUN_DIR:ID``. A baseline is a kind of
``optevo.proxy_tasks.baselines.specs`` with its defaults (``adamw``, ``lion``, ``hyper_sgd``,
``hyper_sgdm``, ``hyper_adam``, ``l2l``) or a one-line spec with overrides
(``"optax:hyper_sgd levels=2 learning_rate=0.5"``); ``--lr-scale`` multiplies its learning
rate as it does a program's lr input.

``--tune``: the numbers that mean something. Each program and baseline has its learning
rate and then its weight decay tuned on the fitness seeds (``--seeds``), by the rules of a
search's held-out re-check (``search.core.holdout.fresh_check``: a program without a decay
term gets decoupled decay added, as optax adds it), then all are trained on ``--fresh``
fresh seeds and compared, paired per seed, with tuned optax AdamW."""

from __future__ import annotations

import json
import math

from .common import UsageError, add_import, at_least


def _baseline(name: str) -> str:
    """The spec line of ``--baseline NAME`` (a one-line UsageError if it is none)."""
    from optevo.proxy_tasks.baselines.specs import baseline_spec
    try:
        return baseline_spec(name)
    except ValueError as e:
        raise UsageError(f"--baseline {name!r}: {e}") from None


def add_parser(sub):
    p = sub.add_parser("eval", help="train a task with programs (and optax baselines) and "
                                    "report their fitness")
    p.add_argument("program", nargs="*",
                   help="programs: files, library names (lion) or RUN_DIR:ID")
    p.add_argument("--task", required=True, help="proxy task name (e.g. digits_mlp)")
    p.add_argument("--steps", type=int, help="training steps (default: the task's)")
    p.add_argument("--seeds", type=int, help="number of seeds, 0..K-1 (default: the task's)")
    p.add_argument("--lr-scale", type=float, default=None,
                   help="multiply the programs' lr input by this (default: a RUN_DIR:ID "
                        "program's tuned multiplier, with its tuned decay; otherwise 1)")
    p.add_argument("--engine", choices=["fast", "jit"], default="fast",
                   help="fast interpreter (default) or per-program jax.jit reference path")
    p.add_argument("--baseline", action="append", default=[], metavar="NAME",
                   help="an optax baseline: a kind (adamw, lion, hyper_sgd, hyper_sgdm, "
                        "hyper_adam, l2l) or a spec line 'optax:KIND k=v ...' (repeatable)")
    p.add_argument("--json", action="store_true", help="one JSON object per program")
    p.add_argument("--tune", action="store_true",
                   help="tune learning rate and weight decay on the fitness seeds, then "
                        "report on --fresh fresh seeds, paired against tuned optax AdamW")
    p.add_argument("--fresh", type=int, default=8, help="with --tune: fresh seeds")
    add_import(p)
    p.set_defaults(fn=run)
    return p


def run(args) -> int:
    from optevo.dsl.interpreter import encoded_form
    from optevo.proxy_tasks import get_task
    from optevo.proxy_tasks.engine import enable_compile_cache
    from optevo.proxy_tasks.evaluate import Evaluator
    from optevo.search.core.tuned import load_tuned
    from optevo.search.core.plugins import import_plugins
    from optevo.proxy_tasks.engine import buckets_for
    enable_compile_cache()
    import_plugins(args.imports)
    if not args.program and not args.baseline:
        raise UsageError("give programs, --baseline NAME, or both")
    specs = [_baseline(b) for b in args.baseline]
    tuned = [load_tuned(p).with_multiplier(args.lr_scale) for p in args.program]
    programs = [t.program for t in tuned]
    task = get_task(args.task)
    from optevo.proxy_tasks.tasks.base import check_task
    check_task(task)  # a broken (plugin) task is one line here, not a traceback in training
    at_least("--seeds", args.seeds)
    at_least("--steps", args.steps)
    if args.lr_scale is not None and not (math.isfinite(args.lr_scale) and args.lr_scale > 0):
        raise UsageError(f"--lr-scale must be a finite number > 0, got {args.lr_scale}")
    if args.tune:
        return _tuned(args, task, programs)
    longest = max([len(encoded_form(p).stmts) for p in programs] + [0])
    ev = Evaluator(task, steps=args.steps, seeds=args.seeds, engine=args.engine,
                   buckets=buckets_for(max(32, longest)))  # a long program gets its bucket
    scores = [None] * len(programs)
    for scale in sorted({t.lr_multiplier for t in tuned}):  # one batch per multiplier
        idx = [i for i, t in enumerate(tuned) if t.lr_multiplier == scale]
        for i, sc in zip(idx, ev.evaluate([programs[i] for i in idx], lr_scales=scale)):
            scores[i] = sc
    base_scale = 1.0 if args.lr_scale is None else args.lr_scale
    if specs:
        from optevo.proxy_tasks.optax_engine import OptaxEngine
        runs = OptaxEngine(task, args.steps).run(specs, ev.seeds, base_scale)
        scores += [ev.score_runs(r, ev.seeds) for r in runs]
    names = list(args.program) + specs
    scales = [t.lr_multiplier for t in tuned] + [base_scale] * len(specs)
    if args.json:
        for path, s, scale in zip(names, scores, scales):
            rec = {"file": path, "task": task.name, "steps": ev.steps, "engine": args.engine,
                   "lr_scale": scale, **s.to_json()}
            print(json.dumps(rec))
        return 0
    print(f"task {task.name}: {ev.steps} steps, seeds {ev.seeds}, engine {args.engine}; "
          f"'vs start': the ratio to the AdamW start program (configs/programs/adamw.py as "
          f"written, lr x1, not tuned: {ev.baseline():.4f}); for figures against tuned optax "
          f"AdamW use --tune")
    for t in tuned:
        if t.from_run:
            other = "" if t.task in (None, task.name) else f" (tuned on {t.task}, not {task.name})"
            print(f"  {t.describe()}{other}")
    width = max(len(p) for p in names)
    print(f"{'program':<{width}}  {'lr x':>7}  {'loss':>9}  {'stderr':>8}  {'vs start':>8}")
    for path, s, scale in zip(names, scores, scales):
        if s.diverged:
            print(f"{path:<{width}}  {scale:7.4g}  {'diverged':>9}  {'':>8}  {'':>8}  "
                  f"({s.n_diverged}/{len(s.seeds)} seeds)")
        else:
            print(f"{path:<{width}}  {scale:7.4g}  {s.loss:9.4f}  {s.stderr:8.4f}  "
                  f"{s.normalized:8.3f}")
    return 0


def _tuned(args, task, programs) -> int:
    """``eval --tune``: :func:`~optevo.search.core.holdout.fresh_check` in-process."""
    from optevo.search.core.holdout import fresh_check_programs, table
    if args.engine != "fast":
        raise UsageError("--tune trains with the fast engine; leave --engine out")
    at_least("--fresh", args.fresh, 2)
    seeds = tuple(range(args.seeds or task.seeds))
    rows = fresh_check_programs(task.name, {}, args.steps, seeds, programs, args.fresh,
                                [b for b in args.baseline if b != "adamw"],
                                args.lr_scale or 1.0)
    names = dict(enumerate(args.program, 1))
    for r in rows:
        r["name"] = names.get(r["id"]) or None
    if args.json:
        for r in rows:
            print(json.dumps({"task": task.name, **r}))
        return 0
    steps = args.steps or task.steps
    print(f"task {task.name}: {steps} steps; tuned on seeds {seeds[0]}..{seeds[-1]}, "
          f"reported on {args.fresh} fresh seeds")
    print("\n".join(table(rows)))
    return 0

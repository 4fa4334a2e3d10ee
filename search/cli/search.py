"""``optevo search CONFIG | --resume RUN_DIR``: run or continue an evolutionary search.

``--resume`` is the one command that imports the plugins a run directory's ``config.yaml``
names (commands that only read a run import none); it says which on stderr first."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from .common import UsageError, add_import, add_set, set_overrides


def add_parser(sub):
    p = sub.add_parser("search", help="run (or resume) an evolutionary search")
    p.add_argument("config", nargs="?", help="YAML config (e.g. configs/quick.yaml)")
    p.add_argument("--run-dir", help="where to write the run (default runs/NAME-TIME)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a killed or finished run")
    p.add_argument("--workers", type=int,
                   help="Ray workers (0: in-process, no Ray) (default: the config's "
                        "workers.count)")
    p.add_argument("--address",
                   help="join a running Ray cluster (ray start --head) (default: the "
                        "config's workers.address)")
    p.add_argument("--seed", type=int,
                   help="random seed of the search (default: the config's seed)")
    p.add_argument("--max-evals", type=int,
                   help="stop after this many trained children (default: the config's "
                        "search.max_evals)")
    p.add_argument("--time-limit", type=float,
                   help="stop submitting after this many seconds (default: the config's "
                        "search.time_limit)")
    p.add_argument("--check", action="store_true",
                   help="check the config, its tasks and plugins (and, with --resume, the "
                        "checkpoint against the log), print the resolved config, run nothing")
    p.add_argument("--no-holdout", action="store_true",
                   help="skip the held-out re-check at the end (the report says so in "
                        "one line and has no held-out figures)")
    add_set(p)
    add_import(p)
    p.set_defaults(fn=run)
    return p


def overrides(args):
    """Config overrides given as flags: ({dotted key: value}, {dotted key: flag})."""
    values, sources = set_overrides(getattr(args, "set", ()))
    for key, flag, value in [("seed", "--seed", args.seed),
                             ("search.max_evals", "--max-evals", args.max_evals),
                             ("search.time_limit", "--time-limit", args.time_limit),
                             ("workers.count", "--workers", args.workers),
                             ("workers.address", "--address", args.address)]:
        if value is not None:
            values[key], sources[key] = value, flag
    return values, sources


def plugins_named(path) -> list:
    """The ``plugins`` a config file lists, read as text (nothing imported)."""
    from optevo.search.core.yaml_config import read_yaml
    data = read_yaml(path)[0]
    names = data.get("plugins") if isinstance(data, dict) else None
    return [n for n in names if isinstance(n, str)] if isinstance(names, list) else []


def run(args) -> int:
    from optevo.search.core.config import load_config
    from optevo.search.core.run import check_new_run_dir, run_search
    from optevo.search.core.rundir import CONFIG
    values, sources = overrides(args)
    if args.resume:
        if args.config or args.run_dir:
            raise UsageError("--resume RUN_DIR continues with the run's own config.yaml; give "
                             "no CONFIG or --run-dir (change values with --set, --max-evals, ...)")
        run_dir = Path(args.resume)
        if not (run_dir / CONFIG).exists():
            raise UsageError(f"{run_dir}: not a run directory (no {CONFIG})")
        named = list(dict.fromkeys(plugins_named(run_dir / CONFIG) + args.imports))
        if named:
            print(f"optevo search: --resume imports the plugins {run_dir / CONFIG} names: "
                  f"{', '.join(named)}", file=sys.stderr, flush=True)
        cfg = load_config(run_dir / CONFIG, values, sources, args.imports)
    else:
        if not args.config:
            raise UsageError("give a CONFIG file, or --resume RUN_DIR")
        cfg = load_config(args.config, values, sources, args.imports)
        name = cfg.name or Path(args.config).stem
        run_dir = check_new_run_dir(args.run_dir or f"runs/{name}-{time.strftime('%Y%m%d-%H%M%S')}")
    if args.check:
        from optevo.search.core.config import config_text
        from optevo.search.core.state import check_resume
        from optevo.search.core.rundir import RunDir
        from optevo.search.core.run import check_tasks
        check_tasks(cfg)
        if args.resume:  # the checks of a resume, the same lines
            state = check_resume(RunDir(run_dir), cfg.search.population)
            print(f"# {run_dir}: " + ("no checkpoint yet (resumes from the start)"
                                      if state is None else
                                      f"{state.log_lines} logged children, checkpoint and "
                                      "log of the same run"))
        print(config_text(cfg), end="")
        return 0
    try:
        return run_search(cfg, run_dir, resume=bool(args.resume), holdout=not args.no_holdout)
    except BaseException as e:  # before or after the loop (which takes Ctrl-C itself), or
        from optevo.search.core.signals import received  # in the re-check of a finished one
        interrupted = isinstance(e, KeyboardInterrupt) or (
            isinstance(e, Exception) and received() and "--resume" not in str(e))
        if interrupted and (run_dir / CONFIG).exists():  # (an error an interrupt became)
            print(f"optevo search: interrupted; continue with: optevo search --resume {run_dir}",
                  flush=True)
        raise

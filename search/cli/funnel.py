"""``optevo funnel RUN_DIR|PROGRAM... | --resume DIR``: re-tune and re-check programs on
progressively larger tasks (``optevo.search.funnel``)."""

from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path

from .common import UsageError, add_set, at_least, set_overrides


def add_parser(subparsers):
    p = subparsers.add_parser(
        "funnel", help="re-tune and re-check a run's best programs (or program files) on "
                       "progressively larger tasks")
    p.add_argument("inputs", nargs="*", metavar="RUN_DIR|PROGRAM",
                   help="a search run directory (its top K programs) and/or program files")
    p.add_argument("--config", default=None,
                   help="funnel config (default: configs/funnel.yaml)")
    p.add_argument("--top", type=int, help="programs taken from each run directory")
    p.add_argument("--workers", type=int, help="Ray workers (0: in-process, no Ray)")
    p.add_argument("--address", help="join a running Ray cluster")
    p.add_argument("--resume", metavar="DIR", help="continue a killed (or finished) funnel")
    p.add_argument("--out", metavar="DIR",
                   help="funnel directory (default RUN_DIR/funnel, or runs/funnel-TIME)")
    p.add_argument("--seeds", type=int, metavar="N",
                   help="every stage trains its chosen settings on N fresh seeds and tunes on "
                        "at most its tune_seeds of them (a divisor of N); default: the config's")
    p.add_argument("--minutes", type=float, metavar="M",
                   help="stop after M minutes of this session, keeping every finished job "
                        "(continue with --resume); default: no limit")
    add_set(p)
    p.set_defaults(fn=run)
    return p


def run(args) -> int:
    from optevo.proxy_tasks.engine import enable_compile_cache
    from optevo.search.funnel.candidates import make_candidates
    from optevo.search.funnel.config import load_funnel_config
    from optevo.search.funnel.runner import Funnel, new_funnel_dir, saved_funnel
    enable_compile_cache()
    if args.resume:
        if args.inputs or args.config or args.top is not None or args.set or args.seeds:
            raise UsageError("--resume takes no inputs, --config, --top, --set or --seeds "
                             "(they are saved)")
        out = Path(args.resume)
        cfg, cands = saved_funnel(out)
    else:
        if not args.inputs:
            raise UsageError("give a RUN_DIR or program files, or --resume DIR")
        cfg = _config(args, load_funnel_config)
        top = at_least("--top", cfg.top_k if args.top is None else args.top)
        cands = make_candidates(cfg, args.inputs, top,
                                say=lambda s: print(s, flush=True))
        if args.out:
            out = Path(args.out)
        elif len(args.inputs) == 1 and os.path.isdir(args.inputs[0]):
            out = Path(args.inputs[0]) / "funnel"
        else:
            out = Path(f"runs/funnel-{time.strftime('%Y%m%d-%H%M%S')}")
        out = new_funnel_dir(out, cfg, cands)
    workers = cfg.workers.count if args.workers is None else args.workers
    address = args.address or cfg.workers.address
    print(f"optevo funnel: {out}; {sum(not c.baseline for c in cands)} candidates, "
          f"baselines {', '.join(c.name for c in cands if c.baseline)}; "
          f"{len(cfg.stages)} stages; {workers or 'no'} Ray workers", flush=True)
    if args.minutes is not None and not (math.isfinite(args.minutes) and args.minutes > 0):
        raise UsageError(f"--minutes must be a number > 0, got {args.minutes}")
    from optevo.search.funnel.runner import TimeUp
    try:
        return Funnel(cfg, out, cands, workers, address, log=sys.stdout,  # looked up now
                      seconds=None if args.minutes is None else 60 * args.minutes).execute()
    except TimeUp as e:
        print(f"optevo funnel: stopped after --minutes {args.minutes:g} ({e}); every finished "
              f"job is kept: continue with optevo funnel --resume {out}", flush=True)
        return 0


def _config(args, load):
    """The funnel config with ``--set`` and ``--seeds`` applied (errors name the flag)."""
    values, sources = set_overrides(args.set)
    if args.seeds is not None:
        n = at_least("--seeds", args.seeds, 1)
        base = load(args.config, values, sources)
        for st in base.stages:
            t = max(d for d in range(1, min(st.tune_seeds, n) + 1) if n % d == 0)
            for key, v in (("eval_seeds", n), ("tune_seeds", t)):
                values[f"stages.{st.name}.{key}"] = str(v)
                sources[f"stages.{st.name}.{key}"] = "--seeds"
    return load(args.config, values, sources)

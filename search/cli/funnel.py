"""``optevo funnel RUN_DIR|PROGRAM... | --resume DIR``: re-tune and re-check programs on
progressively larger tasks (``optevo.search.funnel``)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from .common import UsageError, at_least


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
    p.set_defaults(fn=run)
    return p


def run(args) -> int:
    from optevo.proxy_tasks.engine import enable_compile_cache
    from optevo.search.funnel.candidates import make_candidates
    from optevo.search.funnel.config import load_funnel_config
    from optevo.search.funnel.runner import Funnel, new_funnel_dir, saved_funnel
    enable_compile_cache()
    if args.resume:
        if args.inputs or args.config or args.top is not None:
            raise UsageError("--resume takes no inputs, --config or --top (they are saved)")
        out = Path(args.resume)
        cfg, cands = saved_funnel(out)
    else:
        if not args.inputs:
            raise UsageError("give a RUN_DIR or program files, or --resume DIR")
        cfg = load_funnel_config(args.config)
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
    return Funnel(cfg, out, cands, workers, address, log=sys.stdout).execute()  # looked up now

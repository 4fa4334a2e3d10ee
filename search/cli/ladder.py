"""``optevo ladder [FUNNEL_CONFIG] | --resume DIR``: does the funnel rank well-known optimizers
as published studies at scale do? (``optevo.search.funnel.ladder``: checks (a)-(d)).

Exit status 0 when every check passes, 1 when one fails or cannot be judged, 2 on bad input.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from .common import UsageError

EXIT_CHECK_FAILED = 1


def add_parser(subparsers):
    p = subparsers.add_parser(
        "ladder", help="tune well-known optimizers on every funnel stage and check that the "
                       "funnel ranks them as published studies do")
    p.add_argument("config", nargs="?", help="funnel config (default: configs/funnel.yaml)")
    p.add_argument("--extra", nargs="*", default=[], metavar="RUN_DIR|PROGRAM",
                   help="more programs for check (d): run directories (top --top) or files")
    p.add_argument("--top", type=int, default=3, help="programs taken from each RUN_DIR")
    p.add_argument("--mutants", type=int, default=0,
                   help="mutants of the AdamW start and of Muon added for check (d)")
    p.add_argument("--seed", type=int, default=0, help="seed of the mutant draws")
    p.add_argument("--competitive", type=float, default=None,
                   help="a program is competitive within this ratio of the reference's loss "
                        "on both upper stages (default 1.1)")
    p.add_argument("--workers", type=int, help="Ray workers (0: in-process, no Ray)")
    p.add_argument("--address", help="join a running Ray cluster")
    p.add_argument("--resume", metavar="DIR",
                   help="continue a killed (or finished) ladder; with --extra, add programs "
                        "to it (the finished jobs are kept)")
    p.add_argument("--out", metavar="DIR", help="ladder directory (default runs/ladder-TIME)")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.set_defaults(fn=run)
    return p


def run(args) -> int:
    from optevo.proxy_tasks.engine import enable_compile_cache
    from optevo.search.funnel.candidates import (make_candidates, more_candidates,
                                                 mutant_candidates)
    from optevo.search.funnel.config import load_funnel_config
    from optevo.search.funnel.ladder import COMPETITIVE, KNOWN, ladder_checks, write_ladder
    from optevo.search.funnel.runner import (Funnel, add_funnel_candidates, new_funnel_dir,
                                             saved_funnel)
    enable_compile_cache()
    if args.mutants < 0 or args.top < 1:
        raise UsageError("--mutants must be >= 0 and --top >= 1")
    say = (lambda s: print(s, file=sys.stderr, flush=True))
    if args.resume:
        if args.config or args.mutants:
            raise UsageError("--resume takes no config or --mutants (they are saved); "
                             "--extra adds programs")
        out = Path(args.resume)
        cfg, cands = saved_funnel(out)
        if args.extra:
            new = more_candidates(cands, list(args.extra), args.top, say)
            add_funnel_candidates(out, new)
            cands = cands + new
    else:
        cfg = load_funnel_config(args.config).model_copy(update={"keep_all": True})
        cands = make_candidates(cfg, list(KNOWN) + list(args.extra), args.top, say)
        cands += mutant_candidates(args.mutants, args.seed, cands)
        out = Path(args.out or f"runs/ladder-{time.strftime('%Y%m%d-%H%M%S')}")
        out = new_funnel_dir(out, cfg, cands)
    workers = cfg.workers.count if args.workers is None else args.workers
    log = sys.stderr if args.json else sys.stdout
    print(f"optevo ladder: {out}; {len(cands)} optimizers on {len(cfg.stages)} stages; "
          f"{workers or 'no'} Ray workers", file=log, flush=True)
    Funnel(cfg, out, cands, workers, args.address or cfg.workers.address, log=log).execute()
    result = ladder_checks(cfg, cands, out, args.competitive or COMPETITIVE)
    order = [cfg.reference] + [c.name for c in cands if c.name != cfg.reference]
    text = write_ladder(out, result, order)
    print(json.dumps(result, default=float) if args.json else text, flush=True)
    return 0 if result["passed"] else EXIT_CHECK_FAILED

"""``optevo discover CONFIG | --resume DIR``: independent searches, one more from the best,
the held-out re-checks, the funnel on the top programs of all searches, the survivors
simplified and exported, one report (``optevo.search.discover``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .common import UsageError, add_import, add_set, at_least, set_overrides


def add_parser(sub):
    p = sub.add_parser(
        "discover", help="the whole method: S searches and one more from the best, held-out "
                         "re-checks, the funnel, survivors exported, one report (resumable)")
    p.add_argument("config", nargs="?", help="search config (e.g. configs/quick.yaml)")
    p.add_argument("--minutes", type=float,
                   help="wall time of all searches together, shared equally (default: each "
                        "search has the config's time limit and evaluation cap)")
    p.add_argument("--searches", type=int,
                   help="independent searches before the one from the best (default 5, as "
                        "in the paper)")
    p.add_argument("--top", type=int,
                   help="distinct programs of all searches sent to the funnel (default: the "
                        "funnel config's top_k)")
    p.add_argument("--funnel-config", help="funnel config (default: configs/funnel.yaml)")
    p.add_argument("--workers", type=int,
                   help="Ray workers for searches and funnel (0: in-process, no Ray)")
    p.add_argument("--out", metavar="DIR", help="where to write (default runs/discover-NAME-TIME)")
    p.add_argument("--resume", metavar="DIR", help="continue a killed (or finished) discover run")
    add_set(p)
    add_import(p)
    p.set_defaults(fn=run)
    return p


def run(args) -> int:
    from optevo.proxy_tasks.engine import enable_compile_cache
    from optevo.search.core.config import load_config
    from optevo.search.discover.runner import Discover, default_out, new_discover
    from optevo.search.funnel.config import default_config_path, load_funnel_config
    from optevo.search.discover.layout import STATE
    at_least("--workers", args.workers, 0)
    if args.resume:
        given = [flag for flag, v in (("CONFIG", args.config), ("--minutes", args.minutes),
                                      ("--searches", args.searches), ("--top", args.top),
                                      ("--funnel-config", args.funnel_config),
                                      ("--out", args.out),
                                      ("--set", args.set or None),
                                      ("--import", args.imports or None)) if v is not None]
        if given:
            raise UsageError(f"--resume takes only --workers; {', '.join(given)} "
                             "are saved in the run")
        out = Path(args.resume)
        named = _saved_plugins(out / STATE)
        if named:
            print(f"optevo discover: --resume imports the plugins {out / STATE} names: "
                  f"{', '.join(named)}", file=sys.stderr, flush=True)
    else:
        if not args.config:
            raise UsageError("give a CONFIG file, or --resume DIR")
        at_least("--searches", args.searches)
        at_least("--top", args.top)
        if args.minutes is not None and not args.minutes > 0:
            raise UsageError("--minutes must be greater than 0")
        cfg = load_config(args.config, *set_overrides(args.set), imports=args.imports)
        fpath = args.funnel_config or default_config_path()
        fcfg = load_funnel_config(fpath)
        out = new_discover(args.out or default_out(cfg), cfg, fcfg,
                           5 if args.searches is None else args.searches, args.minutes,
                           args.top, args.workers,
                           source=f"{args.config} (funnel: {fpath})")
    enable_compile_cache()
    print(f"optevo discover: {out}", flush=True)
    return Discover(out, workers=args.workers).execute()


def _saved_plugins(path) -> list:
    """The plugins a discover run's saved config lists, read as data (nothing imported; a
    damaged file is left to the run's own loader, which says what is wrong in one line)."""
    from optevo.dsl.files import read_text
    try:
        names = json.loads(read_text(path, "utf-8"))["config"]["plugins"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    return [str(n) for n in names] if isinstance(names, list) else []

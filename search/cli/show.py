"""``optevo show``, ``lineage``, ``plot`` and ``diff``: look at programs and run directories
(``optevo.search.core.views`` and ``plot``)."""

from __future__ import annotations

import sys
from pathlib import Path

from .common import at_least


def add_parser(sub):
    p = sub.add_parser("show", help="print program files in canonical form, or the best "
                                    "programs of a run directory")
    p.add_argument("program", nargs="+",
                   help="programs (files, library names, RUN_DIR:ID), or one RUN_DIR")
    p.add_argument("--top", type=int, default=5, help="RUN_DIR: how many best programs")
    p.add_argument("--json", action="store_true", help="RUN_DIR: one JSON object per program")
    p.add_argument("--time", action="store_true",
                   help="programs: also time one optimizer step against optax AdamW's "
                        "(jitted, ~1M parameters; a few seconds)")
    p.set_defaults(fn=cmd_show)

    p = sub.add_parser("lineage", help="the ancestors of one evaluation of a run")
    p.add_argument("run_dir")
    p.add_argument("id", help="evaluation id (see optevo show RUN_DIR)")
    p.add_argument("--programs", action="store_true", help="print each ancestor's program")
    p.set_defaults(fn=cmd_lineage)

    p = sub.add_parser("plot", help="plot a run's search progress (PNG)")
    p.add_argument("run_dir")
    p.add_argument("-o", "--output", help="output PNG (default RUN_DIR/progress.png)")
    p.set_defaults(fn=cmd_plot)

    p = sub.add_parser("diff", help="two programs side by side (files or RUN_DIR:ID)")
    p.add_argument("a")
    p.add_argument("b")
    p.set_defaults(fn=cmd_diff)
    return sub


def cmd_show(args) -> int:
    if len(args.program) == 1 and Path(args.program[0]).is_dir():
        from optevo.search.core.views import show_run
        return show_run(args.program[0], at_least("--top", args.top), args.json)
    from optevo.search.core.cost import state_text, step_text, step_time
    from optevo.search.core.views import load_ref
    for p in [load_ref(x)[0] for x in args.program]:
        sys.stdout.write(p.text())
        print(f"# {state_text(p)}")
        if args.time:
            print(f"# {step_text(step_time(p))}")
    return 0


def cmd_lineage(args) -> int:
    from optevo.search.core.views import lineage
    return lineage(args.run_dir, args.id, programs=args.programs)


def cmd_plot(args) -> int:
    from optevo.search.core.plot import plot_progress
    print(plot_progress(args.run_dir, args.output))
    return 0


def cmd_diff(args) -> int:
    from optevo.search.core.views import diff_text, load_ref
    a, la = load_ref(args.a)
    b, lb = load_ref(args.b)
    sys.stdout.write(diff_text(a, b, la, lb))
    return 0

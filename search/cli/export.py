"""``optevo export PROGRAM --format optax [-o FILE]``: a program (a file or ``RUN_DIR:ID``) as
a self-contained Python module defining an ``optax.GradientTransformation``
(``optevo.dsl.codegen``). Without ``-o`` the module is printed."""

from __future__ import annotations

import sys
from pathlib import Path

from .common import UsageError

FORMATS = ("optax",)


def export_program(ref: str, fmt: str = "optax", output=None, name: str = "discovered",
                   lr_multiplier=None) -> str:
    """Write (or return) the module for the program ``ref``; returns the source text.
    ``RUN_DIR:ID`` carries its run's tuning (``search.core.tuned``); ``lr_multiplier``
    (None: the tuned one, or 1 as written) overrides its lr multiplier."""
    from optevo.dsl.codegen import to_module_source
    from optevo.search.core.tuned import load_tuned
    if fmt not in FORMATS:
        raise UsageError(f"unknown export format {fmt!r} (known: {', '.join(FORMATS)})")
    tuned = load_tuned(ref).with_multiplier(lr_multiplier)
    try:
        source = to_module_source(tuned.program, name=name, source=tuned.label,
                                  tuning=tuned.tuning())
    except ValueError as e:
        raise UsageError(str(e)) from None
    if output:
        out = Path(output)
        if not out.parent.is_dir():
            raise UsageError(f"{out.parent}: no such directory")
        from optevo.search.core.files import write_output
        write_output(out, source)  # checked: a failed write is one line, exit status 2
    return source


def summary_line(ref: str, name: str, lr_multiplier=None) -> str:
    """What the exported function's defaults are, in one line (printed with ``-o``)."""
    from optevo.dsl.codegen import exported_defaults
    from optevo.dsl.hyper import named_hyperparameters
    from optevo.dsl.liveness import strip_dead
    from optevo.search.core.tuned import load_tuned
    tuned = load_tuned(ref).with_multiplier(lr_multiplier)
    d = exported_defaults(tuned.program, tuned.tuning())
    args = ", ".join(f"{k}={v:.6g}" for k, v in d.items())
    hp = named_hyperparameters(strip_dead(tuned.program))
    sched = f" ({tuned.schedule.text}: tuned_schedule())" if tuned.schedule else ""
    warn = "" if hp.reads_lr else "; WARNING: the program never reads lr, so learning_rate " \
        "has no effect"
    return f"{name}({args}){sched}; {tuned.describe()}{warn}"


def run(args) -> int:
    source = export_program(args.program, args.format, args.output, args.name,
                            args.lr_multiplier)
    if args.output:
        print(f"wrote {args.output}: import it and call "
              + summary_line(args.program, args.name, args.lr_multiplier), file=sys.stderr)
    else:
        sys.stdout.write(source)
    from optevo.search.core.cost import state_text, step_text, step_time
    from optevo.search.core.tuned import load_tuned
    program = load_tuned(args.program).program
    print(f"# {state_text(program)}", file=sys.stderr)
    if args.time:
        print(f"# {step_text(step_time(program))}", file=sys.stderr)
    return 0


def add_parser(subparsers):
    p = subparsers.add_parser(
        "export", help="write a program as a self-contained optax module")
    p.add_argument("program", help="program file, library name, or RUN_DIR:ID")
    p.add_argument("--lr-multiplier", type=float, default=None,
                   help="the exported default learning rate is this multiplier times the "
                        "program's lr unit (default: the run's tuned multiplier for "
                        "RUN_DIR:ID, else 1, the program as written)")
    p.add_argument("--format", choices=FORMATS, default="optax",
                   help="what to write (optax: a GradientTransformation module)")
    p.add_argument("-o", "--output", help="output .py file (default: print)")
    p.add_argument("--name", default="discovered",
                   help="name of the function returning the transformation")
    p.add_argument("--time", action="store_true",
                   help="also time one step of it against optax AdamW's (a few seconds)")
    p.set_defaults(fn=run)
    return p

"""``optevo export PROGRAM --format optax [-o FILE]``: a program (a file or ``RUN_DIR:ID``) as
a self-contained Python module defining an ``optax.GradientTransformation``
(``optevo.dsl.codegen``). Without ``-o`` the module is printed."""

from __future__ import annotations

import sys
from pathlib import Path

from .common import UsageError

FORMATS = ("optax",)


def export_program(ref: str, fmt: str = "optax", output=None, name: str = "discovered",
                   lr_multiplier: float = 1.0) -> str:
    """Write (or return) the module for the program ``ref``; returns the source text."""
    from optevo.dsl.codegen import to_module_source
    from optevo.search.core.views import load_ref
    if fmt not in FORMATS:
        raise UsageError(f"unknown export format {fmt!r} (known: {', '.join(FORMATS)})")
    program, label = load_ref(ref)
    try:
        if lr_multiplier != 1.0:
            label = f"{label}, with its lr multiplied by {lr_multiplier:g} (--lr-multiplier)"
        source = to_module_source(program, name=name, source=label,
                                  lr_multiplier=lr_multiplier)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if output:
        out = Path(output)
        if not out.parent.is_dir():
            raise UsageError(f"{out.parent}: no such directory")
        from optevo.search.core.files import write_output
        write_output(out, source)  # checked: a failed write is one line, exit status 2
    return source


def run(args) -> int:
    source = export_program(args.program, args.format, args.output, args.name,
                            args.lr_multiplier)
    if args.output:
        print(f"wrote {args.output}: import it and call {args.name}() (learning_rate "
              f"{args.lr_multiplier:g} by default)",
              file=sys.stderr)
    else:
        sys.stdout.write(source)
    return 0


def add_parser(subparsers):
    p = subparsers.add_parser(
        "export", help="write a program as a self-contained optax module")
    p.add_argument("program", help="program file, library name, or RUN_DIR:ID")
    p.add_argument("--lr-multiplier", type=float, default=1.0,
                   help="the default learning_rate of the exported function: a tuned "
                        "multiplier of the program's lr input (e.g. the search's calibrated "
                        "start_lr_scale, or the funnel's lr multiplier); default 1 (as written)")
    p.add_argument("--format", choices=FORMATS, default="optax",
                   help="what to write (optax: a GradientTransformation module)")
    p.add_argument("-o", "--output", help="output .py file (default: print)")
    p.add_argument("--name", default="discovered",
                   help="name of the function returning the transformation (discovered)")
    p.set_defaults(fn=run)
    return p

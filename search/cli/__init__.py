"""The ``optevo`` command line: the only place that prints errors and chooses exit codes.

One module per command (``eval``, ``search``, ``show``/``lineage``/``plot``/``diff``,
``export``, ``simplify``, ``funnel``, ``discover``, ``analyze``, ``l2l``), each with
``add_parser(subparsers)`` and a ``run(args)`` that calls the library. Library code raises :class:`~optevo.dsl.errors.OptevoError`
subclasses (``ProgramError``, ``ConfigError``, ``RunDirError``, ...) whose text is one line
naming the file, line or key; :func:`main` prints it as ``optevo: error: ...`` and exits with
status 2, with no traceback. Nothing outside this package imports it.
"""

from __future__ import annotations

import sys
from typing import List, Optional

from optevo.dsl.errors import OptevoError

EXIT_OK = 0
EXIT_USAGE = 2  # bad input: a program, a config value, a run directory, a flag
EXIT_INTERRUPTED = 130


class UsageError(OptevoError):
    """A bad command-line argument (one line, exit status 2)."""


def at_least(flag: str, value, low: int = 1):
    """``value`` (None allowed) of ``flag`` must be an integer >= ``low``."""
    if value is not None and value < low:
        raise UsageError(f"{flag} must be at least {low}")
    return value


def add_set(p):
    """The repeatable ``--set KEY=VALUE`` flag (any dotted config key, a YAML scalar value)."""
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any config key, e.g. --set search.max_evals=null "
                        "--set task.options.batch_size=64 (repeatable)")


def add_import(p):
    """The repeatable ``--import MODULE`` flag (a module name or a .py file)."""
    p.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                   help="import a module or .py file first, in the driver and every worker "
                        "(it registers tasks, mutations, ops); repeatable; joins the config's "
                        "plugins list")


def set_overrides(pairs) -> tuple:
    """``--set`` pairs as ({dotted key: text}, {dotted key: "--set KEY"}); the config layer
    reads each text as a YAML scalar and checks the key and value like the file's."""
    values, sources = {}, {}
    for pair in pairs or ():
        key, eq, value = pair.partition("=")
        if not eq or not key.strip():
            raise UsageError(f"--set expects KEY=VALUE, got {pair!r}")
        values[key.strip()], sources[key.strip()] = value, f"--set {key.strip()}"
    return values, sources


def _version() -> str:
    try:
        from importlib.metadata import version
        return version("optevo")
    except Exception:  # not installed (run from a checkout)
        return "unknown"


EXAMPLES = {
    "eval": "optevo eval lion configs/programs/adamw.py --task digits_mlp --baseline hyper_adam",
    "search": "optevo search quick            # the packaged preset, from any directory\n"
              "  optevo search configs/search.yaml --set search.population=64 --workers 2\n"
              "  optevo search --resume runs/quick-20261130-101500 --max-evals 4000",
    "show": "optevo show runs/quick-*/ --top 5\n  optevo show lion",
    "lineage": "optevo lineage RUN_DIR 1727 --programs",
    "plot": "optevo plot RUN_DIR -o progress.png",
    "diff": "optevo diff lion RUN_DIR:1727",
    "export": "optevo export RUN_DIR:1727 --format optax -o discovered.py --lr-multiplier 8",
    "simplify": "optevo simplify configs/examples/raw_search_output.py --task digits_mlp",
    "funnel": "optevo funnel RUN_DIR lion configs/programs/signum.py --out runs/f1\n"
              "  optevo funnel --resume runs/f1",
    "discover": "optevo discover quick --minutes 2 --searches 2 --workers 2\n"
                "  optevo discover --resume runs/d1",
    "analyze": "optevo analyze configs/examples/raw_search_output.py\n"
               "  optevo analyze lion --task quadratic --weight-decay 1 --lr-scale 1000",
    "l2l": "optevo l2l train --task digits_mlp --out my_l2l.npz",
}


def _with_help_defaults(sub):
    """Every subcommand's --help shows each option's default and an example."""
    import argparse

    class Formatter(argparse.ArgumentDefaultsHelpFormatter,
                    argparse.RawDescriptionHelpFormatter):
        pass

    add = sub.add_parser

    def add_parser(name, **kw):
        kw.setdefault("formatter_class", Formatter)
        if name in EXAMPLES:
            kw.setdefault("epilog", "example:\n  " + EXAMPLES[name])
        return add(name, **kw)
    sub.add_parser = add_parser
    return sub


def build_parser():
    import argparse
    from . import eval as eval_cmd
    from . import analyze, discover, export, funnel, l2l, search, show, simplify
    ap = argparse.ArgumentParser(
        prog="optevo", description="Discover optimizers by evolutionary program search.")
    ap.add_argument("--version", action="version", version=f"optevo {_version()}")
    sub = _with_help_defaults(ap.add_subparsers(dest="command"))
    for module in (eval_cmd, search, show, export, simplify, funnel, discover, analyze,
                   l2l):
        module.add_parser(sub)
    return ap


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "fn", None) is None:  # bare `optevo`
        parser.print_help()
        return EXIT_OK
    try:
        return args.fn(args)
    except OptevoError as e:
        print(f"optevo: error: {str(e).replace(chr(10), ' ')}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("optevo: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # output piped into head & co.
        sys.stderr.close()
        return EXIT_OK
    except OSError as e:  # a read-only directory, a full disk, a path that is a file, ...
        where = f"{e.filename}: " if e.filename else ""
        print(f"optevo: error: {where}{e.strerror or e}", file=sys.stderr)
        return EXIT_USAGE

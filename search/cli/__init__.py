"""The ``optevo`` command line: the only place that prints errors and chooses exit codes.

One module per command (``eval``, ``search``, ``show``/``lineage``/``plot``/``diff``,
``export``, ``simplify``, ``funnel``, ``ladder``, ``discover``, ``analyze``, ``sweep``, ``l2l``), each with
``add_parser(subparsers)`` and a ``run(args)`` that calls the library. Library code raises :class:`~optevo.dsl.errors.OptevoError`
subclasses (``ProgramError``, ``ConfigError``, ``RunDirError``, ...) whose text is one line
naming the file, line or key; :func:`main` prints it as ``optevo: error: ...`` and exits with
status 2, with no traceback. Nothing outside this package imports it.
"""

from __future__ import annotations

import os
import sys
from typing import List, Optional

# Nothing that imports JAX is imported before :func:`main` holds ``signals.interrupts``: a
# Ctrl-C in the first second (while numpy and JAX load) is then honoured, not turned into an
# ImportError traceback. The names of ``.common`` stay importable from here.


def __getattr__(name):
    if name in ("EXIT_OK", "EXIT_USAGE", "UsageError"):
        from . import common
        return getattr(common, name)
    raise AttributeError(f"module 'optevo.search.cli' has no attribute {name!r}")


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
    "ladder": "optevo ladder --mutants 36 --out runs/ladder1\n  optevo ladder --resume runs/ladder1",
    "discover": "optevo discover quick --minutes 2 --searches 2 --workers 2\n"
                "  optevo discover --resume runs/d1",
    "analyze": "optevo analyze configs/examples/raw_search_output.py\n"
               "  optevo analyze lion --task quadratic --weight-decay 1 --lr-scale 1000",
    "l2l": "optevo l2l train --task digits_mlp --out my_l2l.npz",
    "sweep": "optevo sweep lion adamw --task digits_mlp --out runs/sweep1\n"
             "  optevo sweep lion --task digits_mlp --batch-sizes 16,64,256",
}


def _help_formatter():
    """The subcommands' help formatter: each option's default is said once. It adds
    "(default: X)" as ``ArgumentDefaultsHelpFormatter`` does, except where the help text
    already says it (the word "default", or "(X)") and where there is none to say (None,
    an off flag, an empty list)."""
    import argparse

    class Formatter(argparse.RawDescriptionHelpFormatter):
        def _get_help_string(self, action):
            text = action.help or ""
            default = action.default
            if ("%(default)" in text or default is None or default is argparse.SUPPRESS
                    or default is False or (isinstance(default, list) and not default)
                    or not (action.option_strings
                            or action.nargs in (argparse.OPTIONAL, argparse.ZERO_OR_MORE))
                    or "default" in text.lower() or f"({default})" in text):
                return text
            return text + " (default: %(default)s)"

    return Formatter


def _with_help_defaults(sub):
    """Every subcommand's --help shows each option's default (once) and an example."""
    formatter = _help_formatter()
    add = sub.add_parser

    def add_parser(name, **kw):
        kw.setdefault("formatter_class", formatter)
        if name in EXAMPLES:
            kw.setdefault("epilog", "example:\n  " + EXAMPLES[name])
        return add(name, **kw)
    sub.add_parser = add_parser
    return sub


def build_parser():
    import argparse
    from . import eval as eval_cmd
    from . import (analyze, discover, export, funnel, l2l, ladder, search, show, simplify,
                   sweep)
    ap = argparse.ArgumentParser(
        prog="optevo", description="Discover optimizers by evolutionary program search.")
    ap.add_argument("--version", action="version", version=f"optevo {_version()}")
    sub = _with_help_defaults(ap.add_subparsers(dest="command"))
    for module in (eval_cmd, search, show, export, simplify, funnel, ladder, discover,
                   analyze, sweep, l2l):
        module.add_parser(sub)
    return ap


EXIT_INTERRUPTED = 130  # 128 + SIGINT; the same as .common's, which imports JAX


def main(argv: Optional[List[str]] = None) -> int:
    """Run one command; Ctrl-C at any moment (``signals``) ends it with "optevo: interrupted"
    and status 130 (or as the command itself ends on it: a search), never a traceback.

    Run as a program (``argv`` None) and interrupted, the process ends at once with that
    status once its output is flushed: an interrupt can leave XLA compiling in another
    thread, and the interpreter's teardown then crashed now and then (SIGSEGV after the
    continue line, 1 of 9 seeded interrupts in ``tests/test_signals.py``). Everything a
    command writes is whole on disk before it returns (atomic writes, a flushed log)."""
    share_accelerator()
    rc = _main_interruptible(argv)
    if argv is None and rc == EXIT_INTERRUPTED:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(rc)
    return rc


def share_accelerator():
    """On a GPU, the driver and its Ray workers share the device: JAX's default of taking
    75% of its memory at start would leave the second process none, so memory is taken as
    needed (``XLA_PYTHON_CLIENT_PREALLOCATE=false``, unless the user set it). Before JAX
    starts; nothing changes on a CPU. The Ray workers set the same (``workers.py``)."""
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")


def _main_interruptible(argv: Optional[List[str]]) -> int:
    from optevo.search.core.signals import interrupts
    try:
        with interrupts() as sigint:
            try:
                rc = _main(argv)
            except KeyboardInterrupt:
                rc = None
            except Exception:  # what an interrupt left behind, if one came
                if sigint.received is None:
                    raise
                rc = None
            if rc is None or (sigint.received is not None and not sigint.raised
                              and rc != EXIT_INTERRUPTED):  # (not one the command handled)
                return _interrupted()
            return rc
    except KeyboardInterrupt:  # as the command returned
        return _interrupted()


def _interrupted() -> int:
    print("optevo: interrupted", file=sys.stderr)
    return EXIT_INTERRUPTED


def _main(argv: Optional[List[str]]) -> int:
    from .common import EXIT_OK, EXIT_USAGE, OptevoError
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
    except BrokenPipeError:  # output piped into head & co.
        sys.stderr.close()
        return EXIT_OK
    except OSError as e:  # a read-only directory, a full disk, a path that is a file, ...
        where = f"{e.filename}: " if e.filename else ""
        print(f"optevo: error: {where}{e.strerror or e}", file=sys.stderr)
        return EXIT_USAGE

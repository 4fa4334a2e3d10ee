"""What every command module shares: exit statuses, the usage error, and the flags that
several commands take (``--set``, ``--import``). Command modules import this, never the
package ``__init__`` (which imports them: no cycle).

Importing this module (and so building the parser: ``optevo --help``, ``--version``) imports
nothing heavy: the command modules import JAX & co. inside their ``run`` functions only.
"""

from __future__ import annotations

import sys


def _optevo_error():
    """:class:`optevo.dsl.errors.OptevoError` without running the package ``optevo.dsl``'s
    ``__init__``, which imports JAX (seconds). ``errors`` imports nothing, so it is loaded on
    its own under its own name: when ``optevo.dsl`` is imported later its modules find this
    very module (one class, ``except OptevoError`` catches both sides' errors)."""
    name = "optevo.dsl.errors"
    if name in sys.modules or "optevo.dsl" in sys.modules:
        from optevo.dsl.errors import OptevoError
        return OptevoError
    import importlib.util
    from importlib.machinery import PathFinder
    package = importlib.util.find_spec("optevo.dsl")  # imports ``optevo`` (empty), not dsl
    spec = PathFinder.find_spec(name, package.submodule_search_locations) if package else None
    if spec is None or spec.loader is None:  # an unusual install: import it the usual way
        from optevo.dsl.errors import OptevoError
        return OptevoError
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module.OptevoError


OptevoError = _optevo_error()

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
                        "--set task.options.batch_size=64 (repeatable); on a suite (task: a "
                        "list) a task.KEY is set in every task of it")


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

"""What every command module shares: exit statuses, the usage error, and the flags that
several commands take (``--set``, ``--import``). Command modules import this, never the
package ``__init__`` (which imports them: no cycle)."""

from __future__ import annotations

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

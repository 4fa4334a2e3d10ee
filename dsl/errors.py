"""The one base class of every error a user can cause.

Library code (``dsl``, ``proxy_tasks``, ``simplify``, ``search``) raises a subclass of
:class:`OptevoError` when the input is bad (a malformed program, a config value, a run
directory, an unknown task). ``str(e)`` is ONE line naming the file, line or key and, where
possible, what to do instead. Only the command line (``optevo.search.cli``) turns these into
``optevo: error: ...`` and exit status 2; library code never prints them or exits.
"""

from __future__ import annotations


class OptevoError(Exception):
    """Bad user input: ``str(e)`` is one line (file, line or key; what is wrong)."""

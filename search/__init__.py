"""optevo.search: evolutionary search for optimizer programs.

Sub-packages: ``core`` (config, run directory, regularized evolution, workers, held-out
re-check, inspection), ``funnel`` (re-checks on larger tasks), ``cli`` (the ``optevo``
command). The Python API, imported lazily so that ``import optevo.search`` stays cheap::

    from optevo.search import run, load_run, register_mutation
"""

from __future__ import annotations

__all__ = ["run", "load_run", "Run", "register_mutation"]


def __getattr__(name):
    if name in ("run", "load_run", "Run"):
        from .core import api
        return getattr(api, name)
    if name == "register_mutation":
        from .core.mutations import register_mutation
        return register_mutation
    raise AttributeError(f"module 'optevo.search' has no attribute {name!r}")

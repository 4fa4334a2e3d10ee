"""Shared test settings: a session-wide persistent XLA cache, so that each compiled engine
is compiled once per test session, also by subprocesses and Ray workers (they inherit the
environment)."""

import os
import tempfile

_CACHE = tempfile.mkdtemp(prefix="optevo-xla-")
os.environ.setdefault("OPTEVO_XLA_CACHE", _CACHE)

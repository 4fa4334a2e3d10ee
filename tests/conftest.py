"""Shared test settings: a session-wide persistent XLA cache, so that each compiled engine
is compiled once per test session, also by subprocesses and Ray workers (they inherit the
environment). The process that made the folder removes it when its session ends (the
pytest-xdist workers inherit the controller's, so only the controller makes one)."""

import os
import shutil
import tempfile

_OWN = None
if "OPTEVO_XLA_CACHE" not in os.environ:
    _OWN = tempfile.mkdtemp(prefix="optevo-xla-")
    os.environ["OPTEVO_XLA_CACHE"] = _OWN


def pytest_sessionfinish(session, exitstatus):
    if _OWN is not None:
        shutil.rmtree(_OWN, ignore_errors=True)

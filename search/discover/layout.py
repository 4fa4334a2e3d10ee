"""The names of a discover directory's files (see the package docstring), and the one
reader of a search's ``summary.json`` the pipeline uses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Optional

from ..core.rundir import SUMMARY

STATE = "discover.json"
BEST_START = "best-start.py"
BEST_SEARCH = "search-best"
FUNNEL_DIR = "funnel"
SURVIVORS = "survivors"
REPORT = "report.md"


def search_names(n: int) -> List[str]:
    """The run directories of the ``n`` independent searches, then the search from the best."""
    return [f"search-{i}" for i in range(1, n + 1)] + [BEST_SEARCH]


def read_summary(run_dir) -> Optional[Dict]:
    """A search's ``summary.json`` (None while the search has not finished)."""
    p = Path(run_dir) / SUMMARY
    return json.loads(p.read_text()) if p.exists() else None

"""The names of a discover directory's files (see the package docstring)."""

from __future__ import annotations

from typing import List

STATE = "discover.json"
BEST_START = "best-start.py"
BEST_SEARCH = "search-best"
FUNNEL_DIR = "funnel"
SURVIVORS = "survivors"
REPORT = "report.md"


def search_names(n: int) -> List[str]:
    """The run directories of the ``n`` independent searches, then the search from the best."""
    return [f"search-{i}" for i in range(1, n + 1)] + [BEST_SEARCH]


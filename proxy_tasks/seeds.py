"""Which seeds mean what, defined once. A seed draws a run's initial weights, its batches and,
for the synthetic tasks, its problem instance (``tasks/base.py``).

* ``0 .. K-1``: selection and tuning (a search's fitness seeds, the funnel's tuning seeds);
* ``FRESH_BASE + i``: fresh seeds that selection and tuning never saw (the held-out re-check,
  the funnel's evaluation groups, the scripts' fresh checks);
* ``META_BASE + i``: the trajectories the learned optimizer is meta-trained on (L2L), so
  that neither its training nor its evaluation reuses the other's seeds.
"""

from __future__ import annotations

from typing import List

FRESH_BASE = 1_000_000
META_BASE = 2_000_000


def fresh_seeds(n: int, offset: int = 0) -> List[int]:
    """``n`` fresh seeds from ``FRESH_BASE + offset``."""
    return [FRESH_BASE + offset + i for i in range(n)]

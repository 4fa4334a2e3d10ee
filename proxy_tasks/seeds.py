"""Which seeds mean what, defined once. A seed draws a run's initial weights, its batches and,
for the synthetic tasks, its problem instance (``tasks/base.py``).

* ``0 .. K-1``: selection and tuning (a search's fitness seeds, the funnel's tuning seeds);
* ``FRESH_BASE + i``: fresh seeds that selection and tuning never saw (the held-out re-check,
  the funnel's evaluation groups, the scripts' fresh checks);
* ``META_BASE + i``: the trajectories the learned optimizer is meta-trained on (L2L), so
  that neither its training nor its evaluation reuses the other's seeds (its evaluation:
  ``FRESH_BASE + 3_000_000 + i``, ``scripts/experiments/l2l_generalisation.py``);
* ``SIMPLIFY_BASE + i``: the guided simplification's seeds when it is told not to judge a
  search's find on the seeds that selected it (``optevo simplify --fresh N``, the planted
  checks): neither selection nor any held-out figure reads them. Measured on the Adam
  check's task (``configs/planted-adam.yaml``, 2026-12-07): a found program's extra term in
  ``g`` (``configs/examples/planted/fit_term_adam.py``) cost 3.1% of the loss when removed
  on the 8 fitness seeds that selected it, and removing it gained 4.8% on 16 of these seeds
  (3.9% on 48), so a 1% tolerance on the fitness seeds keeps what only fits them.
"""

from __future__ import annotations

from typing import List

FRESH_BASE = 1_000_000
META_BASE = 2_000_000
SIMPLIFY_BASE = 9_000_000  # above L2L's meta seeds (2e6 + 1e5 x seed) for seeds < 70


def fresh_seeds(n: int, offset: int = 0) -> List[int]:
    """``n`` fresh seeds from ``FRESH_BASE + offset``."""
    return [FRESH_BASE + offset + i for i in range(n)]


def simplify_seeds(n: int) -> List[int]:
    """``n`` seeds for the guided simplification of a search's find: ``SIMPLIFY_BASE + i``."""
    return [SIMPLIFY_BASE + i for i in range(n)]

"""``search.seed_population: RUN_DIR``: a search warm-started from an earlier run.

The new run calibrates its own start as usual (its lr multiplier and decay, its 1.0), then,
before any mutation, trains the earlier run's best distinct programs (``distinct``: best
first, none equivalent to another, its start left out), at most one population's worth, as
children with mutation ``seed_population`` and no parent; regularized evolution then ages
the start's copies out. The list is fixed when the run starts and kept in the checkpoint
(``seed_list``); ``seeded`` counts those logged, so a resume sends again exactly the seeds
that were in flight when the run was killed. They count towards ``search.max_evals``.
"""

from __future__ import annotations

from typing import List, Optional

from optevo.dsl.canon import program_hash
from optevo.dsl.parse import parse

from .population import Member

SEED = "seed_population"  # the mutation name of a seeded child


def seed_programs(run_dir, k: int) -> List[str]:
    """The program texts of the ``k`` best distinct programs of the run ``run_dir``."""
    import itertools
    from .distinct import iter_distinct
    from .rundir import RunDir
    run = RunDir.existing(run_dir)
    return [r.program for r in itertools.islice(
        iter_distinct(run.records(), include_start=False), k)]


class Seeder:
    """The next seed to send (None once all were sent): ``state.seed_list`` from the index
    ``state.seeded`` had when this session began (seeds logged before it), plus those sent
    in this session: a seed lost in flight by a kill is sent again on resume."""

    def __init__(self, state):
        self.state, self.first, self.sent = state, state.seeded, 0

    def next(self) -> Optional[str]:
        i = self.first + self.sent
        if i >= len(self.state.seed_list):
            return None
        self.sent += 1
        return self.state.seed_list[i]

    def child(self, island: int):
        """The next seed as a member of no parent on ``island`` (its id the state's next),
        or None once all were sent."""
        seed = self.next()
        if seed is None:
            return None
        self.state.next_id += 1
        return Member(self.state.next_id - 1, None, SEED, program_hash(parse(seed)), seed,
                      island=island)

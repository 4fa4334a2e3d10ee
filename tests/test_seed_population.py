"""``search.seed_population: RUN_DIR`` (issue #22): a search warm-started from an earlier run
trains that run's best distinct programs first, as parentless children, each once, across a
resume; a missing run is one line."""

import pytest

from optevo.search import run
from optevo.search.core.config import ConfigError
from optevo.search.core.distinct import iter_distinct
from optevo.search.core.rundir import RunDirError
from optevo.search.core.seeding import SEED


def _cfg(**search):
    return {"seed": 4, "task": {"name": "quadratic", "steps": 10, "seeds": 2},
            "search": {"population": 6, "tournament": 2, **search},
            "workers": {"count": 0, "batch": 2},
            "holdout": {"top_k": 1, "seeds": 2, "baselines": []},
            "progress": {"enabled": False}}


@pytest.fixture(scope="module")
def earlier(tmp_path_factory):
    return run(_cfg(max_evals=30), tmp_path_factory.mktemp("seed") / "a", quiet=True)


def test_the_earlier_runs_best_are_trained_first_once_across_a_resume(earlier, tmp_path):
    expected = [r.program for r in iter_distinct(earlier.records(), include_start=False)][:6]
    assert len(expected) >= 4
    b = tmp_path / "b"
    first = run(_cfg(max_evals=4, seed_population=str(earlier.path)), b, quiet=True)
    assert sum(r.mutation == SEED for r in first.records()) == 3  # the start, then 3 seeds
    r = run(_cfg(max_evals=20, seed_population=str(earlier.path)), b, resume=True, quiet=True)
    seeded = [rec for rec in r.records() if rec.mutation == SEED]
    assert [rec.program for rec in seeded] == expected  # in order, none twice, none lost
    assert all(rec.parent is None for rec in seeded)
    later = [rec for rec in r.records() if rec.id > max(x.id for x in seeded)]
    assert later and all(rec.mutation != SEED for rec in later)


def test_a_missing_run_is_one_line(tmp_path):
    with pytest.raises((ConfigError, RunDirError), match="nope: no such run directory"):
        run(_cfg(max_evals=2, seed_population=str(tmp_path / "nope")), tmp_path / "c",
            quiet=True)

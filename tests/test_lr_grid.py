"""``search.lr_grid``: a child is scored at its best of a few lr multipliers around the one it
inherits, and passes that multiplier on; a mutant that only rescales its lr constant gains
nothing from it."""

import json
import math

import numpy as np
import pytest

from optevo.dsl.errors import OptevoError
from optevo.search.core.config import config_from_dict
from optevo.search.core.jobs import Job, JobId, Result
from optevo.search.core.lr_grid import LrGrid
from optevo.search.core.population import CacheEntry, FitnessCache, Member
from optevo.search.core.rundir import Record
from optevo.search.core.scoring import Scorer


def test_config_takes_an_odd_grid_and_refuses_it_with_a_hurdle():
    assert config_from_dict({"search": {"lr_grid": 3}}).search.lr_grid == 3
    with pytest.raises(OptevoError, match="search.lr_grid.*odd"):
        config_from_dict({"search": {"lr_grid": 2}})
    with pytest.raises(OptevoError, match="search.lr_grid.*hurdle"):
        config_from_dict({"search": {"lr_grid": 3, "hurdle_seeds": 2}})


def test_best_point_is_the_lowest_mean_and_ties_go_to_the_centre():
    grid = LrGrid(3, 2.0)
    assert grid.points == (0.5, 1.0, 2.0) and LrGrid(1).points == ()
    res = Result(JobId.child(5), [3.0, 3.0, 1.0, 2.0, 1.0, 2.0], [False] * 6, [0, 1] * 3)
    best, factor = grid.best(res, Scorer())
    assert (best.losses, best.seeds, factor) == ([1.0, 2.0], [0, 1], 1.0)  # tie: centre wins
    res = Result(JobId.child(5), [1.0, 1.0, 2.0, 2.0, math.inf, 1.0], [False] * 4 + [True, False],
                 [0, 1] * 3)
    assert grid.best(res, Scorer())[1] == 0.5
    assert LrGrid.scales([1.0, 4.0], 2.0) == [2.0, 8.0] and LrGrid.scales(3.0, 1.0) == 3.0


def test_the_multiplier_survives_checkpoint_and_log():
    m = Member(3, 1, "insert", "h", "p", 0.5, 0.9, None, 4.0)
    assert Member.from_json(json.loads(json.dumps(m.to_json()))) == m
    assert "lr_mult" not in Member(3, 1, "insert", "h", "p").to_json()  # grid off: as before
    c = FitnessCache()
    c.put("h", CacheEntry(0.5, 0.9, 0.01, False, 3, lr_mult=0.25))
    c.put("g", CacheEntry(0.6, 1.0, 0.01, False, 4))
    back = FitnessCache.from_json(json.loads(json.dumps(c.to_json())))
    assert (back.get("h").lr_mult, back.get("g").lr_mult) == (0.25, 1.0)
    r = Record(3, 1, "insert", "h", "p", 0.5, 0.9, 0.01, False, False, lr_mult=8.0)
    assert Record.from_json(json.loads(json.dumps(r.to_json()))).lr_mult == 8.0
    assert "lr_mult" not in Record(3, 1, "m", "h", "p", 0.5, 0.9, 0.01, False, False).to_json()


def test_a_mutant_that_only_rescales_lr_gains_nothing_from_the_grid():
    """The tuned start, and mutants whose lr constant is 2x, 4x, 1/2x, 1/4x the start's,
    scored as a search with ``lr_grid: 3`` scores a child of the start (inherited multiplier
    1): each mutant's best point must not beat the start's best by more than two paired
    standard errors; and the 2x and 1/2x mutants' best points undo their rescaling (their
    effective multiplier is one the start's grid also holds)."""
    from optevo.dsl import parse
    from optevo.dsl.library import find_program
    from optevo.search.core.tuning import calibrate_start, run_jobs
    from optevo.search.core.workers import InProcessPool, eval_spec
    cfg = config_from_dict({"task": {"name": "text_lm", "steps": 60, "seeds": 4},
                            "workers": {"count": 0}, "search": {"lr_grid": 3}})
    pool = InProcessPool(eval_spec(cfg))
    cal = calibrate_start(pool, find_program("adam_style").text(), Scorer(), "adam_style",
                          ["text_lm"], JobId.child(0))
    start = parse(cal.program)
    li = next(i for i, s in enumerate(start.stmts) if s.target == "lr")
    grid = LrGrid(3, 2.0)
    factors = (0.25, 0.5, 2.0, 4.0)
    texts = [start.text()]
    for f in factors:
        stmts = list(start.stmts)
        args = list(stmts[li].args)
        args[1] = float(args[1]) * f
        stmts[li] = stmts[li].__class__(stmts[li].target, stmts[li].op, tuple(args))
        texts.append(start.replace(stmts=tuple(stmts)).text())
    jobs = [Job(JobId("mutant", k), t, None, cal.lr_scale, grid.points)
            for k, t in enumerate(texts)]
    res = run_jobs(pool, jobs)
    base, base_factor = grid.best(res[jobs[0].id], Scorer())
    for f, j in zip(factors, jobs[1:]):
        best, factor = grid.best(res[j.id], Scorer())
        d = np.array(best.losses) - np.array(base.losses)
        assert d.mean() >= -2 * d.std(ddof=1) / np.sqrt(d.size), f
        if f in (0.5, 2.0):
            assert f * factor in (0.5 * base_factor, base_factor, 2 * base_factor), f

"""``search.lr_grid``: a child is scored at its best of a few lr multipliers around the one it
inherits, and passes that multiplier on. (That a mutant which only rescales its lr constant
gains nothing from the grid is tested beside the plain case, in ``test_eval_tune.py``.)"""

import json
import math

import pytest

from optevo.dsl.errors import OptevoError
from optevo.search.core.config import config_from_dict
from optevo.search.core.jobs import JobId, Result
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
    best, factor, fit = grid.best(res, Scorer())
    assert (best.losses, best.seeds, factor) == ([1.0, 2.0], [0, 1], 1.0)  # tie: centre wins
    assert fit.value == 1.5
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


def test_the_held_out_re_check_tunes_a_child_around_its_own_multiplier():
    """A child scored at x2^-20 of the start's lr (its grid carried it there) is re-tuned
    around x2^-20: the re-check's line (2^-2..2^2, grown at most 4 points a side) around the
    start's multiplier could never reach it, and would judge a program it never tried."""
    from optevo.dsl.canon import program_hash
    from optevo.dsl.parse import parse
    from optevo.search.core.holdout import fresh_check
    from optevo.search.core.workers import EvalSpec, InProcessPool
    pool = InProcessPool(EvalSpec("quadratic", {}, 30, (0, 1), (8, 16)))
    text = "def train(w, g, m, v, lr):\n  t = g * lr\n  update = t * 1048576.0\n  return update, m, v\n"
    rec = Record(id=7, parent=0, mutation="scale_const", hash=program_hash(parse(text)),
                 program=text, loss=None, normalized=None, stderr=None, diverged=False,
                 cached=False, lr_mult=2.0 ** -20)
    row = next(r for r in fresh_check(pool, [rec], 2, 1.0) if r["id"] == 7)
    assert 2.0 ** -26 <= row["lr_scale"] <= 2.0 ** -14
    assert not row["diverged"] and row["holdout"] < 1e3

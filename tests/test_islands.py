"""Islands (issue #21): ``search.islands: K`` splits the population into K islands of P // K;
a parent is drawn on one island (they take turns) and its child joins that island; every
``migrate_every`` children each island's best (or a random member) joins the next island in
a ring; islands, migrations and the island of every child survive a checkpoint and resume."""

import math

import numpy as np
import pytest

from optevo.search import run
from optevo.search.core.config import ConfigError, config_from_dict
from optevo.search.core.population import Member, Population


def _m(i, loss, island=0):
    return Member(i, None, None, str(i), "", loss, loss, island=island)


def test_tournaments_stay_on_their_island_and_children_displace_its_oldest():
    pop = Population(8, [_m(i, 1.0 + i, i % 2) for i in range(8)], islands=2)
    rng = np.random.default_rng(0)
    assert {pop.tournament(rng, 4, 0).id for _ in range(20)} == {0}
    assert {pop.tournament(rng, 4, 1).id for _ in range(20)} == {1}
    old = pop.add(_m(9, 0.5, 1))
    assert old.id == 1 and len(pop) == 8
    assert sorted(m.id for m in pop.members if m.island == 0) == [0, 2, 4, 6]


def test_migration_is_a_ring_of_each_islands_best():
    pop = Population(6, [_m(0, 3.0, 0), _m(1, 1.0, 0), _m(2, 2.0, 0),
                         _m(3, 9.0, 1), _m(4, 8.0, 1), _m(5, math.inf, 1)], islands=2)
    assert pop.migrate(np.random.default_rng(0), "best") == 2
    on = {i: sorted(m.id for m in pop.members if m.island == i) for i in (0, 1)}
    assert on == {0: [1, 2, 4], 1: [1, 4, 5]}  # 1 went to island 1, 4 to island 0
    assert Population(4, [_m(0, 1.0)]).migrate(np.random.default_rng(0)) == 0  # one island


def test_config_checks_the_island_size():
    with pytest.raises(ConfigError, match="search.islands"):
        config_from_dict({"search": {"population": 6, "islands": 4, "tournament": 2}})
    with pytest.raises(ConfigError, match="island's size"):
        config_from_dict({"search": {"population": 8, "islands": 2, "tournament": 5}})
    assert config_from_dict({}).search.islands == 1


def _cfg(max_evals):
    return {"seed": 5, "task": {"name": "quadratic", "steps": 10, "seeds": 2},
            "search": {"population": 8, "tournament": 2, "max_evals": max_evals,
                       "islands": 2, "migrate_every": 4},
            "workers": {"count": 0, "batch": 2},
            "holdout": {"top_k": 1, "seeds": 2, "baselines": []},
            "progress": {"enabled": False}}


def test_a_search_on_islands_resumes_with_them(tmp_path):
    r = run(_cfg(12), tmp_path / "r", quiet=True)
    state = r.rundir.read_checkpoint()
    assert state["migrations"] >= 2 and state["migrate_every"] == 4
    assert {m.get("island", 0) for m in state["population"]} == {0, 1}
    r = run(_cfg(30), tmp_path / "r", resume=True, quiet=True)
    recs = r.records()
    by_id = {x.id: x for x in recs}
    assert len(by_id) == len(recs)  # none twice
    kids = [x for x in recs if x.parent is not None and x.parent in by_id]
    assert {x.island for x in kids} == {0, 1}
    # a child is on its parent's island, or its parent came there by migration
    same = sum(x.island == by_id[x.parent].island for x in kids)
    assert same >= len(kids) // 2
    assert r.rundir.read_checkpoint()["migrations"] > state["migrations"]

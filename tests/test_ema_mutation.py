"""The ``ema`` mutation (search/core/mutations.py): a running average of a function of g
into a free state slot, used by a value that feeds the update, inserted at once."""

import collections

import numpy as np
import pytest

from optevo.dsl import parse
from optevo.dsl.library import library_program, start_program
from optevo.dsl.liveness import live_state
from optevo.dsl.program import check
from optevo.search.core.config import load_config
from optevo.search.core.mutations import EMA_DECAYS, NoSite, default_weights, ema
from optevo.simplify.judges import normalization_kind


def _children(program, n=600, seed=0):
    rng, out = np.random.default_rng(seed), []
    for _ in range(n):
        try:
            out.append(ema(rng, program))
        except NoSite:
            pass
    return out


def test_every_child_is_valid_and_reads_the_new_average():
    kids = _children(library_program("momentum"))
    assert len(kids) > 300  # NoSite only where the free slot is assigned after the site
    for child in kids:
        check(child)
        assert "v" in live_state(child)  # the average reaches the update
        (avg,) = [s for s in child.stmts if s.target == "v"]
        assert avg.op == "interp" and avg.args[1] == "v" and avg.args[2] in EMA_DECAYS


def test_adams_normalization_is_one_draw_from_sgd_with_momentum():
    kinds = collections.Counter(normalization_kind(c) for c in
                                _children(library_program("momentum"), 400))
    assert kinds["adaptive"] >= 20, kinds  # about 1 in 12 (the choices: 3 x 4 x sites)
    assert kinds[""] > 0  # most draws are something else


def test_no_free_slot_is_no_site():
    with pytest.raises(NoSite):  # the AdamW start reads both m and v
        ema(np.random.default_rng(0), start_program())


def test_a_returned_slot_assigned_later_is_left_alone():
    p = parse("def train(w, g, m, v, lr):\n  m = interp(g, m, 0.9)\n  update = m * lr\n"
              "  v = square(g)\n  return update, m, v\n")
    for child in _children(p, 200):  # v is assigned after every site: only NoSite
        raise AssertionError(child.text())


def test_off_by_default_and_on_by_config(tmp_path):
    assert default_weights()["ema"] == 0.0
    f = tmp_path / "c.yaml"
    f.write_text("search: {start: momentum, mutations: {insert: 1.0, ema: 1.0}}\n")
    assert load_config(f).search.mutations["ema"] == 1.0

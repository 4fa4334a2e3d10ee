"""The ``decay`` mutation (search/core/mutations.py): a move along the program's weight-decay
axis, by the tuners' ratio, or switching a decay that calibration turned off back on."""

import collections

import numpy as np
import pytest

from optevo.dsl import parse
from optevo.dsl.decay import decay_sites
from optevo.dsl.library import library_program, start_program
from optevo.dsl.program import Stmt
from optevo.search.core.config import load_config
from optevo.search.core.mutations import DECAY_ON, NoSite, decay, default_weights


def _consts(program):
    return [program.stmts[i].args[j] for i, j in decay_sites(program)]


def _without_decay(program):
    """The text with every decay constant blanked: what the mutation must leave alone."""
    sites = set(decay_sites(program))
    return [(s.target, s.op, tuple("c" if (i, j) in sites else a for j, a in enumerate(s.args)))
            for i, s in enumerate(program.stmts)]


def test_a_decay_that_is_on_moves_by_powers_of_three_and_nothing_else_changes():
    start = start_program()  # the AdamW start: wd = w * 0.01
    rng, ratios = np.random.default_rng(0), collections.Counter()
    for _ in range(200):
        child = decay(rng, start)
        assert _without_decay(child) == _without_decay(start)
        (c,) = _consts(child)
        ratios[round(float(np.log(c / 0.01) / np.log(3.0)), 6)] += 1
    assert set(ratios) == {-2.0, -1.0, 1.0, 2.0}, ratios


def test_a_decay_switched_off_is_switched_on_at_one_positive_constant():
    off = parse("def train(w, g, m, v, lr):\n  m = interp(g, m, 0.9)\n  a = w * 0.0\n"
                "  b = sinh(w)\n  b = b * 0.0\n  update = m + a\n  update = update + b\n"
                "  update = update * lr\n  return update, m, v\n")
    assert len(decay_sites(off)) == 2 and _consts(off) == [0.0, 0.0]
    rng, seen = np.random.default_rng(1), []
    for _ in range(200):
        child = decay(rng, off)
        assert _without_decay(child) == _without_decay(off)
        a, b = _consts(child)
        assert a == b > 0  # every site the same constant, a decay
        seen.append(np.log10(a))
    lo, hi = DECAY_ON
    assert lo <= min(seen) < lo + 0.5 and hi - 0.5 < max(seen) <= hi  # the whole range


def test_the_sign_checks_calibrated_start_can_get_its_decay_back():
    # calibration on the sign task turns the AdamW start's decay off (factor 0): scale_const
    # cannot move a 0, the decay mutation can
    off = parse(start_program().text().replace("w * 0.01", "w * 0.0"))
    child = decay(np.random.default_rng(2), off)
    assert _consts(child)[0] > 0


def test_no_decay_site_is_no_site():
    with pytest.raises(NoSite):  # SGD with momentum has no decay term
        decay(np.random.default_rng(0), library_program("momentum"))


def test_off_by_default_and_on_by_config(tmp_path):
    assert default_weights()["decay"] == 0.0
    f = tmp_path / "c.yaml"
    f.write_text("search: {mutations: {insert: 1.0, decay: 1.0}}\n")
    assert load_config(f).search.mutations["decay"] == 1.0


def test_an_invalid_program_is_no_site_not_an_error():
    # mutate() only mutates valid parents; a test that chains edits may hand one over
    p = parse("def train(w, g, m, v, lr):\n  wd = w * 0.01\n  update = wd + lr\n"
              "  return update, m, v\n")
    bad = p.replace(stmts=list(p.stmts) + [Stmt("update", "add", ("update", "nope"))])
    with pytest.raises(NoSite):
        decay(np.random.default_rng(0), bad)

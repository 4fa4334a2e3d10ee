"""The guided simplification on unseen seeds (``optevo simplify --fresh N``, the planted
checks): a search's find, simplified on the seeds that selected it, keeps a term that fits
only them; on seeds no selection read, the same passes drop it.

The find is the Adam check's seed-1 program (``configs/examples/planted/fit_term_adam.py``:
a running mean of |g| normalizing ``g`` plus an odd term that matters only near |g| = 1..100),
on its own task (``configs/planted-adam.yaml``) at its held-out re-check's lr multiplier 0.5.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from optevo.dsl.parse import load
from optevo.proxy_tasks.seeds import (FRESH_BASE, META_BASE, SIMPLIFY_BASE, fresh_seeds,
                                     simplify_seeds)

ROOT = Path(__file__).resolve().parent.parent
FIND = ROOT / "configs/examples/planted/fit_term_adam.py"
LR = 0.5


def _evaluator(seeds=None):
    """An evaluator of the Adam check's task on ``seeds`` (default: its fitness seeds)."""
    from optevo.proxy_tasks import get_task
    from optevo.proxy_tasks.evaluate import Evaluator
    from optevo.search.core.config import load_config
    cfg = load_config(ROOT / "configs/planted-adam.yaml")
    return Evaluator(get_task(cfg.task.name, **cfg.task.options), steps=cfg.task.steps,
                     seeds=cfg.task.seeds if seeds is None else seeds), cfg


def _without_term(program):
    """The find with ``g + term`` replaced by ``g`` (as ``g * 1.0``: copies are no statements)."""
    from optevo.dsl.parse import parse
    text = program.text()
    assert "t7 = g + t6" in text
    return parse(text.replace("t7 = g + t6", "t7 = g * 1.0"))


def test_simplify_seeds_serve_no_other_role():
    fit, held, simp = set(range(64)), set(fresh_seeds(1000)), set(simplify_seeds(1000))
    assert not simp & fit and not simp & held and len(simp) == 1000
    assert min(simp) == SIMPLIFY_BASE > FRESH_BASE
    meta_top = META_BASE + 100_000 * 69 + 100_000  # L2L's meta seeds (l2l_train.py), seeds < 70
    assert meta_top <= SIMPLIFY_BASE


def test_the_term_fits_the_selecting_seeds_only_and_the_passes_on_unseen_ones_drop_it():
    """Removing the term costs more than the 1% tolerance on the fitness seeds 0..7 (the
    find is their 1% simplification: it kept the term) and gains on 16 unseen seeds; so the
    guided passes on the unseen ones drop it and leave Adam's normalization (the judge:
    adaptive; with the term, not scale-free) in fewer statements. The passes on the fitness
    seeds, which keep it, are left out: they take as long again."""
    from optevo.simplify import simplify_guided
    from optevo.simplify.judges import normalization_kind
    find = load(str(FIND))
    bare = _without_term(find)
    fit, cfg = _evaluator()
    unseen, _ = _evaluator(simplify_seeds(cfg.holdout.seeds))
    with_term, without = (s.loss for s in fit.evaluate([find, bare], lr_scales=LR))
    assert without > 1.01 * with_term, (with_term, without)
    with_term, without = (s.loss for s in unseen.evaluate([find, bare], lr_scales=LR))
    assert without < with_term, (with_term, without)
    elsewhere = simplify_guided(find, unseen, tolerance=0.01, lr_scale=LR)[0]
    assert normalization_kind(find, LR) == ""
    assert "arcsinh" not in elsewhere.text() and normalization_kind(elsewhere, LR) == "adaptive"
    assert len(elsewhere.stmts) < len(find.stmts)


def _cli_args(argv):
    from optevo.search.cli.simplify import add_parser
    ap = argparse.ArgumentParser(prog="optevo")
    add_parser(ap.add_subparsers(dest="command", required=True))
    return ap.parse_args(["simplify"] + argv)


def test_the_command_s_fresh_flag():
    from optevo.search.cli.simplify import evaluator_for
    from optevo.search.core.config import load_config
    cfg = load_config(ROOT / "configs/planted-adam.yaml").task
    ev = evaluator_for(_cli_args([str(FIND), "--fresh", "3"]), cfg)
    assert ev.seeds == simplify_seeds(3) and ev.task.name == cfg.name
    assert evaluator_for(_cli_args([str(FIND)]), cfg).seeds == list(range(cfg.seeds))
    from optevo.dsl.errors import OptevoError
    for argv in (["--fresh", "0"], ["--fresh", "2", "--seeds", "2"]):
        args = _cli_args([str(FIND), "--task", "diagonal_scales", "--lr-scale", "1"] + argv)
        with pytest.raises(OptevoError):
            args.fn(args)

"""``optevo eval --tune`` (tuned on both axes, reported on fresh seeds against tuned AdamW),
and that the search's start, tuned on both axes, cannot be beaten beyond noise by a mutant
that only rescales its learning-rate or decay constant (scored at the start's multiplier,
or at its best point of an lr grid, ``search.lr_grid``)."""

import contextlib
import io
import json

import numpy as np
import pytest

from optevo.search.cli import main


def _eval(*args):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["eval", *args])
    return code, out.getvalue()


def test_eval_tune_reports_fresh_seeds_paired_against_tuned_adamw():
    code, out = _eval("sgd", "adam_style", "--task", "quadratic", "--seeds", "2", "--steps",
                      "30", "--tune", "--fresh", "3", "--json")
    assert code == 0
    rows = {r["id"]: r for r in map(json.loads, out.splitlines())}
    assert set(rows) == {1, 2, "optax_adamw"}
    adamw, sgd, start = rows["optax_adamw"], rows[1], rows[2]
    assert sgd["name"] == "sgd" and start["name"] == "adam_style"
    assert sgd["decay_added"] is True and start["decay_added"] is False  # sgd has no decay
    for r in rows.values():  # both axes tuned, on fresh seeds
        assert r["weight_decay_factor"] is not None and r["lr_scale"] > 0
        assert r["holdout_seeds"] == [1_000_000, 1_000_001, 1_000_002]
    d = np.array(sgd["holdout_losses"]) - np.array(adamw["holdout_losses"])
    assert sgd["diff_adamw"] == pytest.approx(d.mean())
    assert sgd["diff_adamw_stderr"] == pytest.approx(d.std(ddof=1) / np.sqrt(3))


def test_eval_tune_prints_the_table_and_refuses_the_reference_engine(capsys):
    code, out = _eval("sgd", "--task", "quadratic", "--seeds", "2", "--steps", "30",
                      "--tune", "--fresh", "2")
    assert code == 0 and "optax AdamW (tuned)" in out
    row, = [x.split(" | ") for x in out.splitlines() if x.startswith("| ") and "| sgd |" in x]
    assert row[4] == "off" or row[4].endswith("(added)")  # sgd has no decay of its own
    assert main(["eval", "sgd", "--task", "quadratic", "--tune", "--engine", "jit"]) == 2
    assert "--tune trains with the fast engine" in capsys.readouterr().err


def test_a_mutant_that_only_rescales_lr_or_decay_does_not_beat_the_tuned_start(tmp_path):
    """The start is tuned on both axes before the search; a child that only multiplies its
    lr constant or its decay constant (what ``scale_const`` does) is trained at the same
    multiplier (``tuning.calibrate_start``, as a search calls it). It must not beat the tuned
    start by more than two standard errors of the paired per-seed difference. (On this task,
    with the decay untuned, 27x the decay constant beat the start by 0.006, about 8 paired
    SE; with one coordinate pass, 3x the lr constant beat it by 0.09, 5 SE.)"""
    from optevo.dsl import parse
    from optevo.dsl.decay import decay_sites
    from optevo.dsl.library import find_program
    from optevo.search.core.config import config_from_dict
    from optevo.search.core.jobs import Job, JobId
    from optevo.search.core.scoring import Scorer
    from optevo.search.core.tuning import calibrate_start, run_jobs
    from optevo.search.core.workers import InProcessPool, eval_spec
    cfg = config_from_dict({"task": {"name": "text_lm", "steps": 60, "seeds": 4},
                            "workers": {"count": 0}})
    pool = InProcessPool(eval_spec(cfg))  # what a search's calibration does, on its pool
    cal = calibrate_start(pool, find_program("adam_style").text(), Scorer(), "adam_style",
                          ["text_lm"], JobId.child(0))
    start = parse(cal.program)
    (di, da), = decay_sites(start)
    li = next(i for i, s in enumerate(start.stmts) if s.target == "lr")  # lr = lr * 0.001
    mutants = [_rescaled(start, i, a, f) for (i, a) in ((li, 1), (di, da))
               for f in (2 ** -1.5, 2 ** -0.5, 2 ** 0.5, 2 ** 1.5, 1 / 9, 1 / 3, 3.0, 9.0, 27.0)]
    jobs = [Job(JobId("mutant", k), text, None, cal.lr_scale)
            for k, text in enumerate([start.text()] + mutants)]
    res = run_jobs(pool, jobs)
    base = res[jobs[0].id]
    assert base.losses == cal.result.losses
    for j, text in zip(jobs[1:], mutants):
        d = np.array(res[j.id].losses) - np.array(base.losses)
        assert d.mean() >= -2 * d.std(ddof=1) / np.sqrt(d.size), text
    _rescaled_lr_gains_nothing_from_the_grid(pool, cal, start, li)


def _rescaled(start, i, a, f) -> str:
    """``start`` with argument ``a`` of statement ``i`` (a constant) multiplied by ``f``."""
    stmts = list(start.stmts)
    args = list(stmts[i].args)
    args[a] = float(args[a]) * f
    stmts[i] = stmts[i].__class__(stmts[i].target, stmts[i].op, tuple(args))
    return start.replace(stmts=tuple(stmts)).text()


def _rescaled_lr_gains_nothing_from_the_grid(pool, cal, start, li):
    """Under ``search.lr_grid: 3`` (``lr_grid.LrGrid``), as a child of the start is scored:
    mutants whose lr constant is 2x or 1/2x the start's must not beat the start's best grid
    point by more than two paired SE, and their best point undoes the rescaling (their
    effective multiplier is one the start's own grid holds)."""
    from optevo.search.core.jobs import Job, JobId
    from optevo.search.core.lr_grid import LrGrid
    from optevo.search.core.scoring import Scorer
    from optevo.search.core.tuning import run_jobs
    grid, factors = LrGrid(3, 2.0), (0.5, 2.0)
    texts = [start.text()] + [_rescaled(start, li, 1, f) for f in factors]
    jobs = [Job(JobId("grid", k), t, None, cal.lr_scale, grid.points)
            for k, t in enumerate(texts)]
    res = run_jobs(pool, jobs)
    base, base_factor, _ = grid.best(res[jobs[0].id], Scorer())
    for f, j in zip(factors, jobs[1:]):
        best, factor, _ = grid.best(res[j.id], Scorer())
        d = np.array(best.losses) - np.array(base.losses)
        assert d.mean() >= -2 * d.std(ddof=1) / np.sqrt(d.size), f
        assert f * factor in (0.5 * base_factor, base_factor, 2 * base_factor), f


def test_eval_tune_names_baseline_spec_lines_by_their_kind():
    code, out = _eval("--task", "quadratic", "--seeds", "2", "--steps", "10", "--tune",
                      "--fresh", "2", "--json", "--baseline", "optax:lion b1=0.95",
                      "--baseline", "lion")
    assert code == 0
    rows = {r["id"]: r for r in map(json.loads, out.splitlines())}
    assert set(rows) == {"optax_adamw", "optax_lion", "optax_lion_2"}
    assert " b1=0.95 " in rows["optax_lion"]["program"]

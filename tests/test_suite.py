"""Multi-task fitness: ``task:`` lists several tasks with weights; the fitness is the weighted
geometric mean of the tasks' loss ratios to the calibrated start; a child that diverges on
any task gets the worst fitness; each task's lr input is calibrated on its own."""

import io
import contextlib
import math

import numpy as np
import pytest

from optevo.search import run
from optevo.search.core.config import config_from_dict
from optevo.search.core.jobs import Job, JobId, Result
from optevo.search.core.scoring import Scorer
from optevo.search.core.workers import InProcessPool, SuiteSpec, eval_spec

SUITE = {
    "seed": 4,
    "task": [{"name": "digits_mlp", "steps": 40, "seeds": 2, "weight": 2.0,
              "options": {"hidden": 8, "batch_size": 16}},
             {"name": "quadratic", "steps": 40, "seeds": 2, "weight": 1.0,
              "options": {"dim": 8}}],
    "search": {"population": 8, "tournament": 3, "max_evals": 12, "max_length": 16},
    "workers": {"count": 0, "batch": 3},
    "holdout": {"top_k": 1, "seeds": 2, "baselines": []},  # (their re-check: test_api)
    "progress": {"enabled": False},
}


def _result(*tasks):
    parts = [Result(JobId.child(0), list(l), list(d), list(range(len(l)))) for l, d in tasks]
    return Result.of_parts(parts[0], parts)


def test_scorer_is_the_weighted_geometric_mean_of_ratios_and_diverging_anywhere_is_worst():
    s = Scorer([2.0, 1.0], [0.5, 4.0])
    fit = s(_result(([0.25, 0.25], [False, False]), ([8.0, 8.0], [False, False])))
    assert fit.value == pytest.approx(math.exp((2 * math.log(0.5) + math.log(2.0)) / 3))
    assert fit.task_means == [0.25, 8.0] and not fit.diverged
    bad = s(_result(([0.01, 0.01], [False, False]), ([1.0, 1.0], [False, True])))
    assert bad.value == math.inf and bad.diverged
    d = s.per_seed(_result(([0.25, 0.5], [False] * 2), ([8.0, 8.0], [False] * 2)),
                   _result(([0.5, 0.5], [False] * 2), ([8.0, 4.0], [False] * 2)))
    np.testing.assert_allclose(d, [2 * math.log(0.5) / 3, math.log(2.0) / 3])
    with pytest.raises(ValueError):
        Scorer([1.0, 1.0])(_result(([1.0], [False]), ([1.0], [False])))  # needs baselines


def test_workers_hold_an_engine_per_task():
    cfg = config_from_dict(SUITE)
    spec = eval_spec(cfg)
    assert isinstance(spec, SuiteSpec) and [t.task for t in spec.tasks] == ["digits_mlp",
                                                                          "quadratic"]
    pool = InProcessPool(spec)
    assert len(pool.evaluation.parts) == 2
    pool.submit([Job(JobId.child(7), "def train(w, g, m, v, lr):\n  update = g * lr\n"
                                        "  return update, m, v\n", None, [0.5, 0.01])])
    res, = pool.poll()
    assert [len(t.losses) for t in res.tasks] == [2, 2] and len(res.losses) == 4


@pytest.fixture(scope="module")
def suite_run(tmp_path_factory):
    with contextlib.redirect_stdout(io.StringIO()):
        return run(SUITE, tmp_path_factory.mktemp("suite") / "run")


def test_a_suite_search_calibrates_each_task_and_scores_by_the_suite(suite_run):
    state = suite_run.rundir.read_checkpoint()
    assert len(state["lr_scale"]) == 2 and len(state["task_baselines"]) == 2
    for line, scale in zip(state["calibration"], state["lr_scale"]):
        assert line["best"] == scale
    # one decay factor for the suite (the constant is in the text), scored relative to the
    # lr-tuned start of the last pass, which ran at the chosen decay: it scores exactly 1
    decay = state["decay"]
    dpoints = dict((k, v) for k, v in decay["line"]["points"])
    assert decay["converged"] and dpoints[decay["factor"]] == pytest.approx(1.0)
    assert min(dpoints.values()) == pytest.approx(1.0)
    records = suite_run.records()
    start = records[0]
    assert start.loss == start.normalized == 1.0 and start.task_losses == \
        pytest.approx(state["task_baselines"])
    w, b = [2.0, 1.0], state["task_baselines"]
    trained = [r for r in records[1:] if not r.cached and r.loss is not None]
    assert trained
    for r in trained:
        expect = math.exp(sum(wi * math.log(l / bi) for wi, l, bi in zip(w, r.task_losses, b))
                          / sum(w))
        assert r.loss == pytest.approx(expect) and r.normalized == pytest.approx(r.loss)


def test_the_held_out_check_of_a_suite_compares_with_tuned_adamw(suite_run):
    rows = {r["id"]: r for r in suite_run.holdout()}
    assert 0 in rows and "optax_adamw" in rows
    adamw = rows["optax_adamw"]
    assert len(adamw["lr_scale"]) == 2 and len(adamw["holdout_task_losses"]) == 2
    start = rows[0]
    if not start["diverged"] and not adamw["diverged"]:
        assert start["diff_adamw"] is not None and start["diff"] == 0.0

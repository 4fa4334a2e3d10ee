"""The Python API (``from optevo.search import run, load_run``) and what a finished run
holds: the calibrated start, tuned baselines in the held-out re-check, numeric summary."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from optevo.dsl import parse
from optevo.dsl.decay import decay_sites

from optevo.search import load_run, run
from optevo.search.core.rundir import RunDirError

TINY = {
    "seed": 2,
    "task": {"name": "digits_mlp", "steps": 40, "seeds": 2,
             "options": {"hidden": 8, "batch_size": 16}},
    "search": {"population": 8, "tournament": 3, "max_evals": 16, "max_length": 16},
    "workers": {"count": 0, "batch": 3},
    "holdout": {"top_k": 2, "seeds": 3},
    "progress": {"enabled": False},
}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    return run(TINY, tmp_path_factory.mktemp("api") / "run")


def test_run_returns_a_run_with_best_programs_holdout_and_rows(finished):
    r = load_run(finished.path)
    rows = r.rows()
    assert len(rows) >= 16 and {"id", "parent", "loss", "normalized", "cached"} <= set(rows[0])
    best = r.best(2)
    assert len(best) == 2 and best[0]["loss"] <= best[1]["loss"]
    assert all("def train" in b["program"] for b in best)
    held = {h["id"]: h for h in r.holdout()}
    assert 0 in held and "optax_adamw" in held  # the tuned start and tuned optax AdamW
    assert r.config.task.name == "digits_mlp"


def test_the_start_is_calibrated_and_is_the_one_of_normalized(finished):
    state = finished.rundir.read_checkpoint()
    points = dict((k, v) for k, v in state["calibration"]["points"])
    best = min(points, key=lambda k: (points[k], k))
    assert state["lr_scale"] == best and len(points) >= 13  # 2^-4 .. 2^8 at least
    start = finished.records()[0]
    assert start.id == 0 and start.normalized == 1.0 and state["baseline"] == start.loss
    # then its weight decay at that multiplier, in passes until the decay stays: the last lr
    # line ran at the chosen decay, so the decay line's point there is the lr line's best
    decay = state["decay"]
    dpoints = dict((k, v) for k, v in decay["line"]["points"])
    assert decay["converged"] and 0.0 in dpoints  # off is tried
    assert dpoints[decay["factor"]] == pytest.approx(points[best])
    assert start.loss == pytest.approx(min(dpoints.values())) == pytest.approx(points[best])
    program = parse(start.program)
    (i, a), = decay_sites(program)
    assert program.stmts[i].args[a] == pytest.approx(0.01 * decay["factor"])


def test_summary_holds_numbers_against_both_tuned_baselines(finished):
    s = json.loads((finished.path / "summary.json").read_text())
    for key in ("holdout_best_id", "holdout_best_loss", "tuned_start_holdout_loss",
                "tuned_adamw_holdout_loss", "holdout_best_diff_vs_tuned_adamw",
                "holdout_best_diff_vs_tuned_adamw_stderr", "trained", "cache_hits", "elapsed_seconds"):
        assert isinstance(s[key], (int, float)) and not isinstance(s[key], bool), key
    held = {h["id"]: h for h in s["holdout"]}
    best, adamw = held[s["holdout_best_id"]], held["optax_adamw"]
    diffs = np.array(best["holdout_losses"]) - np.array(adamw["holdout_losses"])
    assert s["holdout_best_diff_vs_tuned_adamw"] == pytest.approx(diffs.mean())
    assert s["trained"] == 16
    report = (finished.path / "report.md").read_text()
    assert "diff vs tuned AdamW" in report and "optax AdamW (tuned)" in report
    # the hypergradient Adam and the learned LSTM optimizer are baselines too (issue #12)
    for b in ("optax_hyper_adam", "optax_l2l"):
        assert held[b]["program"].startswith("optax:" + b[len("optax_"):])
        assert held[b]["diff_adamw"] is not None and b in s["baseline_holdout_losses"]
        mean, se = s["holdout_best_diff_vs_baselines"][b]
        d = np.array(best["holdout_losses"]) - np.array(held[b]["holdout_losses"])
        assert mean == pytest.approx(d.mean()) and se > 0
    assert "hyper_adam (baseline, tuned)" in report and "l2l (baseline" in report


def test_to_optax_trains(finished):
    r = load_run(finished.path)
    opt = r.to_optax(r.best(1)[0]["id"], learning_rate=1.0)
    params = {"w": jnp.ones(3)}
    state = opt.init(params)
    updates, state = opt.update({"w": jnp.full(3, 0.5)}, state, params)
    new = optax.apply_updates(params, updates)
    assert jax.tree.leaves(new)[0].shape == (3,) and bool(jnp.all(jnp.isfinite(new["w"])))


def test_load_run_of_a_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(RunDirError, match="no such run directory"):
        load_run(tmp_path / "nope")

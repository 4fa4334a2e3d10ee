"""The Python API (``from optevo.search import run, load_run``) and what a finished run
holds: the calibrated start, tuned baselines in the held-out re-check, numeric summary;
and the tuning a program carries out of its run (export, eval, ``Run.to_optax``)."""

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
import pathlib
import sys

from optevo.dsl.codegen import exported_defaults, module_function, to_module_source
from optevo.dsl.export import to_optax
from optevo.dsl.hyper import lr_unit, named_hyperparameters
from optevo.dsl.library import library_program
from optevo.search.cli import main
from optevo.search.core.tuned import load_tuned

sys.path.insert(0, str(pathlib.Path(__file__).parent.parent / "scripts" / "experiments"))
import export_reproduces  # noqa: E402

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
    opt = r.to_optax(r.best(1)[0]["id"], learning_rate=1e-3)
    params = {"w": jnp.ones(3)}
    state = opt.init(params)
    updates, state = opt.update({"w": jnp.full(3, 0.5)}, state, params)
    new = optax.apply_updates(params, updates)
    assert jax.tree.leaves(new)[0].shape == (3,) and bool(jnp.all(jnp.isfinite(new["w"])))


def test_load_run_of_a_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(RunDirError, match="no such run directory"):
        load_run(tmp_path / "nope")


# --- a program keeps its tuning wherever it goes (issue #22): RUN_DIR:ID carries the run's lr
# multiplier, decay and schedule into export, eval and Run.to_optax; the exported learning_rate
# is in optax's units, constants are named hyperparameters inject_hyperparams sets, and a
# program that never reads lr says so. The end-to-end check: an exported program called with
# no argument in a plain optax loop (scripts/experiments/export_reproduces.py) reproduces the
# run's held-out loss on the same seeds.

def _rechecked(finished):
    """The held-out row of a re-checked program other than the start (else the start)."""
    rows = [h for h in finished.holdout() if isinstance(h["id"], int)]
    return next((h for h in rows if h["id"] != 0), rows[0])


def test_a_rechecked_program_carries_the_rechecks_tuning(finished):
    row = _rechecked(finished)
    t = load_tuned(f"{finished.path}:{row['id']}")
    assert t.by == "the held-out re-check" and t.task == "digits_mlp"
    assert t.lr_multiplier == row["lr_scale"] and t.decay_factor == row["weight_decay_factor"]
    assert t.schedule is not None and t.schedule.steps == 40  # the run's steps, not the task's
    assert "cosine" in t.schedule.text
    # a file or library name carries nothing
    plain = load_tuned("lion")
    assert plain.lr_multiplier == 1.0 and not plain.from_run and plain.schedule is None


def _start(finished):
    """The start's held-out row: it reads lr, and its re-tuned multiplier is not 1."""
    row = next(h for h in finished.holdout() if h["id"] == 0)
    assert row["lr_scale"] != 1.0
    return row


def test_exported_defaults_reproduce_the_held_out_loss(finished):
    """No argument to the exported function: the plain loop reproduces the run's held-out
    losses seed by seed (float rounding aside) and their mean within 1 SE."""
    row = _start(finished)
    ours, got_row, task, steps = export_reproduces.reproduce(f"{finished.path}:{row['id']}")
    assert got_row["id"] == row["id"] and steps == 40 and task == "digits_mlp"
    np.testing.assert_allclose(ours, row["holdout_losses"], rtol=2e-3)
    assert abs(np.mean(ours) - row["holdout"]) <= row["holdout_stderr"]


def test_exported_at_learning_rate_one_does_not_reproduce(finished):
    """The check above could fail: the old export (learning rate 1, constant) trains
    otherwise."""
    row = _start(finished)
    t = load_tuned(f"{finished.path}:{row['id']}")
    fn = module_function(to_module_source(t.program))  # as written: no run tuning
    cfg = finished.config.tasks[0]
    from optevo.proxy_tasks import get_task
    task = get_task(cfg.name, **cfg.options)
    untuned = [export_reproduces.train_plain(task, 40, fn(), s) for s in row["holdout_seeds"]]
    assert abs(np.mean(untuned) - row["holdout"]) > 2 * row["holdout_stderr"]


def test_eval_of_run_dir_id_uses_the_tuned_multiplier(finished, capsys):
    row = _rechecked(finished)
    ref = f"{finished.path}:{row['id']}"
    assert main(["eval", ref, "--task", "digits_mlp", "--json"]) == 0
    got = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert got["lr_scale"] == row["lr_scale"]
    assert main(["eval", ref, "--task", "digits_mlp", "--json", "--lr-scale", "1"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["lr_scale"] == 1.0
    assert main(["eval", ref, "--task", "digits_mlp"]) == 0
    out = capsys.readouterr().out
    assert "tuned by the held-out re-check" in out and "vs start" in out and "not tuned" in out


def test_run_to_optax_is_the_exported_module_with_tuned_defaults(finished):
    row = _rechecked(finished)
    opt = finished.to_optax(row["id"])
    t = finished.tuned(row["id"])
    d = exported_defaults(t.program, t.tuning())
    assert d["learning_rate"] == pytest.approx(row["lr_scale"] * lr_unit(t.program)[0]) or \
        lr_unit(t.program)[1] is None
    params = {"w": jnp.ones((3, 2))}
    state = opt.init(params)
    assert set(state._fields) == {"count"} | set(named_live(t.program))
    upd, _ = opt.update({"w": jnp.full((3, 2), 0.5)}, state, params)
    assert bool(jnp.all(jnp.isfinite(upd["w"])))


def named_live(program):
    from optevo.dsl.liveness import live_state
    return live_state(program)


def test_library_exports_take_optax_units_and_names():
    lion = exported_defaults(library_program("lion"))
    assert lion == {"learning_rate": 1e-4, "b1": 0.9, "b2": 0.99, "weight_decay": 0.01}
    adamw = exported_defaults(library_program("adamw"))
    assert adamw == {"learning_rate": 1e-3, "b1": 0.9, "b2": 0.999, "weight_decay": 1e-4}
    # the exported Lion with optax's habitual arguments is optax's Lion
    fn = module_function(to_module_source(library_program("lion")))
    params = {"w": jnp.linspace(-1.0, 1.0, 6)}
    g = {"w": jnp.linspace(0.3, -0.2, 6)}
    ours, theirs = fn(1e-4), optax.lion(1e-4, b1=0.9, b2=0.99, weight_decay=0.01)
    a, _ = ours.update(g, ours.init(params), params)
    b, _ = theirs.update(g, theirs.init(params), params)
    np.testing.assert_allclose(a["w"], b["w"], rtol=1e-6)


def test_inject_hyperparams_sets_every_named_hyperparameter():
    fn = module_function(to_module_source(library_program("adamw")))
    params = {"w": jnp.linspace(-1.0, 1.0, 5)}
    g = {"w": jnp.linspace(0.5, -0.3, 5)}
    inj = optax.inject_hyperparams(fn)(learning_rate=1e-3, b1=0.9, b2=0.999, weight_decay=1e-4)
    state = inj.init(params)
    a, state = inj.update(g, state, params)
    b, _ = fn().update(g, fn().init(params), params)
    np.testing.assert_allclose(a["w"], b["w"], rtol=1e-5)
    # changing b1 in the injected state changes the step as fn(b1=0.5) does
    state = inj.init(params)
    state.hyperparams["b1"] = jnp.asarray(0.5)
    c, _ = inj.update(g, state, params)
    d, _ = fn(b1=0.5).update(g, fn(b1=0.5).init(params), params)
    np.testing.assert_allclose(c["w"], d["w"], rtol=1e-5)
    assert not np.allclose(c["w"], a["w"])


@pytest.mark.parametrize("text,unit,reads", [
    ("  lr = lr * 0.001\n  update = g * lr\n", 0.001, True),
    ("  lr = 0.25 * lr\n  update = g * lr\n", 0.25, True),
    ("  a = lr * 0.5\n  b = lr * 0.5\n  update = g * a\n  update = update + b\n", 1.0, True),
    ("  lr = row_mean(lr)\n  lr = lr * 0.1\n  update = g * lr\n", 1.0, True),
    ("  a = lr * -0.5\n  update = g * a\n", 1.0, True),
    ("  update = g * 0.01\n", 1.0, False),
])
def test_lr_unit(text, unit, reads):
    program = parse("def train(w, g, m, v, lr):\n" + text + "  return update, m, v\n")
    hp = named_hyperparameters(program)
    assert (hp.unit, hp.reads_lr) == (unit, reads)


def test_a_program_that_never_reads_lr_is_flagged(tmp_path, capsys):
    src = tmp_path / "nolr.py"
    src.write_text("def train(w, g, m, v, lr):\n  update = g * 0.01\n  return update, m, v\n")
    assert main(["export", str(src), "-o", str(tmp_path / "out.py")]) == 0
    assert "WARNING" in capsys.readouterr().err
    assert "never reads its lr input" in (tmp_path / "out.py").read_text()


def test_several_decay_sites_share_one_weight_decay_factor():
    program = parse("def train(w, g, m, v, lr):\n  a = w * 0.01\n  b = sinh(w)\n"
                    "  b = b * 0.002\n  update = g + a\n  update = update + b\n"
                    "  lr = lr * 0.1\n  update = update * lr\n  return update, m, v\n")
    hp = named_hyperparameters(program)
    wd = next(h for h in hp.named if h.name == "weight_decay")
    assert wd.value == 1.0 and len(wd.sites) == 2
    fn = module_function(to_module_source(program))
    params = {"w": jnp.linspace(-1.0, 1.0, 4)}
    g = {"w": jnp.zeros(4)}
    off, _ = fn(weight_decay=0.0).update(g, fn().init(params), params)
    on, _ = fn().update(g, fn().init(params), params)
    assert bool(jnp.all(off["w"] == 0)) and not bool(jnp.all(on["w"] == 0))


def test_reference_to_optax_stores_live_slots_only():
    opt = to_optax(library_program("lion"), 1.0)
    state = opt.init({"w": jnp.ones(3)})
    assert state.v == () and jax.tree.structure(state.m) == jax.tree.structure({"w": 0})
    upd, state = opt.update({"w": jnp.ones(3)}, state, {"w": jnp.ones(3)})
    assert state.v == () and bool(jnp.all(jnp.isfinite(upd["w"])))


def test_quiet_run_prints_nothing_and_calls_progress(tmp_path, capsys):
    seen = []
    cfg = {"seed": 0, "task": {"name": "quadratic", "steps": 10, "seeds": 2},
           "search": {"population": 4, "tournament": 2, "max_evals": 6},
           "workers": {"count": 0, "batch": 2}, "holdout": {"top_k": 1, "seeds": 2}}
    r = run(cfg, tmp_path / "q", quiet=True, progress=seen.append)
    cap = capsys.readouterr()
    assert cap.out == "" and cap.err == ""
    assert seen and seen[-1]["trained"] >= 6 and "best" in seen[-1]
    assert (r.path / "report.md").exists()


def test_dataframe_and_front(finished):
    df = finished.dataframe()
    assert len(df) == len(finished.rows()) and df.index.name == "id"
    assert {"loss", "parent", "mutation"} <= set(df.columns)
    front = finished.front()
    lengths = [f["simplified_statements"] for f in front]
    losses = [f["loss"] for f in front]
    assert lengths == sorted(set(lengths)) and losses == sorted(losses, reverse=True)
    best = finished.best(200)
    for f in front:  # nothing shorter is better
        assert all(b["loss"] >= f["loss"] for b in best
                   if b["simplified_statements"] <= f["simplified_statements"])

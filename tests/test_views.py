"""Inspecting a run directory: show, lineage, plot, diff, and export from RUN_DIR:ID.

The run directory is written by hand (a few evaluation records, a config and a held-out
file), so nothing is trained here."""

import argparse
import io
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from optevo.dsl import parse, update_fn
from optevo.dsl.canon import program_hash
from optevo.dsl.library import library_program
from optevo.search.cli import UsageError, show
from optevo.search.cli import export as export_cmd
from optevo.search.core import plot, views
from optevo.search.core.rundir import RunDirError

START = library_program("adam_style").text()
FASTER = START.replace("lr * 0.001", "lr * 0.002")
DEAD = FASTER.replace("  wd = w * 0.01\n", "  wd = w * 0.01\n  junk = g * 3.0\n")
SIGN = FASTER.replace("  update = update * lr\n", "  update = sign(update)\n"
                      "  update = update * lr\n")
BAD = FASTER.replace("interp(g, m, 0.9)", "interp(g, m, 1.9)")


def _assert_same_updates(a, b, steps=2):
    w = {"x": jax.random.normal(jax.random.PRNGKey(0), (3, 4)), "y": jnp.ones(5)}
    fa, fb = update_fn(a), update_fn(b)
    sa = sb = (jax.tree.map(jnp.zeros_like, w),) * 2
    for step in range(steps):
        g = jax.tree.map(lambda x: jnp.sin(x * (step + 2.0)), w)
        ua, *sa = fa(w, g, *sa, 0.5)
        ub, *sb = fb(w, g, *sb, 0.5)
        for x, y in zip(jax.tree.leaves(ua), jax.tree.leaves(ub)):
            np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-5, atol=1e-9)


def _rec(i, parent, mutation, text, loss, cached=False):
    return {"id": i, "parent": parent, "mutation": mutation,
            "hash": program_hash(parse(text)), "program": text, "loss": loss,
            "normalized": None if loss is None else loss / 2.0,
            "stderr": None if loss is None else 0.01, "diverged": loss is None,
            "cached": cached, "worker": "w0", "seconds": 0.1, "time": float(i)}


@pytest.fixture
def run(tmp_path):
    d = tmp_path / "run"
    d.mkdir()
    records = [_rec(0, None, None, START, 2.0),
               _rec(1, 0, "scale_const", FASTER, 1.5),
               _rec(2, 1, "scale_const", BAD, None),
               _rec(3, 1, "insert", DEAD, 1.5, cached=True),  # same hash as 1
               _rec(4, 3, "insert", SIGN, 1.2)]
    (d / "evaluations.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (d / "config.yaml").write_text("search:\n  population: 2\n  tournament: 2\n")
    (d / "holdout.jsonl").write_text(json.dumps(
        {"id": 4, "hash": records[4]["hash"], "holdout": 1.25, "holdout_stderr": 0.02,
         "diff": -0.7, "diff_stderr": 0.03}) + "\n")
    return d


def test_show_ranks_distinct_programs_with_counts_and_holdout(run):
    rows = views.best_programs(run, top=5)
    assert [r["id"] for r in rows] == [4, 1, 0]  # distinct hashes, by loss; 2 diverged
    assert [r["count"] for r in rows] == [1, 2, 1]  # 3 shared 1's hash (cached)
    assert rows[0]["holdout"] == 1.25 and rows[0]["diff"] == -0.7
    assert rows[1]["holdout"] is None
    for r in rows:  # simplification does not change what a program computes
        _assert_same_updates(parse(r["original"]), parse(r["program"]))
    out = io.StringIO()
    views.show_run(run, top=2, as_json=False, file=out)
    text = out.getvalue()
    assert "id 4" in text and "held-out 1.2500" in text and "x2" in text
    assert "id 0" not in text  # only the top 2
    out = io.StringIO()
    views.show_run(run, top=1, as_json=True, file=out)
    (row,) = [json.loads(x) for x in out.getvalue().splitlines()]
    assert row["id"] == 4 and row["normalized"] == 0.6 and "def train" in row["program"]


def test_lineage_goes_back_to_the_start(run):
    assert [r["id"] for r in views.lineage_rows(run, 4)] == [0, 1, 3, 4]
    out = io.StringIO()
    views.lineage(run, "4", file=out)
    text = out.getvalue()
    assert "start" in text and "scale_const of 0" in text and "insert of 3" in text
    assert "(cached)" in text
    assert "lr = lr * 0.001  ->  lr = lr * 0.002" in text
    assert "+ update = sign(update)" in text
    out = io.StringIO()
    views.lineage(run, 1, programs=True, file=out)
    assert out.getvalue().count("def train") == 2


@pytest.mark.parametrize("ident, msg", [(99, "no evaluation with id 99"),
                                        ("x", "not an evaluation id")])
def test_lineage_bad_id(run, ident, msg):
    with pytest.raises(RunDirError, match=msg):
        views.lineage_rows(run, ident)


def test_bad_run_dir(tmp_path):
    with pytest.raises(RunDirError, match="no such run directory"):
        views.show_run(tmp_path / "nope")
    with pytest.raises(RunDirError, match="not a run directory"):
        views.lineage_rows(tmp_path, 0)
    (tmp_path / "evaluations.jsonl").write_text("")
    with pytest.raises(RunDirError, match="no evaluations"):
        plot.plot_progress(tmp_path)


def test_plot_writes_a_png(run):
    s = plot.progress_series(run)
    assert s["population"] == 2
    assert s["best"] == [1.0, 0.75, 0.75, 0.75, 0.6]
    assert s["median"][:3] == [1.0, 0.875, float("inf")]  # diverged counts as worst
    out = plot.plot_progress(run)
    assert out == run / "progress.png"
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_diff_aligns_statements(run, tmp_path):
    a, la = views.load_ref(f"{run}:0")
    b, lb = views.load_ref(f"{run}:4")
    text = views.diff_text(a, b, la, lb)
    lines = text.splitlines()
    assert lines[0].startswith(f"{run}:0") and lines[0].rstrip().endswith(f"{run}:4")
    assert any("lr * 0.001" in x and " | " in x and "lr * 0.002" in x for x in lines)
    assert any(x.rstrip().endswith("update = sign(update)") and " > " in x for x in lines)
    assert text.rstrip().endswith("(2 lines differ)")
    with pytest.raises(RunDirError, match="no such program file"):
        views.load_ref(str(tmp_path / "missing.py"))


def _cli(argv):
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="command", required=True)
    show.add_parser(sub)
    export_cmd.add_parser(sub)
    args = ap.parse_args(argv)
    return args.fn(args)


def test_subcommands_and_export_from_run(run, tmp_path, capsys):
    assert _cli(["diff", f"{run}:1", f"{run}:3"]) == 0
    assert "junk = g * 3.0" in capsys.readouterr().out
    assert _cli(["plot", str(run), "-o", str(tmp_path / "p.png")]) == 0
    assert (tmp_path / "p.png").exists()
    assert _cli(["lineage", str(run), "2"]) == 0
    assert "diverged" in capsys.readouterr().out
    out = tmp_path / "opt.py"
    assert _cli(["export", f"{run}:4", "--format", "optax", "-o", str(out)]) == 0
    source = out.read_text()
    # the run's tuning travels: its task's cosine schedule is the default learning rate
    assert "def discovered(learning_rate=None" in source and "import optevo" not in source
    assert "def tuned_schedule(" in source and "TOTAL_STEPS = 300" in source
    assert f"from {run}:4" in source
    assert _cli(["export", f"{run}:4", "--name", "mine"]) == 0
    assert "def mine(" in capsys.readouterr().out
    with pytest.raises(UsageError):
        export_cmd.export_program(f"{run}:4", fmt="torch")


def test_simplify_run_dir_id_trains_on_the_runs_own_task(run, capsys):
    from optevo.search.cli import main
    (run / "config.yaml").write_text(
        "task:\n  name: quadratic\n  steps: 3\n  seeds: 1\n  options: {dim: 4}\n")
    assert main(["simplify", f"{run}:4", "--lr-scale", "1", "--max-rounds", "1"]) == 0
    assert "# task quadratic: 3 steps, seeds [0]" in capsys.readouterr().out


def test_a_summary_written_before_0_2_is_read_under_todays_names(tmp_path):
    """``best_id`` was the held-out best and ``best_fitness`` the selection best: read back,
    each gets the name that says whose figure it is."""
    from optevo.search.core.rundir import RunDir
    (tmp_path / "summary.json").write_text(json.dumps(
        {"best_id": 7, "best_holdout_loss": 0.5, "best_fitness": 0.4, "trained": 3}))
    s = RunDir(tmp_path).summary()
    assert s == {"holdout_best_id": 7, "holdout_best_loss": 0.5,
                 "selection_best_fitness": 0.4, "trained": 3}

"""Issue 19: a search that cannot go on stops with one line, a final checkpoint and a summary
that says why, and its resume says the same line.

It cannot go on when no member of its population can ever be a parent (every one diverged
or scored NaN: a tiny population with tournament 1 and one mutation try), when the tuned start's fitness is 0 or not finite (every child is
scored relative to it), or when the start diverges at every lr multiplier (nothing to score
relative to)."""

import json
import sys

import pytest

from optevo.search.cli import main

BASE = """seed: {seed}
search: {{population: 2, tournament: 1, max_evals: 80, max_length: 16,
          max_mutation_tries: {tries}}}
workers: {{count: 0, batch: 1}}
holdout: {{top_k: 1, seeds: 2, baselines: []}}
checkpoint: {{every_seconds: 0.5}}
progress: {{enabled: false}}
"""
TASKS = {
    "tournament": "task: {name: quadratic, steps: 10, seeds: 2, options: {dim: 4}}\n",
    "weights": "task:\n"
               "  - {name: quadratic, steps: 10, seeds: 2, options: {dim: 4}, weight: 1.0e+308}\n"
               "  - {name: quadratic, steps: 10, seeds: 2, options: {dim: 4}, weight: 1.0e+308}\n",
}
PLUGIN = """from optevo.proxy_tasks import register
from optevo.proxy_tasks.tasks.synthetic import Quadratic
@register("{name}")
class Task(Quadratic):
    def val_loss(self, params, inst=None):
        return 0.0 * super().val_loss(params, inst)
"""


def _optevo(capsys, *argv):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def _files(run):
    return {p.name: p.read_bytes() for p in sorted(run.iterdir()) if p.name != ".lock"}


def _stops_and_resume_says_the_same(capsys, config, run, *words, checkpoint=True):
    rc, out, err = _optevo(capsys, "search", config, "--run-dir", run)
    assert rc == 2 and len(err.splitlines()) == 1, err
    assert all(w in err for w in words), err
    summary = json.loads((run / "summary.json").read_text())
    assert summary["stopped"] == "cannot_go_on" and summary["stop_reason"] in err
    assert "stop_reason: " + summary["stop_reason"] in (run / "report.md").read_text()
    if checkpoint:
        state = json.loads((run / "checkpoint.json").read_text())
        assert state["done"] and state["log_lines"] == len(
            (run / "evaluations.jsonl").read_text().splitlines())
    before = _files(run)
    for extra in (("--check",), ()):
        rc, out, again = _optevo(capsys, "search", "--resume", run, *extra)
        if extra and not checkpoint:  # no state kept: only calibrating again can tell
            assert rc == 0 and "no checkpoint yet" in out
            continue
        assert rc == 2 and again.splitlines()[-1] == err.strip(), (extra, again)
        if checkpoint:  # refused before anything starts
            assert _files(run) == before
    return summary


def test_a_population_without_a_finite_member_stops_and_says_why(tmp_path, capsys):
    config = tmp_path / "tournament.yaml"
    config.write_text(BASE.format(seed=2, tries=1) + TASKS["tournament"])
    summary = _stops_and_resume_says_the_same(
        capsys, config, tmp_path / "run", "the search cannot go on",
        "no member of its population has a finite fitness")
    assert summary["trained"] < 80


def test_suite_weights_near_the_float_limit_score_as_equal_weights(tmp_path, capsys):
    """Weights are relative (divided by the largest), so 1e308 twice is 1 and 1: no sum
    overflows to inf and scores NaN (before: every child NaN, and the search could not go on)."""
    config = tmp_path / "weights.yaml"
    config.write_text(BASE.format(seed=0, tries=100).replace("max_evals: 80", "max_evals: 6")
                      + TASKS["weights"])
    rc, out, err = _optevo(capsys, "search", config, "--run-dir", tmp_path / "run",
                           "--no-holdout")
    assert rc == 0, err
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["stopped"] == "budget" and summary["trained"] == 6
    assert 0 < summary["selection_best_normalized"] < float("inf")


@pytest.fixture
def zero_task(tmp_path):
    """A plugin file registering a quadratic whose validation loss is 0 (unregistered
    afterwards)."""
    name = "stop_reason_zero"
    path = tmp_path / f"{name}.py"
    path.write_text(PLUGIN.format(name=name))
    yield name, path
    from optevo.proxy_tasks import base
    base._REGISTRY.pop(name, None)
    sys.modules.pop(f"optevo_plugin_{name}", None)


def test_a_run_whose_start_scored_zero_resumes_to_the_one_line(tmp_path, capsys):
    """The check behind the slow test below, on a finished run (the task's compile shared):
    its checkpoint's tuned start fitness set to 0, the resume says why it cannot go on."""
    config = tmp_path / "ok.yaml"
    config.write_text(BASE.format(seed=0, tries=100).replace("population: 2, tournament: 1",
                                                             "population: 3, tournament: 2")
                      .replace("max_evals: 80", "max_evals: 3") + TASKS["tournament"])
    run = tmp_path / "run"
    assert main(["search", str(config), "--run-dir", str(run), "--no-holdout"]) == 0
    state = json.loads((run / "checkpoint.json").read_text())
    (run / "checkpoint.json").write_text(json.dumps({**state, "baseline": 0.0}))
    capsys.readouterr()
    before = _files(run)
    for extra in (("--check",), ()):
        rc, out, err = _optevo(capsys, "search", "--resume", run, "--max-evals", "6", *extra)
        assert rc == 2 and len(err.splitlines()) == 1, err
        assert f"{run}: the search cannot go on: the tuned start's fitness is 0.0" in err
        assert _files(run) == before


@pytest.mark.slow  # its own task, its own compile (about 15 s)
def test_a_start_whose_loss_is_zero_stops_and_says_why(tmp_path, capsys, zero_task):
    name, path = zero_task
    config = tmp_path / "zero.yaml"
    config.write_text(f"plugins: [{path}]\n" + BASE.format(seed=0, tries=100)
                      + f"task: {{name: {name}, steps: 10, seeds: 2, options: {{dim: 4}}}}\n")
    summary = _stops_and_resume_says_the_same(
        capsys, config, tmp_path / "run", "the search cannot go on",
        "the tuned start's fitness is 0.0")
    assert summary["trained"] == 1  # the start only


@pytest.mark.slow  # its own compile (about 15 s)
def test_a_start_that_never_trains_stops_and_says_why(tmp_path, capsys):
    """Every weight above max_abs_weight: the start diverges at every lr multiplier, nothing is
    logged and there is no state to keep (no checkpoint); the summary says why, and the
    resume, calibrating again, says the same."""
    config = tmp_path / "nan.yaml"
    config.write_text(BASE.format(seed=0, tries=100) + "task: {name: quadratic, steps: 10, "
                      "seeds: 2, options: {dim: 4, max_abs_weight: 1.0e-9}}\n")
    summary = _stops_and_resume_says_the_same(
        capsys, config, tmp_path / "run", "diverges on quadratic at every lr multiplier",
        checkpoint=False)
    assert summary["trained"] == 0 and summary["tuned_start_fitness"] is None

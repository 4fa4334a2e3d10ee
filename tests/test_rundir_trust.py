"""Issue 19: a run directory is data, never code; resume trusts nothing it did not write.

Reading a run (show, lineage, diff, plot, simplify, export, analyze, funnel, the API's
load_run) never imports a plugin its config.yaml names; only ``search --resume`` does, and it
says so. A resume (and ``--resume --check``) refuses, in one line and before any file is
touched, a checkpoint of another run, one whose counts are not its own, a log with a record
logged twice and an empty population; a run written before run ids still resumes."""

import json
import shutil

import pytest

from optevo.search.cli import main

CONFIG = """seed: 1
task: {name: quadratic, steps: 10, seeds: 2, options: {dim: 4}}
search: {population: 3, tournament: 2, max_evals: 4, max_length: 16}
workers: {count: 0, batch: 1}
holdout: {top_k: 1, seeds: 2, baselines: []}
checkpoint: {every_seconds: 0.5}
progress: {enabled: false}
"""
FUNNEL = """workers: 0
top_k: 1
baselines:
  optax_adamw: {optax: adamw, learning_rate: 1.0e-3, b1: 0.9, b2: 0.999, eps: 1.0e-8,
                weight_decay: 1.0e-4}
defaults: {tune_seeds: 1, eval_seeds: 1, lr_ratio: 4.0, lr_range: [0, 0], wd_ratio: 10.0,
           wd_range: [0, 0], max_extend: 0}
stages:
  - {name: s1, task: quadratic, steps: 10, batch_size: 1, options: {dim: 4}}
"""
# a plugin that leaves a marker file when imported (and would register a task)
EVIL = """import pathlib
pathlib.Path({marker!r}).write_text("imported")
from optevo.proxy_tasks import register
from optevo.proxy_tasks.tasks.synthetic import Quadratic
@register("evil_quadratic")
class EvilQuadratic(Quadratic):
    pass
"""


def _optevo(capsys, *argv):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two finished tiny runs (in-process, no Ray): ``a`` (seed 1, 4 trained) and ``b``
    (seed 2, 3 trained), the log of each in id order (one child per batch)."""
    root = tmp_path_factory.mktemp("runs")
    (root / "tiny.yaml").write_text(CONFIG)
    for name, seed, evals in (("a", 1, 4), ("b", 2, 3)):
        assert main(["search", str(root / "tiny.yaml"), "--run-dir", str(root / name),
                     "--no-holdout", "--seed", str(seed), "--max-evals", str(evals)]) == 0
    return root


def _copy(src, dst):
    shutil.copytree(src, dst)
    (dst / ".lock").unlink(missing_ok=True)
    return dst


def _files(run):
    return {p.name: p.read_bytes() for p in sorted(run.iterdir()) if p.name != ".lock"}


# --- reading a run runs none of its code --------------------------------------------------

def _handed_over(runs, tmp_path, task=None):
    """Run ``a`` as a stranger might hand it over: its config.yaml names a plugin file that
    writes MARKER when imported (and, with ``task``, the task only that plugin registers)."""
    run = _copy(runs / "a", tmp_path / "run")
    marker, plugin = tmp_path / "MARKER", tmp_path / "evil_plugin.py"
    plugin.write_text(EVIL.format(marker=str(marker)))
    cfg = run / "config.yaml"
    text = cfg.read_text()
    assert "plugins: []" in text
    text = text.replace("plugins: []", f"plugins: [{plugin}]")
    if task:
        assert "name: quadratic" in text
        text = text.replace("name: quadratic", f"name: {task}")
    cfg.write_text(text)
    (tmp_path / "funnel.yaml").write_text(FUNNEL)
    (tmp_path / "f").mkdir()
    (tmp_path / "f" / "funnel.json").write_text("{}")  # the funnel stops once it read the run
    return run, marker


@pytest.fixture
def forget_plugin():
    """Other tests see only the built-in tasks, and the plugin not yet imported (had it been
    imported by a reading command, or by the resume that may)."""
    yield
    import sys
    from optevo.proxy_tasks import base
    base._REGISTRY.pop("evil_quadratic", None)
    sys.modules.pop("optevo_plugin_evil_plugin", None)


def _read_fine(argv, rc, err) -> bool:
    """Exit status 0 (1: analyze's "not a Lion-K program"), or, for the funnel, which reads
    the run's best programs and then finds its --out taken, that one line."""
    if argv[0] == "funnel":
        return rc == 2 and "already holds a funnel" in err and len(err.splitlines()) == 1
    return rc in (0, 1) and "error" not in err


def _reading_commands(run, tmp_path):
    return [("show", run), ("show", run, "--json"), ("lineage", run, "2"),
            ("diff", f"{run}:0", f"{run}:2"), ("plot", run, "-o", tmp_path / "p.png"),
            ("simplify", run, "--exact-only"), ("simplify", f"{run}:2", "--exact-only"),
            ("export", f"{run}:2"), ("analyze", f"{run}:2"),
            ("funnel", run, "--config", tmp_path / "funnel.yaml", "--out", tmp_path / "f")]


def test_reading_a_run_never_imports_the_plugins_its_config_names(runs, tmp_path, capsys,
                                                                   forget_plugin):
    run, marker = _handed_over(runs, tmp_path)
    for argv in _reading_commands(run, tmp_path):
        rc, out, err = _optevo(capsys, *argv)
        assert _read_fine(argv, rc, err), (argv, err)
        assert not marker.exists(), f"optevo {argv[0]} imported the run's plugin"
    assert (tmp_path / "p.png").stat().st_size > 0
    from optevo.search import load_run
    r = load_run(run)
    assert r.config.plugins == [str(tmp_path / "evil_plugin.py")]  # read, validated, not run
    assert r.best(1) and r.rows() and r.program(2)
    assert not marker.exists()


def test_a_run_whose_task_only_its_plugin_knows_is_read_or_refused_in_one_line(
        runs, tmp_path, capsys, forget_plugin):
    """show, lineage, diff, export, analyze, funnel and simplify --exact-only need only the
    log; plot and the guided simplify need the config, which names a task no imported code
    registered: one line naming the plugin, and nothing imported."""
    run, marker = _handed_over(runs, tmp_path, task="evil_quadratic")
    guided = ("simplify", run, "--steps", "2", "--seeds", "1", "--lr-scale", "1",
              "--max-rounds", "1")
    for argv in _reading_commands(run, tmp_path) + [guided]:
        rc, out, err = _optevo(capsys, *argv)
        if argv[0] == "plot" or argv is guided:
            assert rc == 2 and len(err.splitlines()) == 1, (argv, err)
            assert "evil_plugin.py" in err and "not imported" in err, err
        else:
            assert _read_fine(argv, rc, err), (argv, err)
        assert not marker.exists(), f"optevo {argv[0]} imported the run's plugin"
    from optevo.search import load_run
    from optevo.search.core.config import ConfigError
    with pytest.raises(ConfigError, match="evil_plugin.py"):
        load_run(run).config
    assert load_run(run).best(1) and not marker.exists()


def test_only_resume_imports_the_plugins_and_says_which(runs, tmp_path, capsys, forget_plugin):
    run, marker = _handed_over(runs, tmp_path)
    rc, out, err = _optevo(capsys, "search", "--resume", run, "--check")
    assert rc == 0 and marker.exists()
    assert f"--resume imports the plugins {run / 'config.yaml'} names: " \
           f"{tmp_path / 'evil_plugin.py'}" in err


# --- resume trusts nothing it did not write -----------------------------------------------

def _refused(capsys, run, *words):
    """``--resume --check`` and the resume itself: each one line naming ``words``, exit
    status 2, and every file of the run as it was."""
    before = _files(run)
    for extra in (("--check",), ()):
        rc, out, err = _optevo(capsys, "search", "--resume", run, *extra)
        assert rc == 2 and len(err.splitlines()) == 1, (extra, rc, err)
        assert err.startswith("optevo: error: ") and all(w in err for w in words), err
        assert _files(run) == before, "a refused resume changed the run's files"


def _edit_checkpoint(run, **changes):
    p = run / "checkpoint.json"
    state = json.loads(p.read_text())
    state.update(changes)
    p.write_text(json.dumps(state))


def test_a_checkpoint_copied_from_another_run_is_refused(runs, tmp_path, capsys):
    """Run b's checkpoint counts 3 records whose last id (2) is also record 3 of run a's log:
    its counts match a prefix of the log, but it is not this run's."""
    run = _copy(runs / "a", tmp_path / "run")
    shutil.copy(runs / "b" / "checkpoint.json", run / "checkpoint.json")
    _refused(capsys, run, "checkpoint.json", "another run")


def test_a_checkpoint_that_counts_no_logged_record_is_refused(runs, tmp_path, capsys):
    """log_lines 0 would replay every logged child onto a state that already holds them."""
    run = _copy(runs / "a", tmp_path / "run")
    _edit_checkpoint(run, log_lines=0, log_last_id=None)
    _refused(capsys, run, "checkpoint.json", "counts 0 logged records")


def test_a_record_logged_twice_is_refused(runs, tmp_path, capsys):
    run = _copy(runs / "a", tmp_path / "run")
    log = run / "evaluations.jsonl"
    lines = log.read_text().splitlines(keepends=True)
    log.write_text("".join(lines + lines[-1:]))
    _refused(capsys, run, f"evaluations.jsonl:{len(lines) + 1}", "logged a second time")


def test_an_empty_population_is_refused(runs, tmp_path, capsys):
    run = _copy(runs / "a", tmp_path / "run")
    _edit_checkpoint(run, population=[])
    _refused(capsys, run, "checkpoint.json", "population is empty")


def test_a_run_written_before_run_ids_still_resumes(runs, tmp_path, capsys):
    """No run.json, a version-2 checkpoint without run id, a log without one: it resumes
    (and stays without an id, so the three still agree)."""
    run = _copy(runs / "a", tmp_path / "run")
    (run / "run.json").unlink()
    state = json.loads((run / "checkpoint.json").read_text())
    del state["run_id"]
    (run / "checkpoint.json").write_text(json.dumps({**state, "version": 2}))
    log = run / "evaluations.jsonl"
    lines = log.read_text().splitlines(keepends=True)
    first = json.loads(lines[0])
    assert first.pop("run") and first["id"] == 0
    log.write_text(json.dumps(first) + "\n" + "".join(lines[1:]))
    rc, out, err = _optevo(capsys, "search", "--resume", run, "--max-evals", "5",
                           "--no-holdout")
    assert rc == 0, err
    assert len(log.read_text().splitlines()) > len(lines)
    # the same files with the run id of another run put back in one of them: refused
    (run / "run.json").write_text(json.dumps({"run_id": "0123456789abcdef"}))
    _refused(capsys, run, "evaluations.jsonl", "names no run id", "0123456789abcdef")


def test_discover_resume_names_the_plugins_it_would_import(tmp_path, capsys):
    """``discover --resume`` says which plugins its saved config names before loading it (here
    the rest of the state is damaged, so it stops in one line right after)."""
    out = tmp_path / "d"
    out.mkdir()
    (out / "discover.json").write_text(json.dumps({"config": {"plugins": ["lab_tasks.py"]}}))
    rc, _, err = _optevo(capsys, "discover", "--resume", out)
    lines = err.splitlines()
    assert rc == 2 and len(lines) == 2, err
    assert "--resume imports the plugins" in lines[0] and "lab_tasks.py" in lines[0]
    assert lines[1].startswith("optevo: error: ")

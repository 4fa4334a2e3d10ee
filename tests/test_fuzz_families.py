"""Fuzzing the families of issue #19 (hypothesis; the case counts are in :data:`CASES` and in
the README's reliability section): run directories damaged in every file, task options, and
programs of every length a search may produce. Signals at random moments are
``tests/test_signals.py`` (its slow part draws the moments).

Every case goes through the real command line in-process (or the library, for programs) and
either succeeds or fails with exactly one line ``optevo: error: ...`` and status 2: never a
traceback. Reading a damaged run never imports the plugin its ``config.yaml`` names (the
plugin writes a marker file when imported), and a resume that goes ahead never logs an id
twice. A hang fails the test through an alarm instead of blocking the suite.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import stat
import sys

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optevo.dsl.errors import OptevoError
from optevo.search.cli import main

# examples per test: the default part, and the extra cases of the slow part
CASES = {"run_files": 300, "run_files_slow": 300, "resume_runs": 12, "task_options": 300,
         "long_programs": 40, "long_programs_slow": 160}


def _settings(n):
    return settings(max_examples=n, deadline=None, derandomize=True,
                    suppress_health_check=list(HealthCheck))


SCALARS = (st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70)
           | st.floats(allow_nan=True, allow_infinity=True)
           | st.sampled_from([0, 1, -1, 2, 3, 0.5, 1e-12, 1e12, "", "x" * 200, "warmup_cosine",
                              "cosine", "constant", "/dev/null", ".nan"])
           | st.text(max_size=12))
VALUES = st.recursive(SCALARS, lambda c: st.lists(c, max_size=3)
                      | st.dictionaries(st.text(max_size=6), c, max_size=3), max_leaves=5)


class Hang(Exception):
    pass


@contextlib.contextmanager
def _alarm(seconds=60):
    def fire(*_):
        raise Hang(f"no answer in {seconds} s")
    old = signal.signal(signal.SIGALRM, fire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _run(*argv):
    out, err = io.StringIO(), io.StringIO()
    with _alarm(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main([str(a) for a in argv])
    return rc, err.getvalue()


def _one_line_or_ok(rc, err):
    if rc == 0:
        assert "Traceback" not in err, err
    else:
        lines = [ln for ln in err.splitlines() if ln.startswith("optevo: error: ")]
        assert rc == 2 and len(lines) == 1 and "Traceback" not in err, (rc, err)


# --- run directories damaged in every file --------------------------------------------------

CONFIG = """seed: {seed}
task: {{name: quadratic, steps: 10, seeds: 2, options: {{dim: 4}}}}
search: {{population: 4, tournament: 2, max_evals: 8, max_length: 16}}
workers: {{count: 0, batch: 1}}
holdout: {{top_k: 1, seeds: 2, baselines: []}}
checkpoint: {{every_seconds: 0.5}}
progress: {{enabled: false}}
"""
PLUGIN = "import pathlib\npathlib.Path({marker!r}).write_text('imported')\n"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two finished tiny runs, ``a`` and ``b`` (another seed: its files are another run's);
    ``a``'s config.yaml then names a plugin that leaves MARKER when imported."""
    root = tmp_path_factory.mktemp("fuzzruns")
    for name, seed in (("a", 1), ("b", 2)):
        (root / f"{name}.yaml").write_text(CONFIG.format(seed=seed))
        assert main(["search", str(root / f"{name}.yaml"), "--run-dir", str(root / name)]) == 0
    marker = root / "MARKER"
    (root / "plugin.py").write_text(PLUGIN.format(marker=str(marker)))
    cfg = root / "a" / "config.yaml"
    cfg.write_text(cfg.read_text().replace("plugins: []", f"plugins: [{root / 'plugin.py'}]"))
    return root, marker


def _forget_plugin(path):
    """Drop the plugin from ``sys.modules``, so that an import in the next case runs it again."""
    for name, mod in list(sys.modules.items()):
        if getattr(mod, "__file__", None) == str(path):
            del sys.modules[name]


def _files(run):
    return sorted(p.name for p in run.iterdir() if p.name != ".lock"
                  and (p.is_file() or stat.S_ISFIFO(p.stat().st_mode)))


def _damage(data, run, other, name):
    path = run / name
    how = data.draw(st.sampled_from(["cut", "bytes", "text", "delete", "empty", "dup_line",
                                     "drop_line", "other_run", "json_value", "fifo"]))
    if stat.S_ISFIFO(path.stat().st_mode):
        return "fifo"
    raw = path.read_bytes()
    if how == "cut":
        path.write_bytes(raw[:data.draw(st.integers(0, max(0, len(raw) - 1)))])
    elif how == "bytes":
        at = data.draw(st.integers(0, len(raw)))
        path.write_bytes(raw[:at] + data.draw(st.binary(min_size=1, max_size=16)) + raw[at:])
    elif how == "text":
        path.write_text(data.draw(st.text(max_size=60)))
    elif how == "delete":
        path.unlink()
    elif how == "fifo":  # reading it would block for ever
        path.unlink()
        os.mkfifo(path)
    elif how == "empty":
        path.write_bytes(b"")
    elif how in ("dup_line", "drop_line"):
        lines = raw.splitlines(keepends=True) or [b""]
        i = data.draw(st.integers(0, len(lines) - 1))
        lines[i:i + 1] = [lines[i]] * (2 if how == "dup_line" else 0)
        path.write_bytes(b"".join(lines))
    elif how == "other_run":
        if (other / name).exists():
            shutil.copyfile(other / name, path)
    else:
        _damage_json_value(data, path, raw)
    return how


def _damage_json_value(data, path, raw):
    """One value somewhere in a JSON file (or in one line of a JSON-lines file) replaced."""
    lines = raw.splitlines(keepends=True)
    i = data.draw(st.integers(0, max(0, len(lines) - 1))) if lines else 0
    try:
        doc = json.loads(lines[i] if len(lines) > 1 else raw)
    except (ValueError, IndexError):
        return
    node, key = doc, None
    for _ in range(data.draw(st.integers(1, 3))):
        keys = list(node) if isinstance(node, dict) else range(len(node)) \
            if isinstance(node, list) else []
        if not keys:
            break
        key = data.draw(st.sampled_from(list(keys)))
        if not isinstance(node[key], (dict, list)):
            break
        node = node[key]
    if key is None:
        return
    node[key] = data.draw(VALUES)
    text = json.dumps(doc, default=str)
    if len(lines) > 1:
        lines[i] = text.encode() + b"\n"
        path.write_bytes(b"".join(lines))
    else:
        path.write_text(text)


READERS = {
    "show": lambda r, t: ("show", r), "json": lambda r, t: ("show", r, "--json"),
    "lineage": lambda r, t: ("lineage", r, "3"), "diff": lambda r, t: ("diff", f"{r}:2", f"{r}:0"),
    "export": lambda r, t: ("export", f"{r}:3", "--format", "optax", "-o", t / "x.py"),
    "simplify": lambda r, t: ("simplify", r, "--exact-only"),
    "plot": lambda r, t: ("plot", r, "-o", t / "p.png"),
    "check": lambda r, t: ("search", "--resume", r, "--check"),
}


def _damaged_run_case(runs, tmp_path_factory, data, commands):
    root, marker = runs
    tmp = tmp_path_factory.mktemp("case")
    run = tmp / "run"
    shutil.copytree(root / "a", run)
    (run / ".lock").unlink(missing_ok=True)
    for _ in range(data.draw(st.integers(1, 2))):
        files = _files(run)
        if files:
            _damage(data, run, root / "b", data.draw(st.sampled_from(files)))
    command = data.draw(st.sampled_from(commands))
    marker.unlink(missing_ok=True)
    _forget_plugin(root / "plugin.py")
    _one_line_or_ok(*_run(*READERS[command](run, tmp)))
    if command != "check":  # part of a resume, which imports the plugins (and says so)
        assert not marker.exists(), f"{command} imported the run's plugin"
    shutil.rmtree(tmp, ignore_errors=True)


@given(st.data())
@_settings(CASES["run_files"])
def test_damaged_run_files_fail_in_one_line(runs, tmp_path_factory, data):
    _damaged_run_case(runs, tmp_path_factory, data,
                      ["show", "json", "lineage", "diff", "export", "simplify", "check"])


@pytest.mark.slow
@given(st.data())
@_settings(CASES["run_files_slow"])
def test_damaged_run_files_fail_in_one_line_with_plots(runs, tmp_path_factory, data):
    _damaged_run_case(runs, tmp_path_factory, data, list(READERS))


@pytest.mark.slow
@given(st.data())
@_settings(CASES["resume_runs"])
def test_a_resume_that_goes_ahead_logs_no_id_twice(runs, tmp_path_factory, data):
    """A damaged run either is refused in one line or resumes to a log with unique ids (the
    resume imports the plugin: it is the one command that may)."""
    root, _ = runs
    tmp = tmp_path_factory.mktemp("resume")
    run = tmp / "run"
    shutil.copytree(root / "a", run)
    (run / ".lock").unlink(missing_ok=True)
    _damage(data, run, root / "b", data.draw(st.sampled_from(_files(run))))
    rc, err = _run("search", "--resume", run, "--max-evals", "12", "--no-holdout",
                   "--workers", "0")
    _one_line_or_ok(rc, err)
    if rc == 0:
        ids = [json.loads(ln)["id"] for ln in (run / "evaluations.jsonl").read_text().splitlines()]
        assert len(ids) == len(set(ids)), ids


# --- task options -----------------------------------------------------------------------------

def _task_options():
    from optevo.proxy_tasks.tasks.base import task_names, task_options
    return {name: sorted(task_options(name)) for name in task_names()}


TASK_OPTIONS = _task_options()


@given(st.data())
@_settings(CASES["task_options"])
def test_fuzzed_task_options_fail_in_one_line(tmp_path_factory, data):
    task = data.draw(st.sampled_from(sorted(TASK_OPTIONS)))
    keys = TASK_OPTIONS[task] + ["bogus", "Steps", ""]
    options = {data.draw(st.sampled_from(keys)): data.draw(VALUES)
               for _ in range(data.draw(st.integers(1, 3)))}
    options.pop("steps", None), options.pop("seeds", None)  # task keys of their own
    cfg = {"task": {"name": task, "steps": 3, "seeds": 1, "options": options},
           "search": {"population": 2, "tournament": 1, "max_evals": 1},
           "workers": {"count": 0}, "progress": {"enabled": False}}
    path = tmp_path_factory.mktemp("opts") / "c.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True))
    _one_line_or_ok(*_run("search", path, "--check", "--run-dir", path.parent / "run"))


# --- programs of every length a search may produce --------------------------------------------

def _long_program_case(seed, length):
    from optevo.dsl import parse
    from optevo.dsl.canon import program_hash
    from optevo.dsl.codegen import to_module_source
    from optevo.dsl.random import random_program
    from optevo.simplify.exact import simplify_exact
    from optevo.simplify.lion_k_trace import analyze
    program = random_program(np.random.default_rng(seed), length)
    try:
        again = parse(program.text(), "fuzz.py")
    except OptevoError as e:  # a drawn program the reader refuses: one line
        assert "\n" not in str(e)
        return
    assert program_hash(again) == program_hash(program)
    with _alarm(120):
        simple = simplify_exact(again)
        program_hash(simple)
        analyze(again)
        compile(to_module_source(again), "exported.py", "exec")


def _max_length():
    from optevo.search.core.config import SearchConfig
    return next(m.le for m in SearchConfig.model_fields["max_length"].metadata
                if getattr(m, "le", None) is not None)


LENGTHS = st.integers(1, 64) | st.integers(1, _max_length()) | st.just(_max_length())


@given(st.integers(0, 2 ** 32 - 1), LENGTHS)
@_settings(CASES["long_programs"])
def test_programs_of_every_length_go_through(seed, length):
    _long_program_case(seed, length)


@pytest.mark.slow
@given(st.integers(0, 2 ** 32 - 1), LENGTHS)
@_settings(CASES["long_programs_slow"])
def test_programs_of_every_length_go_through_slow(seed, length):
    _long_program_case(seed + 1, length)

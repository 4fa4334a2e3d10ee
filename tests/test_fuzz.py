"""Fuzzing the inputs a user (or a crash) can damage: config files, checkpoints and log lines
(hypothesis; 600 generated cases in all). Through the real command line, in-process, every
case either succeeds (status 0) or fails with status 2 and exactly one line
``optevo: error: ...``: never a traceback.

Commands that run nothing are used (``search --check``, ``search --resume DIR --check``,
``show``, ``lineage``, ``diff``), so each case costs milliseconds; what they check is what a
run checks before it starts anything."""

import contextlib
import io
import json
import shutil

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optevo.search.cli import main
from optevo.search.core.config import config_from_dict
from optevo.search.core.run import build_search
from optevo.search.core.workers import InProcessPool, eval_spec

SETTINGS = settings(max_examples=200, deadline=None, derandomize=True,
                    suppress_health_check=list(HealthCheck))
KEYS = ["seed", "name", "plugins", "task", "task.name", "task.steps", "task.seeds",
        "task.options", "task.options.batch_size", "task.options.dim", "task.weight",
        "search.population", "search.tournament", "search.max_evals", "search.time_limit",
        "search.start", "search.max_length", "search.restart_after", "search.mutations",
        "search.mutations.insert", "search.hurdle_seeds", "search.fingerprint", "workers",
        "workers.count", "workers.batch", "holdout.top_k", "holdout.seeds",
        "checkpoint.every_seconds", "progress.enabled", "unknown", "search.bogus"]
SCALARS = (st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70)
           | st.floats(allow_nan=True, allow_infinity=True)
           | st.sampled_from(["quadratic", "rosenbrock", "lion", "adam_style", "", "null",
                              "1e400", "x" * 300, "..", "/dev/null", "-1"])
           | st.text(max_size=12))
VALUES = st.recursive(SCALARS, lambda c: st.lists(c, max_size=3)
                      | st.dictionaries(st.text(max_size=6) | st.sampled_from(KEYS), c,
                                        max_size=3), max_leaves=6)


def _run(*argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main([str(a) for a in argv])
    return rc, err.getvalue()


def _one_line_or_ok(rc, err):
    if rc == 0:
        assert err == "", err
    else:
        lines = err.splitlines()
        assert rc == 2 and len(lines) == 1 and lines[0].startswith("optevo: error: "), err


def _nest(key, value):
    for part in reversed(key.split(".")):
        value = {part: value}
    return value


def _merge(a, b):
    for k, v in b.items():
        a[k] = _merge(a[k], v) if isinstance(a.get(k), dict) and isinstance(v, dict) else v
    return a


@st.composite
def config_texts(draw):
    base = {"task": {"name": draw(st.sampled_from(["quadratic", "rosenbrock"])),
                     "steps": 5, "seeds": 2}}
    for key, value in draw(st.lists(st.tuples(st.sampled_from(KEYS), VALUES), max_size=4)):
        base = _merge(base, _nest(key, value))
    text = yaml.safe_dump(base, allow_unicode=True) if draw(st.booleans()) else json.dumps(
        base, default=str)
    damage = draw(st.sampled_from(["none", "bom", "tab", "cut", "bytes", "alias", "dup",
                                   "bigint"]))
    data = text.encode()
    if damage == "bom":
        data = b"\xef\xbb\xbf" + data
    elif damage == "tab":
        data = data.replace(b" ", b"\t", 1)
    elif damage == "cut":
        data = data[:draw(st.integers(0, len(data)))]
    elif damage == "bytes":
        data += draw(st.binary(max_size=16))
    elif damage == "alias":
        data = b"a: &x [1, 2]\nb: *x\n" + data
    elif damage == "dup":
        data += b"\nseed: 1\nseed: 2\n"
    elif damage == "bigint":
        data = b"seed: " + b"9" * 5000 + b"\n" + data
    return data


@given(config_texts())
@SETTINGS
def test_fuzzed_configs_fail_in_one_line(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("cfg") / "fuzz.yaml"
    path.write_bytes(data)
    _one_line_or_ok(*_run("search", path, "--check", "--run-dir", path.parent / "run"))


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    """A finished tiny in-process search: the checkpoint and log the fuzzers damage."""
    cfg = config_from_dict({"seed": 1, "task": {"name": "quadratic", "steps": 10, "seeds": 2},
                            "search": {"population": 6, "tournament": 2, "max_evals": 12,
                                       "max_length": 12},
                            "workers": {"count": 0}, "progress": {"enabled": False}})
    run = tmp_path_factory.mktemp("real") / "run"
    build_search(cfg, run, InProcessPool(eval_spec(cfg))).run()
    (run / "config.yaml").write_text(yaml.safe_dump(cfg.model_dump()))
    return run


def _copy(run, tmp_path_factory):
    dst = tmp_path_factory.mktemp("copy") / "run"
    shutil.copytree(run, dst)
    (dst / ".lock").unlink(missing_ok=True)
    return dst


def _paths(value, prefix=()):
    """Every path into nested JSON data."""
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, prefix + (i,))


def _replace(data, path, new):
    if not path:
        return new
    node = data
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = new
    return data


@given(st.data())
@SETTINGS
def test_fuzzed_checkpoints_fail_in_one_line(real_run, tmp_path_factory, data):
    run = _copy(real_run, tmp_path_factory)
    ckpt = json.loads((run / "checkpoint.json").read_text())
    how = data.draw(st.sampled_from(["value", "delete", "text", "bytes"]))
    if how in ("value", "delete"):
        paths = list(_paths(ckpt))[1:]
        path = data.draw(st.sampled_from(paths))
        if how == "delete":
            node = ckpt
            for p in path[:-1]:
                node = node[p]
            del node[path[-1]]
        else:
            ckpt = _replace(ckpt, path, data.draw(VALUES))
        (run / "checkpoint.json").write_text(json.dumps(ckpt, default=str))
    elif how == "text":
        (run / "checkpoint.json").write_text(data.draw(st.text(max_size=40)))
    else:
        (run / "checkpoint.json").write_bytes(data.draw(st.binary(max_size=40)))
    _one_line_or_ok(*_run("search", "--resume", run, "--check"))


@given(st.data())
@SETTINGS
def test_fuzzed_log_lines_fail_in_one_line(real_run, tmp_path_factory, data):
    run = _copy(real_run, tmp_path_factory)
    lines = (run / "evaluations.jsonl").read_text().splitlines(keepends=True)
    i = data.draw(st.integers(0, len(lines) - 1))
    how = data.draw(st.sampled_from(["field", "drop", "text", "json", "insert"]))
    if how == "field":
        rec = json.loads(lines[i])
        key = data.draw(st.sampled_from(sorted(rec) + ["extra"]))
        rec[key] = data.draw(VALUES)
        lines[i] = json.dumps(rec, default=str) + "\n"
    elif how == "drop":
        rec = json.loads(lines[i])
        del rec[data.draw(st.sampled_from(sorted(rec)))]
        lines[i] = json.dumps(rec) + "\n"
    elif how == "text":
        lines[i] = data.draw(st.text(max_size=30)).replace("\n", " ") + "\n"
    elif how == "json":
        lines[i] = json.dumps(data.draw(VALUES), default=str) + "\n"
    else:
        lines.insert(i, data.draw(st.text(max_size=30)).replace("\n", " ") + "\n")
    (run / "evaluations.jsonl").write_text("".join(lines))
    command = data.draw(st.sampled_from(["resume", "show", "lineage", "diff", "json"]))
    argv = {"resume": ("search", "--resume", run, "--check"), "show": ("show", run),
            "json": ("show", run, "--json"), "lineage": ("lineage", run, str(i)),
            "diff": ("diff", f"{run}:{i}", f"{run}:0")}[command]
    _one_line_or_ok(*_run(*argv))

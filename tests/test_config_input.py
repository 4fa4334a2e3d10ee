"""Config input that used to go wrong: ``--set`` through a suite (``task:`` a list) replaced
the suite by one default task; deeply nested YAML raised RecursionError; a FIFO or a device
given as a config or program file blocked for ever (or was read as an empty config)."""

import contextlib
import os
import threading
import time

import pytest

from optevo.search.cli import main
from optevo.search.core.config import ConfigError, load_config
from optevo.search.core import yaml_config
from optevo.search.funnel.config import load_funnel_config

SUITE = """workers: {count: 0}
task:
  - name: digits_mlp
    options: {hidden: 8}
  - name: digits_cnn
    seeds: 2
"""


def _suite(tmp_path):
    p = tmp_path / "suite.yaml"
    p.write_text(SUITE)
    return p


def _load(path, **sets):
    return load_config(path, sets, {k: f"--set {k}" for k in sets})


# --- --set through a suite --------------------------------------------------------------------

def test_set_below_a_suite_applies_to_every_task(tmp_path):
    cfg = _load(_suite(tmp_path), **{"task.seeds": "3", "task.options.hidden": "16"})
    assert [(t.name, t.seeds, t.options) for t in cfg.tasks] == [
        ("digits_mlp", 3, {"hidden": 16}), ("digits_cnn", 3, {"hidden": 16})]


def test_set_below_a_suite_is_checked_per_task_at_the_flag(tmp_path):
    with pytest.raises(ConfigError) as info:
        _load(_suite(tmp_path), **{"task.seeds": "0"})
    assert str(info.value) == ("--set task.seeds: task[0].seeds: expected an integer >= 1 "
                               "and <= 4,096, got 0")
    with pytest.raises(ConfigError) as info:
        _load(_suite(tmp_path), **{"task.options.depth": "2"})
    assert str(info.value).startswith("--set task.options.depth: task[1].options.depth: "
                                      "unknown option 'depth' of task digits_cnn")


def test_a_mapping_merged_into_a_suite_is_refused(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(_suite(tmp_path), {"task": {"seeds": 3}})
    assert str(info.value) == ("override: 'task' is a list here (one entry each); set task.KEY "
                               "to change every entry, or give the whole list")


def test_set_on_a_single_task_is_unchanged(tmp_path):
    p = tmp_path / "one.yaml"
    p.write_text("task:\n  name: quadratic\n  options: {dim: 4}\n")
    cfg = _load(p, **{"task.seeds": "3", "task.options.noise": "0.5"})
    assert (cfg.task.name, cfg.task.seeds, cfg.task.options) == ("quadratic", 3,
                                                                 {"dim": 4, "noise": 0.5})


def test_set_through_a_value_that_is_not_a_mapping_leaves_the_file_error(tmp_path):
    """The override used to replace the file's bad value, hiding it."""
    p = tmp_path / "bad.yaml"
    p.write_text("seed: 1\nsearch: [1, 2]\n")
    with pytest.raises(ConfigError) as info:
        _load(p, **{"search.population": "10"})
    assert str(info.value).startswith(f"{p}:2: search: expected a mapping of search keys")


def test_cli_set_on_a_suite_keeps_the_suite(tmp_path, capsys):
    p = tmp_path / "synthetic.yaml"
    p.write_text("workers: {count: 0}\ntask:\n  - name: quadratic\n  - name: rosenbrock\n")
    assert main(["search", str(p), "--set", "task.seeds=3", "--check"]) == 0
    out = capsys.readouterr().out
    assert out.count("seeds: 3") == 2 and "name: quadratic" in out and "name: rosenbrock" in out


# --- deeply nested YAML -----------------------------------------------------------------------

@pytest.mark.parametrize("text", ["[" * 10_000, "{a: " * 10_000, "- " * 10_000 + "x",
                                  "".join(" " * i + "a:\n" for i in range(2_000))],
                         ids=["flow-lists", "flow-mappings", "block-lists", "block-mappings"])
def test_deep_nesting_is_one_line(tmp_path, text):
    p = tmp_path / "deep.yaml"
    p.write_text(text + "\n")
    for load in (load_config, load_funnel_config):
        with pytest.raises(ConfigError) as info:
            load(p)
        msg = str(info.value)
        assert msg.startswith(f"{p}:") and "\n" not in msg
        assert msg.endswith(f"nested too deeply: more than {yaml_config.MAX_DEPTH} levels of "
                            "lists and mappings")


def test_deep_nesting_in_a_set_value_is_one_line(tmp_path):
    with pytest.raises(ConfigError) as info:
        _load(_suite(tmp_path), seed="[" * 10_000)
    assert str(info.value).startswith("--set seed: seed: expected an integer >= 0, got '[[[[")


def test_nesting_within_the_limit_is_read(tmp_path):
    p = tmp_path / "ok.yaml"
    depth = yaml_config.MAX_DEPTH - 1
    p.write_text("plugins: " + "[" * depth + "]" * depth + "\n")
    with pytest.raises(ConfigError) as info:
        load_config(p)
    assert str(info.value) == f"{p}:1: plugins: expected a list of module names or .py files"


def test_cli_deep_nesting_is_one_line(tmp_path, capsys):
    p = tmp_path / "deep.yaml"
    p.write_text("[" * 10_000)
    assert main(["search", str(p), "--check"]) == 2
    assert capsys.readouterr().err == (f"optevo: error: {p}:1: nested too deeply: more than "
                                       f"{yaml_config.MAX_DEPTH} levels of lists and mappings\n")


# --- FIFOs and devices ------------------------------------------------------------------------

@contextlib.contextmanager
def released_after(fifo, seconds=10.0):
    """A guard against a hang: after ``seconds``, whenever a reader waits on ``fifo``, write
    it a line that is neither a valid config nor a program and close it, so that a reader
    that blocked fails at once (it does not go on with an empty config) and the test fails
    instead of hanging. Yields a list that is non-empty if that happened."""
    done, released = threading.Event(), []

    def watch():
        done.wait(seconds)
        while not done.is_set():
            try:
                fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:  # nobody reads it
                time.sleep(0.05)
                continue
            try:
                os.write(fd, b"released: [after a block\n")
            finally:
                os.close(fd)
            released.append(True)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield released
    finally:
        done.set()
        thread.join()


@pytest.fixture
def fifo(tmp_path):
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs here")
    path = tmp_path / "config.yaml"
    os.mkfifo(path)
    return path


_READ = "cannot read: a FIFO (named pipe), not a regular file"


@pytest.mark.parametrize("argv", [
    ["search", "{fifo}", "--check"],
    ["funnel", "--config", "{fifo}", "adamw", "--out", "{fifo}.out"],
    ["discover", "{fifo}", "--out", "{fifo}.d"],
    ["discover", "quick", "--funnel-config", "{fifo}", "--out", "{fifo}.d"]],
    ids=["search", "funnel", "discover", "discover-funnel-config"])
def test_a_fifo_config_is_refused_in_one_line_never_read(fifo, capsys, argv):
    with released_after(fifo) as released:
        rc = main([a.format(fifo=fifo) for a in argv])
    assert not released, "the command blocked reading the FIFO"
    assert (rc, capsys.readouterr().err) == (2, f"optevo: error: {fifo}: {_READ}\n")
    assert not list(fifo.parent.glob("config.yaml.*"))


def test_a_device_is_not_read_as_an_empty_config(capsys):
    assert main(["search", "/dev/null", "--check"]) == 2
    assert capsys.readouterr().err == ("optevo: error: /dev/null: cannot read: a character "
                                       "device, not a regular file\n")


def test_a_fifo_program_file_is_refused_never_read(fifo, capsys):
    from optevo.dsl import load
    from optevo.dsl.program import ProgramError
    with released_after(fifo) as released:
        with pytest.raises(ProgramError) as info:
            load(fifo)
        for argv in (["eval", str(fifo), "--task", "quadratic"], ["export", str(fifo)]):
            assert main(argv) == 2 and capsys.readouterr().err.count("\n") == 1
    assert not released, "reading the program blocked on the FIFO"
    assert str(info.value) == f"{fifo}: cannot read file: a FIFO (named pipe), not a regular file"


def test_read_text_reads_a_regular_file_as_path_read_text_does(tmp_path):
    from optevo.dsl.files import read_text
    p = tmp_path / "a.yaml"
    p.write_bytes(b"\xef\xbb\xbfseed: 1\r\nname: x\r\n")
    assert read_text(p) == "seed: 1\nname: x\n" == p.read_text(encoding="utf-8-sig")
    with pytest.raises(IsADirectoryError):
        read_text(tmp_path)
    with pytest.raises(FileNotFoundError):
        read_text(tmp_path / "missing.yaml")

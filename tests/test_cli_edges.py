"""Command-line edges that used to end in a traceback or a silent no-op (issue #10), each
now one line with exit status 2, or the behaviour a user expects."""

import json
import os
import stat

import pytest
import yaml

from optevo.search.cli import main
from optevo.search.core.rundir import atomic_write


def _err(capsys, *argv):
    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err
    return rc, err


@pytest.mark.parametrize("sets, message", [
    (["search.max_length=3"], "search.max_length: the start program adam_style has 9 "
                              "statements, more than search.max_length (3)"),
    (["task.options.max_abs_weight=-1"], "--set task.options.max_abs_weight: task.options."
                                         "max_abs_weight: expected a number > 0, got -1"),
    (["search.population=1000000000000"], "search.population: expected an integer >= 2 and "
                                          "<= 1,000,000, got 1000000000000")])
def test_values_no_run_could_use_are_refused_up_front(tmp_path, capsys, sets, message):
    argv = ["search", "configs/quick.yaml", "--run-dir", tmp_path / "run", "--workers", "0"]
    for s in sets:
        argv += ["--set", s]
    rc, err = _err(capsys, *argv)
    assert rc == 2 and len(err.splitlines()) == 1 and message in err, err
    assert not (tmp_path / "run").exists()


def test_eval_grows_its_buckets_for_a_long_program_and_checks_lr_scale(tmp_path, capsys):
    body = ["  t0 = g * 1.0"] + [f"  t{i} = t{i - 1} * 1.0" for i in range(1, 40)]
    prog = tmp_path / "long.py"
    prog.write_text("\n".join(["def train(w, g, m, v, lr):", *body, "  update = t39 * lr",
                               "  return update, m, v"]) + "\n")
    rc = main(["eval", str(prog), "--task", "quadratic", "--steps", "3", "--seeds", "1",
               "--json"])
    out = capsys.readouterr()
    assert rc == 0 and json.loads(out.out)["file"] == str(prog), out.err
    rc, err = _err(capsys, "eval", prog, "--task", "quadratic", "--lr-scale", "nan")
    assert rc == 2 and err == "optevo: error: --lr-scale must be a finite number > 0, got nan\n"


def test_program_file_with_a_utf8_bom_is_read(tmp_path, capsys):
    src = open("configs/programs/lion.py", encoding="utf-8").read()
    p = tmp_path / "bom.py"
    p.write_bytes(b"\xef\xbb\xbf" + src.encode())
    assert main(["show", str(p)]) == 0
    assert "def train" in capsys.readouterr().out


def test_version_and_bare_command(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.startswith("optevo ")
    assert main([]) == 0 and "usage: optevo" in capsys.readouterr().out


def test_written_files_are_readable_by_the_group(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write(tmp_path / "x.json", "{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "x.json").st_mode) == 0o644


def test_resume_with_a_config_is_refused(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.yaml").write_text(yaml.safe_dump({"seed": 1}))
    rc, err = _err(capsys, "search", "configs/quick.yaml", "--resume", tmp_path / "run")
    assert rc == 2 and "--resume RUN_DIR continues with the run's own config.yaml" in err


def test_one_way_to_name_a_program(tmp_path, capsys):
    """A file, a library name, or RUN_DIR:ID, in show, eval and simplify; else one line."""
    assert main(["show", "lion"]) == 0
    lion = capsys.readouterr().out
    assert main(["show", "configs/programs/lion.py"]) == 0
    assert capsys.readouterr().out == lion
    assert main(["eval", "lion", "--task", "quadratic", "--steps", "3", "--seeds", "1",
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["file"] == "lion"
    assert main(["simplify", "signum", "--exact-only"]) == 0
    capsys.readouterr()
    rc, err = _err(capsys, "show", "lino")
    assert rc == 2 and err == ("optevo: error: lino: no such program file, library program "
                               "or RUN_DIR:ID (did you mean lion?)\n")


def test_os_errors_are_one_line(tmp_path, capsys):
    """A path that cannot be written (here: its parent is a file) is one line, exit 2."""
    (tmp_path / "afile").write_text("x")
    rc, err = _err(capsys, "export", "lion", "--format", "optax", "-o",
                   tmp_path / "afile" / "m.py")
    assert rc == 2 and len(err.splitlines()) == 1 and err.startswith("optevo: error: "), err


def test_export_carries_a_tuned_lr_multiplier(tmp_path, capsys):
    """``--lr-multiplier X`` makes X times the program's lr unit the default learning_rate
    (optax's units: signum's ``lr * 0.001`` is folded in): the module then trains as the
    program at X times its lr input (checked against the library's reference path)."""
    import importlib.util

    import jax.numpy as jnp
    import numpy as np

    from optevo.dsl.export import to_optax
    from optevo.dsl.hyper import lr_unit
    from optevo.dsl.library import find_program
    out = tmp_path / "m.py"
    assert main(["export", "signum", "-o", str(out), "--lr-multiplier", "4"]) == 0
    spec = importlib.util.spec_from_file_location("m", out)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    params = {"w": jnp.arange(3.0)}
    grads = {"w": jnp.array([0.5, -1.0, 2.0])}
    unit = lr_unit(find_program("signum"))[0]
    assert unit == 0.0001  # signum's lr * 0.0001
    tx, ref, one = mod.discovered(), to_optax(find_program("signum"), 4.0), mod.discovered(unit)
    u, _ = tx.update(grads, tx.init(params), params)
    r, _ = ref.update(grads, ref.init(params), params)
    u1, _ = one.update(grads, one.init(params), params)
    np.testing.assert_allclose(u["w"], r["w"], rtol=1e-6)
    np.testing.assert_allclose(u["w"], 4 * u1["w"], rtol=1e-6)  # signum: update ~ lr
    assert f"learning_rate={4 * unit!r}" in out.read_text()
    rc, err = _err(capsys, "export", "signum", "--lr-multiplier", "nan")
    assert rc == 2 and "finite number > 0" in err


def test_presets_by_name_from_any_directory(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["search", "quick", "--check"]) == 0
    assert "name: quick" in capsys.readouterr().out
    rc, err = _err(capsys, "search", "quik", "--check")
    assert rc == 2 and "not a packaged preset (" in err and "quick" in err


@pytest.mark.parametrize("command", ["eval", "search", "show", "export", "simplify", "funnel",
                                     "discover", "analyze", "l2l"])
def test_every_help_shows_defaults_and_an_example(capsys, command):
    with pytest.raises(SystemExit) as e:
        main([command, "--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0 and "example:\n  optevo " + command in out
    if command in ("eval", "search", "export"):
        assert "(default: " in out

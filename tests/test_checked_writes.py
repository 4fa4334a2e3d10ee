"""Writes checked (issue #19): a PNG, an exported module, a weights file or a report that
could not be written is one line naming the path, exit status 2, and no success line; never a
printed path for a file that is not there, and never a torn file.

What used to happen: ``plot -o NAME`` printed NAME while matplotlib wrote ``NAME.png``
(``-o /dev/full`` "succeeded" and left ``/dev/full.png``); a full disk or a file-size limit
was ``optevo: error: No space left on device`` without the path, and ``export`` left the
part it had written. A full disk is made here without root: a link to ``/dev/full`` (every
write fails with ENOSPC; the check refuses it as a device) and a file-size limit
(``RLIMIT_FSIZE``: a write to a regular file fails part-way with EFBIG).
"""

import contextlib
import json
import os
import resource
import stat
import subprocess
import sys

import numpy as np
import pytest

from optevo.dsl import parse
from optevo.dsl.canon import program_hash
from optevo.dsl.errors import OptevoError
from optevo.dsl.library import library_program
from optevo.search.cli import main

PNG = b"\x89PNG\r\n\x1a\n"
LIMIT = 1000  # bytes: every figure and module below is larger


@pytest.fixture
def run(tmp_path):
    """A run directory written by hand (two records and a config): nothing is trained."""
    d = tmp_path / "run"
    d.mkdir()
    recs = []
    for i, (text, loss) in enumerate([(library_program("adam_style").text(), 2.0),
                                      (library_program("lion").text(), 1.5)]):
        recs.append({"id": i, "parent": None if i == 0 else 0, "mutation": None,
                     "hash": program_hash(parse(text)), "program": text, "loss": loss,
                     "normalized": loss / 2.0, "stderr": 0.01, "diverged": False,
                     "cached": False, "worker": "w0", "seconds": 0.1, "time": float(i)})
    (d / "evaluations.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    (d / "config.yaml").write_text("search:\n  population: 2\n  tournament: 2\n")
    return d


@pytest.fixture
def full(tmp_path):
    """A path ending in .png (matplotlib adds none) that is a link to /dev/full."""
    p = tmp_path / "full.png"
    p.symlink_to("/dev/full")
    return p


@contextlib.contextmanager
def file_size_limit(n: int):
    """Writes past ``n`` bytes fail with EFBIG (Python ignores SIGXFSZ) in this process."""
    old = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (n, old[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, old)


def _cli(capsys, *argv):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def _one_error_line(rc, out, err, path):
    assert rc == 2, (out, err)
    assert err.startswith(f"optevo: error: {path}: ") and err.count("\n") == 1, err
    assert str(path) not in out, out  # no success line naming it


def _no_temp_files(d):
    assert not [p.name for p in d.iterdir() if p.name.endswith(".tmp")]


def test_plot_writes_exactly_the_path_it_prints(run, tmp_path, capsys):
    target = tmp_path / "progress"  # no suffix: a PNG all the same, at this very path
    rc, out, err = _cli(capsys, "plot", run, "-o", target)
    assert rc == 0 and out.strip() == str(target), (out, err)
    assert target.read_bytes().startswith(PNG)
    assert not (tmp_path / "progress.png").exists()


@pytest.mark.parametrize("kind", ["device", "directory"])
def test_plot_to_what_is_not_a_file_is_one_line(run, tmp_path, full, capsys, kind):
    (tmp_path / "afile").write_text("x")
    (tmp_path / "adir").mkdir()
    paths = {"device": [full],  # with root, a path under a regular file stands for read-only
             "directory": [tmp_path / "adir", tmp_path / "afile" / "p.png"]}[kind]
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o500)
    if kind == "directory" and not os.access(ro, os.W_OK):  # not root: a read-only directory
        paths.append(ro / "p.png")
    for path in paths:
        _one_error_line(*_cli(capsys, "plot", run, "-o", path), path)
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)  # the device is not replaced
    assert not list((tmp_path / "adir").iterdir()) and not (tmp_path / "adir.png").exists()
    assert not (tmp_path / "full.png.png").exists()


@pytest.mark.parametrize("command", ["plot", "export"])
def test_a_write_failing_part_way_is_one_line_and_leaves_no_file(run, tmp_path, command):
    """A file-size limit (EFBIG) in a real subprocess: the figure or module fails part-way."""
    path = tmp_path / ("p.png" if command == "plot" else "opt.py")
    argv = ["plot", run, "-o", path] if command == "plot" else \
        ["export", f"{run}:1", "-o", path]

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT, LIMIT))
    r = subprocess.run([sys.executable, "-m", "optevo.search.cli", *map(str, argv)],
                       preexec_fn=limit, capture_output=True, text=True, timeout=120)
    _one_error_line(r.returncode, r.stdout, r.stderr, path)
    assert "File too large" in r.stderr
    assert not path.exists()  # neither the file nor a torn part of it
    _no_temp_files(tmp_path)


def test_export_to_dev_full_is_one_line(run, tmp_path, capsys):
    rc, out, err = _cli(capsys, "export", f"{run}:1", "-o", "/dev/full")
    _one_error_line(rc, out, err, "/dev/full")
    assert "wrote" not in err


def test_analyze_out_on_a_full_disk_prints_no_plot_line(tmp_path, full, capsys):
    rc, out, err = _cli(capsys, "analyze", "lion", "--task", "quadratic", "--steps", "5",
                        "--out", full)
    _one_error_line(rc, out, err, full)
    assert "plot:" not in out


def test_reports_weights_and_discover_figures_name_the_path(tmp_path, full):
    from optevo.proxy_tasks.baselines import l2l
    from optevo.search.core.rundir import atomic_write
    from optevo.search.discover.plots import plot_funnel
    report = tmp_path / "report.md"  # funnel, ladder and discover reports: atomic_write
    report.write_text("the old report\n")
    with file_size_limit(LIMIT), pytest.raises(OptevoError) as e:
        atomic_write(report, "x" * (2 * LIMIT))
    assert str(e.value) == f"{report}: cannot write: File too large"
    assert report.read_text() == "the old report\n"  # untouched
    _no_temp_files(tmp_path)

    weights = tmp_path / "w.npz"
    weights.symlink_to("/dev/full")
    with pytest.raises(OptevoError, match=f"^{weights}: not a regular file"):
        l2l.save(weights, l2l.load())

    out = tmp_path / "d"
    out.mkdir()
    (out / "funnel.png").symlink_to("/dev/full")
    stages = [{"name": "s1", "rows": [{"candidate": "a", "baseline": False, "ratio": 0.9,
                                       "mean": 1.0, "diff_se": 0.1}]}]
    with pytest.raises(OptevoError, match=f"^{out / 'funnel.png'}: not a regular file"):
        plot_funnel(out, stages, "adamw")
    (out / "funnel.png").unlink()
    with file_size_limit(LIMIT), pytest.raises(OptevoError, match="File too large"):
        plot_funnel(out, stages, "adamw")
    assert not (out / "funnel.png").exists()
    assert plot_funnel(out, stages, "adamw").read_bytes().startswith(PNG)
    assert np.load(l2l.save(tmp_path / "w2.npz", l2l.load()))["meta_p"].shape == ()

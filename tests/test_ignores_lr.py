"""Programs that never read ``lr`` (issue #22): ``liveness.reads_lr`` judges it on the live
program; ``search.ignores_lr: reject`` refuses such children (counted as ``ignores_lr``),
``keep`` (the default) keeps them, flagged in the live display, ``show`` and the export."""

import collections

import numpy as np
import pytest

from optevo.dsl import parse
from optevo.dsl.canon import program_hash
from optevo.dsl.library import library, library_program
from optevo.dsl.liveness import reads_lr
from optevo.search import load_run, run
from optevo.search.core.config import config_from_dict
from optevo.search.core.mutations import Mutator
from optevo.search.core.progress import NO_LR, line


def _p(body: str):
    return parse("def train(w, g, m, v, lr):\n" + body + "  return update, m, v\n")


@pytest.mark.parametrize("name", sorted(library()))
def test_every_library_program_reads_lr(name):
    assert reads_lr(library_program(name))


@pytest.mark.parametrize("body,expected", [
    ("  update = g * 0.01\n", False),
    ("  update = lr * 2.0\n", True),
    ("  a = lr * 2.0\n  update = g * 0.5\n", False),  # the read is dead
    ("  lr = g * 0.5\n  update = lr * 2.0\n", False),  # lr reassigned before any read
    ("  m = interp(lr, m, 0.9)\n  update = g * m\n", True),  # through the state
    ("  v = lr * 2.0\n  update = g * 0.5\n", False),  # a state slot no update reads
])
def test_reads_lr(body, expected):
    assert reads_lr(_p(body)) is expected


def _children(ignores_lr: str, n: int = 300):
    mut = Mutator({"insert": 1.0, "delete": 1.0, "change_arg": 1.0, "scale_const": 1.0},
                  16, 100, ignores_lr=ignores_lr)
    rng, parent = np.random.default_rng(0), library_program("sgd")
    rejected = collections.Counter()
    kids = [mut(rng, parent, program_hash(parent), program_hash, rejected).child
            for _ in range(n)]
    return kids, rejected


def test_reject_refuses_lr_free_children_and_counts_them():
    kept, _ = _children("keep")
    assert any(not reads_lr(c) for c in kept)  # they do occur from SGD (the check can fail)
    refused, rejected = _children("reject")
    assert all(reads_lr(c) for c in refused) and rejected["ignores_lr"] > 0


def test_config_key_and_default():
    assert config_from_dict({}).search.ignores_lr == "keep"
    with pytest.raises(Exception, match="one of keep, reject"):
        config_from_dict({"search": {"ignores_lr": "drop"}})


def test_a_search_with_reject_logs_no_lr_free_child(tmp_path):
    cfg = {"seed": 1, "task": {"name": "quadratic", "steps": 20, "seeds": 2},
           "search": {"population": 6, "tournament": 2, "max_evals": 24, "start": "sgd",
                      "ignores_lr": "reject"},
           "workers": {"count": 0, "batch": 4},
           "holdout": {"top_k": 1, "seeds": 2, "baselines": []},
           "progress": {"enabled": False}}
    r = run(cfg, tmp_path / "run")
    assert all(reads_lr(parse(rec.program)) for rec in load_run(r.path).records())
    assert r.rundir.summary()["rejected_mutations"].get("ignores_lr", 0) > 0


def test_the_live_line_flags_a_best_that_ignores_lr():
    d = {"elapsed": 1.0, "trained": 3, "evals_per_s": 3.0, "cached": 0, "hit_rate": 0.0,
         "best": 0.5, "best_norm": 0.9, "median": 0.7, "rejected": 0, "invalid": 0,
         "restarts": 0, "eta": None, "best_ignores_lr": True}
    assert NO_LR in line(d) and NO_LR not in line({**d, "best_ignores_lr": False})


def test_the_report_table_and_show_flag_it():
    from optevo.search.core.holdout import table
    free = "def train(w, g, m, v, lr):\n  update = g * 0.1\n  return update, m, v\n"
    row = {"id": 7, "program": free, "simplified": free, "fitness": 0.5, "lr_scale": 1.0,
           "lr_at_edge": False, "weight_decay_factor": 0.0, "decay_added": True,
           "weight_decay_at_edge": False, "holdout_seeds": [1, 2], "holdout": 0.4,
           "holdout_stderr": 0.01, "diff": -0.1, "diff_stderr": 0.01, "diff_adamw": None,
           "diff_adamw_stderr": None}
    text = "\n".join(table([row]))
    assert f"| 7{NO_LR} |" in text
    sgd = {**row, "program": library_program("sgd").text()}
    assert NO_LR not in "\n".join(table([sgd]))


def test_show_flags_a_logged_program_that_ignores_lr(tmp_path, capsys):
    from optevo.search.core.views import show_run
    cfg = {"seed": 0, "task": {"name": "quadratic", "steps": 10, "seeds": 2},
           "search": {"population": 4, "tournament": 2, "max_evals": 4,
                      "start": str(_write(tmp_path))},
           "workers": {"count": 0, "batch": 2},
           "holdout": {"top_k": 1, "seeds": 2, "baselines": []},
           "progress": {"enabled": False}}
    r = run(cfg, tmp_path / "run")
    capsys.readouterr()
    show_run(r.path, 10)  # the start (id 0) never reads lr: it is flagged
    out = capsys.readouterr().out
    start = next(ln for ln in out.splitlines() if "  id 0  " in ln)
    assert NO_LR in start


def _write(tmp_path):
    p = tmp_path / "start.py"
    # its own decay term (so the search adds no lr-scaled decoupled decay), and no lr
    p.write_text("def train(w, g, m, v, lr):\n  update = g * 0.05\n  wd = w * 0.01\n"
                 "  update = update + wd\n  return update, m, v\n")
    return p

"""Each built-in task tells optimizers apart at its default settings: the AdamW start, SGD
and a poor program, each with its learning-rate scale tuned on the same grid and seeds,
reach mean losses whose gaps are clearly larger than the standard errors of those means.

This runs every task at its defaults (all its seeds, all its steps), so it is the slowest
non-Ray test; scripts/task_report.py prints the full tables (finer grid, Lion, signum)."""

import math

import pytest

from optevo.dsl.library import library_program
from optevo.proxy_tasks.evaluate import Evaluator

import importlib.util
import pathlib

_spec = importlib.util.spec_from_file_location(
    "task_report", pathlib.Path(__file__).parent.parent / "scripts" / "task_report.py")
task_report = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(task_report)

GRID = [2.0 ** k for k in range(-8, 9, 2)]


def z(a, b):
    return abs(a.loss - b.loss) / math.hypot(a.stderr, b.stderr)


# The search's proxy tasks (the funnel's larger stages are checked by the funnel's own tests).
PROXY_TASKS = ["digits_mlp", "text_lm", "quadratic", "rosenbrock"]


@pytest.mark.parametrize("name", PROXY_TASKS)
def test_task_separates_adamw_sgd_and_a_poor_program(name):
    ev = Evaluator(name)
    best = {label: ev.tune(prog, GRID).score for label, prog in [
        ("adamw", library_program("adam_style")), ("sgd", library_program("sgd")),
        ("poor", task_report.POOR)]}
    assert not any(s.diverged for s in best.values())
    pairs = [("adamw", "sgd"), ("adamw", "poor"), ("sgd", "poor")]
    gaps = {p: z(best[p[0]], best[p[1]]) for p in pairs}
    assert all(g > 2.0 for g in gaps.values()), (name, gaps, best)
    # and the start program is the better of AdamW / poor
    assert best["adamw"].loss < best["poor"].loss

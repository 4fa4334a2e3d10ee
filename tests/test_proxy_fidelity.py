"""scripts/experiments/proxy_fidelity.py's statistics helpers (no training): Spearman's rho with ties,
the bootstrap interval, and the suite score (geometric mean of loss ratios)."""

import importlib
import math
import pathlib
import sys

import numpy as np
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parent.parent / "scripts" / "experiments"))
pf = importlib.import_module("proxy_fidelity")


def test_ranks_average_ties_and_put_inf_last():
    assert pf.rankdata([10, 20, 20, 5]).tolist() == [2.0, 3.5, 3.5, 1.0]
    assert pf.rankdata([math.inf, 1.0, math.inf, math.nan]).tolist() == [3.0, 1.0, 3.0, 3.0]


def test_spearman_known_values():
    assert pf.spearman([1, 2, 3, 4, 5], [5, 6, 7, 8, 7.5]) == pytest.approx(0.9)
    assert pf.spearman([1, 2, 3], [30, 20, 10]) == pytest.approx(-1.0)
    # ties: ranks x = [1, 2.5, 2.5, 4], y = [1, 2, 3, 4] -> rho = 4.5 / sqrt(4.5 * 5)
    assert pf.spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(4.5 / math.sqrt(22.5))
    # a diverged program (inf) ranks last, as the worst fitness
    assert pf.spearman([0.1, 0.2, math.inf], [1.0, 2.0, 3.0]) == pytest.approx(1.0)
    assert math.isnan(pf.spearman([1, 1, 1], [1, 2, 3]))


def test_spearman_matches_scipy_when_installed():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 5, 30), rng.normal(size=30)
    assert pf.spearman(x, y) == pytest.approx(stats.spearmanr(x, y)[0])


def test_bootstrap_interval_brackets_a_strong_correlation():
    x = np.arange(40.0)
    lo, hi = pf.bootstrap_spearman(x, x + np.random.default_rng(1).normal(0, 3, 40), 200)
    assert 0.8 < lo <= hi <= 1.0


def test_suite_score_is_the_geometric_mean_of_ratios():
    losses = [[1.0, 2.0, 0.5, 1.0],    # task 1, baseline 1.0
              [10.0, 40.0, 10.0, math.inf]]  # task 2, baseline 10.0
    got = pf.suite_score(losses, [1.0, 10.0])
    assert got[:3] == pytest.approx([1.0, math.sqrt(2.0 * 4.0), math.sqrt(0.5)])
    assert got[3] == math.inf  # diverged on one task: the worst fitness

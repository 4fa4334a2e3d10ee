"""``progress.png`` keeps the result readable (issue #22): its y-axis follows the best so far
and the held-out figures, not a population of junk children (a median 20x the start and
more), which once squeezed the best line flat at the bottom of a log axis up to 1000.

The run directory is written by hand; nothing is trained."""

import json

import numpy as np
import pytest

from optevo.search.core import plot


def _rec(i, loss):
    return {"id": i, "parent": None if i == 0 else 0, "mutation": None if i == 0 else "insert",
            "hash": f"h{i}", "program": "def train(w, g, lr):\n  return g\n", "loss": loss,
            "normalized": None if loss is None else loss / 2.0, "stderr": 0.01,
            "diverged": loss is None, "cached": False}


@pytest.fixture
def junk_run(tmp_path):
    """The start (normalized 1.0), a few good children down to 0.6, and 60 junk children at
    20x to 1000x the start: the population median sits near 100."""
    rng = np.random.default_rng(0)
    fit = [1.0] + list(rng.uniform(20, 1000, 60))
    fit[10], fit[30], fit[50] = 0.9, 0.7, 0.6
    d = tmp_path / "run"
    d.mkdir()
    records = [_rec(i, 2.0 * f) for i, f in enumerate(fit)] + [_rec(61, None)]
    (d / "evaluations.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (d / "config.yaml").write_text("search:\n  population: 8\n  tournament: 2\n")
    rows = [{"id": 0, "hash": "h0", "holdout": 2.0}, {"id": 50, "hash": "h50", "holdout": 1.3}]
    (d / "holdout.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return d


def _drawn(monkeypatch, run_dir):
    """The figure ``plot_progress`` saves (its axes, before they are closed)."""
    seen = {}

    def save(fig, out):
        seen["ax"] = fig.axes[0]
        seen["ylim"] = fig.axes[0].get_ylim()
        return out
    monkeypatch.setattr(plot, "save_figure", save)
    plot.plot_progress(run_dir)
    return seen


def test_axis_follows_the_best_and_held_out_not_the_median(junk_run, monkeypatch):
    s = plot.progress_series(junk_run)
    assert np.median(s["median"][8:]) > 20  # the junk population: far above the start
    assert s["best"][-1] == pytest.approx(0.6) and s["holdout"] == [(51, 0.65)]
    lo, hi = _drawn(monkeypatch, junk_run)["ylim"]
    assert 0.6 / 1.3 < lo < 0.6  # just below the best
    assert 1.0 < hi <= 3.0  # a few times the start, not the junk's hundreds
    assert hi / lo < 10  # the best line spans a readable part of the axis


def test_axis_widens_for_a_held_out_figure_above_the_start(junk_run, monkeypatch):
    rows = [{"id": 0, "hash": "h0", "holdout": 2.0}, {"id": 50, "hash": "h50", "holdout": 8.0}]
    (junk_run / "holdout.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    lo, hi = _drawn(monkeypatch, junk_run)["ylim"]
    assert 4.0 < hi < 10 and lo < 0.6  # the held-out star (4x the start) is in view


def test_clipped_evaluations_are_counted_on_the_figure(junk_run, monkeypatch):
    ax = _drawn(monkeypatch, junk_run)["ax"]
    texts = " ".join(t.get_text() for t in ax.texts)
    assert "above the axis: 57 of 61 finite evaluations" in texts
    assert "population median up to" in texts
    labels = ax.get_legend_handles_labels()[1]
    assert any(x.startswith("evaluations above") for x in labels)


def test_y_range_without_finite_values():
    assert plot.y_range([float("inf")] * 3) == (pytest.approx(1 / 1.15), 2.5)
    lo, hi = plot.y_range([1.0, 0.5, 0.01], [0.02])
    assert lo == pytest.approx(0.01 / 1.15) and hi == 2.5

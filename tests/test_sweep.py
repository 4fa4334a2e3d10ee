"""``optevo sweep`` (issue #22): lr x weight-decay maps beside optax AdamW's, each cell a real
training of the optimizer at that setting, and a batch-size ablation with every point tuned."""

import json
import math

import numpy as np
import pytest

from optevo.dsl.decay import at_factor
from optevo.dsl.library import library_program
from optevo.proxy_tasks.evaluate import Evaluator
from optevo.search.cli import main


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "s"
    rc = main(["sweep", "lion", "--task", "digits_mlp", "--steps", "30", "--seeds", "2",
               "--lr-range", "-1", "1", "--wd-range", "-1", "0", "--batch-sizes", "16,32",
               "--fresh", "2", "--out", str(out)])
    assert rc == 0
    return out


def test_the_maps_are_what_training_gives(swept):
    data = json.loads((swept / "sweep.json").read_text())
    names = [g["name"] for g in data["grids"]]
    assert names == ["optax_adamw", "lion"]
    lion = data["grids"][1]
    assert lion["wd"] == [0.0, 1 / 3, 1.0] and len(lion["lr"]) == 3
    assert lion["lr"][2] / lion["lr"][1] == pytest.approx(2.0)
    # the cell at decay x1 (Lion's own 0.01) and the middle lr is Lion trained there
    ev = Evaluator("digits_mlp", steps=30, seeds=[0, 1])
    got = ev.evaluate([at_factor(library_program("lion"), 1.0)[0]], lr_scales=lion["lr"][1])
    assert lion["loss"][2][1] == pytest.approx(got[0].loss, rel=1e-6)
    # decay off is Lion without its decay term: another figure (the map can tell them apart)
    off = ev.evaluate([at_factor(library_program("lion"), 0.0)[0]], lr_scales=lion["lr"][1])
    assert lion["loss"][0][1] == pytest.approx(off[0].loss, rel=1e-6)
    assert lion["loss"][0][1] != lion["loss"][2][1]
    md = (swept / "sweep.md").read_text()
    assert "| lion |" in md and (swept / "sweep.png").stat().st_size > 0


def test_the_batch_ablation_has_every_point_tuned(swept):
    data = json.loads((swept / "sweep.json").read_text())
    rows = data["batch"]
    assert sorted({(r["batch"], r["name"]) for r in rows}) == [
        (16, "lion"), (16, "optax_adamw"), (32, "lion"), (32, "optax_adamw")]
    for r in rows:
        assert r["holdout"] is None or math.isfinite(r["holdout"])
        assert r["lr_scale"] is not None and r["weight_decay_factor"] is not None
    adamw = [r for r in rows if r["name"] == "optax_adamw"]
    assert all(r["diff_adamw"] == 0 for r in adamw)
    assert (swept / "batch.png").exists()
    losses = {r["batch"]: r["holdout"] for r in rows if r["name"] == "lion"}
    assert not np.isclose(losses[16], losses[32])  # each batch size really trained


@pytest.mark.parametrize("argv, message", [
    (["--lr-range", "3", "1"], "LO <= HI"),
    (["--batch-sizes", "16,x"], "integers separated by commas"),
    (["--seeds", "0"], "--seeds must be at least 1"),
])
def test_bad_flags_are_one_line(argv, message, capsys, tmp_path):
    rc = main(["sweep", "lion", "--task", "digits_mlp", "--out", str(tmp_path / "x"), *argv])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and "Traceback" not in err

"""What an optimizer costs next to AdamW (issue #22): floats of state per parameter (its
live slots) in ``show``, the report and the export; a step timed against optax AdamW's by
``show --time`` (measured, never asserted: only that it was measured)."""

import pytest

from optevo.dsl.codegen import to_module_source
from optevo.dsl.library import library_program
from optevo.search.cli import main
from optevo.search.core.cost import state_text, step_time


@pytest.mark.parametrize("name, n", [("lion", 1), ("adamw", 2), ("sgd", 0), ("muon", 1)])
def test_state_per_parameter(name, n):
    text = state_text(library_program(name))
    assert text.startswith(f"state: {n} float") and text.endswith("optax AdamW: 2")
    assert f"{n} float{'s' if n != 1 else ''} per parameter (optax AdamW keeps 2)" in \
        to_module_source(library_program(name))


def test_step_time_is_measured_against_adamw():
    d = step_time(library_program("lion"), reps=3, width=64, layers=2)
    assert d["step_s"] > 0 and d["adamw_step_s"] > 0 and d["parameters"] == 2 * (64 * 64 + 64)
    assert d["ratio"] == pytest.approx(d["step_s"] / d["adamw_step_s"])


def test_show_states_the_cost(capsys):
    assert main(["show", "lion", "--time"]) == 0
    out = capsys.readouterr().out
    assert "# state: 1 float per parameter (m); optax AdamW: 2" in out
    assert "x optax AdamW's" in out


def test_export_states_the_cost(capsys, tmp_path):
    assert main(["export", "adamw", "-o", str(tmp_path / "a.py"), "--time"]) == 0
    err = capsys.readouterr().err
    assert "# state: 2 floats per parameter (m, v); optax AdamW: 2" in err
    assert "x optax AdamW's" in err

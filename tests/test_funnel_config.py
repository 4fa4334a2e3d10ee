"""The funnel config: one-line errors naming file, line and key; the shipped config loads and
round-trips through the saved funnel.json form."""

import json
from pathlib import Path
from textwrap import dedent

import pytest

from optevo.search.core.yaml_config import ConfigError
from optevo.search.funnel.config import FunnelConfig, load_funnel_config

ROOT = Path(__file__).resolve().parents[1]
GOOD = """
workers: 0
baselines:
  optax_adamw: {optax: adamw, learning_rate: 1.0e-3}
  start: {program: adam_style}
defaults:
  tune_seeds: 1
  eval_seeds: 2
stages:
  - name: s1
    task: digits_mlp
    steps: 10
    options: {hidden: 8}
"""


def error(tmp_path, text) -> str:
    path = tmp_path / "bad.yaml"
    path.write_text(dedent(text).lstrip("\n"))
    with pytest.raises(ConfigError) as info:
        load_funnel_config(path)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(f"{path}:"), msg
    return msg[len(str(path)):]


def test_good_config_and_inherited_defaults(tmp_path):
    path = tmp_path / "good.yaml"
    path.write_text(GOOD)
    cfg = load_funnel_config(path)
    st = cfg.stages[0]
    assert (st.tune_seeds, st.eval_seeds, st.lr_range, st.lr_ratio) == (1, 2, (-4, 4), 2.0)
    assert st.task_options() == {"hidden": 8, "steps": 10} and cfg.reference == "optax_adamw"


@pytest.mark.parametrize("old,new,expect", [
    ("    task: digits_mlp", "    taks: digits_mlp",
     ":10: unknown key 'stages[0].taks'; allowed: name, task, "),
    ("    task: digits_mlp", "    task: digits_mpl",
     ":10: stages[0].task: expected one of binary_regression, deep_linear, diagonal_scales, "
     "digits_cnn, "),
    ("  eval_seeds: 2", "  eval_seeds: 2\n  lr_range: [1, 3]",
     ":8: defaults.lr_range: expected two integers [lo, hi] with lo <= 0 <= hi"),
    ("    steps: 10", "    steps: 10\n    wd_range: [0, -1]",
     ":12: stages[0].wd_range: expected two integers [lo, hi]"),
    ("  tune_seeds: 1\n  eval_seeds: 2", "  tune_seeds: 2\n  eval_seeds: 3",  # inherited
     ":7: stages[0].eval_seeds: must be a multiple of tune_seeds"),
    ("learning_rate: 1.0e-3", "learning_rat: 1.0e-3",
     ":3: baselines.optax_adamw: optax adamw: unknown hyperparameter(s) ['learning_rat']"),
    ("{program: adam_style}", "{program: adam_styl}",
     ":4: baselines.start.program: expected a library program"),
    ("optax: adamw,", "optax: adam,", ":3: baselines.optax_adamw: unknown optax baseline 'adam'"),
    ("options: {hidden: 8}", "options: {hiden: 8}",
     ":12: stages[0].options.hiden: unknown option 'hiden' of task digits_mlp"),
    ("workers: 0", "workers: 0\nreference: optax_lion",
     ":2: reference: expected a baseline name (optax_adamw, start), got 'optax_lion'"),
])
def test_errors_name_file_line_and_key(tmp_path, old, new, expect):
    assert old in GOOD
    msg = error(tmp_path, GOOD.replace(old, new, 1))
    assert msg.startswith(expect), msg
    if "taks" in new:
        assert msg.endswith("(did you mean task?)")


def test_stage_list_and_duplicates(tmp_path):
    assert error(tmp_path, "stages: []\n") == \
        ":1: stages: expected a non-empty list of stages, got an empty list"
    two = GOOD + "  - {name: s1, task: digits_mlp}\n"
    assert error(tmp_path, two).startswith(":13: stages[1].name: stage names must be distinct")


def test_shipped_config_loads_and_round_trips():
    cfg = load_funnel_config(ROOT / "configs" / "funnel.yaml")
    assert [s.name for s in cfg.stages] == ["proxy", "lm64", "lm256"]
    assert cfg.stages[1].eval_seeds == 4 and cfg.stages[1].tune_seeds == 2  # defaults
    saved = json.loads(json.dumps(cfg.to_json()))  # as written to funnel.json
    assert "defaults" not in saved and saved["stages"][0]["lr_range"] == [-4, 4]
    assert FunnelConfig.from_json(saved) == cfg

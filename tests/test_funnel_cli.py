"""``optevo funnel`` run small (issue #22): ``--set`` any funnel key (``stages.KEY`` in every
stage, ``stages.NAME.KEY`` in one), ``--seeds N``, ``--minutes M`` (stop, keep every job,
``--resume``); stage headers name the seeds used; the table says which candidates beat the
reference beyond noise, apart from the pass rule."""

import json

from optevo.search.cli import main
from optevo.search.funnel.config import load_funnel_config
from optevo.search.funnel.report import stage_markdown


def _err(capsys, *argv):
    rc = main([str(a) for a in argv])
    return rc, capsys.readouterr()


def test_set_and_seeds_reach_the_saved_config_and_minutes_stops(tmp_path, capsys):
    out = tmp_path / "f"
    rc, cap = _err(capsys, "funnel", "lion", "--out", out, "--workers", "0", "--seeds", "2",
                   "--set", "stages.lm256.steps=20", "--set", "pass_margin_se=1",
                   "--minutes", "0.0001")
    assert rc == 0, cap.err
    assert "stopped after --minutes" in cap.out and f"--resume {out}" in cap.out
    cfg = json.loads((out / "funnel.json").read_text())["config"]
    assert [(s["tune_seeds"], s["eval_seeds"]) for s in cfg["stages"]] == [(2, 2)] * 3
    assert cfg["stages"][2]["steps"] == 20 and cfg["stages"][1]["steps"] == 150
    assert cfg["pass_margin_se"] == 1.0
    rc, cap = _err(capsys, "funnel", "--resume", out, "--set", "pass_margin_se=0")
    assert rc == 2 and "--resume takes no" in cap.err


def test_a_bad_set_is_one_line_naming_the_flag(tmp_path, capsys):
    rc, cap = _err(capsys, "funnel", "lion", "--out", tmp_path / "f", "--set", "pass_margin=1")
    assert rc == 2 and "--set pass_margin" in cap.err and "pass_margin_se" in cap.err
    assert "Traceback" not in cap.err and len(cap.err.strip().splitlines()) == 1
    rc, cap = _err(capsys, "funnel", "lion", "--out", tmp_path / "g", "--set",
                   "stages.lm64.eval_seeds=3")
    assert rc == 2 and "multiple of tune_seeds" in cap.err


def test_stage_header_names_the_seeds_it_uses():
    cfg = load_funnel_config(None, {"stages.tune_seeds": "2", "stages.eval_seeds": "6"})
    text = stage_markdown(cfg, 0, cfg.stages[0], [])
    header = text.splitlines()[0]
    assert "tuned on seeds 0..1, trained on 6 fresh seeds" in header
    assert "16 seeds" not in header  # the task's own default, which the funnel does not use


def test_the_table_separates_passing_from_beating_beyond_noise():
    cfg = load_funnel_config()
    base = {"baseline": False, "lr_mult": 1.0, "lr_edge": False, "wd_factor": 0.0,
            "wd_edge": False, "diverged": False, "mean": 1.0, "std": 0.1, "ratio": 0.99,
            "beats_reference": True, "passes": True, "n": 4, "n_diverged": 0}
    rows = [dict(base, candidate="noisy", diff=-0.0062, diff_se=0.0144),
            dict(base, candidate="clear", diff=-0.05, diff_se=0.01)]
    lines = {ln.split("|")[2].strip(): ln for ln in stage_markdown(cfg, 0, cfg.stages[0], rows)
             .splitlines() if ln.startswith("| ") and ln.split("|")[1].strip().isdigit()}
    assert lines["noisy"].rstrip(" |").endswith("| no | yes")
    assert lines["clear"].rstrip(" |").endswith("| yes | yes")

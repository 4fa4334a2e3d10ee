"""``optevo ladder``: the checks' verdicts on known figures, the mutants it adds for check
(d), and one real (tiny) ladder end to end, resumed without new jobs."""

import json
import math

import numpy as np
import yaml

from optevo.dsl import parse
from optevo.dsl.canon import program_hash
from optevo.search.funnel.candidates import make_candidates, mutant_candidates
from optevo.search.funnel.config import config_from_dict
from optevo.search.funnel.ladder import (KNOWN, MIN_COMPETITIVE, MIN_PROGRAMS,
                                         check_agreement, check_known)

CFG = {"workers": 0,
       "baselines": {"optax_adamw": {"optax": "adamw", "learning_rate": 1e-3,
                                     "weight_decay": 1e-4}},
       "defaults": {"tune_seeds": 2, "eval_seeds": 2, "lr_range": [-1, 1], "wd_range": [0, 0],
                    "max_extend": 0},
       "stages": [{"name": "a", "task": "digits_mlp", "steps": 20, "batch_size": 16,
                   "options": {"hidden": 8}},
                  {"name": "b", "task": "digits_mlp", "steps": 40, "batch_size": 32,
                   "options": {"hidden": 8}}]}


def _row(diff, se, mean=1.0):
    return {"diff": diff, "diff_se": se, "mean": mean}


def _verdicts(rows, batch=32):
    """Verdicts with ``rows`` on both stages (the second at ``batch``)."""
    cfg = config_from_dict({**CFG, "stages": [CFG["stages"][0], {**CFG["stages"][1],
                                                                  "batch_size": batch}]},
                           "<test>")
    return {c["check"]: c["status"] for c in check_known(cfg, [rows, rows])}


def test_checks_a_to_c_follow_the_paired_differences_and_their_errors():
    good = {"optax_adamw": {"mean": 1.0}, "sgd": _row(0.5, 0.1), "momentum": _row(0.31, 0.1),
            "muon": _row(-0.21, 0.1), "lion": _row(-0.09, 0.1), "signum": _row(0.2, 0.1)}
    assert _verdicts(good) == {"a": "pass", "b": "pass", "c": "pass"}
    # momentum only 2.9 SE behind; muon only 1.9 SE ahead; lion 1.1 SE ahead
    bad = {**good, "momentum": _row(0.29, 0.1), "muon": _row(-0.19, 0.1),
           "lion": _row(-0.11, 0.1)}
    assert _verdicts(bad) == {"a": "fail", "b": "fail", "c": "fail"}
    # a missing (diverged) optimizer, and no upper stage at batch <= 64, cannot be judged
    assert _verdicts({**good, "sgd": {"mean": None}}, batch=128) == \
        {"a": "not judged", "b": "pass", "c": "not judged"}


def test_check_d_needs_enough_programs_and_a_high_rank_correlation():
    cfg = config_from_dict(CFG, "<test>")
    rng = np.random.default_rng(0)
    n = MIN_PROGRAMS + 5
    x = 1.0 + rng.uniform(0, 0.2, n)
    lower = {f"p{i}": {"mean": v} for i, v in enumerate(x)}
    lower["optax_adamw"] = {"mean": 1.1}
    same = {k: {"mean": 2 * v["mean"] + 0.001 * rng.normal()} for k, v in lower.items()}
    d = check_agreement(cfg, lower, same)
    assert d["status"] == "pass" and d["figures"]["rho"] > 0.95
    assert d["figures"]["competitive"] >= MIN_COMPETITIVE
    lo, hi = d["figures"]["rho_95"]
    assert lo <= d["figures"]["rho"] <= hi
    shuffled = dict(zip(same, rng.permutation(list(same.values()))))
    assert check_agreement(cfg, lower, shuffled)["status"] == "fail"
    few = {k: v for k, v in list(same.items())[:10]}
    d = check_agreement(cfg, lower, few)
    assert d["status"] == "not judged" and "too few" in d["why"]
    # a program diverged on a stage (no mean) is counted apart, not ranked
    d = check_agreement(cfg, lower, {**same, "p0": {}})
    assert d["figures"]["diverged"] == 1 and d["figures"]["n"] == n


def test_mutants_are_distinct_deterministic_and_of_both_parents():
    cfg = config_from_dict(CFG, "<test>")
    cands = make_candidates(cfg, list(KNOWN), 1, say=lambda s: None)
    a = mutant_candidates(6, 3, cands)
    b = mutant_candidates(6, 3, cands)
    assert [c.text for c in a] == [c.text for c in b] and len(a) == 6
    hashes = {program_hash(parse(c.text)) for c in cands if not c.optax}
    assert not hashes & {program_hash(parse(c.text)) for c in a}
    assert len({program_hash(parse(c.text)) for c in a}) == 6
    assert {c.name.split("-")[1] for c in a} == {"adam_style", "muon"}
    assert [c.text for c in mutant_candidates(6, 4, cands)] != [c.text for c in a]


def test_a_tiny_ladder_judges_every_check_and_resumes_without_new_jobs(tmp_path, capsys):
    from optevo.search.cli import main
    cfg = tmp_path / "ladder.yaml"  # one stage (compiles dominate): (d) cannot be judged
    cfg.write_text(yaml.safe_dump({**CFG, "stages": CFG["stages"][1:]}))
    out = tmp_path / "l1"
    code = main(["ladder", str(cfg), "--mutants", "2", "--out", str(out), "--json"])
    res = json.loads(capsys.readouterr().out)
    assert code == (0 if res["passed"] else 1)
    assert [c["check"] for c in res["checks"]] == ["a", "b", "c", "d"]
    assert set(res["rows"]) >= set(KNOWN) | {"optax_adamw"}
    assert res["checks"][3]["status"] == "not judged"  # one stage: nothing to agree with
    assert res["checks"][2]["status"] != "not judged"  # (c): the only stage, at batch 32
    sgd = res["rows"]["sgd"][-1]
    assert math.isfinite(sgd["diff"]) and sgd["diff_se"] > 0
    assert (out / "ladder.md").read_text().count("| (") == 4
    n_jobs = len((out / "results.jsonl").read_text().splitlines())
    main(["ladder", "--resume", str(out), "--json"])
    assert json.loads(capsys.readouterr().out)["checks"] == res["checks"]
    assert len((out / "results.jsonl").read_text().splitlines()) == n_jobs
    assert main(["ladder", "--resume", str(out), "--mutants", "3"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("optevo: error:") and err.count("\n") == 1
    # grown with --extra: the finished jobs stay, only the new program's jobs are run, and a
    # program the ladder already holds (by what it computes) is skipped
    old = (out / "results.jsonl").read_text()
    main(["ladder", "--resume", str(out), "--extra", "addsign", "lion", "--json"])
    grown = json.loads(capsys.readouterr().out)
    assert set(grown["rows"]) == set(res["rows"]) | {"addsign"}
    assert {k: grown["rows"][k] for k in res["rows"]} == res["rows"]
    text = (out / "results.jsonl").read_text()
    assert text.startswith(old) and len(text.splitlines()) > n_jobs
    assert {json.loads(line)["candidate"] for line in text[len(old):].splitlines()} == \
        {"addsign"}


def test_funnel_estimate_applies_keep_after_the_stage_that_sets_it():
    from optevo.search.funnel.ladder import funnel_estimate
    cfg = config_from_dict({**CFG, "workers": 2, "stages": [
        CFG["stages"][0], {**CFG["stages"][1], "keep": 3},
        {**CFG["stages"][1], "name": "c"}]}, "<test>")
    stages = [{"s_per_optimizer": x} for x in (10.0, 100.0, 1000.0)]
    est = funnel_estimate(cfg, stages, n_baselines=5, n_candidates=6)
    assert est["seconds_per_stage"] == [55.0, 550.0, 4000.0]
    assert est["seconds"] == 4605.0

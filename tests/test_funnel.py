"""Funnel selection: tuning plan, weight-decay sites, optax baselines, kill + resume, Ray."""

import json
import math
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml

from optevo.dsl import parse
from optevo.dsl.library import library_program
from optevo.search.funnel.candidates import Candidate
from optevo.search.funnel.config import WD_OFF, config_from_dict
from optevo.search.funnel.plan import job_key, plan

TINY = {
    "workers": 0,
    "defaults": {"tune_seeds": 1, "eval_seeds": 2, "lr_ratio": 4.0, "lr_range": [-1, 1],
                 "wd_ratio": 10.0, "wd_range": [-1, 0], "max_extend": 1},
    "stages": [
        {"name": "s1", "task": "digits_mlp", "steps": 60, "batch_size": 16,
         "options": {"hidden": 8}},
        {"name": "s2", "task": "digits_cnn", "steps": 12, "batch_size": 4,
         "options": {"c1": 2, "c2": 2, "hidden": 8}},
    ],
}
PROGRAMS = [f"configs/programs/{n}.py" for n in ("lion", "sgd", "rmsprop")]


def _fake(loss_of_k, stage, cand, j=0):
    """Results where the tuning loss at lr point k is loss_of_k(k) and eval seeds are done."""
    res = {}
    for k in range(-6, 7):
        for jj in [*range(-6, 7), WD_OFF]:
            for g in ("t", "e0", "e1"):
                res[job_key(stage.name, cand.name, k, jj, g)] = {
                    "losses": [loss_of_k(k) + 0.01 * abs(jj - j)], "diverged": [False]}
    return res


def test_plan_grows_the_grid_at_an_edge_and_flags_an_unsettled_optimum():
    cfg = config_from_dict(TINY, "<test>")
    st = cfg.stages[0]
    cand = Candidate("p", "", False, False, True, "test")
    _, dec = plan(st, cand, _fake(lambda k: abs(k - 1), st, cand))  # optimum at the edge k=1
    assert (dec["lr_k"], dec["lr_edge"], dec["lr_span"]) == (1, False, [-1, 2])
    _, dec = plan(st, cand, _fake(lambda k: -k, st, cand))  # keeps improving: at the edge
    assert (dec["lr_k"], dec["lr_edge"], dec["lr_span"]) == (2, True, [-1, 2])
    _, dec = plan(st, cand, _fake(lambda k: math.inf, st, cand))  # all diverge: go lower
    assert (dec["lr_k"], dec["lr_edge"]) == (-2, True)
    _, dec = plan(st, cand, _fake(lambda k: abs(k), st, cand, j=-1))
    assert (dec["lr_k"], dec["wd_j"], dec["wd_edge"], dec["wd_span"]) == (0, -1, False, [-1, 0])
    _, dec = plan(st, cand, _fake(lambda k: abs(k), st, cand, j=3))  # wants more decay
    assert (dec["wd_j"], dec["wd_edge"], dec["wd_span"]) == (1, True, [-1, 1])
    _, dec = plan(st, cand, _fake(lambda k: abs(k), st, cand, j=WD_OFF))  # decay only hurts
    assert (dec["wd_j"], dec["wd_factor"], dec["wd_edge"]) == (WD_OFF, 0.0, False)
    missing, dec = plan(st, cand, {})
    assert dec is None and missing == [job_key("s1", "p", k, 0, "t") for k in (-1, 0, 1)]


def test_config_errors_are_one_line_usage_errors(tmp_path):
    from optevo.search.cli import main
    bad = dict(TINY, stages=[dict(TINY["stages"][0], taks="x")])
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    r = subprocess.run([sys.executable, "-m", "optevo.search.cli", "funnel", PROGRAMS[0], "--config",
                        str(path)], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "stages[0].taks" in r.stderr
    with pytest.raises(SystemExit):
        main(["funnel", "--bogus"])


def test_optax_baselines_are_deterministic():
    from optevo.proxy_tasks import get_task
    from optevo.proxy_tasks.baselines.specs import spec_text
    from optevo.proxy_tasks.optax_engine import OptaxEngine
    oe = OptaxEngine(get_task("digits_mlp", steps=60, batch_size=16, hidden=8))
    a = oe.run([spec_text("adamw"), spec_text("adamw", weight_decay=0.1)], [0], 4.0)
    b = oe.run([spec_text("adamw"), spec_text("adamw", weight_decay=0.1)], [0], 4.0)
    for x, y in zip(a, b):
        assert np.array_equal(x.losses, y.losses) and np.all(np.isfinite(x.losses))
    assert a[0].losses[0] != a[1].losses[0]
    assert len(oe._compiled) == 1  # hyperparameters are arguments: one compiled loop


def test_larger_tasks_train_and_schedules_warm_up():
    import jax
    from optevo.proxy_tasks import get_task, schedules
    lm = get_task("lm_transformer", context=8, width=8, layers=1, heads=1, n_val_windows=16)
    p = lm.init_params(jax.random.PRNGKey(0))
    assert abs(float(jax.jit(lm.val_loss)(p)) - math.log(lm.vocab_size)) < 0.1  # ~uniform
    loss, g = jax.jit(jax.value_and_grad(lm.loss))(p, lm.train_batch(jax.random.PRNGKey(1)))
    assert math.isfinite(float(loss)) and all(np.all(np.isfinite(x)) for x in jax.tree.leaves(g))
    words = get_task("lm_transformer", context=8, width=8, layers=1, heads=1, n_val_windows=16,
                     words=300)
    assert words.vocab_size == 300 and "words" in words.describe()
    ids = np.asarray(words.train_ids)
    counts = np.bincount(ids, minlength=300)
    assert ids.max() == 299 and counts[1] > 20 * np.median(counts[1:])  # Zipfian classes
    pw = words.init_params(jax.random.PRNGKey(0))
    assert abs(float(jax.jit(words.val_loss)(pw)) - math.log(300)) < 0.1
    with pytest.raises(ValueError, match="words"):
        get_task("lm_transformer", words=1)
    cnn = get_task("digits_cnn", c1=2, c2=2, hidden=8)
    assert 2.0 < float(jax.jit(cnn.val_loss)(cnn.init_params(jax.random.PRNGKey(0)))) < 3.0
    f = schedules.make({"kind": "warmup_cosine", "warmup": 0.1}, total_steps=100)
    v = [float(f(t, 100)) for t in (0, 4, 9, 10, 55, 99)]
    assert v[0] == pytest.approx(0.1) and v[1] == pytest.approx(0.5) and v[2] == 1.0
    assert v[3] == 1.0 and v[4] == pytest.approx(0.5, abs=1e-6) and v[5] < 1e-3


def _cfg(tmp_path, **over):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump({**TINY, **over}))
    return str(path)


def _funnel(args, **kw):
    return subprocess.Popen([sys.executable, "-m", "optevo.search.cli", "funnel", *args], **kw)


def _tables(out):
    names = sorted(n for n in os.listdir(out) if n.startswith("stage-"))
    return {n: open(os.path.join(out, n)).read() for n in names}


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    """An uninterrupted in-process funnel on the tiny stages."""
    tmp = tmp_path_factory.mktemp("funnel")
    ref = tmp / "ref"
    p = _funnel([*PROGRAMS, "--config", _cfg(tmp), "--out", str(ref)],
                stdout=subprocess.DEVNULL)
    assert p.wait(180) == 0
    return ref


def test_lion_program_and_optax_lion_agree(reference_run):
    stages = json.loads((reference_run / "summary.json").read_text())["stages"]
    rows = {r["candidate"]: r for r in stages[0]["rows"]}
    assert rows["lion"]["lr_mult"] == rows["optax_lion"]["lr_mult"]
    np.testing.assert_allclose(rows["lion"]["losses"], rows["optax_lion"]["losses"], rtol=1e-5)


@pytest.mark.slow  # 50-150 s; the funnel's resume is also run by test_discover (killed twice)
def test_kill_mid_stage_then_resume_on_ray_workers_gives_the_same_tables(tmp_path,
                                                                         reference_run):
    """An in-process funnel killed with SIGKILL mid-stage, resumed on 2 local Ray workers,
    writes the same tables as the uninterrupted in-process run, running no job twice."""
    cfg = _cfg(tmp_path)
    ref, cut = reference_run, tmp_path / "cut"
    full = _tables(ref)
    assert list(full) == ["stage-1-s1.md", "stage-2-s2.md"]
    n_s2 = sum('"stage":"s2"' in x for x in (ref / "results.jsonl").read_text().splitlines())

    p = _funnel([*PROGRAMS, "--config", cfg, "--out", str(cut)], stdout=subprocess.DEVNULL)
    results = cut / "results.jsonl"
    t0 = time.time()
    while time.time() - t0 < 180 and p.poll() is None:
        if results.exists() and results.read_text().count('"stage":"s2"') >= 2:
            break
        time.sleep(0.01)
    p.send_signal(signal.SIGKILL)
    p.wait()
    before = results.read_text().splitlines()
    done_s2 = sum('"stage":"s2"' in x for x in before)
    assert 2 <= done_s2 < n_s2 - 4 and not (cut / "stage-2-s2.md").exists()  # mid-stage
    with open(results, "a") as f:
        f.write('{"key": "s2|torn')  # a line cut by the kill
    r = subprocess.run([sys.executable, "-m", "optevo.search.cli", "funnel", "--resume", str(cut),
                        "--workers", "2"], capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-2000:]
    assert _tables(cut) == full
    lines = results.read_text().splitlines()
    keys = [json.loads(x)["key"] for x in lines]
    assert len(keys) == len(set(keys))  # no finished job was run again
    assert {json.loads(x)["worker"] for x in lines[len(before):]} == {"w0", "w1"}
    assert (cut / "funnel.png").exists() and "Wall time" in (cut / "report.md").read_text()


@pytest.mark.parametrize("name, text, message", [
    ("funnel.json", '{"bad": [1', "funnel.json: damaged (JSONDecodeError"),
    ("funnel.json", "[1, 2]", "funnel.json: damaged (TypeError"),
    ("timing.json", '{"elapsed": "x"}', "timing.json: damaged (TypeError"),
    ("results.jsonl", '{"key": 1\n', "results.jsonl:1: unreadable line")])
def test_resume_of_a_damaged_funnel_directory_is_one_line(reference_run, tmp_path, name,
                                                          text, message):
    import shutil
    out = tmp_path / "f"
    shutil.copytree(reference_run, out)
    (out / ".lock").unlink(missing_ok=True)
    (out / name).write_text(text)
    p = subprocess.run([sys.executable, "-m", "optevo.search.cli", "funnel", "--resume",
                        str(out), "--workers", "0"], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and message in p.stderr, p.stderr
    assert "Traceback" not in p.stdout + p.stderr


def test_a_funnel_saved_in_the_earlier_format_resumes_without_running_a_job(reference_run,
                                                                            tmp_path):
    """``results.jsonl`` keyed ``stage|candidate|k|j|group`` and a ``funnel.json`` with the
    top-level ``workers, address, pin_cores`` keys (before jobs had one id scheme and the
    funnel took the search's workers mapping): resume reads both, runs no job again and
    writes the same tables."""
    import shutil
    out = tmp_path / "old"
    shutil.copytree(reference_run, out)
    (out / ".lock").unlink(missing_ok=True)
    for name in os.listdir(out):
        if name.startswith("stage-") or name in ("report.md", "summary.json"):
            (out / name).unlink()
    results = out / "results.jsonl"
    recs = [json.loads(x) for x in results.read_text().splitlines()]
    results.write_text("".join(json.dumps({**r, "key": "|".join(str(r[k]) for k in (
        "stage", "candidate", "lr_k", "wd_j", "group"))}) + "\n" for r in recs))
    saved = json.loads((out / "funnel.json").read_text())
    w = saved["config"].pop("workers")
    saved["config"].update(workers=w["count"], address=w["address"], pin_cores=w["pin_cores"])
    (out / "funnel.json").write_text(json.dumps(saved))
    p = subprocess.run([sys.executable, "-m", "optevo.search.cli", "funnel", "--resume",
                        str(out), "--workers", "0"], capture_output=True, text=True,
                       timeout=240)
    assert p.returncode == 0, p.stderr[-2000:]
    assert _tables(out) == _tables(reference_run)
    assert len(results.read_text().splitlines()) == len(recs)  # no job ran again


def test_a_funnel_whose_jobs_meant_the_earlier_tuning_is_refused(reference_run, tmp_path):
    """Before decay was tuned everywhere in passes, a job key (k, j) meant another program
    setting: such a funnel is refused with one line rather than resumed into a mixture."""
    import shutil
    out = tmp_path / "older"
    shutil.copytree(reference_run, out)
    (out / ".lock").unlink(missing_ok=True)
    saved = json.loads((out / "funnel.json").read_text())
    del saved["tuning"]
    (out / "funnel.json").write_text(json.dumps(saved))
    p = subprocess.run([sys.executable, "-m", "optevo.search.cli", "funnel", "--resume",
                        str(out), "--workers", "0"], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 2 and p.stderr.count("\n") == 1
    assert "funnel.json: this funnel was started by an optevo that tuned" in p.stderr


def test_keep_passes_on_only_the_best_that_beat_the_reference():
    from optevo.search.funnel.report import stage_markdown, stage_rows
    cfg = config_from_dict({**TINY, "stages": [{**TINY["stages"][0], "keep": 2}]}, "<test>")
    st = cfg.stages[0]

    def dec(name, loss, baseline=False):
        return {"candidate": name, "baseline": baseline, "lr_mult": 1.0, "lr_edge": False,
                "wd_factor": 1.0, "wd_edge": False, "lr_span": [0, 0], "wd_span": [0, 0],
                "tune_loss": loss, "decay_added": False, "losses": [loss, loss + 0.01],
                "diverged": [False, False]}
    decisions = {"optax_adamw": dec("optax_adamw", 1.0, True), "a": dec("a", 0.7),
                 "b": dec("b", 0.8), "c": dec("c", 0.9), "d": dec("d", 1.1)}
    rows = {r["candidate"]: r for r in stage_rows(cfg, st, decisions)}
    assert [n for n, r in rows.items() if r["passes"]] == ["a", "b"]
    assert rows["c"]["cut"] and rows["c"]["beats_reference"] and not rows["d"]["cut"]
    assert "no (beats it; keep 2)" in stage_markdown(cfg, 0, st, list(rows.values()))

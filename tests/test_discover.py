"""``optevo discover``: searches, one more from the best, held-out re-checks, the funnel,
survivors exported, one report; killed with SIGKILL after the first search and again inside
the funnel, then resumed without redoing finished work."""

import json
import signal
import subprocess
import sys
import time

import pytest
import yaml

SEARCH = {
    "seed": 2,
    "task": {"name": "digits_mlp", "steps": 25, "seeds": 2,
             "options": {"hidden": 8, "batch_size": 16}},
    "search": {"population": 8, "tournament": 3, "max_evals": 12, "max_length": 16},
    "workers": {"count": 0, "batch": 3},
    "holdout": {"top_k": 1, "seeds": 2, "baselines": []},  # (their re-check: test_api)
    "progress": {"enabled": False},
}
FUNNEL = {  # one small stage, as tests/test_funnel.py's TINY
    "workers": 0, "top_k": 2,
    "defaults": {"tune_seeds": 1, "eval_seeds": 2, "lr_ratio": 4.0, "lr_range": [-1, 1],
                 "wd_ratio": 10.0, "wd_range": [0, 0], "max_extend": 1},
    "stages": [{"name": "s1", "task": "digits_mlp", "steps": 40, "batch_size": 16,
                "options": {"hidden": 8}}],
}


def _cli(*args):
    return [sys.executable, "-m", "optevo.search.cli", "discover", *map(str, args)]


def _kill_when(p, path, ready, timeout=240):
    """SIGKILL ``p`` as soon as ``ready(path)`` holds (or ``p`` ends, a test failure)."""
    t0 = time.time()
    while time.time() - t0 < timeout and p.poll() is None:
        if path.exists() and ready(path):
            break
        time.sleep(0.02)
    assert p.poll() is None, "finished before it could be killed"
    p.send_signal(signal.SIGKILL)
    p.wait()


@pytest.fixture(scope="module")
def configs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("discover")
    (tmp / "search.yaml").write_text(yaml.safe_dump(SEARCH))
    (tmp / "funnel.yaml").write_text(yaml.safe_dump(FUNNEL))
    return tmp


def test_killed_twice_and_resumed_it_redoes_nothing_and_reports(configs):
    out = configs / "out"
    p = subprocess.Popen(_cli(configs / "search.yaml", "--searches", 2, "--workers", 0,
                              "--funnel-config", configs / "funnel.yaml", "--out", out),
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _kill_when(p, out / "search-1" / "summary.json", lambda f: True)
    log1 = (out / "search-1" / "evaluations.jsonl").read_bytes()
    assert not (out / "search-best").exists()

    # resume; kill again once the funnel has finished a few jobs
    p = subprocess.Popen(_cli("--resume", out), stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    results = out / "funnel" / "results.jsonl"
    _kill_when(p, results, lambda f: f.read_text().count("\n") >= 3)
    with open(results, "a") as f:
        f.write('{"key": "s1|torn')  # a line cut by the kill
    done = results.read_text().splitlines()[:-1]
    logs = {n: (out / n / "evaluations.jsonl").read_bytes()
            for n in ("search-1", "search-2", "search-best")}

    r = subprocess.run(_cli("--resume", out), capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "search-1: finished before" in r.stdout and "search-best: finished" in r.stdout
    assert (out / "search-1" / "evaluations.jsonl").read_bytes() == log1
    for n, b in logs.items():  # no search ran again
        assert (out / n / "evaluations.jsonl").read_bytes() == b, n
    lines = results.read_text().splitlines()
    keys = [json.loads(x)["key"] for x in lines]
    assert len(keys) == len(set(keys)) and lines[:len(done)] == done  # no job ran twice

    state = json.loads((out / "discover.json").read_text())
    assert {"search-1", "search-2", "best_start", "search-best", "funnel", "report"} \
        <= set(state["done"])
    start = (out / "best-start.py").read_text()
    assert "def train" in start
    assert str(out / "best-start.py") in (out / "search-best" / "config.yaml").read_text()
    report = (out / "report.md").read_text()
    for text in ("## Searches", "one more from the best", "## Funnel", "## Survivors",
                 "progress.png", "funnel.png", "vs tuned AdamW"):
        assert text in report, text
    assert (out / "progress.png").stat().st_size > 0 and (out / "funnel.png").exists()
    exported = sorted((out / "survivors").glob("*.py"))
    assert exported and all("def discovered(" in f.read_text() for f in exported)
    compile(exported[0].read_text(), str(exported[0]), "exec")  # valid Python, not run


def test_bad_out_and_conflicting_flags_are_one_line_errors(configs, tmp_path, capsys):
    from optevo.search.cli import main
    for args, text in [(("--resume", tmp_path / "nope"), "no such discover directory"),
                       (("--resume", tmp_path), "not a discover directory"),
                       (("--resume", tmp_path, "--searches", 3), "--resume takes only"),
                       ((), "give a CONFIG"),
                       ((configs / "search.yaml", "--searches", 0), "--searches must be"),
                       ((configs / "search.yaml", "--out", configs), "not empty")]:
        assert main(["discover", *map(str, args)]) == 2, args
        err = capsys.readouterr().err
        assert err.startswith("optevo: error:") and err.count("\n") == 1 and text in err, \
            (args, err)


def test_new_discover_checks_options_and_splits_the_minutes(tmp_path):
    from optevo.search.core.config import config_from_dict
    from optevo.search.core.yaml_config import ConfigError
    from optevo.search.core.rundir import RunDirError
    from optevo.search.discover.runner import Discover, new_discover
    from optevo.search.funnel.config import config_from_dict as funnel_from_dict
    cfg, fcfg = config_from_dict(SEARCH), funnel_from_dict(FUNNEL, "<test>")
    with pytest.raises(ConfigError, match="--minutes"):
        new_discover(tmp_path / "a", cfg, fcfg, 2, minutes=0)
    out = new_discover(tmp_path / "b", cfg, fcfg, 2, minutes=3)
    with pytest.raises(RunDirError, match="already holds a discover run"):
        new_discover(out, cfg, fcfg, 2)
    d = Discover(out)
    c1, c3 = d.search_config(1), d.search_config(3)
    assert c1.search.time_limit == 60.0 and c1.search.max_evals == 12  # the config caps it
    assert (c1.seed, c3.seed) == (2, 4)
    uncapped = config_from_dict({**SEARCH, "search": {"population": 8, "tournament": 3}})
    out = new_discover(tmp_path / "c", uncapped, fcfg, 1, minutes=1, workers=0)
    c = Discover(out).search_config(1)
    assert c.search.time_limit == 30.0 and c.search.max_evals is None

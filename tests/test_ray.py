"""The search on a real local Ray cluster: workers agree with in-process evaluation, a
killed worker is replaced, and a driver killed with SIGKILL resumes without losing or
duplicating logged children."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import yaml

from optevo.dsl.library import library
from optevo.search.core.config import config_from_dict
from optevo.search.core.jobs import Job, JobId
from optevo.search.core.workers import InProcessPool, RayPool, eval_spec, wait_all

CFG = {
    "seed": 5,
    "task": {"name": "digits_mlp", "steps": 150, "seeds": 2,
             "options": {"hidden": 8, "batch_size": 16}},
    "search": {"population": 12, "tournament": 4, "max_evals": 400, "max_length": 16},
    "workers": {"count": 2, "batch": 2},
    "holdout": {"top_k": 2, "seeds": 2, "baselines": []},  # (their re-check: test_api)
    "checkpoint": {"every_seconds": 1.0},
    "progress": {"enabled": True},
}


def test_ray_workers_agree_with_in_process_evaluation():
    cfg = config_from_dict(CFG)
    progs = [Job(JobId.child(i), p.text()) for i, p in enumerate(library().values())][:6]
    local = {r.id: r for r in InProcessPool(eval_spec(cfg)).evaluation.run(progs)}
    pool = RayPool(eval_spec(cfg), 2)
    try:
        for k in range(0, len(progs), 2):
            pool.submit(progs[k:k + 2])
        got = {r.id: r for r in wait_all(pool, 300)}
    finally:
        pool.shutdown()
    assert sorted(got, key=str) == sorted(local, key=str)
    assert {r.worker for r in got.values()} == {"w0", "w1"}
    for i in got:
        np.testing.assert_allclose(got[i].losses, local[i].losses, rtol=1e-6)


def _write_cfg(tmp_path, **search):
    d = json.loads(json.dumps(CFG))
    d["search"].update(search)
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(d))
    return path


def _start(args, log):
    return subprocess.Popen([sys.executable, "-m", "optevo.search.cli", *args],
                            stdout=log, stderr=subprocess.STDOUT)


def _lines(path):
    if not path.exists():
        return []
    return [json.loads(x) for x in path.read_text().splitlines() if x.endswith("}")]


def _wait_for(cond, timeout, proc=None):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if cond():
            return True
        if proc is not None and proc.poll() is not None:
            return False
        time.sleep(0.2)
    return False


def _ray_orphans():
    """Ray processes whose parent died (a SIGKILLed driver leaves its agents behind)."""
    out = subprocess.run(["ps", "-eo", "pid,ppid,cmd"], capture_output=True, text=True).stdout
    pids = set()
    for line in out.splitlines()[1:]:
        pid, ppid, cmd = line.split(None, 2)
        if ppid == "1" and ("ray::" in cmd or "/ray/" in cmd):
            pids.add(int(pid))
    return pids


def _reap(pids):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _trained(recs):
    return sum(not r["cached"] for r in recs)


def test_killed_workers_are_replaced_and_search_completes(tmp_path):
    cfg = _write_cfg(tmp_path)
    run = tmp_path / "run"
    with open(tmp_path / "out.txt", "w") as out:
        proc = _start(["search", str(cfg), "--run-dir", str(run)], out)
        try:
            ok = _wait_for(lambda: (run / "workers.json").exists()
                           and len(json.loads((run / "workers.json").read_text())) == 2
                           and len(_lines(run / "evaluations.jsonl")) >= 20, 240, proc)
            assert ok, (tmp_path / "out.txt").read_text()
            before = _trained(_lines(run / "evaluations.jsonl"))
            pids = json.loads((run / "workers.json").read_text())
            # both: the search can only finish on a replacement (one killed alone may not
            # get work before the other worker ends the search: it is not waited for)
            for pid in pids.values():
                os.kill(pid, signal.SIGKILL)
            assert proc.wait(timeout=300) == 0, (tmp_path / "out.txt").read_text()
        finally:
            if proc.poll() is None:
                proc.kill()
    recs = _lines(run / "evaluations.jsonl")
    assert before < 400, "the worker was killed after the search had finished"
    assert _trained(recs) == 400
    assert len({r["id"] for r in recs}) == len(recs)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["worker_restarts"] >= 2
    after = json.loads((run / "workers.json").read_text())
    assert after.keys() == pids.keys() and any(after[k] != pids[k] for k in pids)
    assert (run / "report.md").exists()


def test_sigkill_driver_then_resume_loses_and_duplicates_nothing(tmp_path):
    cfg = _write_cfg(tmp_path)
    run = tmp_path / "run"
    orphans_before = _ray_orphans()
    with open(tmp_path / "out1.txt", "w") as out:
        proc = _start(["search", str(cfg), "--run-dir", str(run)], out)
        try:
            ok = _wait_for(lambda: (run / "checkpoint.json").exists()
                           and _trained(_lines(run / "evaluations.jsonl")) >= 60, 240, proc)
            assert ok, (tmp_path / "out1.txt").read_text()
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
    _reap(_ray_orphans() - orphans_before)  # the killed driver's Ray agents
    killed = (run / "evaluations.jsonl").read_text()
    killed_recs = _lines(run / "evaluations.jsonl")
    assert _trained(killed_recs) < 400, "the driver finished before it could be killed"
    with open(tmp_path / "out2.txt", "w") as out:
        proc = _start(["search", "--resume", str(run)], out)
        assert proc.wait(timeout=300) == 0, (tmp_path / "out2.txt").read_text()
    recs = _lines(run / "evaluations.jsonl")
    # nothing logged before the kill was lost or rewritten
    full = killed[: killed.rfind("\n") + 1]
    assert (run / "evaluations.jsonl").read_text().startswith(full)
    # nothing duplicated: every child id once, every trained hash trained once
    ids = [r["id"] for r in recs]
    assert len(ids) == len(set(ids))
    trained_hashes = [r["hash"] for r in recs if not r["cached"]]
    assert len(trained_hashes) == len(set(trained_hashes))
    assert _trained(recs) == 400
    # lost: only children that were in flight (never logged): at most workers x depth x batch
    # trained children, plus cached children waiting on them
    logged_before = {r["id"] for r in killed_recs}
    max_id_before = max(logged_before)
    missing = set(range(max_id_before + 1)) - set(ids)
    assert len(missing) <= 2 * 2 * 2 * 4, missing


def test_a_ray_shut_down_on_purpose_leaves_no_raylet_watch_running():
    """The funnel's pattern: the first stage's pool starts the local Ray (and watches its
    raylet), later stages' pools join it, the last one shuts it down. The first pool's watch
    must stop too: left running, it saw the raylet go and ended ``optevo discover`` 20 s
    later, after its funnel and before its report."""
    import threading

    from optevo.search.core import raylet
    cfg = config_from_dict(CFG)
    first = RayPool(eval_spec(cfg), 1)
    assert first.watch is not None and raylet._ACTIVE == [first.watch]
    first.release_workers()
    last = RayPool(eval_spec(cfg), 1)  # Ray is up: this pool watches nothing
    assert last.watch is None
    last.shutdown()
    time.sleep(2.5)  # a watch polls every second
    assert raylet._ACTIVE == []
    assert not [t for t in threading.enumerate() if t.name == "raylet-watch"]

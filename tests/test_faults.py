"""Faults around a real 2-worker search, each run as a user would (a subprocess): a user's
task module reaches the Ray workers (``--import``); a plugin that fails, in the driver or only
in the workers, stops the search within seconds with its error as one line; SIGTERM stops it
cleanly (a final checkpoint, the report, every Ray process of the run ended) and it resumes;
a lost local Ray (its raylet killed) ends the driver within a minute with one line, and the
run resumes in-process."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CFG = {
    "seed": 5,
    "task": {"name": "digits_mlp", "steps": 60, "seeds": 2,
             "options": {"hidden": 8, "batch_size": 16}},
    "search": {"population": 12, "tournament": 4, "max_evals": 40000, "max_length": 16},
    "workers": {"count": 2, "batch": 2},
    "holdout": {"top_k": 1, "seeds": 2, "baselines": []},  # (their re-check: test_api)
    "checkpoint": {"every_seconds": 1.0},
    "progress": {"enabled": False},
}
FAIL_IN_WORKERS = '''import sys
if "ray" in sys.modules:  # a Ray worker (the driver imports plugins before Ray)
    raise RuntimeError("this module cannot be imported in a worker")
'''


def _config(tmp_path, **changes):
    d = json.loads(json.dumps(CFG))
    for key, value in changes.items():
        node = d
        *path, last = key.split(".")
        for k in path:
            node = node[k]
        node[last] = value
    p = tmp_path / "cfg.yaml"
    p.write_text(yaml.safe_dump(d))
    return p


def _optevo(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "optevo.search.cli", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=kw.pop("cwd", None), **kw)


def _records(run):
    p = run / "evaluations.jsonl"
    return [json.loads(x) for x in p.read_text().splitlines() if x.endswith("}")] \
        if p.exists() else []


def _descendants(pid):
    """Live processes below ``pid`` (its Ray: gcs, raylet, agents, workers)."""
    out = subprocess.run(["ps", "-eo", "pid,ppid,stat"], capture_output=True,
                         text=True).stdout.split("\n")[1:]
    rows = [line.split() for line in out if line.strip()]
    kids, todo = set(), [pid]
    while todo:
        p = todo.pop()
        for c, pp, st in rows:
            if int(pp) == p and int(c) not in kids and not st.startswith("Z"):
                kids.add(int(c))
                todo.append(int(c))
    return kids


def _alive(pids):
    alive = set()
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] != "Z":
                    alive.add(p)
        except OSError:
            pass
    return alive


def _wait_for(cond, timeout, proc):
    t0 = time.time()
    while time.time() - t0 < timeout and proc.poll() is None:
        if cond():
            return True
        time.sleep(0.2)
    return False


def test_readme_task_with_two_ray_workers_completes(tmp_path):
    """The README's custom task, saved as configs/examples/my_task.py, in a real search."""
    cfg = _config(tmp_path, **{"search.max_evals": 24, "task": {
        "name": "my_regression", "steps": 40, "seeds": 2}})
    proc = _optevo("search", cfg, "--import", ROOT / "configs/examples/my_task.py",
                   "--run-dir", tmp_path / "run")
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    recs = _records(tmp_path / "run")
    assert sum(not r["cached"] for r in recs) == 24
    assert {json.loads((tmp_path / "run" / "workers.json").read_text())[w] for w in
            ("w0", "w1")}  # both Ray workers trained the user's task
    assert "plugins:" in (tmp_path / "run" / "config.yaml").read_text()


def test_plugin_failing_on_import_is_one_line_at_once(tmp_path):
    bad = tmp_path / "bad_task.py"
    bad.write_text("x = 1\nraise ValueError('broken task module')\n")
    t0 = time.time()
    proc = _optevo("search", _config(tmp_path), "--import", bad, "--run-dir", tmp_path / "r")
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2 and time.time() - t0 < 30
    assert out.strip().splitlines() == [
        f"optevo: error: --import: plugins: plugin {bad}: {bad}:2: ValueError: broken task "
        "module"]
    assert not (tmp_path / "r").exists()  # refused before anything was created


def test_plugin_failing_in_the_workers_stops_the_search_within_30s(tmp_path):
    mod = tmp_path / "worker_only.py"
    mod.write_text(FAIL_IN_WORKERS)
    t0 = time.time()
    proc = _optevo("search", _config(tmp_path), "--import", mod, "--run-dir", tmp_path / "r")
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 2, out
    assert time.time() - t0 < 30, out
    last = out.strip().splitlines()[-1]
    assert last == (f"optevo: error: a Ray worker failed to start: PluginError: plugin {mod}: "
                    f"{mod}:3: RuntimeError: this module cannot be imported in a worker"), out


def test_sigterm_stops_cleanly_ends_its_ray_and_resumes(tmp_path):
    run = tmp_path / "run"
    proc = _optevo("search", _config(tmp_path), "--run-dir", run)
    try:
        assert _wait_for(lambda: (run / "checkpoint.json").exists()
                         and len(_records(run)) >= 30, 240, proc), proc.communicate()[0]
        ray_pids = _descendants(proc.pid)
        assert len(ray_pids) >= 4  # gcs, raylet, agents, two workers
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, out
    assert "Traceback" not in out and "***" not in out and "SIGTERM received" not in out, out
    assert out.strip().splitlines()[-1] == (
        f"optevo search: stopped by SIGTERM before its budget was spent; continue with: "
        f"optevo search --resume {run}")
    time.sleep(2)
    assert not _alive(ray_pids), "Ray processes of the stopped run are still running"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["stopped_by_signal"] and summary["holdout_best_loss"] is not None
    assert (run / "report.md").exists()
    n = len(_records(run))
    state = json.loads((run / "checkpoint.json").read_text())
    assert state["log_lines"] == n  # the final checkpoint holds every logged child
    trained = sum(not r["cached"] for r in _records(run))
    proc = _optevo("search", "--resume", run, "--workers", "0", "--no-holdout",
                   "--max-evals", trained + 10)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    recs = _records(run)
    assert len({r["id"] for r in recs}) == len(recs) > n
    assert sum(not r["cached"] for r in recs) == trained + 10


def test_lost_raylet_ends_the_driver_with_one_line_and_the_run_resumes(tmp_path):
    run = tmp_path / "run"
    proc = _optevo("search", _config(tmp_path), "--run-dir", run)
    try:
        assert _wait_for(lambda: (run / "checkpoint.json").exists()
                         and len(_records(run)) >= 30, 240, proc), proc.communicate()[0]
        out = subprocess.run(["ps", "-wweo", "pid,ppid,cmd"], capture_output=True,
                             text=True).stdout
        raylet = [int(line.split()[0]) for line in out.splitlines()[1:]
                  if int(line.split()[1]) == proc.pid and "raylet/raylet" in line]
        assert len(raylet) == 1, [x for x in out.splitlines() if str(proc.pid) in x]
        t0 = time.time()
        os.kill(raylet[0], signal.SIGKILL)
        out, _ = proc.communicate(timeout=90)
        took = time.time() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 2 and took < 60, out
    ours = [line for line in out.splitlines() if line.startswith("optevo")]
    # (Ray itself prints the raylet's last log lines; ours is the one error line)
    assert ours[-1] == (f"optevo: error: the local Ray stopped (its raylet, pid {raylet[0]}, "
                        "is gone); nothing logged is lost: continue with optevo search "
                        f"--resume {run}"), out
    logged = _records(run)
    trained = sum(not r["cached"] for r in logged)
    proc = _optevo("search", "--resume", run, "--workers", "0", "--no-holdout",
                   "--max-evals", trained + 10)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    recs = _records(run)
    assert recs[:len(logged)] == logged and len({r["id"] for r in recs}) == len(recs)
    assert sum(not r["cached"] for r in recs) == trained + 10

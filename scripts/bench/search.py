"""Benchmark the search: throughput of the worker pools against the hardware's ceiling, and
the cache hit rate and rejection share of a search from AdamW.

1. A search from the AdamW start with 2 Ray workers for ``--minutes`` (default 5): its
   evaluations per second (steady state, after the workers' start-up), cache hit rate and
   share of rejected mutations.
2. The first ``--children`` children that search trained are evaluated again, identically
   batched, by: the in-process pool; 1 Ray worker; 2 Ray workers; and, as the ceiling, two
   independent processes each pinned to one core, each evaluating half, without Ray.
   Compilation is excluded everywhere (each evaluator is warmed up first).

    python scripts/bench/search.py                  # 5-minute search, 400 children
    python scripts/bench/search.py --minutes 1 --children 200
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from optevo.search.core.config import load_config
from optevo.search.core.run import run_search
from optevo.search.core.rundir import RunDir
from optevo.search.core.jobs import Job, JobId
from optevo.search.core.workers import (EvalSpec, Evaluation, InProcessPool, RayPool, eval_spec,
                                        wait_all)


def batches(children, size):
    return [children[i:i + size] for i in range(0, len(children), size)]


def jobs(batch):
    """``(id, program)`` pairs (JSON-friendly) as the pool's jobs."""
    return [Job(JobId.child(int(i)), text) for i, text in batch]


def time_pool(pool, work, warm):
    for b in warm:
        pool.submit(jobs(b))
    wait_all(pool)
    t0 = time.perf_counter()
    for b in work:
        while not pool.free_slots:
            pool_results.extend(pool.poll(1.0))
        pool.submit(jobs(b))
    pool_results.extend(wait_all(pool))
    return time.perf_counter() - t0


pool_results = []


def ceiling_worker(core: int, spec_path: str, work_path: str):
    """One pinned process: warm up on the first batch, then time its share."""
    os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")
    os.sched_setaffinity(0, {core})
    spec = EvalSpec(**{k: tuple(v) if isinstance(v, list) else v
                       for k, v in json.loads(Path(spec_path).read_text()).items()})
    work = json.loads(Path(work_path).read_text())
    ev = Evaluation(spec, f"core{core}")
    ev.run(jobs(work["warm"]))
    t0 = time.perf_counter()
    n = 0
    for b in work["batches"]:
        n += len(ev.run(jobs(b)))
    print(json.dumps({"core": core, "seconds": time.perf_counter() - t0, "n": n}))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", default="configs/search.yaml")
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--children", type=int, default=400)
    ap.add_argument("--run-dir", default=None)
    ap.add_argument("--ceiling-worker", nargs=3, metavar=("CORE", "SPEC", "WORK"),
                    help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.ceiling_worker:
        core, spec, work = args.ceiling_worker
        return ceiling_worker(int(core), spec, work)

    tmp = Path(tempfile.mkdtemp(prefix="bench-search-"))
    run_dir = Path(args.run_dir or tmp / "run")
    cfg = load_config(args.config, {"search.max_evals": None,
                                    "search.time_limit": args.minutes * 60,
                                    "workers.count": 2, "progress.enabled": False})
    print(f"== search from AdamW: {args.config}, 2 Ray workers, {args.minutes:g} min, "
          f"population {cfg.search.population}, tournament {cfg.search.tournament}, "
          f"task {cfg.task_label} ({cfg.tasks[0].seeds} seeds), batch {cfg.workers.batch}")
    with open(os.devnull, "w") as devnull:
        run_search(cfg, run_dir, out=devnull)
    recs = [r.to_json() for r in RunDir(run_dir).records()]
    state = RunDir(run_dir).read_checkpoint()
    trained = [r for r in recs if not r["cached"]]
    # steady state: from the moment both workers had reported, to the last result
    first = {}
    for r in trained:
        first.setdefault(r["worker"], r["time"])
    t_warm = max(first.values())
    steady = [r for r in trained if r["time"] > t_warm]
    rate = len(steady) / (trained[-1]["time"] - t_warm)
    rej = state["rejected"]
    n_rej = sum(rej.values())
    hits, misses = state["cache"]["hits"], state["cache"]["misses"]
    same = rej.get("same_hash", 0)
    valid = len(trained) + state["n_cached"] + same
    print(f"trained {len(trained)}, cached {state['n_cached']}, generated {state['n_generated']}"
          f", rejected {n_rej} {rej}")
    print(f"search throughput (steady state, driver included): {rate:.2f} evaluations/s")
    print(f"cache hit rate (children that differ from their parent and hit the cache): "
          f"{hits / max(hits + misses, 1):.1%}")
    print(f"valid mutants not trained (cache hit or same hash as the parent), the paper's "
          f"sense of 'not trained': {(state['n_cached'] + same) / max(valid, 1):.1%}")
    print(f"share of rejected mutations: {n_rej / max(n_rej + state['n_generated'], 1):.1%}")

    children = [(r["id"], r["program"]) for r in trained[1:args.children + 1]]
    spec = eval_spec(cfg)
    work = batches(children, cfg.workers.batch)
    warm = batches([(r["id"], r["program"]) for r in trained[:2 * cfg.workers.batch]],
                   cfg.workers.batch)
    n = len(children)
    print(f"\n== the same {n} children, batches of {cfg.workers.batch}, compile excluded")

    rates = {}
    t = time_pool(InProcessPool(spec), work, warm[:1])
    rates["in-process"] = n / t
    for k in (1, 2):
        pool = RayPool(spec, k)
        try:
            t = time_pool(pool, work, warm[:k])
        finally:
            pool.shutdown()
        rates[f"{k} Ray worker{'s' if k > 1 else ''}"] = n / t

    spec_path, paths = tmp / "spec.json", []
    spec_path.write_text(json.dumps(spec.__dict__))
    for core in (0, 1):
        p = tmp / f"work{core}.json"
        p.write_text(json.dumps({"warm": warm[0], "batches": work[core::2]}))
        paths.append(p)
    procs = [subprocess.Popen([sys.executable, __file__, "--ceiling-worker", str(core),
                               str(spec_path), str(p)], stdout=subprocess.PIPE, text=True)
             for core, p in zip((0, 1), paths)]
    outs = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
    rates["ceiling: 2 pinned processes, no Ray"] = n / max(o["seconds"] for o in outs)
    for k, v in rates.items():
        print(f"{k:40s} {v:8.2f} evaluations/s")
    ceiling = rates["ceiling: 2 pinned processes, no Ray"]
    print(f"RATIO 2 Ray workers / ceiling: {rates['2 Ray workers'] / ceiling:.1%}  (goal >= 95%)")
    print(f"RATIO search loop (2 workers, driver included) / ceiling: {rate / ceiling:.1%}")


if __name__ == "__main__":
    main()

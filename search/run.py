"""Run a configured search end to end: workers, evolution, held-out re-check, report."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .driver import Search, eval_spec
from .holdout import evaluate_holdout, report
from .progress import Progress, snapshot
from .rundir import CONFIG
from .workers import make_pool


def run_search(cfg, run_dir, resume: bool = False, save_config=None, out=sys.stdout) -> int:
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if save_config is not None:
        save_config(cfg, run_dir / CONFIG)
    print(f"optevo search: run directory {run_dir}", file=out, flush=True)
    pool = make_pool(eval_spec(cfg), cfg.workers.count, cfg.workers.address,
                     cfg.workers.pin_cores)
    progress = Progress(cfg.progress.enabled)
    search = Search(cfg, run_dir, pool, progress)
    try:
        search.execute(resume=resume)
        progress(search, force=True)
        progress.close()
        rows = evaluate_holdout(search.run, pool, cfg.holdout.top_k, cfg.holdout.seeds)
    finally:
        progress.close()
        pool.shutdown()
    d = snapshot(search)
    summary = {"name": cfg.name or run_dir.name, "task": cfg.task.name,
               "trained": d["trained"], "cached children": d["cached"],
               "cache hit rate": f"{d['hit_rate']:.1%}", "generated": d["generated"],
               "rejected mutations": dict(search.rejected), "restarts": d["restarts"],
               "worker restarts": pool.restarts, "elapsed": f"{d['elapsed']:.1f} s",
               "evaluations per second": f"{d['evals_per_s']:.2f}",
               "best fitness": f"{d['best']:.4f} ({d['best_norm']:.3f} x AdamW start)"}
    text = report(search.run, rows, summary)
    with open(run_dir / "summary.json", "w") as f:
        json.dump({**summary, "holdout": rows}, f, indent=1)
    print(text, file=out)
    return 0

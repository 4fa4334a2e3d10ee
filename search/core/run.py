"""Run a configured search end to end: workers, evolution, held-out re-check, report."""

from __future__ import annotations

import sys
from pathlib import Path

from .config import config_text
from .evolution import RegularizedEvolution, check_resume
from .holdout import evaluate_holdout, report, summary_figures
from .progress import Progress, snapshot
from .rundir import RunDir, RunDirError, exclusive
from .workers import eval_spec, make_pool


def check_new_run_dir(run_dir) -> Path:
    """``run_dir`` for a new run: refused if it already holds one."""
    run_dir = Path(run_dir)
    if RunDir(run_dir).exists():
        raise RunDirError(f"{run_dir}: already holds a run; resume it with "
                          f"--resume {run_dir} or choose another --run-dir")
    return run_dir


def run_search(cfg, run_dir, resume: bool = False, out=None) -> int:
    """Run (``resume``: continue) the search of ``cfg`` in ``run_dir``; a new run writes the
    resolved config first. Prints where it runs and the final report to ``out``."""
    out = out or sys.stdout  # looked up now: callers may redirect it
    with exclusive(run_dir):  # one writer per run directory, for the whole run
        if not resume:
            check_new_run_dir(run_dir)  # again, now that no other process can start one
        return _run_search(cfg, Path(run_dir), resume, out)


def _run_search(cfg, run_dir: Path, resume: bool, out) -> int:
    if resume:  # a damaged checkpoint or log is refused before any worker starts
        check_resume(RunDir(run_dir), cfg.search.population)
    else:
        RunDir(run_dir).write_config(config_text(cfg))
    print(f"optevo search: run directory {run_dir}", file=out, flush=True)
    pool = make_pool(eval_spec(cfg), cfg.workers.count, cfg.workers.address,
                     cfg.workers.pin_cores)
    progress = Progress(cfg.progress.enabled)
    search = RegularizedEvolution(cfg, run_dir, pool, progress)
    try:
        search.run(resume=resume)
        progress(search, force=True)
        progress.close()
        rows = evaluate_holdout(search.rundir, pool, cfg.holdout.top_k, cfg.holdout.seeds,
                                search.state.lr_scale, search.scorer)
    finally:
        progress.close()
        pool.shutdown()
    d, s = snapshot(search), search.state
    summary = {"name": cfg.name or run_dir.name, "task": cfg.task_label,
               "trained": d["trained"], "stopped_at_hurdle": s.n_stopped,
               "trained_fully": d["trained"] - s.n_stopped, "cache_hits": d["cached"],
               "cache_hit_rate": round(d["hit_rate"], 4),
               "fingerprint_hits": s.cache.fingerprint_hits, "generated": d["generated"],
               "rejected_mutations": dict(s.rejected), "restarts": d["restarts"],
               "worker_restarts": pool.restarts, "elapsed_seconds": round(d["elapsed"], 1),
               "evaluations_per_second": round(d["evals_per_s"], 3),
               "start_lr_scale": s.lr_scale, "tuned_start_fitness": s.baseline,
               "best_fitness": d["best"], "best_normalized": d["best_norm"],
               **summary_figures(rows)}
    text = report(search.rundir, rows, summary)
    search.rundir.write_summary({**summary, "holdout": rows})
    print(text, file=out)
    return 0

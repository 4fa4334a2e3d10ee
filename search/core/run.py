"""Run a configured search end to end: workers, evolution, held-out re-check, report.

A new run writes its config and its id (``run.json``) first. A search that cannot go on (the
start diverges at every lr multiplier, its tuned fitness is not positive and finite, or no
member of the population has a finite fitness: ``state.cannot_go_on``) stops: a final
checkpoint where there is a state to keep, ``summary.json`` saying why (``stopped``:
``cannot_go_on``, ``stop_reason``: the line), the report, and then the one-line error
(``state.CannotGoOn`` or ``tuning.SearchError``, exit status 2 in the CLI). Its resume says
the same line: before it starts anything, or, for a start that cannot be calibrated (no
checkpoint), after calibrating it again."""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

from .config import config_text
from .evolution import RegularizedEvolution
from .holdout import evaluate_holdout, report, summary_figures
from .mutations import Mutator
from .progress import Progress, snapshot
from .rundir import RunDir, RunDirError, exclusive
from .scoring import Scorer
from .state import CannotGoOn, check_resume, halt_line
from .stopping import Stop
from .tuning import SearchError
from .workers import WorkerError, eval_spec, make_pool
from .yaml_config import ConfigError, Loc


def build_search(cfg, run_dir, pool, progress=None) -> RegularizedEvolution:
    """The search of ``cfg`` in ``run_dir`` on ``pool``, its parts made from the config: the
    run directory, the scorer (a suite's weights; its baselines come from the calibration)
    and the mutator (mutation weights, limits, and the op table: ``search.matrix_ops``)."""
    s = cfg.search
    mutator = Mutator(dict(s.mutations), s.max_length, s.max_mutation_tries, s.matrix_ops,
                      s.ignores_lr)
    return RegularizedEvolution(cfg, RunDir(run_dir), pool, Scorer([t.weight for t in cfg.tasks]),
                                mutator, progress)


def check_new_run_dir(run_dir) -> Path:
    """``run_dir`` for a new run: refused if it already holds one."""
    run_dir = Path(run_dir)
    if RunDir(run_dir).exists():
        raise RunDirError(f"{run_dir}: already holds a run; resume it with "
                          f"--resume {run_dir} or choose another --run-dir")
    return run_dir


def run_search(cfg, run_dir, resume: bool = False, out=None, holdout: bool = True,
               on_progress=None) -> int:
    """Run (``resume``: continue) the search of ``cfg`` in ``run_dir``; a new run writes the
    resolved config first. Prints where it runs and the final report to ``out``. Ctrl-C or
    SIGTERM stops it cleanly (``stopping``): a final checkpoint, the report from what was
    trained (the held-out re-check too, unless ``holdout`` is False or a second signal comes),
    Ray ended; the return value is then 130 (SIGINT) or 143 (SIGTERM), else 0. A signal
    after the search spent its budget (in its last step or the re-check) raises
    ``KeyboardInterrupt``: no summary is written, and a resume runs the re-check; so does an
    error raised in the re-check once a signal came (JAX or Ray turned the interrupt into it)."""
    out = out or sys.stdout  # looked up now: callers may redirect it
    check_tasks(cfg)  # before anything is created
    with exclusive(run_dir):  # one writer per run directory, for the whole run
        if not resume:
            check_new_run_dir(run_dir)  # again, now that no other process can start one
        return _run_search(cfg, Path(run_dir), resume, out, holdout, on_progress)


def check_tasks(cfg) -> None:
    """What a run checks before it creates anything: every task of ``cfg`` built with its
    options and run abstractly (``check_task``), and the start program found and no longer
    than ``search.max_length``; each problem is one line."""
    from .views import load_ref
    from optevo.proxy_tasks import get_task
    from optevo.proxy_tasks.tasks.base import check_task
    for t in cfg.tasks:
        check_task(get_task(t.name, **t.options))
    from optevo.dsl.decay import tunable_decay
    start, added = tunable_decay(load_ref(cfg.search.start)[0])
    if len(start.stmts) > cfg.search.max_length:
        raise ConfigError(Loc("search.max_length"), f"the start program "
                          f"{cfg.search.start} has {len(start.stmts)} statements"
                          + (" (with the decoupled decay its calibration adds)" if added else "")
                          + f", more than search.max_length ({cfg.search.max_length}): no "
                          "child could be drawn; raise it")
    if cfg.search.seed_population:  # a missing or empty run is one line, before anything
        from .rundir import RunDir
        if not RunDir.existing(cfg.search.seed_population).nonempty_records():
            raise ConfigError(Loc("search.seed_population"), f"{cfg.search.seed_population}"
                              ": the run has no logged program to seed from")


def _run_search(cfg, run_dir: Path, resume: bool, out, holdout: bool, on_progress=None) -> int:
    if resume:  # a damaged checkpoint or log is refused before any worker starts
        check_resume(RunDir(run_dir), cfg.search.population)
    else:
        RunDir(run_dir).write_config(config_text(cfg))
        RunDir(run_dir).new_run_id()
    print(f"optevo search: run directory {run_dir}", file=out, flush=True)
    stop = Stop()
    pool = make_pool(eval_spec(cfg), cfg.workers.count, cfg.workers.address,
                     cfg.workers.pin_cores)
    progress = Progress(cfg.progress.enabled, callback=on_progress)
    search = build_search(cfg, run_dir, pool, progress)
    rows, failed, skipped, held, searched = [], None, None, 0.0, None
    try:
        with stop.installed():  # after Ray started: its own SIGTERM handler dumps a stack
            with stop.deferred():
                try:
                    search.run(resume=resume, stop=stop)
                except SearchError as e:  # the start cannot be calibrated: nothing to keep
                    failed, search.halted = e, str(e)
            if not failed:
                progress(search, force=True)
            progress.close()
            searched = snapshot(search)  # the search's figures: its clock stops here
            if search.stopped:
                print(f"optevo search: stopped by {stop.name}; checkpoint written"
                      + (", held-out re-check of what was trained (a second signal skips "
                         "it)" if holdout else ""), file=out, flush=True)
            if not holdout:
                skipped = "skipped (optevo search --no-holdout)"
            elif search.halted:
                skipped = "not run: the search cannot go on (see stop_reason)"
            else:
                if stop.requested and not search.stopped:  # (came as the loop wrote its
                    raise KeyboardInterrupt                # last checkpoint: not lost)
                t0, signals = time.perf_counter(), stop.count
                try:
                    rows = evaluate_holdout(search.rundir, pool, cfg.holdout.top_k,
                                            cfg.holdout.seeds, search.state.lr_scale,
                                            search.scorer, cfg.holdout.baselines)
                except Exception as e:  # an interrupt that JAX or Ray turned into another
                    if stop.count == signals:  # error; or a real one
                        raise
                    if not search.stopped:
                        raise KeyboardInterrupt from e
                    skipped = "skipped by a second signal"
                except KeyboardInterrupt:
                    if not search.stopped:
                        raise  # a finished search: no summary yet, --resume re-checks
                    skipped = "skipped by a second signal"
                finally:
                    held = time.perf_counter() - t0
                if skipped:
                    print("optevo search: held-out re-check skipped", file=out, flush=True)
    except WorkerError as e:  # workers or the local Ray lost: the checkpoint is written
        raise WorkerError(f"{e}; nothing logged is lost: continue with optevo search "
                          f"--resume {run_dir}") from None
    finally:
        progress.close()
        pool.shutdown()
    text = report(search.rundir, rows,
                  _summary(cfg, run_dir, search, pool, rows, held, searched), skipped)
    print(text, file=out)
    if failed:
        raise failed
    if search.halted:
        raise CannotGoOn(halt_line(run_dir, search.halted))
    if search.stopped:
        print(f"optevo search: stopped by {stop.name} before its budget was spent; continue "
              f"with: optevo search --resume {run_dir}", file=out, flush=True)
        return stop.exit_status
    return 0


def _summary(cfg, run_dir: Path, search, pool, rows, holdout_seconds: float = 0.0,
             searched=None) -> dict:
    """``summary.json`` (written here, with the held-out rows): numbers, not strings.
    ``elapsed_seconds`` is the search's (every session of it), ``holdout_seconds`` the
    held-out re-check's (0 where none ran), ``wall_seconds`` the two together; ``searched``
    is the search's :func:`snapshot` taken as it ended (its clock runs on: the re-check's time
    would count as the search's, as it did, and lower evaluations_per_second)."""
    d, s = searched or snapshot(search), search.state
    summary = {"name": cfg.name or run_dir.name, "task": cfg.task_label,
               "trained": d["trained"], "stopped_at_hurdle": s.n_stopped,
               "trained_fully": d["trained"] - s.n_stopped, "cache_hits": d["cached"],
               "cache_hit_rate": round(d["hit_rate"], 4),
               "fingerprint_hits": s.cache.fingerprint_hits, "generated": d["generated"],
               "rejected_mutations": dict(s.rejected), "restarts": d["restarts"],
               "worker_restarts": pool.restarts,
               "worker_nodes": list(getattr(pool, "nodes", [])),  # Ray node ids at the end
               "elapsed_seconds": round(d["elapsed"], 1),
               "holdout_seconds": round(holdout_seconds, 1),
               "wall_seconds": round(d["elapsed"] + holdout_seconds, 1),
               "evaluations_per_second": round(d["evals_per_s"], 3),
               "start_lr_scale": s.lr_scale, "tuned_start_fitness": s.baseline,
               "selection_best_id": s.best.id if s.best else None,
               "selection_best_fitness": d["best"], "selection_best_normalized": d["best_norm"],
               "stopped_by_signal": search.stopped, "stalled": search.stalled,
               "stopped": "cannot_go_on" if search.halted else "signal" if search.stopped
               else "stalled" if search.stalled else "budget",
               "stop_reason": search.halted,
               "run_id": s.run_id,
               **summary_figures(rows)}
    summary = {k: None if isinstance(v, float) and not math.isfinite(v) else v
               for k, v in summary.items()}  # JSON has no NaN: a start that never trained
    search.rundir.write_summary({**summary, "holdout": rows})
    return summary

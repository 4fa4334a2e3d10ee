"""Re-check a run's best programs on fresh seeds that selection never saw, against tuned
baselines.

Selection over thousands of candidates picks seed luck: in a prototype, gains of 8-22% on 2
fitness seeds shrank to 0-5% on fresh seeds. And a gain over an untuned start is no result:
a number means something only next to tuned baselines on the same fresh seeds. So at the
end of a run:

1. the top ``k`` distinct programs and the start program get their lr multiplier re-tuned
   around the search's calibrated one (``tuning.tune_program``, on the fitness seeds), then
   their weight decay at it (``tuning.tune_decay``: the program's decay constants scaled, or
   decoupled decay added where it has none, "added" in the report; off included), in
   passes while the decay moves (``tuning.tune_both``);
2. optax AdamW (with bias correction and epsilon) gets its learning rate and weight decay
   tuned as the funnel tunes them (``tuning.tune_baseline``, the same seeds);
3. the other baselines (``holdout.baselines``: by default the hypergradient Adam and the
   learned LSTM optimizer, ``proxy_tasks.baselines``) are tuned the same way, their decay
   line starting from AdamW's 1e-4 (off by default);
4. all are trained at their tuned settings on ``holdout.seeds`` fresh seeds (the same for
   all). The report ranks by that held-out loss and gives each program's paired difference
   ``d_s = L_s(program) - L_s(baseline)`` to the tuned start and to tuned AdamW, as
   ``mean(d) +- stderr(d)``. For a suite (``scoring``) the held-out figure is the suite
   fitness (1 = the tuned start of the calibration) and ``d_s`` the weighted mean log ratio
   of the tasks' losses on seed ``s``.
"""

from __future__ import annotations

import math
from typing import Dict, List, Optional

from optevo.dsl import parse
from optevo.dsl.liveness import NO_LR, reads_lr
from optevo.proxy_tasks.fitness import stats
from optevo.proxy_tasks.seeds import fresh_seeds
from optevo.simplify import simplify_exact

from .cost import state_text
from .jobs import HOLDOUT, Job, JobId, baseline_name
from .lr_grid import LrGrid
from .jobs import is_baseline_name as is_baseline
from .rundir import Record, RunDir, best_distinct
from .scoring import Scorer
from .tuning import RETUNE, job_scales, run_jobs, tune_baseline, tune_both, tune_program

ADAMW_ID = baseline_name("adamw")


def top_programs(records: List[Record], k: int) -> List[Record]:
    """The ``k`` best distinct programs (by fitness on the selection seeds) other than the
    start program, and the start program (id 0) last."""
    start = next((r for r in records if r.id == 0 and not r.cached), None)
    return best_distinct(records, k, include_start=False) + ([start] if start else [])


def evaluate_holdout(run: RunDir, pool, k: int, n_seeds: int, lr_scale=1.0,
                     scorer: Optional[Scorer] = None, baselines=()) -> List[Dict]:
    """The run's best ``k`` distinct programs and its start (id 0) through
    :func:`fresh_check`, the rows written to ``holdout.jsonl``. ``lr_scale``: the search's
    calibrated scale (one per task of a suite); ``scorer``: the search's (``scoring``)."""
    rows = fresh_check(pool, top_programs(run.records(), k), n_seeds, lr_scale, scorer,
                       baselines)
    run.write_holdout(rows)
    return rows


def decay_buckets(programs) -> tuple:
    """Interpreter buckets for ``programs`` tuned on decay: up to the one that holds the
    longest with decoupled decay added (at least the default 32 statements)."""
    from optevo.dsl.decay import ADDED
    from optevo.dsl.interpreter import encoded_form
    from optevo.proxy_tasks.engine import buckets_for
    longest = max([len(encoded_form(p).stmts) for p in programs] + [0]) + ADDED
    return buckets_for(max(32, longest))


def fresh_check_programs(task_name: str, options: Dict, steps: Optional[int], seeds,
                         programs, n_fresh: int, baselines=(), lr_scale: float = 1.0,
                         rule=None) -> List[Dict]:
    """:func:`fresh_check` of programs that come from no run (``optevo eval --tune``, the
    sweep's batch ablation): ids 1..N in order, trained in this process on ``task_name``
    with ``options``, tuned on ``seeds`` by ``rule`` (default: the start's calibration line)
    around ``lr_scale``; one interpreter bucket that holds the longest with decay added."""
    from optevo.dsl.canon import program_hash
    from .tuning import CALIBRATION
    from .workers import EvalSpec, InProcessPool
    pool = InProcessPool(EvalSpec(task_name, dict(options), steps, tuple(seeds),
                                  decay_buckets(programs)))
    cands = [Record(id=i, parent=None, mutation=None, hash=program_hash(p), program=p.text(),
                    loss=None, normalized=None, stderr=None, diverged=False, cached=False)
             for i, p in enumerate(programs, 1)]
    return fresh_check(pool, cands, n_fresh, lr_scale, None, baselines,
                       CALIBRATION if rule is None else rule)


def fresh_check(pool, cands: List[Record], n_seeds: int, lr_scale=1.0,
                scorer: Optional[Scorer] = None, baselines=(), rule=RETUNE) -> List[Dict]:
    """Tune, then train on fresh seeds: one row per program of ``cands`` (records: ``id``,
    ``program``, ``hash``, ``loss``; id 0 is the start the others are compared with), one
    for tuned AdamW and one per other baseline (kinds of
    ``optevo.proxy_tasks.baselines.specs``, e.g. ``hyper_adam``, ``l2l``), ranked by
    held-out figure. Programs' lr lines follow ``rule`` around ``lr_scale`` times each one's
    own multiplier (``Record.lr_mult``, ``search.lr_grid``: a child scored at x1/64 of the
    start's lr is re-tuned around x1/64, not around the start's; with a grid of 1, every
    multiplier is 1)."""
    from optevo.proxy_tasks.baselines.specs import baseline_spec
    scorer = scorer or Scorer()
    n_tasks = len(scorer.weights)
    seeds = fresh_seeds(n_seeds)

    def tuner(base):
        def tune_lr(text, key):
            t = tune_program(pool, key, text, None, base, scorer, rule)
            return job_scales(base, t.best), t.results[t.line.best], t, scorer
        return tune_lr

    both = {r.id: tune_both(pool, r.program, f"retune{r.id}",
                            tuner(LrGrid.scales(lr_scale, r.lr_mult))) for r in cands}
    # each program's jobs' lr multipliers, its last lr line, its decay
    multipliers, lines, decays = ({k: v[i] for k, v in both.items()} for i in range(3))
    base_info = {}  # row id -> (spec text with the tuned decay, lr scales, at an edge, wd)
    for name in ["adamw"] + [b for b in baselines if b != "adamw"]:
        spec = baseline_spec(name)
        text, scales, lrs, wd = tune_baseline(pool, n_tasks, scorer, text=spec)
        row_id = kind_id = baseline_name(spec[len("optax:"):].split()[0])  # a line: its kind
        for n in range(2, len(baselines) + 2):  # two lines of one kind: optax_lion_2, ...
            if row_id not in base_info:
                break
            row_id = f"{kind_id}_{n}"
        base_info[row_id] = (text, scales, any(x.at_edge for x in lrs), wd)
    jobs = [Job(JobId(HOLDOUT, r.id), decays[r.id].text, seeds, multipliers[r.id])
            for r in cands] \
        + [Job(JobId(HOLDOUT, key), text, seeds, sc) for key, (text, sc, *_) in base_info.items()]
    results = {i.subject: r for i, r in run_jobs(pool, jobs).items()}
    rows = []
    for key, rec in [(r.id, r) for r in cands] + [(b, None) for b in base_info]:
        res, line, dec = results[key], lines.get(key), decays.get(key)
        fit = scorer(res)
        text, base_scales, edge, wd = base_info.get(key, (None, None, None, None))
        row = {"id": key, "hash": rec.hash if rec else None,
               "program": rec.program if rec else text,
               "simplified": simplify_exact(parse(rec.program)).text() if rec else None,
               "fitness": rec.loss if rec else None,
               "lr_scale": multipliers[key] if rec else base_scales,
               "lr_at_edge": line.at_edge if rec else edge,
               "weight_decay_factor": dec.factor if rec else wd.best,
               "weight_decay_at_edge": dec.line.at_edge if rec else wd.at_edge,
               "decay_added": dec.added if rec else None,
               "holdout_seeds": seeds, "diverged": fit.diverged,
               "holdout_losses": [x if math.isfinite(x) else None for x in res.losses]}
        if scorer.suite:
            row["holdout_task_losses"] = [x if math.isfinite(x) else None
                                          for x in fit.task_means]
        row.update(holdout=None, holdout_stderr=None, diff=None, diff_stderr=None,
                   diff_adamw=None, diff_adamw_stderr=None, significant=False,
                   beats_adamw=False, diff_baselines={})
        if not fit.diverged:
            row["holdout"], row["holdout_stderr"] = fit.value, fit.stderr
            for name, ref in (("diff", results.get(0)), ("diff_adamw", results[ADAMW_ID])):
                if ref is not None and not scorer(ref).diverged:
                    d = stats(scorer.per_seed(res, ref))
                    row[name], row[name + "_stderr"] = d.mean, d.se
            for b in base_info:  # [mean, stderr] against every baseline, paired per seed
                ref = results[b]
                d = None if scorer(ref).diverged else stats(scorer.per_seed(res, ref))
                row["diff_baselines"][b] = None if d is None else [d.mean, d.se]
            row["significant"] = key != 0 and not is_baseline(key) and row["diff"] is not None \
                and row["diff"] + row["diff_stderr"] < 0
            row["beats_adamw"] = key != ADAMW_ID and row["diff_adamw"] is not None \
                and row["diff_adamw"] + row["diff_adamw_stderr"] < 0
        rows.append(row)
    rows.sort(key=lambda r: math.inf if r["holdout"] is None else r["holdout"])
    return rows


def _pm(x, se, spec="+.4f") -> str:
    return "—" if x is None else f"{x:{spec}} ± {se:.4f}"


def _decay(r) -> str:
    f = r.get("weight_decay_factor")
    text = "—" if f is None else "off" if f == 0 else f"x{f:.3g}"
    return text + (" (edge)" if r.get("weight_decay_at_edge") else "") \
        + (" (added)" if r.get("decay_added") and f else "")


def _name(r) -> str:
    return _label(r) + (NO_LR if isinstance(r["id"], int) and r.get("program")
                        and not reads_lr(parse(r["program"])) else "")


def _label(r) -> str:
    if r.get("name"):
        return r["name"]
    if is_baseline(r["id"]) and r["id"] != ADAMW_ID:
        return f"{r['id'][len(baseline_name('')):]} (baseline, tuned)"
    return {0: "0 (tuned start)", ADAMW_ID: "optax AdamW (tuned)"}.get(r["id"], str(r["id"]))


# what the report says of summary keys whose name alone could mislead
NOTES = {"elapsed_seconds": "the search only, all its sessions; not the held-out re-check",
         "holdout_seconds": "the held-out re-check",
         "wall_seconds": "search and held-out re-check together"}


def report(run: RunDir, rows: List[Dict], summary: Dict, skipped: Optional[str] = None) -> str:
    """``report.md`` (written) from the summary and the held-out rows; without rows, one line
    saying that the re-check did not run and why (``skipped``), not an empty table."""
    lines = [f"# Search report: {summary.get('name', run.path.name)}", ""]
    lines += [f"- {k}: {v}" + (f" ({NOTES[k]})" if k in NOTES else "")
              for k, v in summary.items() if k != "name"]
    held = table(rows) if rows else [
        f"Held-out re-check: {skipped or 'not run'}. No program was re-checked on fresh "
        "seeds: the figures above are on the selection seeds only."]
    text = "\n".join(lines + [""] + held) + "\n"
    run.write_report(text)
    return text


def table(rows: List[Dict]) -> List[str]:
    """The held-out rows as markdown: the table, then each program simplified."""
    n = len(rows[0]["holdout_seeds"]) if rows else 0
    lines = [f"Ranked by held-out loss on {n} fresh seeds (never used for selection). "
              "Every program and baseline had its learning rate and then its weight decay "
              "tuned on the fitness seeds (a program with no decay term got decoupled decay "
              "added as optax adds it: 'added'; 'off': decay switched off won); `diff` "
              "columns are paired differences on the same fresh seeds (negative is better).",
              "", "| rank | id | fitness (selection seeds) | lr multiplier | weight decay | "
              "held-out loss | diff vs tuned start | diff vs tuned AdamW | "
              "beats AdamW by > 1 SE |", "|---|---|---|---|---|---|---|---|---|"]
    fmt = (lambda x: "—" if x is None else f"{x:.4f}")
    for i, r in enumerate(rows, 1):
        scales = r["lr_scale"] if isinstance(r["lr_scale"], list) else [r["lr_scale"]]
        scale = "/".join(f"x{x:.3g}" for x in scales) + (" (edge)" if r["lr_at_edge"] else "")
        if r["holdout"] is None:
            lines.append(f"| {i} | {_name(r)} | {fmt(r['fitness'])} | {scale} | {_decay(r)} | "
                         "diverged | — | — | no |")
            continue
        lines.append(f"| {i} | {_name(r)} | {fmt(r['fitness'])} | {scale} | {_decay(r)} | "
                     f"{_pm(r['holdout'], r['holdout_stderr'], '.4f')} | "
                     f"{_pm(r['diff'], r['diff_stderr'])} | "
                     f"{_pm(r['diff_adamw'], r['diff_adamw_stderr'])} | "
                     f"{'yes' if r.get('beats_adamw') else 'no'} |")
    for r in rows:
        if r["id"] == 0 or is_baseline(r["id"]) or r["holdout"] is None:
            continue
        lines += ["", f"Program {_name(r)}, simplified (exact passes); "
                  f"{state_text(parse(r['simplified']))}:", "", "```python",
                  r["simplified"].rstrip(), "```"]
    return lines


def summary_figures(rows: List[Dict]) -> Dict:
    """The held-out figures of ``summary.json``: numbers (None where a run diverged)."""
    by_id = {r["id"]: r for r in rows}
    best = next((r for r in rows if r["id"] != 0 and not is_baseline(r["id"])
                 and r["holdout"] is not None), None)
    get = (lambda r, k: None if r is None else r.get(k))
    return {"holdout_best_id": get(best, "id"), "holdout_best_loss": get(best, "holdout"),
            "holdout_best_stderr": get(best, "holdout_stderr"),
            "tuned_start_holdout_loss": get(by_id.get(0), "holdout"),
            "tuned_adamw_holdout_loss": get(by_id.get(ADAMW_ID), "holdout"),
            "holdout_best_diff_vs_tuned_start": get(best, "diff"),
            "holdout_best_diff_vs_tuned_start_stderr": get(best, "diff_stderr"),
            "holdout_best_diff_vs_tuned_adamw": get(best, "diff_adamw"),
            "holdout_best_diff_vs_tuned_adamw_stderr": get(best, "diff_adamw_stderr"),
            "baseline_holdout_losses": {r["id"]: r["holdout"] for r in rows
                                        if is_baseline(r["id"])},
            "holdout_best_diff_vs_baselines": get(best, "diff_baselines") or {},
            "holdout_seeds": len(rows[0]["holdout_seeds"]) if rows else 0}

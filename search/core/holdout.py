"""Re-evaluate a run's best programs on fresh seeds that selection never saw.

Selection over thousands of candidates picks seed luck: in a prototype, gains of 8-22% on 2
fitness seeds shrank to 0-5% on fresh seeds. So at the end of a run the top ``k`` distinct
programs and the start program are trained on ``holdout.seeds`` fresh seeds (the same seeds
for all), and the final report ranks by that held-out loss. The comparison with the start
program is paired by seed: ``d_s = L_s(program) - L_s(start)``, reported as
``mean(d) +- stderr(d)``.
"""

from __future__ import annotations

import math
from typing import Dict, List

import numpy as np

from optevo.proxy_tasks.fitness import stats

from .rundir import Record, RunDir, best_distinct
from .workers import wait_all

HOLDOUT_SEED_BASE = 1_000_000  # fitness seeds are 0..K-1; held-out seeds never overlap them


def holdout_seeds(n: int) -> List[int]:
    return [HOLDOUT_SEED_BASE + i for i in range(n)]


def top_programs(records: List[Record], k: int) -> List[Record]:
    """The ``k`` best distinct programs (by fitness on the selection seeds) other than the
    start program, and the start program (id 0) last."""
    start = next((r for r in records if r.id == 0 and not r.cached), None)
    return best_distinct(records, k, include_start=False) + ([start] if start else [])


def evaluate_holdout(run: RunDir, pool, k: int, n_seeds: int) -> List[Dict]:
    cands = top_programs(run.records(), k)
    seeds = holdout_seeds(n_seeds)
    pool.submit([(r.id, r.program) for r in cands], seeds)
    results = {r["id"]: r for _, rs in wait_all(pool) for r in rs}
    start_losses = np.array(results[0]["losses"])
    rows = []
    for rec in cands:
        res = results[rec.id]
        losses = np.array(res["losses"], np.float64)
        diverged = bool(np.any(res["diverged"])) or not np.all(np.isfinite(losses))
        row = {"id": rec.id, "hash": rec.hash, "program": rec.program,
               "fitness": rec.loss, "holdout_seeds": seeds, "diverged": diverged,
               "holdout_losses": [x if math.isfinite(x) else None for x in losses.tolist()]}
        if diverged:
            row.update(holdout=None, holdout_stderr=None, diff=None, diff_stderr=None)
        else:
            held, diff = stats(losses), stats(losses - start_losses)
            row["holdout"], row["holdout_stderr"] = held.mean, held.se
            row["diff"], row["diff_stderr"] = diff.mean, diff.se
            row["significant"] = rec.id != 0 and row["diff"] + row["diff_stderr"] < 0
        rows.append(row)
    rows.sort(key=lambda r: math.inf if r["holdout"] is None else r["holdout"])
    run.write_holdout(rows)
    return rows


def report(run: RunDir, rows: List[Dict], summary: Dict) -> str:
    lines = [f"# Search report: {summary.get('name', run.path.name)}", ""]
    lines += [f"- {k}: {v}" for k, v in summary.items() if k != "name"]
    lines += ["", f"Ranked by held-out loss on {len(rows[0]['holdout_seeds']) if rows else 0} "
              "fresh seeds (never used for selection); `diff` is paired against the start "
              "program on the same seeds (negative is better).", "",
              "| rank | id | fitness (selection seeds) | held-out loss | diff vs start | "
              "beats start by > 1 SE |", "|---|---|---|---|---|---|"]
    fmt = (lambda x: "—" if x is None else f"{x:.4f}")
    for i, r in enumerate(rows, 1):
        name = f"{r['id']}" + (" (start)" if r["id"] == 0 else "")
        if r["holdout"] is None:
            lines.append(f"| {i} | {name} | {fmt(r['fitness'])} | diverged | — | no |")
            continue
        lines.append(f"| {i} | {name} | {fmt(r['fitness'])} | {r['holdout']:.4f} ± "
                     f"{r['holdout_stderr']:.4f} | {r['diff']:+.4f} ± {r['diff_stderr']:.4f} | "
                     f"{'yes' if r.get('significant') else 'no'} |")
    best = next((r for r in rows if r["id"] != 0 and r["holdout"] is not None), None)
    if best:
        lines += ["", f"Best on held-out seeds (id {best['id']}):", "", "```python",
                  best["program"].rstrip(), "```"]
    text = "\n".join(lines) + "\n"
    run.write_report(text)
    return text

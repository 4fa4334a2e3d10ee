"""What ``search.lr_grid`` costs and what it does to a search's held-out result, at equal
wall time: the same preset and seeds searched with each grid size, each for ``--minutes``,
then the usual held-out check (top programs re-tuned on lr and decay, 16 fresh seeds,
paired against tuned optax AdamW and the tuned start).

    python scripts/experiments/lr_grid.py --preset configs/search.yaml --minutes 5 \\
        --seeds 0 1 --grids 1 3 --out scripts/experiments/results/lr_grid.json

Per run: children trained, median seconds per trained child (a worker's job: every grid
point of every seed in one engine call), the selection best, and the held-out best's paired
difference to tuned AdamW and to the tuned start (± SE). Runs are kept under ``--runs``
and a finished one is not run again (``--out`` is rewritten after each).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path


def run_one(preset: str, grid: int, seed: int, minutes: float, runs: Path, workers: int):
    d = runs / f"grid{grid}_seed{seed}"
    if not (d / "summary.json").exists():
        subprocess.run([sys.executable, "-m", "optevo.search.cli", "search", preset,
                        "--seed", str(seed), "--workers", str(workers), "--run-dir", str(d),
                        "--set", f"search.lr_grid={grid}",
                        "--set", f"search.time_limit={minutes * 60}",
                        "--set", "search.max_evals=null",
                        "--set", "progress.enabled=false"],
                       check=True, stdout=subprocess.DEVNULL)
    s = json.loads((d / "summary.json").read_text())
    recs = [json.loads(x) for x in (d / "evaluations.jsonl").read_text().splitlines()]
    secs = [r["seconds"] for r in recs if not r["cached"] and r["id"] > 0]
    mults = [r.get("lr_mult", 1.0) for r in recs]
    return {"grid": grid, "seed": seed, "run_dir": str(d), "trained": s["trained"],
            "elapsed": s["elapsed_seconds"],
            "s_per_child": statistics.median(secs) if secs else None,
            "selection_best_normalized": s["selection_best_normalized"],
            "lr_mult_range": [min(mults), max(mults)],
            "vs_adamw": [s.get("holdout_best_diff_vs_tuned_adamw"),
                         s.get("holdout_best_diff_vs_tuned_adamw_stderr")],
            "vs_start": [s.get("holdout_best_diff_vs_tuned_start"),
                         s.get("holdout_best_diff_vs_tuned_start_stderr")]}


def table(rows) -> str:
    def pm(v):
        return "—" if v[0] is None else f"{v[0]:+.4f} ± {v[1]:.4f}"
    out = ["| lr_grid | seed | trained | s per child | best (x tuned start, selection) "
           "| lr multipliers seen | held-out best vs tuned AdamW | vs tuned start |",
           "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['grid']} | {r['seed']} | {r['trained']} | {r['s_per_child']:.3f} "
                   f"| {r['selection_best_normalized']:.4f} | x{r['lr_mult_range'][0]:g}.."
                   f"x{r['lr_mult_range'][1]:g} | {pm(r['vs_adamw'])} | {pm(r['vs_start'])} |")
    return "\n".join(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="configs/search.yaml")
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--grids", type=int, nargs="+", default=[1, 3])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--runs", default="runs/lr_grid")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    rows = []
    for seed in args.seeds:
        for grid in args.grids:
            rows.append(run_one(args.preset, grid, seed, args.minutes, Path(args.runs),
                                args.workers))
            print(table(rows[-1:]).splitlines()[-1], flush=True)
            if args.out:
                Path(args.out).write_text(json.dumps({"args": vars(args), "rows": rows},
                                                     indent=1))
    print(table(rows))


if __name__ == "__main__":
    main()

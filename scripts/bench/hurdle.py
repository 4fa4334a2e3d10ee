"""Do hurdles help? Two searches of equal wall time from the same config and seed, one with
``search.hurdle_seeds`` and one without, compared on what a user gets out of them.

For each arm: children trained (a hurdle counts), children trained on all their seeds
("full evaluations"), full evaluations per hour, and the held-out re-check of the best
programs (fresh seeds, re-tuned, against tuned optax AdamW). The arms run one after the
other, alternating in ``--rounds`` rounds (arm A, arm B, arm A, ...) so that load from other
jobs on the machine falls on both; each round is a separate search with its own seed.

    python scripts/bench/hurdle.py                          # configs/quick.yaml, 2 x 60 s
    python scripts/bench/hurdle.py --minutes 3 --rounds 2 --hurdle-seeds 1 --workers 2
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import tempfile
from pathlib import Path

from optevo.search.core.config import load_config
from optevo.search.core.run import run_search
from optevo.search.core.rundir import RunDir


def arm(config: str, seed: int, minutes: float, hurdle, workers: int, out: Path) -> dict:
    cfg = load_config(config, {"seed": seed, "search.time_limit": minutes * 60,
                               "search.max_evals": None, "search.hurdle_seeds": hurdle,
                               "workers.count": workers, "progress.enabled": False})
    run_dir = out / f"seed{seed}-hurdle{hurdle}"
    with contextlib.redirect_stdout(io.StringIO()):
        run_search(cfg, run_dir)
    s = RunDir(run_dir).summary()
    hours = s["elapsed_seconds"] / 3600
    return {"seed": seed, "hurdle": hurdle, "trained": s["trained"],
            "full": s["trained_fully"], "full_per_hour": s["trained_fully"] / hours,
            "best_holdout": s["holdout_best_loss"],
            "vs_adamw": s["holdout_best_diff_vs_tuned_adamw"],
            "vs_adamw_se": s["holdout_best_diff_vs_tuned_adamw_stderr"],
            "selection_best_normalized": s["selection_best_normalized"]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/quick.yaml")
    ap.add_argument("--minutes", type=float, default=1.0, help="search time per arm and round")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--hurdle-seeds", type=int, default=1)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", help="keep the run directories here (default: a temp folder)")
    args = ap.parse_args(argv)
    out = Path(args.out or tempfile.mkdtemp(prefix="bench-hurdle-"))
    rows = []
    for r in range(args.rounds):
        for hurdle in (None, args.hurdle_seeds):
            rows.append(arm(args.config, r, args.minutes, hurdle, args.workers, out))
            print(json.dumps(rows[-1]), flush=True)
    fmt = (lambda x, spec=".4f": "—" if x is None else format(x, spec))
    print(f"\n{args.config}, {args.minutes:g} min per arm, {args.rounds} round(s), "
          f"{args.workers} workers\n")
    print("| hurdle | trained | trained fully | full evaluations / hour | best normalized "
          "(fitness seeds) | best held-out | vs tuned AdamW |")
    print("|---|---|---|---|---|---|---|")
    for hurdle in (None, args.hurdle_seeds):
        mine = [x for x in rows if x["hurdle"] == hurdle]
        mean = (lambda k: statistics.mean(x[k] for x in mine))
        held = [x["best_holdout"] for x in mine if x["best_holdout"] is not None]
        diffs = [f"{fmt(x['vs_adamw'], '+.4f')} ± {fmt(x['vs_adamw_se'])}" for x in mine]
        print(f"| {'off' if hurdle is None else f'{hurdle} seed(s)'} | {mean('trained'):.0f} | "
              f"{mean('full'):.0f} | {mean('full_per_hour'):.0f} | "
              f"{mean('selection_best_normalized'):.3f} | "
              f"{fmt(statistics.mean(held) if held else None)} | {'; '.join(diffs)} |")
    print(f"\nrun directories: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

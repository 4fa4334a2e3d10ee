"""Islands against one population on the default search, at equal children.

Runs ``configs/search.yaml`` (population 200, 20,000 children, the paper's four mutations,
``digits_mlp``) once per seed with ``search.islands: 1`` and once with ``search.islands: K``
(population split into K islands, ring migration as configured), and tables each search's
held-out best (16 fresh seeds, never used for selection) against tuned optax AdamW on the
same seeds, and the two arms' best programs against each other, paired on those seeds
(``islands - one population``; below 0: islands found the better program).

Both arms stop at the config's ``max_evals`` (equal children, whatever the wall time), so
the comparison holds on a busy machine. A finished search is not rerun; an unfinished one
resumes (the run directory is kill-safe).

    python scripts/experiments/islands_default.py --seeds 5 --out runs/isl-default
    python scripts/experiments/islands_default.py --seeds 5 --islands 4 --set search.max_evals=5000
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

from optevo.proxy_tasks.fitness import stats
from optevo.search.core.config import load_config

sys.path.insert(0, str(Path(__file__).parent))
from planted_rediscovery import search_summary  # noqa: E402  (sibling)


def run_arm(config: str, seed: int, islands: int, sets: dict, out: Path) -> dict:
    """One search (``search_summary``: resumed, or skipped if finished); its figures."""
    cfg = load_config(config, {**sets, "seed": seed, "search.islands": islands})
    s = search_summary(cfg, out / f"islands{islands}" / f"seed{seed}")
    best = next((r for r in s["holdout"] if r["id"] == s["holdout_best_id"]), None)
    return {"seed": seed, "islands": islands, "trained": s["trained"],
            "wall_seconds": round(s["wall_seconds"], 1),
            "selection_best_normalized": s["selection_best_normalized"],
            "diff_vs_tuned_adamw": [s["holdout_best_diff_vs_tuned_adamw"],
                                    s["holdout_best_diff_vs_tuned_adamw_stderr"]],
            "holdout_seeds": best["holdout_seeds"] if best else None,
            "holdout_losses": best["holdout_losses"] if best else None,
            "program": best["simplified"] if best else None}


def paired(a: dict, b: dict):
    """(mean, SE) of b - a on their common fresh seeds; None if either has no best."""
    if not a["holdout_losses"] or not b["holdout_losses"]:
        return None
    if a["holdout_seeds"] != b["holdout_seeds"]:
        raise SystemExit(f"seed {a['seed']}: the arms' held-out seeds differ")
    la = np.asarray([math.inf if x is None else x for x in a["holdout_losses"]])
    lb = np.asarray([math.inf if x is None else x for x in b["holdout_losses"]])
    d = stats(lb - la)
    return [d.mean, d.se]


def _pm(pair):
    return "—" if pair is None or pair[0] is None or not math.isfinite(pair[0]) \
        else f"{pair[0]:+.4f} ± {pair[1]:.4f}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/search.yaml")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--islands", type=int, default=4, help="the islands arm's K")
    ap.add_argument("--out", default="runs/isl-default")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a config override for both arms (read as YAML)")
    args = ap.parse_args(argv)
    import yaml
    sets = {k: yaml.safe_load(v) for k, v in (x.split("=", 1) for x in args.set)}
    out = Path(args.out)
    rows = {1: [], args.islands: []}
    for k in (1, args.islands):  # one arm after the other: the first finishes whole first
        for seed in range(args.seeds):
            rows[k].append(run_arm(args.config, seed, k, sets, out))
            print(json.dumps({x: v for x, v in rows[k][-1].items()
                              if x not in ("holdout_losses", "holdout_seeds")}), flush=True)
    pairs = [paired(a, b) for a, b in zip(rows[1], rows[args.islands])]
    (out / "islands.json").write_text(json.dumps(
        {"config": args.config, "sets": sets, "one": rows[1], "islands": rows[args.islands],
         "islands_minus_one": pairs}, indent=1))
    print(f"\n{args.config} {sets or ''}: one population against {args.islands} islands, "
          f"equal children\n")
    print(f"| seed | one population: trained | held-out diff vs tuned AdamW | {args.islands} "
          f"islands: trained | held-out diff vs tuned AdamW | islands - one (paired) |")
    print("|---|---|---|---|---|---|")
    for a, b, p in zip(rows[1], rows[args.islands], pairs):
        print(f"| {a['seed']} | {a['trained']} | {_pm(a['diff_vs_tuned_adamw'])} | "
              f"{b['trained']} | {_pm(b['diff_vs_tuned_adamw'])} | {_pm(p)} |")
    for name, arm in (("one population", rows[1]), (f"{args.islands} islands", rows[args.islands])):
        d = [r["diff_vs_tuned_adamw"][0] for r in arm
             if r["diff_vs_tuned_adamw"][0] is not None]
        if d:
            print(f"\n{name}: mean held-out diff vs tuned AdamW {np.mean(d):+.4f} over {len(d)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

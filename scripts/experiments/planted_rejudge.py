"""Re-judge a planted check's stored rows whose run directories are gone: each row's best
program (its exact simplification, as the search's summary stored it) simplified again by
the guided passes on unseen seeds (``simplify_seeds``, as many as the check's held-out
re-check), then judged by the check's judge.

A stored row keeps the program but not its re-check's tuned lr multiplier, so the lr is
tuned here on the task's fitness seeds by the calibration rule, as ``optevo simplify``
does with ``--lr-scale auto``; where the run directory exists, rerun
``planted_rediscovery.py`` on it instead (it re-judges at the re-check's multiplier without
re-searching).

    python scripts/experiments/planted_rejudge.py --check muon \\
        scripts/experiments/results/planted_muon.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from optevo.dsl import parse
from optevo.search.core.config import load_config

sys.path.insert(0, str(Path(__file__).parent))
from planted_rediscovery import CHECKS, simplify_on_task, task_evaluator  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("rows", help="a planted check's JSON rows (planted_rediscovery.py's)")
    ap.add_argument("--check", choices=sorted(CHECKS), required=True)
    ap.add_argument("--json", help="write the re-judged rows here")
    args = ap.parse_args(argv)
    config, _, judge_of, verdict, words = CHECKS[args.check]
    from optevo.search.core.tuning import CALIBRATION
    rows = json.loads(Path(args.rows).read_text())
    cfg = load_config(config)  # the rows' search seeds change nothing here: one task
    fitness, judge, out = task_evaluator(cfg, cfg.task.seeds), judge_of(cfg), []
    for r in rows:
        program = parse(r["simplified"])
        lr = fitness.tune(program, CALIBRATION).scale  # the calibration rule, fitness seeds
        guided = simplify_on_task(program, cfg, lr)
        kind = judge(guided, lr)
        out.append({"seed": r["seed"], "lr_scale": lr, "verdict_before": r["verdict_guided"],
                    "verdict_guided": kind, "guided": guided.text()})
        print(json.dumps(out[-1]), flush=True)
    found = sum(r["verdict_guided"] == verdict for r in out)
    print(f"\n{found}/{len(out)} re-judged best programs, simplified on unseen seeds, {words} "
          f"(before: {sum(r['verdict_guided'] == verdict for r in rows)}/{len(rows)})\n")
    print("| seed | lr x (tuned here) | judged before | judged now | statements now |")
    print("|---|---|---|---|---|")
    for r in out:
        print(f"| {r['seed']} | {r['lr_scale']:g} | {r['verdict_before'] or '-'} | "
              f"{r['verdict_guided'] or '-'} | {len(parse(r['guided']).stmts)} |")
    for r in out:
        print(f"\nseed {r['seed']}:\n```python\n{r['guided']}```")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

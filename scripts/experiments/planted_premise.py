"""A planted check's premise: on the check's task, does its target truly win? Every program
(and optax AdamW) tuned on learning rate and weight decay, as a search tunes its start, then
trained on fresh seeds; paired differences to the tuned start and to tuned optax AdamW.

A planted check (scripts/experiments/planted_rediscovery.py) asks a search to find a known
algorithm on a task built so that it wins. That means something only if, on fresh seeds,
the tuned target beats the tuned start by a wide margin (the issue asks for 5 standard
errors), and the near-misses a search could stop at (the sign of momentum where Adam is
the target, ``orthogonalize`` of the raw gradient where Muon is) score below it.

Tuning: each program's lr multiplier on the task's fitness seeds (the calibration's rule,
2^-4..2^8 grown at an edge), then its decay sites scaled (decoupled decay added where it
has none, or off) by x3 steps, in coordinate passes (``search.core.tuning.calibrate_start``);
optax AdamW by ``tune_baseline``. The first program named is the start the others are
paired against.

    python scripts/experiments/planted_premise.py configs/planted.yaml --programs adam_style \\
        configs/examples/planted/signum99_adam_wd.py lion
    python scripts/experiments/planted_premise.py configs/planted-muon.yaml --programs \\
        adam_style muon configs/examples/planted/ortho_g.py
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from optevo.proxy_tasks.fitness import stats
from optevo.proxy_tasks.seeds import fresh_seeds
from optevo.search.core.config import load_config
from optevo.search.core.jobs import Job, JobId
from optevo.search.core.scoring import Scorer
from optevo.search.core.tuning import calibrate_start, run_jobs, tune_baseline
from optevo.search.core.views import load_ref
from optevo.search.core.workers import InProcessPool, eval_spec


def task_pool(cfg) -> InProcessPool:
    """An in-process pool built as the search's workers are (``eval_spec``): the config's
    task, options, steps, fitness seeds, and buckets that hold the longest program with
    decoupled decay added."""
    return InProcessPool(eval_spec(cfg))


def tune_program(pool, task_name: str, name: str, text: str):
    """``text`` tuned on lr and decay as a search calibrates its start
    (``calibrate_start``): (text, lr multiplier, decay factor, whether decay was added)."""
    cal = calibrate_start(pool, text, Scorer(), name, [task_name], JobId("tuned", name))
    return cal.program, cal.lr_scale, cal.decay["factor"], cal.decay["added"]


def fresh_losses(pool, name: str, text: str, scale, n: int):
    """``text`` at lr multiplier ``scale`` on ``n`` fresh seeds (the held-out re-check's):
    its losses."""
    ident = JobId("fresh", name)
    return list(run_jobs(pool, [Job(ident, text, fresh_seeds(n), scale)])[ident].losses)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config", help="a search config: its task, options, steps and seeds")
    ap.add_argument("--programs", nargs="+", required=True,
                    help="the start first, then library names, program files or RUN_DIR:ID")
    ap.add_argument("--fresh", type=int, default=16, help="fresh evaluation seeds")
    ap.add_argument("--json", help="write the rows here too")
    args = ap.parse_args(argv)
    cfg = load_config(args.config)
    task, pool = cfg.task, task_pool(cfg)

    def fresh_run(name, text, scale):
        return fresh_losses(pool, name, text, scale, args.fresh)

    adamw_text, adamw_scale, _, wd = tune_baseline(pool)
    rows = [{"program": "optax adamw (tuned)", "lr": adamw_scale, "decay": wd.best,
             "result": fresh_run("adamw", adamw_text, adamw_scale)}]
    for name in args.programs:
        text, scale, factor, added = tune_program(pool, task.name, name,
                                                  load_ref(name)[0].text())
        rows.append({"program": name, "lr": scale, "decay": factor, "added": added,
                     "result": fresh_run(name, text, scale)})
    ref, start = (np.array(rows[i]["result"]) for i in (0, 1))
    print(f"{cfg.task.name} {dict(task.options)}, {task.steps or 'default'} steps, tuned on "
          f"seeds 0..{task.seeds - 1}, {args.fresh} fresh seeds\n")
    print("| program | lr x | decay x | loss | diff vs tuned start | z | diff vs tuned AdamW | z |")
    print("|---|---|---|---|---|---|---|---|")
    out = []
    for r in rows:
        x = np.array(r["result"])
        s, ds, da = stats(x), stats(x - start), stats(x - ref)
        zs = ds.mean / ds.se if ds.se > 0 else 0.0
        za = da.mean / da.se if da.se > 0 else 0.0
        dec = f"{r['decay']:g}{' (added)' if r.get('added') else ''}"
        print(f"| {r['program']} | {r['lr']:g} | {dec} | {s.mean:.4g} ± {s.se:.2g} | "
              f"{ds.mean:+.4g} ± {ds.se:.2g} | {zs:+.1f} | {da.mean:+.4g} ± {da.se:.2g} | "
              f"{za:+.1f} |")
        out.append({"program": r["program"], "lr": r["lr"], "decay": r["decay"],
                    "losses": [float(v) for v in x], "diff_vs_start": [ds.mean, ds.se],
                    "diff_vs_adamw": [da.mean, da.se]})
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"config": args.config, "rows": out}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

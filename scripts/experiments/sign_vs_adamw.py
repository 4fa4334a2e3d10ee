"""Is there a task where sign-momentum truly wins? Tuned signum, Lion, the AdamW start and
SGD against tuned optax AdamW, on fresh seeds (the check the planted-rediscovery experiment
needs before a search from AdamW can be asked to find a sign-based program there).

Every program's lr multiplier is tuned on the task's fitness seeds (``search.core.tuning``:
a log grid of ratio 2, grown at edges); optax AdamW gets its lr (grown up to 12 points per
side) and then its weight decay tuned the same way. Then all train on 16 fresh seeds and the
paired differences to tuned AdamW are printed with standard errors (``z`` = mean / SE).

    python scripts/experiments/sign_vs_adamw.py rosenbrock
    python scripts/experiments/sign_vs_adamw.py quadratic --fresh 16
    python scripts/experiments/sign_vs_adamw.py quadratic --programs signum my_program.py runs/x:123
"""

from __future__ import annotations

import argparse

import numpy as np

from optevo.proxy_tasks import get_task
from optevo.proxy_tasks.fitness import stats
from optevo.search.core.views import load_ref
from optevo.proxy_tasks.engine import buckets_for
from optevo.proxy_tasks.seeds import fresh_seeds
from optevo.proxy_tasks.tuning import LineRule
from optevo.search.core.jobs import Job, JobId
from optevo.search.core.tuning import run_jobs, tune_baseline, tune_program
from optevo.search.core.workers import EvalSpec, InProcessPool


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("task")
    ap.add_argument("--fresh", type=int, default=16, help="fresh evaluation seeds")
    ap.add_argument("--programs", nargs="+", default=["signum", "lion", "adam_style", "sgd"],
                    help="library names, program files or RUN_DIR:ID")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a task option (read as YAML), e.g. --set spike_prob=0.01")
    args = ap.parse_args(argv)
    import yaml
    options = {k: yaml.safe_load(v) for k, v in (x.split("=", 1) for x in args.set)}
    n = get_task(args.task, **options).seeds
    pool = InProcessPool(EvalSpec(args.task, options, None, tuple(range(n)), buckets_for(16)))
    fresh = fresh_seeds(args.fresh)
    adamw_text, adamw_scale, lrs, wd = tune_baseline(pool)
    print(f"{args.task} {options}: tuned optax AdamW lr x{adamw_scale:g} of 1e-3 (edge: {lrs[0].at_edge}),"
          f" weight decay factor {wd.best:g}")
    def fresh_run(name, text, scale):
        ident = JobId("fresh", name)
        return run_jobs(pool, [Job(ident, text, fresh, scale)])[ident]

    res = {"optax adamw (tuned)": fresh_run("adamw", adamw_text, adamw_scale)}
    for name in args.programs:
        text = load_ref(name)[0].text()
        line = tune_program(pool, name, text, rule=LineRule(lo=-6, hi=10, max_extend=10))
        label = f"{name} (lr x{line.best:g}{', edge' if line.at_edge else ''})"
        res[label] = fresh_run(name, text, line.best)
    ref = np.array(res["optax adamw (tuned)"].losses)
    print(f"\n| program | loss on {args.fresh} fresh seeds | median | diff vs tuned AdamW | z |")
    print("|---|---|---|---|---|")
    for name, r in res.items():
        x = np.array(r.losses)
        s, d = stats(x), stats(x - ref)
        z = d.mean / d.se if d.se > 0 else 0.0
        print(f"| {name} | {s.mean:.4g} ± {s.se:.2g} | {np.median(x):.4g} | {d.mean:+.4g} ± "
              f"{d.se:.2g} | {z:+.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

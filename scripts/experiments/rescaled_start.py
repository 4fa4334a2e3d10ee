"""Can a child that only rescales the tuned start's lr or decay constant beat it? A search's
calibration (``tuning.calibrate_start``) on ``text_lm`` (60 steps, 4 seeds, in-process), then
the start with its lr constant (``lr = lr * 0.001``) or its decay constant (``w * c``) times
each factor, trained at the tuned multiplier on the same seeds: paired difference to the
tuned start, mean and standard error (negative: the rescaled program is better).

    python scripts/experiments/rescaled_start.py
"""
import contextlib
import io
import tempfile

import numpy as np
from optevo.dsl import parse
from optevo.dsl.decay import decay_sites
from optevo.search import run
from optevo.search.core.jobs import Job, JobId
from optevo.search.core.config import config_from_dict
from optevo.search.core.tuning import run_jobs
from optevo.search.core.workers import InProcessPool, eval_spec
d = {"seed": 0, "task": {"name": "text_lm", "steps": 60, "seeds": 4},
     "search": {"population": 4, "tournament": 2, "max_evals": 2}, "workers": {"count": 0},
     "holdout": {"top_k": 1, "seeds": 2, "baselines": []}, "progress": {"enabled": False}}
with contextlib.redirect_stdout(io.StringIO()):
    r = run(d, tempfile.mkdtemp() + "/s")
state = r.rundir.read_checkpoint()
print(f"tuned start: lr x{state['lr_scale']:g}, decay x{state['decay']['factor']:g} "
      f"({state['decay']['passes']} pass(es))")
start = parse(r.records()[0].program)
(di, da), = decay_sites(start)
li = next(i for i, s in enumerate(start.stmts) if s.target == "lr")
pool = InProcessPool(eval_spec(config_from_dict(d)))
base = run_jobs(pool, [Job(JobId("m", -1), start.text(), None,
                           state["lr_scale"])])[JobId("m", -1)]
print("| constant | factor | paired diff vs the tuned start |\n|---|---|---|")
for name, (i, a) in (("lr", (li, 1)), ("decay", (di, da))):
    for f in (2 ** -1.5, 2 ** -0.5, 2 ** 0.5, 2 ** 1.5, 1 / 9, 1 / 3, 3.0, 9.0, 27.0):
        stmts = list(start.stmts)
        args = list(stmts[i].args)
        args[a] = float(args[a]) * f
        stmts[i] = stmts[i].__class__(stmts[i].target, stmts[i].op, tuple(args))
        text = start.replace(stmts=tuple(stmts)).text()
        ident = JobId("rescaled", 0)
        r2 = run_jobs(pool, [Job(ident, text, None, state["lr_scale"])])[ident]
        dd = np.array(r2.losses) - np.array(base.losses)
        print(f"| {name} | x{f:.3g} | {dd.mean():+.4f} ± {dd.std(ddof=1) / 2:.4f} |")

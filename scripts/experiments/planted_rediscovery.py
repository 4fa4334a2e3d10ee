"""Planted rediscovery: on a task where sign-momentum truly wins, do searches from AdamW find a
sign-based program? (A check of the machinery, as AutoML-Zero's linear-regression demo; it
claims nothing about Lion in general.)

The task (configs/planted.yaml): ``binary_regression``, under-determined least squares seen
through noisy batches, whose answer is a corner of the box |x_i| <= 100, drawn per seed. A
sign update with decoupled weight decay 0.01 stays in that box (Lion-K), so tuned Lion beats
tuned optax AdamW there by 8 standard errors on fresh seeds, the sign of the raw gradient
loses, and programs that ignore the gradient lose (``scripts/experiments/sign_vs_adamw.py
binary_regression``, tests/test_synthetic_options.py, tests/test_task_quality.py). Each
search starts from the AdamW start program with its own seed. Its best program on fresh
seeds (the held-out re-check) is simplified (exact passes, then the guided ones on the task
at 1% tolerance, as ``optevo simplify RUN_DIR:ID``), and it counts as found when a
``sign(...)`` feeding the update computes something that depends on the gradient and on a
state slot that carries the gradient (the sign of an interpolation of ``g`` and momentum, as
in signum and Lion).

    python scripts/experiments/planted_rediscovery.py --searches 5 --minutes 5
    python scripts/experiments/planted_rediscovery.py --paper-mutations --out runs/planted-paper
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import time
from pathlib import Path

import numpy as np

from optevo.dsl import parse
from optevo.dsl.execute import trace
from optevo.dsl.liveness import update_mask
from optevo.dsl.program import INPUTS
from optevo.search.core.config import load_config
from optevo.search.core.mutations import default_weights
from optevo.search.core.run import run_search
from optevo.search.core.rundir import RunDir
from optevo.simplify import simplify_exact


def _differs(a, b) -> bool:
    a, b = (np.concatenate([np.ravel(np.asarray(x, np.float64)) for x in
                            (y if isinstance(y, list) else [y])]) for y in (a, b))
    with np.errstate(invalid="ignore", over="ignore"):
        same = (a == b) | (np.isnan(a) & np.isnan(b)) | \
            (np.abs(a - b) <= 1e-4 * (np.abs(a) + np.abs(b) + 1e-6))
    return not bool(np.all(same))


def sign_kind(program) -> str:
    """What feeds the update through a ``sign(...)``, judged by what its argument computes,
    not by its text (``interp(g, g, v)`` is ``g``): "momentum" when the argument depends on
    ``g`` and on a state slot whose new value depends on ``g`` (the sign of an
    interpolation of the gradient and momentum, as in signum and Lion), "gradient" when it
    depends on ``g`` but on no such slot, "" when no sign of ``g`` feeds the update.
    Dependence: one step on random inputs, each input redrawn in turn, after the exact
    simplification."""
    p = simplify_exact(program)
    rng = np.random.default_rng(0)

    def draw(name):
        return np.float32(rng.uniform(0.5, 1.5)) if name == "lr" else \
            [rng.standard_normal((5, 7)).astype(np.float32)]

    base = [draw(n) for n in INPUTS]
    envs = trace(p, *base)
    moved = {n: trace(p, *[draw(n) if k == j else base[j] for j in range(len(INPUTS))])
             for k, n in enumerate(INPUTS)}
    returned = dict(zip(("update", "m", "v"), p.returns))
    carries = {slot for slot in ("m", "v")  # state slots whose new value depends on g
               if _differs(envs[-1][returned[slot]], moved["g"][-1][returned[slot]])}
    kind, feeds = "", update_mask(p)
    for i, s in enumerate(p.stmts):
        if s.op != "sign" or not feeds[i] or not isinstance(s.args[0], str):
            continue
        arg = s.args[0]
        deps = {n for n in INPUTS if _differs(envs[i][arg], moved[n][i][arg])}
        if "g" in deps and deps & carries:
            return "momentum"
        if "g" in deps:
            kind = "gradient"
    return kind


def simplify_on_task(program, cfg, tolerance: float = 0.01):
    """The guided simplification (``optevo simplify RUN_DIR:ID``, tolerance 1%) on the run's
    task and fitness seeds: statements that do not matter within the tolerance go."""
    from optevo.proxy_tasks import get_task
    from optevo.proxy_tasks.evaluate import Evaluator
    from optevo.search.core.tuning import CALIBRATION
    from optevo.simplify import simplify_guided
    ev = Evaluator(get_task(cfg.task.name, **cfg.task.options), steps=cfg.task.steps,
                   seeds=cfg.task.seeds)
    exact = simplify_exact(program)
    return simplify_guided(exact, ev, tolerance=tolerance,
                           lr_scale=ev.tune(exact, CALIBRATION).scale)[0]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/planted.yaml")
    ap.add_argument("--searches", type=int, default=5)
    ap.add_argument("--minutes", type=float, default=5.0, help="search time per seed")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--out", default="runs/planted")
    ap.add_argument("--paper-mutations", action="store_true",
                    help="only the paper's four mutations (no wrap)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a config override (read as YAML), e.g. task.options.noise=3")
    args = ap.parse_args(argv)
    import yaml
    sets = {k: yaml.safe_load(v) for k, v in (x.split("=", 1) for x in args.set)}
    rows = []
    for seed in range(args.searches):
        over = {**sets, "seed": seed, "search.time_limit": args.minutes * 60}
        if args.workers is not None:
            over["workers.count"] = args.workers
        if args.paper_mutations:
            over["search.mutations"] = default_weights()  # the four on, wrap off
        cfg = load_config(args.config, over)
        run_dir = Path(args.out) / f"seed{seed}"
        if not (run_dir / "summary.json").exists():  # finished searches are not rerun
            t0 = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):
                run_search(cfg, run_dir, resume=RunDir(run_dir).exists())
            wall = time.perf_counter() - t0
        else:  # from the run's files: its config is written first, its summary last
            wall = ((run_dir / "summary.json").stat().st_mtime
                    - (run_dir / "config.yaml").stat().st_mtime)
        s = RunDir(run_dir).summary()
        best = next((r for r in s["holdout"] if r["id"] == s["holdout_best_id"]), None)
        program = parse(best["program"]) if best else None
        guided = simplify_on_task(program, cfg) if program else None
        top = [sign_kind(parse(r["program"])) for r in s["holdout"]
               if isinstance(r["id"], int) and r["id"] != 0]  # not the start, the baselines
        rows.append({"seed": seed, "trained": s["trained"], "holdout_best_id": s["holdout_best_id"],
                     "selection_best_normalized": s["selection_best_normalized"],
                     "holdout_best_diff_vs_tuned_adamw": s["holdout_best_diff_vs_tuned_adamw"],
                     "holdout_best_diff_vs_tuned_adamw_stderr": s["holdout_best_diff_vs_tuned_adamw_stderr"],
                     "sign": sign_kind(program) if program else "",
                     "sign_top": top,
                     "guided": guided.text() if program else None,
                     "sign_guided": sign_kind(guided) if program else "",
                     "wall_seconds": round(wall, 1),
                     "simplified": best["simplified"] if best else None})
        print(json.dumps(rows[-1]), flush=True)
    (Path(args.out) / "planted.json").write_text(json.dumps(rows, indent=1))
    found = sum(r["sign_guided"] == "momentum" for r in rows)
    print(f"\n{found}/{len(rows)} searches' best programs, simplified, take the sign of momentum "
          f"({args.minutes:g} min of search each, {args.config} {sets or ''}"
          f"{', paper mutations only' if args.paper_mutations else ''})\n")
    print("| seed | trained | wall s | best (x tuned start, selection seeds) | held-out diff vs "
          "tuned AdamW | its sign reads (exact / guided simplification) | the held-out top's |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        d = "—" if r["holdout_best_diff_vs_tuned_adamw"] is None else \
            f"{r['holdout_best_diff_vs_tuned_adamw']:+.4f} ± {r['holdout_best_diff_vs_tuned_adamw_stderr']:.4f}"
        print(f"| {r['seed']} | {r['trained']} | {r['wall_seconds']:.0f} | "
              f"{r['selection_best_normalized']:.3g} | {d} | {r['sign'] or 'no sign of g'} / "
              f"{r['sign_guided'] or 'no sign of g'} | "
              f"{', '.join(k or '-' for k in r['sign_top'])} |")
    for r in rows:
        print(f"\nseed {r['seed']} (id {r['holdout_best_id']}), simplified on the task (tolerance "
              f"1%):\n```python\n{r['guided']}```")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

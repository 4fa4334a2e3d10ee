"""Planted rediscovery: on a task built so that a known optimizer truly wins, do searches
from a simpler start find it? Three checks (a check of the machinery, as AutoML-Zero's
linear-regression demo; none claims anything about the target in general):

* ``sign`` (configs/planted.yaml): the sign of momentum, from the AdamW start, on
  ``binary_regression``: under-determined least squares seen through noisy batches whose
  answer is a corner of the box |x_i| <= 100/81, drawn per seed (the task's defaults scaled
  by 1/81, so the box sits far from float32 overflow). A sign update with decoupled decay
  0.81 stays in that box (Lion-K).
* ``muon`` (configs/planted-muon.yaml): orthogonalised momentum, from the AdamW start with
  the matrix ops on, on ``deep_linear`` (a 3-layer linear network, every singular mode
  weighted alike).
* ``adam`` (configs/planted-adam.yaml): a per-coordinate normalization by a running
  estimate of the gradient's magnitude, from SGD with momentum, on ``diagonal_scales``
  (curvatures three decades apart, noise that scales with them).

Each premise (the target tuned on lr and decay beats the tuned start by more than 5 SE on
fresh seeds; the near-misses lose) is ``scripts/experiments/planted_premise.py``. Each
search starts from the check's start program with its own seed. Its best program on fresh
seeds (the held-out re-check) is simplified (exact passes, then the guided ones on the task
at 1% tolerance, as ``optevo simplify RUN_DIR:ID --fresh N``: on as many unseen seeds as the
re-check's, since 2026-12-07; on the fitness seeds that selected it before, which kept terms
that fit only them) and judged by what it computes
(``optevo.simplify.judges``): ``sign`` counts when the update behaves as a sign of momentum at
the task's own gradient sizes (``sign_behaviour_kind`` is ``momentum`` at the smallest,
median and largest of the fitness seeds' median |g| at the start; decided on 2026-12-07,
before the searches it judges; the earlier judge, a ``sign`` op reading a slot that carries
``g``, is still shown as "sign op"); ``muon`` when an ``orthogonalize`` feeding the update
reads the gradient and a state slot that carries it; ``adam`` when the update is normalized
per coordinate by a running estimate (``normalization_kind`` is ``adaptive``). The guided
passes run, and the behaviour judges' probes feed ``lr``, at the re-check's tuned lr
multiplier (the probes fed ``lr = 1`` before 2026-12-07, later: the Adam check's seed 4 then
read as diverged, its step-size chain NaN at 1; BENCHMARKS.md). The target is
tuned on lr and decay as a search calibrates its start and trained on the same fresh seeds,
so the table gives the found program's paired difference to the tuned target (the found
program at its re-check's tuning: lr around its own multiplier, then decay) beside the
search's own to tuned optax AdamW; "reads lr" says whether its update depends on the
learning rate at all.

    python scripts/experiments/planted_rediscovery.py --searches 5 --minutes 5
    python scripts/experiments/planted_rediscovery.py --first-seed 5 --out runs/planted-decay
    python scripts/experiments/planted_rediscovery.py --first-seed 5 --set search.mutations.decay=0 \
        --out runs/planted-b5   # without the decay mutation
    python scripts/experiments/planted_rediscovery.py --check muon --minutes 15 --out runs/pm
    python scripts/experiments/planted_rediscovery.py --paper-mutations --out runs/planted-paper
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import sys
from pathlib import Path

import numpy as np

from optevo.dsl import parse
from optevo.search.core.config import load_config
from optevo.search.core.mutations import default_weights
from optevo.search.core.run import run_search
from optevo.search.core.rundir import RunDir
from optevo.simplify import simplify_exact
from optevo.simplify.judges import (depends_on, normalization_kind, normalization_report,
                                    orthogonalize_kind, sign_behaviour_kind, sign_kind)

sys.path.insert(0, str(Path(__file__).parent))
from planted_premise import fresh_losses, task_pool, tune_program  # noqa: E402  (sibling)


def gradient_sizes(cfg) -> list:
    """The task's own gradient sizes: the smallest, median and largest, over its fitness
    seeds, of each seed's median |g| at the start (its ``grad_scale`` draw included)."""
    from optevo.proxy_tasks import get_task
    from optevo.proxy_tasks.engine import TrainLoop, seed_keys
    loop = TrainLoop(get_task(cfg.task.name, **cfg.task.options), cfg.task.steps)
    k_init, k_data = seed_keys(list(range(cfg.task.seeds)))
    w, inst = loop.start(k_init)
    each = np.median(np.abs(np.asarray(loop.grads(w, k_data, 0, inst)[1])), axis=1)
    return [float(each.min()), float(np.median(each)), float(each.max())]


def sign_judge(cfg):
    """The sign check's judge on ``cfg``'s task: ``sign_behaviour_kind`` at its sizes."""
    sizes = gradient_sizes(cfg)
    return lambda program, lr: sign_behaviour_kind(program, sizes, lr)


# check -> (config, start's target program, judge of a config, its verdict for "found", words);
# a judge takes (program, lr): the lr input its probe feeds, the program's tuned multiplier
CHECKS = {
    "sign": ("configs/planted.yaml", "lion", sign_judge, "momentum",
             "behave as a sign of momentum"),
    "muon": ("configs/planted-muon.yaml", "muon",
             lambda cfg: lambda program, lr: orthogonalize_kind(program), "momentum",
             "orthogonalize the momentum"),
    "adam": ("configs/planted-adam.yaml", "adam_style",
             lambda cfg: normalization_kind, "adaptive", "normalize by a running magnitude"),
}


def search_summary(cfg, run_dir: Path) -> dict:
    """``cfg``'s search in ``run_dir``, quietly, and its summary. A finished search is not
    rerun; an unfinished one resumes; a finished one whose summary.json was moved away runs
    its held-out re-check again (and nothing else)."""
    if not (run_dir / "summary.json").exists():
        with contextlib.redirect_stdout(io.StringIO()):
            run_search(cfg, run_dir, resume=RunDir(run_dir).exists())
    return RunDir(run_dir).summary()


def simplify_on_task(program, cfg, lr_scale: float, tolerance: float = 0.01):
    """The guided simplification (``optevo simplify RUN_DIR:ID --fresh N``, tolerance 1%) on
    the run's task at ``lr_scale`` (the held-out re-check's tuned multiplier), on as many
    seeds as the held-out re-check's, drawn from ``simplify_seeds`` (since 2026-12-07; the
    fitness seeds before): statements that do not matter within the tolerance go. On the
    seeds that selected it, a find keeps terms that fit only them (``seeds.py``)."""
    from optevo.proxy_tasks.seeds import simplify_seeds
    from optevo.simplify import simplify_guided
    ev = task_evaluator(cfg, simplify_seeds(cfg.holdout.seeds))
    return simplify_guided(simplify_exact(program), ev, tolerance=tolerance,
                           lr_scale=lr_scale)[0]


def task_evaluator(cfg, seeds):
    """An evaluator of ``cfg``'s task (its name, options and steps) on ``seeds``."""
    from optevo.proxy_tasks import get_task
    from optevo.proxy_tasks.evaluate import Evaluator
    return Evaluator(get_task(cfg.task.name, **cfg.task.options), steps=cfg.task.steps,
                     seeds=seeds)


def target_losses(cfg, target: str, n_fresh: int):
    """The check's target tuned on lr and decay on the task's fitness seeds, as a search
    calibrates its start, then trained on the held-out re-check's ``n_fresh`` fresh seeds:
    its losses there."""
    from optevo.search.core.views import load_ref
    pool = task_pool(cfg)
    text = load_ref(target)[0].text()
    return fresh_losses(pool, "target", *tune_program(pool, cfg.task.name, "target", text)[:2],
                        n_fresh)


def against_target(row: dict, target: list):
    """(mean, SE) of found - target on the same fresh seeds: the found program at its
    held-out re-check's tuning (lr around its own multiplier, and decay), the target at its
    own (:func:`target_losses`)."""
    from optevo.proxy_tasks.fitness import stats
    from optevo.proxy_tasks.seeds import fresh_seeds
    if list(row["holdout_seeds"]) != list(fresh_seeds(len(target))):
        raise SystemExit(f"held-out seeds {row['holdout_seeds']} are not the target's")
    found = [math.inf if x is None else x for x in row["holdout_losses"]]
    d = stats(np.asarray(found) - np.asarray(target))
    return [d.mean, d.se]


def probe(program, lr: float = 1.0) -> dict:
    """The behaviour probe of the Adam judge (``normalization_report``) on ``program``, for
    every check, so that each near-miss is described by what it computes: ``common_change``
    (the relative change of the last updates under x100 gradients: 0 for a sign or Adam, 99 for
    SGD) and ``spread`` (90th over 10th percentile of |update| across coordinates: 1 for a
    sign, 5.7 for the AdamW start, 49 for SGD), at the ``lr`` input ``lr``."""
    r = normalization_report(program, lr)
    return {k: round(float(r[k]), 4) for k in ("common_change", "spread")}


def _probe_text(r) -> str:
    p = r.get("probe")
    return "—" if not p else f"{p['common_change']:.3f} / {p['spread']:.2f}"


def _pm(pair):
    return "—" if pair is None or pair[0] is None else f"{pair[0]:+.4f} ± {pair[1]:.4f}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", choices=sorted(CHECKS), default="sign")
    ap.add_argument("--config", default=None, help="default: the check's")
    ap.add_argument("--searches", type=int, default=5)
    ap.add_argument("--first-seed", type=int, default=0, help="search seeds start here")
    ap.add_argument("--minutes", type=float, default=5.0, help="search time per seed")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--out", default="runs/planted")
    ap.add_argument("--paper-mutations", action="store_true",
                    help="only the paper's four mutations (no wrap, ema or decay)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a config override (read as YAML), e.g. search.mutations.ema=1.0")
    args = ap.parse_args(argv)
    import yaml
    config, target, judge_of, verdict, words = CHECKS[args.check]
    config = args.config or config
    sets = {k: yaml.safe_load(v) for k, v in (x.split("=", 1) for x in args.set)}
    rows, target_fresh, judge = [], None, None  # the target's fresh losses: tuned once
    for seed in range(args.first_seed, args.first_seed + args.searches):
        over = {**sets, "seed": seed, "search.time_limit": args.minutes * 60}
        if args.workers is not None:
            over["workers.count"] = args.workers
        if args.paper_mutations:
            over["search.mutations"] = default_weights()  # the four on, the rest off
        cfg = load_config(config, over)
        judge = judge or judge_of(cfg)
        s = search_summary(cfg, Path(args.out) / f"seed{seed}")
        wall = s["wall_seconds"]  # the search's seconds (every session) and its re-check's
        best = next((r for r in s["holdout"] if r["id"] == s["holdout_best_id"]), None)
        if best and target_fresh is None:
            target_fresh = target_losses(cfg, target, cfg.holdout.seeds)
        program = parse(best["program"]) if best else None
        lr = best["lr_scale"] if best else 1.0  # its tuned lr: the judges' probes feed it
        guided = simplify_on_task(program, cfg, lr) if program else None
        top = [judge(parse(r["program"]), r["lr_scale"]) for r in s["holdout"]
               if isinstance(r["id"], int) and r["id"] != 0]  # not the start, the baselines
        vs_adamw = [s["holdout_best_diff_vs_tuned_adamw"],
                    s["holdout_best_diff_vs_tuned_adamw_stderr"]]
        rows.append({"seed": seed, "trained": s["trained"], "holdout_best_id": s["holdout_best_id"],
                     "selection_best_normalized": s["selection_best_normalized"],
                     "diff_vs_tuned_adamw": vs_adamw,
                     "diff_vs_tuned_target": against_target(best, target_fresh)
                     if best else None,
                     "reads_lr": depends_on(program, "lr") if program else None,
                     "verdict": judge(program, lr) if program else "",
                     "verdict_top": top,
                     "guided": guided.text() if program else None,
                     "verdict_guided": judge(guided, lr) if program else "",
                     "sign_op": sign_kind(guided) if program else "",
                     "probe": probe(guided, lr) if program else None,
                     "wall_seconds": round(wall, 1),
                     "simplified": best["simplified"] if best else None})
        print(json.dumps(rows[-1]), flush=True)
    (Path(args.out) / "planted.json").write_text(json.dumps(rows, indent=1))
    found = sum(r["verdict_guided"] == verdict for r in rows)
    print(f"\n{found}/{len(rows)} searches' best programs, simplified, {words} "
          f"({args.minutes:g} min of search each, {config} {sets or ''}"
          f"{', paper mutations only' if args.paper_mutations else ''})\n")
    print(f"| seed | trained | wall s | best (x tuned start, selection seeds) | held-out diff vs "
          f"tuned AdamW | vs tuned {target} | reads lr | judged (exact / guided "
          f"simplification) | the held-out top's | sign op | probe: x100 change / spread |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['seed']} | {r['trained']} | {r['wall_seconds']:.0f} | "
              f"{r['selection_best_normalized']:.3g} | {_pm(r['diff_vs_tuned_adamw'])} | "
              f"{_pm(r['diff_vs_tuned_target'])} | {'yes' if r['reads_lr'] else 'no'} | "
              f"{r['verdict'] or '-'} / {r['verdict_guided'] or '-'} | "
              f"{', '.join(k or '-' for k in r['verdict_top'])} | {r.get('sign_op') or '-'} | "
              f"{_probe_text(r)} |")
    for r in rows:
        print(f"\nseed {r['seed']} (id {r['holdout_best_id']}), simplified on the task (tolerance "
              f"1%, unseen seeds):\n```python\n{r['guided']}```")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Sensitivity of hypergradient stacks to the initial learning rate (Chandra et al. 2022's
claim: more stacked levels, less sensitivity to the initial hyperparameters).

Final validation loss against the initial learning rate (a log grid over several orders of
magnitude) for SGD and Adam with 0 (plain SGD / plain Adam), 1, 2 and 3 stacked levels of
hypergradient SGD (``optax:hyper_sgd`` / ``optax:hyper_adam``, each level's step size starting
at ``hyper_lr``), trained by OptaxEngine (the engines' loop, the task's lr schedule) on the
same seeds. Writes a PNG (one panel per base optimizer) and a markdown table, and prints the
table::

    python scripts/experiments/hyper_sensitivity.py                      # digits_cnn (funnel stage B)
    python scripts/experiments/hyper_sensitivity.py --quick              # a check in under a minute
    python scripts/experiments/hyper_sensitivity.py --task digits_mlp --lr-min -4 --lr-max 1 --per-decade 2
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np

from optevo.proxy_tasks import get_task
from optevo.proxy_tasks.engine import enable_compile_cache
from optevo.proxy_tasks.optax_engine import OptaxEngine
from optevo.proxy_tasks.fitness import aggregate
from optevo.proxy_tasks.baselines.specs import HYPER, spec_text

OUT = Path(__file__).resolve().parent / "results"
BASES = {"SGD": "hyper_sgd", "Adam": "hyper_adam"}


def sweep(engine, kind, levels, hyper_lr, lrs, seeds):
    """levels -> list of (mean, stderr, n_diverged) per initial lr."""
    out = {}
    for L in levels:
        text = spec_text(kind, learning_rate=1.0, levels=L, hyper_lr=hyper_lr)
        runs = engine.run_grid(text, seeds, lrs)
        out[L] = [aggregate(r.losses, r.diverged) for r in runs]
    return out


def cell(a) -> str:
    return f"div ({a.n_diverged})" if a.any_diverged else f"{a.mean:.4f} ± {a.stderr:.4f}"


def spread(aggs, lrs) -> str:
    """The initial rates whose loss is within 10% of the row's best, as 'lo..hi (n)'."""
    ok = [a.mean for a in aggs if not a.any_diverged]
    if not ok:
        return "—"
    best = min(ok)
    near = [lr for lr, a in zip(lrs, aggs) if not a.any_diverged and a.mean <= 1.1 * best]
    return f"{min(near):.0e}..{max(near):.0e} ({len(near)} of {len(lrs)})"


def table(results, lrs, hyper_lrs) -> str:
    head = "| optimizer | levels | " + " | ".join(f"lr {x:.0e}" for x in lrs) + \
        " | best | lr within 10% of best |"
    lines = [head, "|" + "---|" * (len(lrs) + 4)]
    for base, rows in results.items():
        for L, aggs in rows.items():
            name = f"plain {base}" if L == 0 else f"{base} / SGD^{L} (hyper_lr {hyper_lrs[base]:g})"
            best = min((a.mean for a in aggs if not a.any_diverged), default=math.inf)
            lines.append(f"| {name} | {L} | " + " | ".join(cell(a) for a in aggs) +
                         f" | {best:.4f} | {spread(aggs, lrs)} |")
    return "\n".join(lines)


def plot(results, lrs, path, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(results), figsize=(5.5 * len(results), 4), sharey=True)
    axes = np.atleast_1d(axes)
    for ax, (base, rows) in zip(axes, results.items()):
        for L, aggs in rows.items():
            y = [a.mean if not a.any_diverged else np.nan for a in aggs]
            e = [a.stderr if not a.any_diverged else np.nan for a in aggs]
            ax.errorbar(lrs, y, yerr=e, marker="o", ms=3, capsize=2,
                        label=f"plain {base}" if L == 0 else f"{L} level{'s' * (L > 1)}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("initial learning rate")
        ax.set_title(f"{base} tuned by stacked hyper-SGD")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("final validation loss (diverged: omitted)")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--task", default="digits_cnn")
    ap.add_argument("--steps", type=int, help="training steps (default: the task's)")
    ap.add_argument("--seeds", type=int, default=8, help="seeds 0..N-1 (default 8)")
    ap.add_argument("--levels", type=int, nargs="+", default=[0, 1, 2, 3])
    ap.add_argument("--lr-min", type=float, default=-5, help="log10 of the smallest rate")
    ap.add_argument("--lr-max", type=float, default=1, help="log10 of the largest rate")
    ap.add_argument("--per-decade", type=int, default=1, help="grid points per decade")
    ap.add_argument("--hyper-lr-sgd", type=float, default=HYPER["hyper_sgd"]["hyper_lr"])
    ap.add_argument("--hyper-lr-adam", type=float, default=HYPER["hyper_adam"]["hyper_lr"])
    ap.add_argument("--quick", action="store_true",
                    help="digits_mlp, 60 steps, 2 seeds, levels 0 1, 3 rates: a smoke check")
    ap.add_argument("--out", default=str(OUT / "hyper_sensitivity"),
                    help="output stem: STEM.png and STEM.md")
    args = ap.parse_args()
    if args.quick:
        args.task, args.steps, args.seeds, args.levels = "digits_mlp", 60, 2, [0, 1]
        args.lr_min, args.lr_max, args.per_decade = -3, 1, 1
        args.out = "/tmp/hyper_sensitivity_quick"
    enable_compile_cache()
    task = get_task(args.task, **({"steps": args.steps} if args.steps else {}))
    n = int(round((args.lr_max - args.lr_min) * args.per_decade))
    lrs = [float(10 ** (args.lr_min + i / args.per_decade)) for i in range(n + 1)]
    seeds = list(range(args.seeds))
    hyper_lrs = {"SGD": args.hyper_lr_sgd, "Adam": args.hyper_lr_adam}
    engine, t0 = OptaxEngine(task), time.perf_counter()
    results = {base: sweep(engine, kind, args.levels, hyper_lrs[base], lrs, seeds)
               for base, kind in BASES.items()}
    secs = time.perf_counter() - t0
    title = (f"{task.describe()}; seeds 0..{seeds[-1]}; hyper_lr SGD {hyper_lrs['SGD']:g}, "
             f"Adam {hyper_lrs['Adam']:g}")
    md = (f"Final validation loss (mean ± SE over {len(seeds)} seeds) against the initial "
          f"learning rate. {title}. {secs:.0f} s.\n\n" + table(results, lrs, hyper_lrs) + "\n")
    print(md)
    stem = Path(args.out)
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".md").write_text(md)
    plot(results, lrs, stem.with_suffix(".png"), title)
    print(f"wrote {stem.with_suffix('.md')} and {stem.with_suffix('.png')}")


if __name__ == "__main__":
    main()

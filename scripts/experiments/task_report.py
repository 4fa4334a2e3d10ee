"""Where Lion, signum and SGD, and the optax baselines, stand against the AdamW start on each
proxy task.

Each program's learning-rate scale (a multiplier on its ``lr`` input) is tuned by the one
tuning rule (``optevo.proxy_tasks.tuning``: a log line grown at an edge), on the same
seeds, at the task's default settings, with the fast engine; each optax baseline
(``--baselines``: AdamW, the hypergradient optimizers and the learned LSTM optimizer,
``optevo.proxy_tasks.baselines.specs``) has the multiplier of its learning rate tuned by
the same rule on the same seeds, in the engines' loop (OptaxEngine). Prints one markdown
table per task: best scale, mean final validation loss, standard error, the
ratio to the AdamW start, the gap in combined standard errors, and whether the best scale
sits at the line's grown-out edge.

    python scripts/experiments/task_report.py                       # all tasks, grid 2^-8 .. 2^8
    python scripts/experiments/task_report.py --tasks digits_mlp --kmin -4 --kmax 4
    python scripts/experiments/task_report.py --tasks quadratic rosenbrock --gradient-free
                                 # ... with the programs that ignore the gradient
    python scripts/experiments/task_report.py --tasks digits_mlp --baselines adamw hyper_adam l2l
    python scripts/experiments/task_report.py --baselines      # programs only, no optax baselines
"""

from __future__ import annotations

import argparse
import math
import time

from optevo.dsl import parse
from optevo.dsl.library import library_program
from optevo.proxy_tasks import get_task, gradient_free, task_names
from optevo.proxy_tasks.baselines.specs import baseline_spec
from optevo.proxy_tasks.evaluate import Evaluator
from optevo.proxy_tasks.tuning import LineRule

PROGRAMS = ["adam_style", "lion", "signum", "sgd"]
BASELINES = ["adamw", "hyper_sgd", "hyper_sgdm", "hyper_adam", "l2l"]
# A deliberately poor program: gradient plus an equal pull of the weights to zero.
POOR = parse("def train(w, g, m, v, lr):\n  u = g + w\n  lr = lr * 0.01\n"
             "  update = u * lr\n  return update, m, v\n")


def task_table(name, grid, programs=None, with_gradient_free=False, baselines=()):
    task = get_task(name)
    ev = Evaluator(task)
    progs = {p: library_program(p) for p in (programs or PROGRAMS)}
    progs["poor (g + w)"] = POOR
    if with_gradient_free:
        progs.update({f"gradient-free: {k}": p for k, p in gradient_free.programs().items()})
    rows = {}
    t0 = time.perf_counter()
    for label, prog in progs.items():
        rows[label] = ev.tune(prog, grid)
    for b in baselines:
        text = baseline_spec(b)
        rows[f"optax {text[len('optax:'):].split()[0]}"
             + (f" ({b})" if b.startswith("optax:") else "")] = ev.tune(text, grid)
    return task, ev, rows, time.perf_counter() - t0


def gap_in_se(a, b) -> float:
    se = math.hypot(a.stderr, b.stderr)
    return abs(a.loss - b.loss) / se if se > 0 else math.inf


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tasks", nargs="+", default=task_names())
    ap.add_argument("--kmin", type=int, default=-8)
    ap.add_argument("--kmax", type=int, default=8)
    ap.add_argument("--extend", type=int, default=4,
                    help="points the line may grow past an edge, per side (the tuning rule)")
    ap.add_argument("--gradient-free", action="store_true",
                    help="also the programs that ignore the gradient (proxy_tasks.gradient_free)")
    ap.add_argument("--baselines", nargs="*", default=BASELINES, metavar="KIND",
                    help="optax baselines: kinds or 'optax:KIND k=v ...' lines (default: "
                         f"{' '.join(BASELINES)}; none: programs only)")
    args = ap.parse_args()
    grid = LineRule(2.0, args.kmin, args.kmax, args.extend)
    print(f"lr-scale line 2^{args.kmin} .. 2^{args.kmax}, grown up to {args.extend} points at "
          "an edge, same seeds for every program\n")
    for name in args.tasks:
        task, ev, rows, secs = task_table(name, grid, with_gradient_free=args.gradient_free,
                                          baselines=args.baselines)
        base = rows["adam_style"].score
        print(f"### {name}\n\n{task.describe()}; seeds {ev.seeds[0]}..{ev.seeds[-1]}; "
              f"{secs:.0f} s\n")
        print("| program | best lr scale | mean val loss | stderr | vs AdamW start | "
              "gap to AdamW start (SE) | best at grid edge |")
        print("|---|---|---|---|---|---|---|")
        for label, t in rows.items():
            s = t.score
            if s.diverged:
                print(f"| {label} | {t.scale:g} | diverged | | | | {t.at_edge} |")
                continue
            print(f"| {label} | {t.scale:g} | {s.loss:.4g} | {s.stderr:.2g} | "
                  f"{s.loss / base.loss:.3f} | "
                  f"{'—' if label == 'adam_style' else f'{gap_in_se(s, base):.1f}'} | "
                  f"{'yes' if t.at_edge else 'no'} |")
        print()


if __name__ == "__main__":
    main()

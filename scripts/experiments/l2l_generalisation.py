"""Does the learned LSTM optimizer generalise? (Andrychowicz et al. 2016; the seminar's
finding: it works on toy systems and appears not to.)

The L2L optimizer meta-trained on ``digits_mlp`` at its default horizon (the packaged
``configs/l2l/digits_mlp.npz``, or ``--weights``) against optax AdamW with a tuned learning
rate, on four settings: the funnel's proxy stage (``digits_mlp``, its horizon), the same at
4x the horizon, and the funnel's stages B (``digits_cnn``) and C (``lm_transformer``) with
the settings of ``configs/funnel.yaml``. Each optimizer's learning-rate multiplier is tuned
on the tuning seeds by the funnel's line search (``2^-4..2^4``, grown at an edge); L2L is
shown both as meta-trained (multiplier 1) and with its output multiplier tuned. Then all are
trained on fresh seeds and compared by paired differences ``d_s = L_s(L2L) - L_s(AdamW)``
(mean ± standard error; negative: L2L better) and the paired log ratio. Prints a markdown
table and writes it with a PNG::

    python scripts/experiments/l2l_generalisation.py                 # all four settings, 16 fresh seeds
    python scripts/experiments/l2l_generalisation.py --quick         # a check in about a minute
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

from optevo.proxy_tasks import get_task
from optevo.proxy_tasks.engine import enable_compile_cache
from optevo.proxy_tasks.optax_engine import OptaxEngine
from optevo.proxy_tasks.fitness import Stats, aggregate, stats
from optevo.proxy_tasks.baselines.specs import spec_text
from optevo.proxy_tasks.seeds import fresh_seeds
from optevo.proxy_tasks.tuning import LineRule, tune_line
from optevo.search.funnel.config import load_funnel_config

OUT = Path(__file__).resolve().parent / "results" / "l2l_generalisation"
EVAL_OFFSET = 3_000_000  # fresh seeds 4e6+: not fitness (0..), held-out (1e6+), meta (2e6+)


def settings(cfg, quick: bool):
    """(label, task) pairs: the funnel's stages, and the proxy at 4x its horizon."""
    by_name = {s.name: s for s in cfg.stages}
    proxy = cfg.stages[0]
    opts = proxy.task_options()
    if quick:
        opts = {**opts, "steps": 60}
    out = [(f"{proxy.task} ({opts.get('steps')} steps)",
            get_task(proxy.task, **opts)),
           (f"{proxy.task} at 4x horizon ({4 * opts.get('steps')})",
            get_task(proxy.task, **{**opts, "steps": 4 * opts.get("steps")}))]
    if not quick:
        for name, label in (("cnn", "stage B"), ("transformer", "stage C")):
            s = by_name[name]
            out.append((f"{label}: {s.task} ({s.steps} steps)", s.make_task()))
    return out


def tune(engine, text, seeds, lo, hi, max_extend):
    """The one tuning rule's lr line (ratio 2) for ``text``; returns (multiplier, at_edge)."""
    rule = LineRule(2.0, lo, hi, max_extend)

    def evaluate(ks):
        return [aggregate(r.losses, r.diverged).mean
                for r in engine.run_grid(text, seeds, [rule.value(k) for k in ks])]
    line = tune_line(evaluate, rule)
    return rule.value(line.best), line.at_edge


def compare(engine, texts, scales, seeds):
    """Per-seed final losses of each optimizer (inf where diverged)."""
    return {k: engine.run([texts[k]], seeds, scales[k])[0].losses for k in texts}


def paired(a, b):
    """Paired stats of a - b and of log a - log b over the seeds where both are finite."""
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 2:
        return None, None, int((~ok).sum())
    return stats(a[ok] - b[ok]), stats(np.log(a[ok]) - np.log(b[ok])), int((~ok).sum())


def fmt(s):
    return "—" if s is None else f"{s.mean:+.4f} ± {s.se:.4f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--weights", default="digits_mlp",
                    help="L2L weights: packaged name or .npz path (default: the packaged)")
    ap.add_argument("--config", help="funnel config (default configs/funnel.yaml)")
    ap.add_argument("--tune-seeds", type=int, default=4)
    ap.add_argument("--eval-seeds", type=int, default=16)
    ap.add_argument("--quick", action="store_true",
                    help="digits_mlp only, 60 and 240 steps, small grid and seed counts")
    ap.add_argument("--out", default=str(OUT), help="output stem: STEM.md, .json, .png")
    args = ap.parse_args()
    lo, hi, ext = (-4, 4, 4) if not args.quick else (-1, 1, 0)
    if args.quick:
        args.tune_seeds, args.eval_seeds = 2, 4
        args.out = "/tmp/l2l_generalisation_quick"
    enable_compile_cache()
    cfg = load_funnel_config(args.config)
    texts = {"adamw": spec_text("adamw"), "l2l": spec_text("l2l", weights=args.weights)}
    tune_seeds = list(range(args.tune_seeds))
    eval_seeds = fresh_seeds(args.eval_seeds, EVAL_OFFSET)
    rows, t0 = [], time.perf_counter()
    for label, task in settings(cfg, args.quick):
        engine = OptaxEngine(task)
        found = {k: tune(engine, t, tune_seeds, lo, hi, ext) for k, t in texts.items()}
        scales = {"adamw": found["adamw"][0], "l2l": 1.0, "l2l_tuned": found["l2l"][0]}
        runs = compare(engine, {**texts, "l2l_tuned": texts["l2l"]}, scales, eval_seeds)
        row = {"setting": label, "task": task.describe(), "scales": scales,
               "at_edge": {k: v[1] for k, v in found.items()},
               "losses": {k: [x if math.isfinite(x) else None for x in v]
                          for k, v in runs.items()}}
        for k in ("l2l", "l2l_tuned"):
            d, r, n_bad = paired(runs[k], runs["adamw"])
            row[k] = {"diff": d and d._asdict(), "log_ratio": r and r._asdict(),
                      "dropped_seeds": n_bad}
        rows.append(row)
        print(f"{label}: done ({time.perf_counter() - t0:.0f} s)", flush=True)
    md = report(rows, args, time.perf_counter() - t0)
    print(md)
    stem = Path(args.out)
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".md").write_text(md)
    stem.with_suffix(".json").write_text(json.dumps(rows, indent=1))
    plot(rows, stem.with_suffix(".png"))
    print(f"wrote {stem}.md, .json, .png")


def _mean(xs):
    a = aggregate([math.inf if x is None else x for x in xs])
    return "diverged" if a.any_diverged else f"{a.mean:.4f} ± {a.stderr:.4f}"


def report(rows, args, secs) -> str:
    lines = [f"L2L weights `{args.weights}` against optax AdamW (lr tuned; weight decay 1e-4) "
             f"on {args.eval_seeds} fresh seeds ({eval_seeds[0]}+); lr multipliers tuned on "
             f"seeds 0..{args.tune_seeds - 1}. `diff` = mean paired L(L2L) - L(AdamW) ± SE "
             f"(negative: L2L better); `log ratio` the same for log losses. {secs:.0f} s.", "",
             "| setting | AdamW (tuned x) | L2L as trained (x1) | diff | log ratio | "
             "L2L tuned (x) | diff | log ratio |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        sc, L = r["scales"], r["losses"]
        cols = [r["setting"], f"{_mean(L['adamw'])} (x{sc['adamw']:g})", _mean(L["l2l"])]
        cols += [fmt(_stats(r["l2l"]["diff"])), fmt(_stats(r["l2l"]["log_ratio"]))]
        cols += [f"{_mean(L['l2l_tuned'])} (x{sc['l2l_tuned']:g})",
                 fmt(_stats(r["l2l_tuned"]["diff"])), fmt(_stats(r["l2l_tuned"]["log_ratio"]))]
        lines.append("| " + " | ".join(cols) + " |")
    notes = [f"{r['setting']}: {k} best multiplier at the grid's edge" for r in rows
             for k, e in r["at_edge"].items() if e]
    notes += [f"{r['setting']}: {k} compared on {args.eval_seeds - r[k]['dropped_seeds']} "
              "seeds (the others diverged)" for r in rows for k in ("l2l", "l2l_tuned")
              if r[k]["dropped_seeds"]]
    return "\n".join(lines + [""] + [f"- {n}" for n in notes]) + "\n"


def _stats(d):
    return None if d is None else Stats(**d)


def plot(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 3.8))
    x = np.arange(len(rows))
    for off, k, label in ((-0.18, "l2l", "L2L as meta-trained"),
                          (0.18, "l2l_tuned", "L2L, lr multiplier tuned")):
        m = [r[k]["log_ratio"]["mean"] if r[k]["log_ratio"] else np.nan for r in rows]
        e = [r[k]["log_ratio"]["se"] if r[k]["log_ratio"] else np.nan for r in rows]
        ax.bar(x + off, m, 0.34, yerr=e, capsize=3, label=label)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xticks(x, [r["setting"] for r in rows], fontsize=7, rotation=12)
    ax.set_ylabel("paired log(L2L loss / AdamW loss)\n(< 0: L2L better; ± SE)")
    ax.set_title("L2L meta-trained on digits_mlp vs tuned AdamW, fresh seeds", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()

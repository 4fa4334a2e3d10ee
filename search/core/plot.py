"""``optevo plot``: a run's search progress as a PNG, like the paper's search-progress figure."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from .files import save_figure
from .views import fmt
from .rundir import RunDir

DEFAULT_POPULATION = 1000  # for a run directory without a config


def progress_series(run_dir) -> Dict[str, List[float]]:
    """Per evaluation (log order): normalized fitness (inf = diverged), best so far, and the
    quartiles (q25, median, q75) of the last P evaluations (the population of regularized
    evolution; a diverged one counts as +inf); and the held-out figures, if any: for each
    re-checked program, its position in the log and its held-out loss / the tuned start's."""
    import numpy as np
    run = RunDir.existing(run_dir)
    records = run.nonempty_records()
    base = next((r.loss for r in records if r.id == 0 and r.loss), None)
    fit = []
    for r in records:
        n = r.normalized
        if n is None and r.loss is not None and base:
            n = r.loss / base
        fit.append(math.inf if n is None or not math.isfinite(n) else float(n))
    fit = np.asarray(fit, np.float64)
    cfg = run.config()
    p = max(1, cfg.search.population if cfg else DEFAULT_POPULATION)
    best = np.minimum.accumulate(fit)
    with np.errstate(invalid="ignore"):  # windows holding diverged (+inf) evaluations
        q = np.array([np.quantile(fit[max(0, i + 1 - p):i + 1], (0.25, 0.5, 0.75))
                      for i in range(len(fit))]).reshape(len(fit), 3)
    q[np.isnan(q)] = np.inf
    pos = {r.id: i + 1 for i, r in enumerate(records)}
    rows = run.holdout_rows() if run.file("holdout.jsonl").exists() else []
    start = next((r.get("holdout") for r in rows if r.get("id") == 0), None)
    held = [(pos[r["id"]], r["holdout"] / start) for r in rows
            if isinstance(r.get("id"), int) and r["id"] in pos and r["id"] != 0
            and r.get("holdout") is not None and start]
    return {"fitness": fit.tolist(), "best": best.tolist(), "q25": q[:, 0].tolist(),
            "median": q[:, 1].tolist(), "q75": q[:, 2].tolist(), "population": p,
            "holdout": held}


def y_range(best, held=()) -> Tuple[float, float]:
    """The y-axis of ``progress.png``: from the best so far, the held-out figures and the
    start's 1.0 (lowest / 1.15 to a few times the start, or 1.25 x the highest of them),
    never from the population. Junk children (a median 20x the start, up to 1000x) once
    stretched a log axis so far that the best line lay flat at the bottom; what lies above
    is drawn as clipped markers on the top edge instead."""
    vals = [float(v) for v in list(best) + list(held) if math.isfinite(v) and v > 0] + [1.0]
    lo = min(vals) / 1.15
    return lo, max(2.5, max(vals) * 1.25)


def plot_progress(run_dir, out: Optional[str] = None) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    s = progress_series(run_dir)
    fit, best, med, q25, q75 = (np.asarray(s[k], np.float64)
                                for k in ("fitness", "best", "median", "q25", "q75"))
    x = np.arange(1, len(fit) + 1)
    out = Path(out) if out else Path(run_dir) / "progress.png"
    # the axis follows the best so far and the held-out figures; evaluations (and the
    # population's median and quartiles) above it are clipped; diverged ones are not drawn
    lo, hi = y_range(best, [h for _, h in s["holdout"]])
    fig, ax = plt.subplots(figsize=(8, 4.8), dpi=120)
    shown = np.isfinite(fit) & (fit > 0) & (fit <= hi)
    above = np.isfinite(fit) & (fit > hi)
    ax.scatter(x[shown], fit[shown], s=6, color="0.6", alpha=0.5, lw=0, label="evaluations")
    if above.any():  # at the top edge (axes coordinates), so that they stay countable
        ax.scatter(x[above], np.full(int(above.sum()), 0.985), s=9, marker="^", color="0.45",
                   alpha=0.5, lw=0, transform=ax.get_xaxis_transform(), clip_on=False,
                   label=f"evaluations above {hi:.3g} (clipped)")
    ax.plot(x, np.where(np.isfinite(best), best, np.nan), color="tab:blue", lw=2.6,
            drawstyle="steps-post", label="best so far", zorder=2)
    band = np.isfinite(q25)
    ax.fill_between(x, np.where(band, q25, np.nan), np.where(np.isfinite(q75), q75, hi * 10),
                    where=band, color="tab:orange", alpha=0.22, lw=0, zorder=1,
                    label=f"population quartiles (last {s['population']} evaluations)")
    ax.plot(x, np.where(np.isfinite(med), med, np.nan), color="tab:orange", lw=0.9,
            alpha=0.8, label="population median", zorder=3)
    if s["holdout"]:
        hx, hy = zip(*s["holdout"])
        ax.scatter(hx, hy, marker="*", s=90, color="tab:red", edgecolor="black", lw=0.5,
                   zorder=5, label="held-out (fresh seeds) / tuned start's")
    ax.axhline(1.0, color="black", ls="--", lw=1.2, label="start program, lr tuned")
    high = med[np.isfinite(med)]
    if above.any() or (high > hi).any():
        note = (f"above the axis: {int(above.sum())} of {int(np.isfinite(fit).sum())} "
                "finite evaluations (\u25b2 on the top edge)")
        if (high > hi).any():
            note += f"; population median up to {fmt(float(high.max()), '.3g')}"
        ax.text(0.99, 0.955, note, transform=ax.transAxes, ha="right", va="top", fontsize=7,
                color="0.3")
    if hi / lo > 4:  # log scale only where the range needs it
        from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_ylim(lo, hi)
    ax.set_xlim(0, max(len(fit), 1) + 1)
    ax.set_xlabel("evaluations")
    ax.set_ylabel("normalized fitness (loss / lr-tuned start; lower is better)")
    n_div = int(np.sum(~np.isfinite(fit)))
    ax.set_title(f"Search progress: {Path(run_dir).name}  ({len(fit)} evaluations, "
                 f"{n_div} diverged; best {fmt(float(best[-1]), '.3f')})")
    ax.grid(alpha=0.3)
    ax.grid(alpha=0.15, which="minor")
    fig.tight_layout(rect=(0, 0.13, 1, 1))  # the legend below the axes, off the data
    fig.legend(*ax.get_legend_handles_labels(), loc="lower center", ncol=3, fontsize=8,
               frameon=False)
    try:
        return save_figure(fig, out)  # checked: a failed write is an error, not a path
    finally:
        plt.close(fig)


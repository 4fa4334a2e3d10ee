"""``optevo plot``: a run's search progress as a PNG, like the paper's search-progress figure."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Dict, List, Optional

from .inspect import _fmt
from .rundir import RunDir

DEFAULT_POPULATION = 1000  # for a run directory without a config


def progress_series(run_dir) -> Dict[str, List[float]]:
    """Per evaluation (log order): normalized fitness (inf = diverged), best so far, and the
    median of the last P evaluations (the population of regularized evolution)."""
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
    median = np.array([np.median(fit[max(0, i + 1 - p):i + 1]) for i in range(len(fit))])
    return {"fitness": fit.tolist(), "best": best.tolist(), "median": median.tolist(),
            "population": p}


def plot_progress(run_dir, out: Optional[str] = None) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    s = progress_series(run_dir)
    fit, best, med = (np.asarray(s[k]) for k in ("fitness", "best", "median"))
    x = np.arange(1, len(fit) + 1)
    out = Path(out) if out else Path(run_dir) / "progress.png"
    # the best programs (often well below 1) and a population median that can sit far above
    # (chance-level losses) both stay in view; diverged evaluations are not drawn
    finite = np.concatenate([fit[np.isfinite(fit) & (fit > 0)], [1.0]])
    med_ok = med[np.isfinite(med) & (med > 0)]
    lo = min(float(finite.min()), 1.0) / 1.15
    hi = max(1.15, float(np.quantile(np.concatenate([finite, med_ok]), 0.95)) * 1.15)
    hi = min(hi, lo * 1e4)
    fig, ax = plt.subplots(figsize=(8, 4.8), dpi=120)
    shown = np.isfinite(fit) & (fit > 0) & (fit <= hi)
    ax.scatter(x[shown], fit[shown], s=6, color="0.6", alpha=0.5, lw=0, label="evaluations")
    ax.plot(x, np.where(np.isfinite(best), best, np.nan), color="tab:blue", lw=2.6,
            drawstyle="steps-post", label="best so far", zorder=2)
    ax.plot(x, np.where(np.isfinite(med), med, np.nan), color="tab:orange", lw=1.3,
            label=f"population median (last {s['population']} evaluations)", zorder=3)
    ax.axhline(1.0, color="black", ls="--", lw=1.2, label="start program, lr tuned")
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
                 f"{n_div} diverged; best {_fmt(float(best[-1]), '.3f')})")
    ax.grid(alpha=0.3)
    ax.grid(alpha=0.15, which="minor")
    ax.legend(loc="best", fontsize=9, framealpha=0.9)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out


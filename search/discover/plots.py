"""The discover report's figures on one common axis, and its two PNGs.

The common axis is "relative to the tuned start of search-1..S" (the config's start program
at its calibrated learning rate: 1.0). Searches 1..S share that start, so their normalized
figures are on it already (factor 1). The search from the best is normalized by its own start
(the best program), so its figures are put on the axis by a factor: exactly, for one task,
the ratio of the two tuned starts' losses (fitness) or the shared start's held-out loss
(held-out: the same fresh seeds); for a suite, whose figures are ratios already, by chaining
through the best program's figure in the search it came from. Everything here reads files
and writes PNGs; nothing is trained.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Dict, List, Optional

from ..core.files import save_figure
from ..core.plot import progress_series
from ..core.rundir import RunDir


def _summary(out: Path, name: str) -> Optional[Dict]:
    return RunDir(out / name).summary()


def _suite(state: Dict) -> bool:
    return isinstance(state["config"]["task"], list)


def axis_factors(out: Path, names: List[str], state: Dict) -> Dict[str, float]:
    """Per search, the factor that puts its normalized fitness on the common axis."""
    factors = {n: 1.0 for n in names}
    best, ref = _summary(out, names[-1]), _summary(out, names[0])
    start = state.get("best_start") or {}
    if best and ref and not _suite(state) and best.get("tuned_start_fitness") \
            and ref.get("tuned_start_fitness"):
        factors[names[-1]] = best["tuned_start_fitness"] / ref["tuned_start_fitness"]
    elif start.get("normalized"):
        factors[names[-1]] = start["normalized"]
    return factors


def holdout_points(out: Path, names: List[str], state: Dict) -> Dict[str, Dict]:
    """Per search with a held-out figure: its best program's held-out loss on the common axis
    (``ratio``, ``se``), and tuned AdamW's (``adamw``) where the search shares the start."""
    sums = {n: _summary(out, n) for n in names}
    ref = next((s["tuned_start_holdout_loss"] for n, s in sums.items() if s and n != names[-1]
                and s.get("tuned_start_holdout_loss")), None)
    chain = (state.get("best_start") or {}).get("holdout_ratio")
    points = {}
    for n, s in sums.items():
        if not s or s.get("holdout_best_loss") is None or not s.get("tuned_start_holdout_loss"):
            continue
        own = s["tuned_start_holdout_loss"]
        if n != names[-1]:
            denom, f = own, 1.0
        elif not _suite(state) and ref:
            denom, f = ref, 1.0
        elif chain:
            denom, f = own, chain
        else:
            continue
        p = {"ratio": f * s["holdout_best_loss"] / denom,
             "se": f * (s.get("holdout_best_stderr") or 0.0) / denom}
        if n != names[-1] and s.get("tuned_adamw_holdout_loss") is not None:
            p["adamw"] = s["tuned_adamw_holdout_loss"] / own
        points[n] = p
    return points


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _log_scale(ax, lo: float, hi: float):
    if hi / lo > 4:
        from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())


def plot_progress(out: Path, names: List[str], state: Dict) -> Path:
    """progress.png: every search's best so far against evaluations, its best program's
    held-out figure at its last evaluation (error bar: 1 SE), tuned AdamW's held-out figure."""
    import numpy as np
    plt = _plt()
    factors = axis_factors(out, names, state)
    points = holdout_points(out, names, state)
    fig, ax = plt.subplots(figsize=(8, 4.8), dpi=120)
    colors = plt.get_cmap("tab10").colors
    ys = [1.0]
    for i, n in enumerate(names):
        best = np.asarray(progress_series(out / n)["best"]) * factors[n]
        x = np.arange(1, len(best) + 1)
        c = colors[i % 10]
        label = n + (" (from the best)" if i == len(names) - 1 else "")
        ax.plot(x, np.where(np.isfinite(best), best, np.nan), color=c, lw=2,
                drawstyle="steps-post", label=label)
        ys += [float(v) for v in best if math.isfinite(v) and v > 0]
        if n in points:
            p = points[n]
            ax.errorbar([len(best)], [p["ratio"]], yerr=[p["se"]], fmt="D", ms=7, color=c,
                        mec="black", capsize=3, zorder=5)
            ys.append(p["ratio"])
    ax.plot([], [], "D", color="0.5", mec="black", label="held-out: best program (fresh seeds)")
    ax.axhline(1.0, color="black", ls="--", lw=1.2, label="start program, lr tuned")
    adamw = [p["adamw"] for p in points.values() if "adamw" in p]
    if adamw:
        a = float(np.mean(adamw))
        ax.axhline(a, color="tab:red", ls=":", lw=1.8,
                   label=f"optax AdamW, lr and wd tuned (held-out): {a:.3f}")
        ys.append(a)
    lo, hi = min(ys) / 1.15, max(ys) * 1.15
    _log_scale(ax, lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel("evaluations")
    ax.set_ylabel("loss / lr-tuned start (lower is better)")
    ax.set_title(f"{len(names) - 1} searches and one more from the best: best so far "
                 "(selection seeds) and held-out", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8, framealpha=0.9)
    fig.tight_layout()
    try:
        return save_figure(fig, out / "progress.png")
    finally:
        plt.close(fig)


def ratio_se(row: Dict) -> Optional[float]:
    """A funnel row's paired SE in units of its loss ratio to the reference."""
    if "ratio" not in row or not row.get("mean"):
        return None
    return row["diff_se"] * row["ratio"] / row["mean"]


def plot_funnel(out: Path, stages: List[Dict], reference: str) -> Path:
    """funnel.png: each candidate's mean loss / the reference's per stage, error bars from the
    paired SE (baselines dashed); a line ends where the candidate was dropped."""
    plt = _plt()
    series: Dict[str, Dict] = {}
    for x, st in enumerate(stages):
        for r in st["rows"]:
            s = series.setdefault(r["candidate"], {"baseline": r["baseline"], "x": [], "y": [],
                                                   "e": []})
            if "ratio" in r:
                s["x"].append(x)
                s["y"].append(r["ratio"])
                s["e"].append(ratio_se(r) or 0.0)
    fig, ax = plt.subplots(figsize=(7.5, 4.6), dpi=120)
    colors = plt.get_cmap("tab10").colors
    order = sorted(series.items(), key=lambda kv: (kv[1]["baseline"], kv[0]))
    width = 0.3 / max(1, len(order) - 1)
    for i, (name, s) in enumerate(order):
        dx = (i - (len(order) - 1) / 2) * width
        style = dict(ls="--", lw=1.2, marker="s") if s["baseline"] else \
            dict(ls="-", lw=1.8, marker="o")
        ax.errorbar([x + dx for x in s["x"]], s["y"], yerr=s["e"], capsize=3, ms=5,
                    color=colors[i % 10], label=name + (" (baseline)" if s["baseline"]
                                                         else ""), **style)
    ax.axhline(1.0, color="gray", lw=0.8)
    ax.set_xticks(range(len(stages)), [st["name"] for st in stages])
    ax.set_xlim(-0.5, len(stages) - 0.5)
    ax.set_xlabel("funnel stage (each about 10x the compute of the one before)")
    ax.set_ylabel(f"mean validation loss / {reference}")
    ax.set_title("Funnel: tuned loss relative to the reference (error bars: paired SE; "
                 "lines end when dropped)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    try:
        return save_figure(fig, out / "funnel.png")
    finally:
        plt.close(fig)

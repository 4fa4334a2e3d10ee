"""The funnel's reports: a markdown table per stage, ``report.md``, ``summary.json`` and a
PNG of each candidate's loss across stages against the baselines.

The per-stage files (``stage-N-NAME.md``) hold only what follows from the job results, so a
resumed funnel writes them byte for byte as an uninterrupted one; ``report.md`` adds what
varies between machines and runs (measured seconds, wall time).
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Dict, List

import numpy as np

from optevo.proxy_tasks.fitness import stats

from ..core.files import save_figure
from ..core.rundir import atomic_write


def stage_file(si: int, stage) -> str:
    return f"stage-{si + 1}-{stage.name}.md"


def stage_cost(stage) -> Dict:
    """FLOPs of one seed-run (XLA's cost analysis of one gradient step, times the steps)."""
    import jax
    task = stage.make_task()
    params = task.init_params(jax.random.PRNGKey(0))
    batch = task.train_batch(jax.random.PRNGKey(0))
    ca = jax.jit(jax.value_and_grad(task.loss)).lower(params, batch).compile().cost_analysis()
    ca = ca[0] if isinstance(ca, (list, tuple)) else ca
    steps = stage.steps or task.steps
    n = sum(int(np.size(x)) for x in jax.tree.leaves(params))
    return {"describe": task.describe(), "gflop": float(ca.get("flops", 0.0)) * steps / 1e9,
            "params": n, "steps": steps}


def stage_rows(cfg, stage, decisions: Dict[str, Dict]) -> List[Dict]:
    ref = decisions[cfg.reference]
    ref_l = np.array(ref["losses"], np.float64)
    ref_ok = not any(ref["diverged"]) and np.all(np.isfinite(ref_l))
    rows = []
    for name, d in decisions.items():
        losses = np.array(d["losses"], np.float64)
        ok = not any(d["diverged"]) and np.all(np.isfinite(losses))
        row = {k: d.get(k) for k in ("candidate", "baseline", "lr_mult", "lr_edge",
                                     "wd_factor", "wd_edge", "lr_span", "wd_span",
                                     "tune_loss", "decay_added")}
        row.update(n=len(losses), n_diverged=int(sum(d["diverged"])), losses=d["losses"],
                   diverged=not ok)
        if ok:
            s = stats(losses)
            row["mean"], row["std"] = s.mean, s.sd
        if ok and ref_ok:
            paired = stats(losses - ref_l)
            row["diff"], row["diff_se"] = paired.mean, paired.se
            row["ratio"] = row["mean"] / float(ref_l.mean())
            better = row["diff"] + cfg.pass_margin_se * row["diff_se"] < 0
        else:
            better = ok and not ref_ok
        row["beats_reference"] = bool(better) and name != cfg.reference
        row["passes"] = row["beats_reference"] and not d["baseline"]
        rows.append(row)
    rows.sort(key=lambda r: (r.get("mean", math.inf), r["candidate"]))
    n = 0
    for r in rows:  # successive halving: only the best ``keep`` that pass go on
        n += r["passes"]
        r["cut"] = bool(r["passes"] and stage.keep and n > stage.keep)
        r["passes"] = r["passes"] and not r["cut"]
    return rows


def _mult(x: float, edge: bool) -> str:
    return ("off" if x == 0 else f"x{x:.3g}") + (" (edge)" if edge else "")


def stage_markdown(cfg, si: int, stage, rows: List[Dict]) -> str:
    ref = cfg.reference
    t, e = stage.tune_seeds, stage.eval_seeds
    lo, hi = stage.lr_range
    wlo, whi = stage.wd_range
    lines = [f"### Stage {si + 1}/{len(cfg.stages)}: {stage.name} ({stage.describe()})",
             "",
             f"Tuning (the same for every candidate and baseline): learning-rate multiplier "
             f"{stage.lr_ratio:g}^k, k = {lo}..{hi} (grown by up to {stage.max_extend} "
             f"point(s) per side while the best is at an edge) on seeds 0..{t - 1}; then the "
             f"weight-decay factor {stage.wd_ratio:g}^j, j = {wlo}..{whi} (grown upwards by "
             f"the same rule) or 0 (off) at that multiplier, of a program's decay constants "
             f"or of decoupled decay added where it has none ('added'); again while the "
             f"decay moved. The chosen setting is trained on {e} fresh seeds; the "
             f"table gives their mean ± standard deviation, the ratio to `{ref}` and the "
             f"paired difference (± standard error) on the same seeds. Multipliers are "
             f"relative to each optimizer's own learning-rate constant. A candidate passes "
             f"(goes on to the next stage) when its mean paired difference"
             + (f" + {cfg.pass_margin_se:g} SE" if cfg.pass_margin_se else "") + " is below 0"
             + ("" if cfg.pass_margin_se >= 1 else ": that is not a win beyond noise, which "
                "the column 'beats it by > 1 SE' says"
                + (" (set pass_margin_se: 1 to require it)" if not cfg.pass_margin_se
                   else "")) + ".",
             "",
             f"| rank | candidate | lr multiplier | wd factor | val loss ({e} seeds) "
             f"| / {ref} | diff vs {ref} | beats it by > 1 SE | passes (goes on) |",
             "|---|---|---|---|---|---|---|---|---|"]
    edges = []
    for i, r in enumerate(rows, 1):
        name = r["candidate"] + (" (baseline)" if r["baseline"] else "")
        wd = "—" if r["wd_factor"] is None else _mult(r["wd_factor"], r["wd_edge"]) \
            + (" (added)" if r.get("decay_added") and r["wd_factor"] else "")
        if r["lr_edge"] or r["wd_edge"]:
            edges.append(r["candidate"])
        if r["diverged"]:
            loss = f"diverged ({r['n_diverged']}/{r['n']} seeds)"
        else:
            loss = f"{r['mean']:.4f} ± {r['std']:.4f}"
        ratio = f"{r['ratio']:.3f}" if "ratio" in r else "—"
        diff = "—" if r["candidate"] == ref or "diff" not in r else \
            f"{r['diff']:+.4f} ± {r['diff_se']:.4f}"
        verdict = ("reference" if r["candidate"] == ref else
                   ("(beats)" if r["beats_reference"] else "(no)") if r["baseline"] else
                   ("yes" if r["passes"] else f"no (beats it; keep {stage.keep})"
                    if r.get("cut") else "no"))
        clear = "—" if r["candidate"] == ref or "diff" not in r else \
            ("yes" if r["diff"] + r["diff_se"] < 0 else "no")
        lines.append(f"| {i} | {name} | {_mult(r['lr_mult'], r['lr_edge'])} | {wd} | {loss} "
                     f"| {ratio} | {diff} | {clear} | {verdict} |")
    lines.append("")
    if edges:
        lines.append(f"(edge): the best setting is at the edge of the grid even after growing "
                     f"it by {stage.max_extend} point(s) per side; the optimum may lie beyond "
                     f"(tuning not settled for: {', '.join(edges)}).")
    else:
        lines.append("Every chosen setting is inside its grid (no optimum at an edge).")
    passed = [r["candidate"] for r in rows if r["passes"]]
    lines.append(f"Passed on: {', '.join(passed) if passed else 'none'}.")
    return "\n".join(lines) + "\n"


def measured_seconds(results_path: Path, cands) -> Dict[str, float]:
    """Median seconds per seed-run of each stage's program jobs with no diverged seed (jobs
    that include a worker's one-time compile are outliers the median ignores)."""
    optax = {c.name for c in cands if c.optax}
    per: Dict[str, List[float]] = {}
    if results_path.exists():
        for line in results_path.read_text().splitlines():
            r = json.loads(line)
            if r["candidate"] not in optax and not any(r["diverged"]):
                per.setdefault(r["stage"], []).append(r["seconds"] / len(r["seeds"]))
    return {k: statistics.median(v) for k, v in per.items()}


def plot(out: Path, cfg, stage_rows_list) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = [s.name for s, _, _ in stage_rows_list]
    series: Dict[str, Dict] = {}
    for x, (_, rows, _) in enumerate(stage_rows_list):
        for r in rows:
            s = series.setdefault(r["candidate"], {"baseline": r["baseline"], "x": [], "y": [],
                                                   "err": []})
            if "ratio" in r:
                s["x"].append(x)
                s["y"].append(r["ratio"])
                # the paired difference's SE, as a ratio to the reference's mean loss
                ref_mean = r["mean"] / r["ratio"] if r["ratio"] else math.nan
                s["err"].append(r["diff_se"] / ref_mean if ref_mean else 0.0)
    fig, ax = plt.subplots(figsize=(9, 4.8))
    colors = plt.get_cmap("tab20").colors
    ordered = sorted(series.items(), key=lambda kv: (not kv[1]["baseline"], kv[0]))
    width = 0.25  # series spread side by side at each stage, so overlapping lines separate
    for i, (name, s) in enumerate(ordered):
        shift = (i - (len(ordered) - 1) / 2) * width / max(1, len(ordered) - 1)
        style = dict(ls="--", lw=2, marker="s", ms=4) if s["baseline"] else \
            dict(ls="-", lw=1.2, marker="o", ms=4)
        ax.errorbar([x + shift for x in s["x"]], s["y"], yerr=s["err"], capsize=2,
                    elinewidth=0.8, label=name + (" (baseline)" if s["baseline"] else ""),
                    color=colors[(2 * i) % 20 + (2 * i) // 20 % 2], **style)
    ax.set_xticks(range(len(names)), names)
    ax.set_xlabel("stage (each ~10x the compute of the one before)")
    ax.set_ylabel(f"mean validation loss / {cfg.reference}")
    ax.set_title("Funnel: tuned loss relative to the reference, error bars = paired SE "
                 "(lower is better; lines end when dropped)", fontsize=9)
    ax.axhline(1.0, color="gray", lw=0.5)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    try:
        return save_figure(fig, out / "funnel.png", dpi=110)
    finally:
        plt.close(fig)


def write_report(out: Path, cfg, cands, stage_rows_list, results_path: Path, elapsed: float):
    measured = measured_seconds(results_path, cands)
    lines = ["# Funnel report", "",
             f"Candidates: {', '.join(f'{c.name} ({c.source})' for c in cands if not c.baseline)}"
             f". Baselines: {', '.join(c.name for c in cands if c.baseline)}; reference "
             f"`{cfg.reference}`. Wall time {elapsed:.0f} s.", "",
             "| stage | task | GFLOP per seed-run | x below | s per seed-run (measured) "
             "| x below |", "|---|---|---|---|---|---|"]
    prev_g = prev_s = None
    for stage, _, cost in stage_rows_list:
        s, g = measured.get(stage.name), cost["gflop"]
        g_ratio = f"{g / prev_g:.1f}x" if prev_g else "—"
        s_text = f"{s:.3f}" if s else "—"
        s_ratio = f"{s / prev_s:.1f}x" if s and prev_s else "—"
        lines.append(f"| {stage.name} | {stage.task} | {g:.3g} | {g_ratio} | {s_text} "
                     f"| {s_ratio} |")
        prev_g, prev_s = g, s
    lines += ["", "Measured: median seconds per seed-run of the stage's program jobs on one "
              "worker core (AdamW-like programs; shared machine, so indicative).", ""]
    for si, (stage, rows, _) in enumerate(stage_rows_list):
        lines.append((out / stage_file(si, stage)).read_text())
    if stage_rows_list:
        lines += ["![loss across stages](funnel.png)", ""]
        plot(out, cfg, stage_rows_list)
    atomic_write(out / "report.md", "\n".join(lines))
    summary = {"elapsed": elapsed, "reference": cfg.reference,
               "stages": [{"name": st.name, "task": st.task, "cost": cost,
                           "measured_s_per_run": measured.get(st.name), "rows": rows}
                          for st, rows, cost in stage_rows_list]}
    atomic_write(out / "summary.json", json.dumps(summary, indent=1, default=float))

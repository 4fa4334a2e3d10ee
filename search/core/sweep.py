"""``optevo sweep``: the Lion repository's views of any optimizer, beside tuned optax AdamW.

* **Learning rate x weight decay heatmaps.** Each optimizer is trained at every cell of a grid
  of lr multipliers ``2^k`` (around its own lr constant, or a run's tuned multiplier for
  ``RUN_DIR:ID``) and decay factors ``3^j`` of its decay sites (decoupled decay added where a
  program has none, as every tuner does: ``dsl.decay.at_factor``), plus decay off; the mean
  validation loss over the seeds is one cell. The same seeds for every cell and optimizer, so
  the maps compare. Chen et al. 2023 (Figure 8) show Lion's best region shifted to smaller lr
  and larger decay than AdamW's; a map says whether a program is that sensitive.
* **Batch-size ablation** (``--batch-sizes``): at each batch size every optimizer is tuned on
  learning rate and decay and trained on fresh seeds (``holdout.fresh_check``, the re-check's
  rule, as ``optevo eval --tune``), paired against tuned optax AdamW: Lion's gain over AdamW
  grows with the batch (Chen et al. 2023, Figure 7).

Everything runs in this process (the fast engine: one compile per program, a grid's lr
points batched); results are a table (``sweep.md``), JSON (``sweep.json``) and PNGs.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from optevo.dsl.decay import at_factor

from .tuning import DEFAULT_ADAMW, spec_with_decay

ADAMW = "optax_adamw"
LR_RATIO, WD_RATIO = 2.0, 3.0


@dataclasses.dataclass
class Grid:
    """One optimizer's map: ``loss[j][k]`` at decay ``wd[j]`` (0: off) and lr ``lr[k]``
    (multipliers of its lr input: ``centre * 2^k``); inf where a seed diverged."""

    name: str
    lr: List[float]
    wd: List[float]
    loss: List[List[float]]

    def best(self) -> Tuple[float, float, float]:
        """(loss, lr multiplier, decay factor) of the best cell."""
        a = np.asarray(self.loss, np.float64)
        j, k = np.unravel_index(np.argmin(np.where(np.isfinite(a), a, np.inf)), a.shape)
        return float(a[j, k]), self.lr[k], self.wd[j]

    def to_json(self) -> Dict:
        return {"name": self.name, "lr": self.lr, "wd": self.wd,
                "loss": [[x if math.isfinite(x) else None for x in row] for row in self.loss]}


def _mean(run) -> float:
    losses = np.asarray(run.losses, np.float64)
    return math.inf if bool(np.any(run.diverged)) or not np.all(np.isfinite(losses)) \
        else float(losses.mean())


def sweep_grid(engines, name: str, item, seeds: Sequence[int], lr_ks: Sequence[int],
               wd_js: Sequence[int], centre: float = 1.0) -> Grid:
    """The map of ``item`` (a Program, or an optax spec line: ``engines`` = (fast, optax))."""
    fast, optax_engine = engines
    lr = [centre * LR_RATIO ** k for k in lr_ks]
    wd = [0.0] + [WD_RATIO ** j for j in wd_js]
    rows = []
    for f in wd:
        if isinstance(item, str):
            runs = optax_engine.run_grid(spec_with_decay(item, f), seeds, lr)
        else:
            runs = fast.run_grid(at_factor(item, f)[0], seeds, lr)
        rows.append([_mean(r) for r in runs])
    return Grid(name, lr, wd, rows)


def sweep(task, steps: Optional[int], items: Sequence[Tuple[str, object, Optional[float]]],
          seeds: Sequence[int], lr_ks: Sequence[int], wd_js: Sequence[int]) -> List[Grid]:
    """Maps of optax AdamW (first) and each ``(name, program, lr centre)`` of ``items``; a
    centre None is found first: the lr multiplier of the one tuning rule (the search's
    calibration line, decay as written) on ``seeds``, so each map is centred on its
    optimizer's own best learning rate, as the Lion paper's maps are."""
    from optevo.proxy_tasks.evaluate import Evaluator
    from .holdout import decay_buckets
    from .tuning import CALIBRATION
    ev = Evaluator(task, steps, list(seeds), buckets=decay_buckets([p for _, p, _ in items]))
    engines = (ev.engine, ev._optax_engine())
    out = []
    for name, item, centre in [(ADAMW, DEFAULT_ADAMW, None), *items]:
        if centre is None:
            centre = ev.tune(item, CALIBRATION).scale
        out.append(sweep_grid(engines, name, item, seeds, lr_ks, wd_js, centre))
    return out


def grid_markdown(grids: Sequence[Grid], task: str, seeds: Sequence[int]) -> List[str]:
    lines = [f"Learning rate x weight decay on {task}, mean validation loss over seeds "
             f"{seeds[0]}..{seeds[-1]} (the same seeds in every cell). lr: multipliers of each "
             "optimizer's lr input; decay: factors of its decay constants (or of decoupled "
             "decay added where it has none), 0 = off.", "",
             "| optimizer | best loss | at lr | at decay | / AdamW's best |",
             "|---|---|---|---|---|"]
    ref = grids[0].best()[0]
    for g in grids:
        b, lr, wd = g.best()
        lines.append(f"| {g.name} | {b:.4f} | x{lr:.4g} | "
                     f"{'off' if wd == 0 else f'x{wd:.4g}'} | {b / ref:.3f} |")
    for g in grids:
        lines += ["", f"{g.name} (rows: decay; columns: lr):", "",
                  "| decay \\ lr | " + " | ".join(f"x{x:.4g}" for x in g.lr) + " |",
                  "|---" * (len(g.lr) + 1) + "|"]
        for f, row in zip(g.wd, g.loss):
            lines.append(f"| {'off' if f == 0 else f'x{f:.3g}'} | "
                         + " | ".join("div" if not math.isfinite(x) else f"{x:.4f}"
                                      for x in row) + " |")
    return lines


def plot_grids(grids: Sequence[Grid], path: Path, task: str) -> Path:
    """One heatmap per optimizer on one colour scale (log loss), the best cell ringed."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from .files import save_figure
    vals = [x for g in grids for row in g.loss for x in row if math.isfinite(x) and x > 0]
    lo, hi = (min(vals), max(vals)) if vals else (1.0, 2.0)
    hi = min(hi, lo * 4)  # above 4x the best loss it is all "bad": keep the good region readable
    fig, axes = plt.subplots(1, len(grids), figsize=(3.2 * len(grids) + 1, 3.4), squeeze=False)
    for ax, g in zip(axes[0], grids):
        a = np.log(np.clip(np.where(np.isfinite(g.loss), g.loss, hi), lo, hi))
        im = ax.imshow(a, origin="lower", aspect="auto", cmap="viridis_r",
                       vmin=math.log(lo), vmax=math.log(hi))
        ax.set_xticks(range(len(g.lr)), [f"{x:.4g}" for x in g.lr], rotation=90, fontsize=7)
        ax.set_yticks(range(len(g.wd)), ["off" if f == 0 else f"{f:.2g}" for f in g.wd],
                      fontsize=7)
        b, lr, wd = g.best()
        ax.scatter([g.lr.index(lr)], [g.wd.index(wd)], s=80, facecolors="none",
                   edgecolors="red")
        ax.set_title(f"{g.name}\nbest {b:.4f}", fontsize=8)
        ax.set_xlabel("lr multiplier", fontsize=8)
    axes[0][0].set_ylabel("decay factor", fontsize=8)
    fig.subplots_adjust(bottom=0.3, top=0.85)
    cb = fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8)
    cb.set_label(f"log val loss on {task} (clipped at 4x the best)", fontsize=8)
    return save_figure(fig, path)


def batch_rows(task_name: str, options: Dict, steps: Optional[int], programs, names,
               batch_sizes: Sequence[int], seeds: Sequence[int], fresh: int) -> List[Dict]:
    """At each batch size, every program and optax AdamW tuned (lr, decay) on ``seeds`` and
    trained on ``fresh`` fresh seeds (``fresh_check``): one row per (batch, optimizer)."""
    from .holdout import ADAMW_ID, fresh_check_programs
    out = []
    for b in batch_sizes:
        for r in fresh_check_programs(task_name, {**options, "batch_size": int(b)}, steps,
                                      seeds, programs, fresh):
            name = names.get(r["id"], ADAMW if r["id"] == ADAMW_ID else str(r["id"]))
            out.append({"batch": int(b), "name": name, "holdout": r["holdout"],
                        "holdout_stderr": r["holdout_stderr"], "diff_adamw": r["diff_adamw"],
                        "diff_adamw_stderr": r["diff_adamw_stderr"],
                        "lr_scale": r["lr_scale"], "weight_decay_factor":
                            r["weight_decay_factor"]})
    return out


def batch_markdown(rows: List[Dict], task: str, fresh: int) -> List[str]:
    fmt = (lambda x, se: "—" if x is None else f"{x:+.4f} ± {se:.4f}")
    lines = [f"Batch-size ablation on {task}: at each batch size every optimizer tuned on "
             f"learning rate and decay, then trained on {fresh} fresh seeds; paired "
             "difference to tuned optax AdamW (negative: better).", "",
             "| batch | optimizer | held-out loss | vs tuned AdamW | lr x | decay |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        loss = "diverged" if r["holdout"] is None else \
            f"{r['holdout']:.4f} ± {r['holdout_stderr']:.4f}"
        lr = r["lr_scale"][0] if isinstance(r["lr_scale"], list) else r["lr_scale"]
        wd = r["weight_decay_factor"]
        lines.append(f"| {r['batch']} | {r['name']} | {loss} | "
                     f"{fmt(r['diff_adamw'], r['diff_adamw_stderr'])} | x{lr:.4g} | "
                     f"{'off' if not wd else f'x{wd:.4g}'} |")
    return lines


def plot_batches(rows: List[Dict], path: Path, task: str) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from .files import save_figure
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name in dict.fromkeys(r["name"] for r in rows):
        pts = [(r["batch"], r["holdout"], r["holdout_stderr"]) for r in rows
               if r["name"] == name and r["holdout"] is not None]
        if pts:
            x, y, e = zip(*pts)
            ax.errorbar(x, y, yerr=e, marker="o", capsize=3, label=name)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("batch size")
    ax.set_ylabel(f"tuned held-out loss on {task}")
    ax.legend(fontsize=7)
    return save_figure(fig, path)

"""``optevo sweep PROGRAM... --task T [--batch-sizes B,...]``: learning-rate x weight-decay
heatmaps of programs beside optax AdamW's, and a batch-size ablation with every point tuned
(``optevo.search.core.sweep``). PROGRAM is a file, a library name or ``RUN_DIR:ID`` (its
grid is centred on the run's tuned multiplier, its decay as tuned; any other optimizer's on
its multiplier tuned first on the same seeds)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from .common import UsageError, add_import, at_least


def _ints(text: str, flag: str):
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise UsageError(f"{flag} expects integers separated by commas, got {text!r}") from None


def add_parser(subparsers):
    p = subparsers.add_parser(
        "sweep", help="lr x weight-decay heatmaps beside optax AdamW's, and a batch-size "
                      "ablation with every point tuned")
    p.add_argument("program", nargs="+", help="programs: files, library names or RUN_DIR:ID")
    p.add_argument("--task", required=True, help="proxy task name (e.g. digits_mlp)")
    p.add_argument("--steps", type=int, help="training steps (default: the task's)")
    p.add_argument("--seeds", type=int, default=4, help="seeds 0..N-1 of every cell")
    p.add_argument("--lr-range", type=int, nargs=2, default=[-4, 4], metavar=("LO", "HI"),
                   help="lr multipliers 2^k for k in LO..HI around each optimizer's tuned one "
                        "(a RUN_DIR:ID program's from its run)")
    p.add_argument("--wd-range", type=int, nargs=2, default=[-2, 2], metavar=("LO", "HI"),
                   help="decay factors 3^j for j in LO..HI, and off")
    p.add_argument("--batch-sizes", metavar="B,...",
                   help="also a batch-size ablation at these batch sizes (each point tuned on "
                        "lr and decay, trained on --fresh fresh seeds)")
    p.add_argument("--fresh", type=int, default=8, help="fresh seeds of the ablation")
    p.add_argument("--out", metavar="DIR", help="output directory (default runs/sweep-TIME)")
    add_import(p)
    p.set_defaults(fn=run)
    return p


def _range(lo_hi, flag: str):
    lo, hi = lo_hi
    if lo > hi or hi - lo > 16:
        raise UsageError(f"{flag} expects LO HI with LO <= HI, at most 16 apart; got {lo} {hi}")
    return range(lo, hi + 1)


def run(args) -> int:
    from optevo.proxy_tasks import get_task
    from optevo.proxy_tasks.engine import enable_compile_cache
    from optevo.proxy_tasks.tasks.base import check_task
    from optevo.search.core import sweep as sw
    from optevo.search.core.files import write_output
    from optevo.search.core.plugins import import_plugins
    from optevo.search.core.tuned import load_tuned
    enable_compile_cache()
    import_plugins(args.imports)
    at_least("--seeds", args.seeds)
    at_least("--steps", args.steps)
    at_least("--fresh", args.fresh, 2)
    lr_ks, wd_js = _range(args.lr_range, "--lr-range"), _range(args.wd_range, "--wd-range")
    batches = _ints(args.batch_sizes, "--batch-sizes") if args.batch_sizes else []
    if any(b < 1 for b in batches):
        raise UsageError(f"--batch-sizes must be >= 1, got {args.batch_sizes!r}")
    tuned = [load_tuned(p) for p in args.program]
    task = get_task(args.task)
    check_task(task)
    out = Path(args.out or f"runs/sweep-{time.strftime('%Y%m%d-%H%M%S')}")
    out.mkdir(parents=True, exist_ok=True)
    seeds = list(range(args.seeds))
    names = [t.label for t in tuned]
    grids = sw.sweep(task, args.steps, [(n, t.program, t.lr_multiplier if t.from_run else None)
                                        for n, t in zip(names, tuned)], seeds, lr_ks, wd_js)
    lines = [f"# optevo sweep on {task.name}", ""] + sw.grid_markdown(grids, task.name, seeds)
    sw.plot_grids(grids, out / "sweep.png", task.name)
    lines += ["", "![lr x weight decay](sweep.png)"]
    data = {"task": task.name, "seeds": seeds, "grids": [g.to_json() for g in grids]}
    if batches:
        rows = sw.batch_rows(args.task, {}, args.steps, [t.program for t in tuned],
                             dict(enumerate(names, 1)), batches, seeds, args.fresh)
        lines += [""] + sw.batch_markdown(rows, task.name, args.fresh)
        sw.plot_batches(rows, out / "batch.png", task.name)
        lines += ["", "![batch size](batch.png)"]
        data["batch"] = rows
    text = "\n".join(lines) + "\n"
    write_output(out / "sweep.md", text)
    write_output(out / "sweep.json", json.dumps(data, indent=1))
    print(text)
    print(f"optevo sweep: wrote {out}/sweep.md, sweep.json, sweep.png"
          + (", batch.png" if batches else ""))
    return 0

"""Does an exported program, called with its defaults, train as its run reported?

    python scripts/experiments/export_reproduces.py runs/d90m/search-1:33639

Exports ``RUN_DIR:ID`` exactly as ``optevo export RUN_DIR:ID -o FILE`` does, imports the
module, and trains the run's task in a plain optax loop written below (``jax.value_and_grad``,
``opt.update``, ``optax.apply_updates``; the task gives only its data, initial weights and
losses, seeded as optevo's engines seed a run) with ``discovered()``: no argument, so the
learning rate, its schedule, decay and constants are the module's defaults. The seeds are
the held-out re-check's; the figure to reproduce is the run's held-out loss of that program
(``holdout.jsonl``). Prints both, per seed and as mean ± SE, and their paired difference.
``tests/test_api.py`` runs the same loop on a small run.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import sys
import tempfile
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax


def train_plain(task, steps: int, opt: optax.GradientTransformation, seed: int) -> float:
    """A user's own training loop: ``steps`` optax steps of ``task`` from seed ``seed``
    (``split(PRNGKey(seed))`` into the init and data keys, batch ``t`` drawn with
    ``fold_in(data_key, t)``, as ``proxy_tasks.engine.seed_keys`` does); the validation
    loss."""
    k_init, k_data = jax.random.split(jax.random.PRNGKey(seed))
    params, inst = task.init_params(k_init), task.instance(k_init)

    def loss_fn(p, batch):
        return task.loss_of(p, batch, inst)

    @jax.jit
    def run(params):
        def step(carry, t):
            p, state = carry
            batch = task.train_batch(jax.random.fold_in(k_data, t))
            grads = jax.grad(loss_fn)(p, batch)
            updates, state = opt.update(grads, state, p)
            return (optax.apply_updates(p, updates), state), None
        (p, _), _ = jax.lax.scan(step, (params, opt.init(params)), jnp.arange(steps))
        return task.val_loss_of(p, inst)

    return float(run(params))


def import_module(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def reproduce(ref: str, name: str = "discovered", seeds=None):
    """(per-seed losses of the exported module, the run's held-out row, the run's task and
    steps) for ``RUN_DIR:ID`` (its held-out seeds, or ``seeds``)."""
    from optevo.proxy_tasks import get_task
    from optevo.search.cli.export import export_program
    from optevo.search.core.rundir import RunDir
    from optevo.search.core.views import split_ref
    run_dir, ident = split_ref(ref)
    if run_dir is None:
        raise SystemExit(f"{ref}: name a program as RUN_DIR:ID")
    run = RunDir.existing(run_dir)
    rec = run.record(ident)
    row = next((r for r in run.holdout_rows() if r["id"] == rec.id), None)
    if row is None and seeds is None:
        raise SystemExit(f"{ref}: not in the run's held-out re-check; give --seeds")
    cfg = run.config()
    t = cfg.tasks[0]
    task = get_task(t.name, **t.options)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"exported_{rec.id}.py"
        export_program(ref, output=str(path), name=name)
        opt = getattr(import_module(path), name)()
    seeds = list(seeds or row["holdout_seeds"])
    steps = t.steps or task.steps
    return [train_plain(task, steps, opt, s) for s in seeds], row, t.name, steps


def mean_se(x):
    x = np.asarray(x, np.float64)
    return float(x.mean()), float(x.std(ddof=1) / math.sqrt(len(x))) if len(x) > 1 else 0.0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("ref", help="RUN_DIR:ID of a re-checked program")
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args(argv)
    ours, row, task, steps = reproduce(args.ref)
    m, se = mean_se(ours)
    theirs = row["holdout_losses"]
    d, dse = mean_se([a - b for a, b in zip(ours, theirs)])
    print(f"{args.ref} on {task} ({steps} steps), {len(ours)} held-out seeds")
    print(f"  exported module, plain optax loop, defaults: {m:.4f} ± {se:.4f}")
    print(f"  the run's held-out figure:                   {row['holdout']:.4f} ± "
          f"{row['holdout_stderr']:.4f}")
    print(f"  paired difference: {d:+.6f} ± {dse:.6f}; |mean difference| = "
          f"{abs(m - row['holdout']) / row['holdout_stderr']:.3f} SE of the run's figure")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "ref": args.ref, "task": task, "steps": steps, "exported_losses": ours,
            "run_losses": theirs, "exported": [m, se], "run": [row["holdout"],
                                                               row["holdout_stderr"]],
            "paired_difference": [d, dse]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

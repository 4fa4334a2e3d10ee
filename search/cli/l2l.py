"""``optevo l2l train --task T``: meta-train the learned LSTM optimizer (Andrychowicz et al.
2016) on a proxy task and save its weights as ``.npz`` (``optevo.proxy_tasks.l2l_train``).
``--import`` names a plugin (a module or .py file) that registers the task, as for ``eval``.

The weights are then a baseline: ``optevo eval --task T --baseline "optax:l2l weights=FILE"``.
"""

from __future__ import annotations

from .common import UsageError, add_import, at_least


def add_parser(sub):
    p = sub.add_parser("l2l", help="the learned LSTM optimizer (Andrychowicz et al. 2016)")
    verbs = p.add_subparsers(dest="l2l_command", required=True)
    t = verbs.add_parser("train", help="meta-train it on a proxy task and save the weights",
                         formatter_class=p.formatter_class)
    t.add_argument("--task", required=True,
                   help="proxy task name (e.g. digits_mlp, or a task a plugin registers: "
                        "see --import)")
    t.add_argument("--steps", type=int, help="training horizon (default: the task's)")
    t.add_argument("--unroll", type=int, default=20,
                   help="truncated-BPTT unroll length, steps per meta-step (default 20)")
    t.add_argument("--meta-steps", type=int, default=300, help="meta-steps (default 300)")
    t.add_argument("--batch", type=int, default=4, help="seeds per meta-step (default 4)")
    t.add_argument("--meta-lr", type=float, default=3e-3, help="Adam meta-learning rate")
    t.add_argument("--seed", type=int, default=0, help="seed of the init and the seeds drawn")
    t.add_argument("--eval-seeds", type=int, default=8,
                   help="seeds of the final check against the untrained LSTM (0: skip)")
    t.add_argument("--out", default="l2l.npz", help="weights file to write (default l2l.npz)")
    add_import(t)
    t.set_defaults(fn=run)
    return p


def run(args) -> int:
    from optevo.proxy_tasks import get_task
    from optevo.proxy_tasks.l2l_train import meta_train, trajectory_loss
    from optevo.proxy_tasks.baselines.l2l import init_weights
    from optevo.proxy_tasks.engine import enable_compile_cache
    from optevo.search.core.plugins import import_plugins
    import jax
    enable_compile_cache()
    import_plugins(args.imports)
    for flag, v in (("--steps", args.steps), ("--unroll", args.unroll),
                    ("--meta-steps", args.meta_steps), ("--batch", args.batch)):
        at_least(flag, v)
    at_least("--eval-seeds", args.eval_seeds, 0)
    if not str(args.out).endswith(".npz"):
        raise UsageError(f"--out must name an .npz file, got {args.out!r}")
    task = get_task(args.task)

    def log(i, loss, secs):
        print(f"meta-step {i}: meta-loss {loss:.4f} ({secs:.0f} s)", flush=True)

    res = meta_train(task, args.steps, args.unroll, args.meta_steps, args.batch,
                     args.meta_lr, seed=args.seed, log=log,
                     log_every=max(1, args.meta_steps // 10))
    path = res.save(args.out)
    print(f"{res.info}; {res.seconds:.0f} s; wrote {path}")
    if args.eval_seeds:
        seeds = list(range(args.eval_seeds))
        before = trajectory_loss(init_weights(jax.random.PRNGKey(args.seed)), task, seeds,
                                 args.steps)
        after = trajectory_loss(res.weights, task, seeds, args.steps)
        print(f"meta-loss (mean training loss along the trajectory) on seeds 0..{seeds[-1]}: "
              f"untrained {before:.4f}, trained {after:.4f}")
    return 0

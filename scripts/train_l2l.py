"""Meta-train the packaged default L2L optimizer (Andrychowicz et al. 2016) and write it to
``configs/l2l/digits_mlp.npz`` (the weights ``optax:l2l`` loads by default).

The LSTM optimizer is meta-trained on ``digits_mlp`` at its default horizon (300 steps,
cosine lr), unrolls of 20 steps (the paper's), 4 seeds per meta-step, 300 meta-steps of Adam
3e-3 (20 trajectories); a few minutes on 2 cores. Then it prints the meta-loss (mean
training loss along the trajectory) before and after, and the final validation loss on 8
fresh seeds next to optax AdamW at its default learning rate::

    python scripts/train_l2l.py                    # writes configs/l2l/digits_mlp.npz
    python scripts/train_l2l.py --meta-steps 30 --out /tmp/l2l.npz   # a quick check
"""

from __future__ import annotations

import argparse
from pathlib import Path

import jax
import numpy as np

from optevo.proxy_tasks import get_task
from optevo.proxy_tasks.engine import enable_compile_cache
from optevo.proxy_tasks.l2l import init_weights
from optevo.proxy_tasks.l2l_train import meta_train, trajectory_loss
from optevo.proxy_tasks.optax_baselines import OptaxEngine, spec_text

OUT = Path(__file__).resolve().parents[1] / "configs" / "l2l" / "digits_mlp.npz"
EVAL_SEEDS = [3_000_000 + i for i in range(8)]  # fresh: not fitness, held-out or meta seeds


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--task", default="digits_mlp")
    ap.add_argument("--unroll", type=int, default=20)
    ap.add_argument("--meta-steps", type=int, default=300)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--meta-lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()
    enable_compile_cache()
    task = get_task(args.task)
    per_traj = -(-task.steps // args.unroll)

    def log(i, loss, secs):
        print(f"meta-step {i:4d}: meta-loss {loss:.4f} ({secs:.0f} s)", flush=True)

    res = meta_train(task, None, args.unroll, args.meta_steps, args.batch, args.meta_lr,
                     seed=args.seed, log=log, log_every=per_traj)
    path = res.save(args.out)
    print(f"{res.info}\n{res.seconds:.0f} s; wrote {path} ({path.stat().st_size} bytes)")
    before = trajectory_loss(init_weights(jax.random.PRNGKey(args.seed)), task, EVAL_SEEDS)
    after = trajectory_loss(res.weights, task, EVAL_SEEDS)
    print(f"meta-loss on {len(EVAL_SEEDS)} fresh seeds: untrained {before:.4f}, "
          f"trained {after:.4f}")
    eng = OptaxEngine(task)
    for text in (spec_text("l2l", weights=str(path)), spec_text("adamw")):
        r = eng.run([text], EVAL_SEEDS)[0]
        print(f"final val loss {np.mean(r.losses):.4f} +- "
              f"{np.std(r.losses, ddof=1) / np.sqrt(len(r.losses)):.4f}  {text}")


if __name__ == "__main__":
    main()

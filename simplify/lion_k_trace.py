"""``optevo analyze``: what a Lion-K program solves, and its constraint over training.

:func:`analyze` recognises the program (``simplify.lion_k``: K, K*, the implied problem) and,
given a training loop, trains it with the reference executor (``dsl.execute.update_fn``) on
one seed, recording ``lambda * q(w)`` at the start and after every step, where ``q`` is the
quantity the constraint bounds (``|w|_inf`` for Lion, the largest spectral norm for Muon,
...). Lion-K theory (Chen, Liang, Liu, Liu 2023, arXiv 2310.05898) predicts two phases:
from a start outside the feasible set ``lambda q(w) <= 1`` the weights move into it
(``lambda q`` falls at least geometrically), then stay there. :func:`plot_trace` draws
``lambda q`` over the steps with 1 marked.

The loop is the engines' (``optevo.proxy_tasks.engine.TrainLoop`` for the task and the
number of steps, as ``proxy_tasks/tasks/base.py`` states it: the seed's keys, batches, lr
schedule), built by the caller and passed in: this package does not import
``optevo.proxy_tasks``. It is used through ``loop.task``, ``loop.unravel``,
``loop.seed_keys``, ``loop.start``, ``loop.val_losses``, ``loop.tree_optimizer`` and
``loop.train`` with an observer (which runs every step, so a diverged run is traced to the
end as it ran).

Overrides make the phases visible on any task: ``init_scale`` multiplies the initial weights
(start outside the set), ``lr_scale`` the program's ``lr`` input (as the engines' tuned scale
does), ``weight_decay`` replaces ``lambda`` (``LionK.with_weight_decay``).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import List, Optional

import jax
import jax.numpy as jnp
import numpy as np

from optevo.dsl.execute import update_fn
from optevo.dsl.outfiles import save_figure
from optevo.dsl.program import Program
from optevo.simplify import simplify_exact
from optevo.simplify.lion_k import LionK, NotLionK, recognize


# Inside the feasible set "to 1%": from outside, the discrete iterates approach the bound
# from above, |w| - 1/lambda shrinking by (1 - lr lambda) per step (Lion: w <- (1 - lr lambda) w
# - lr sign(c)), so with a decaying lr schedule they end just above it.
TOL = 0.01


@dataclasses.dataclass
class Trace:
    """``lam * q(w_t)`` for t = 0..steps (t = 0: the start) and the validation losses."""

    values: np.ndarray
    lam: float
    val_start: float
    val_end: float

    @property
    def entered(self) -> Optional[int]:
        """The first step from which ``lam * q <= 1 + TOL`` holds to the end (None: never)."""
        inside = self.values <= 1.0 + TOL
        if not inside[-1]:
            return None
        outside = np.flatnonzero(~inside)
        return 0 if not len(outside) else int(outside[-1]) + 1

    def lines(self) -> List[str]:
        v, t = self.values, self.entered
        out = [f"  lambda * q(w): start {v[0]:.6g}, end {v[-1]:.6g}, max {v.max():.6g} "
               f"over {len(v) - 1} steps (lambda = {self.lam:.4g})"]
        if t is None:
            out.append(f"  not inside the feasible set lambda * q <= 1 (+{TOL:g}) at the end")
        elif t == 0:
            out.append("  inside the feasible set from the start to the end "
                       "(start outside, e.g. --init-scale, to see phase 1)")
        else:
            out.append(f"  phase 1: outside until step {t}; phase 2: inside (to {TOL:g}) from "
                       f"step {t} on (max after {v[t:].max():.4g})")
        out.append(f"  validation loss: {self.val_start:.4g} -> {self.val_end:.4g}")
        return out


def constraint_trace(lk: LionK, loop, seed: int = 0, lr_scale: float = 1.0,
                     init_scale: float = 1.0) -> Trace:
    """Train ``lk``'s program in ``loop`` (the engines' ``TrainLoop``; one seed) and record
    ``lambda * q(w)`` at the start and after each step, and the validation losses (as they
    are: no divergence rule) at the start and the end."""
    measure = lk.member.measure
    opt = loop.tree_optimizer(update_fn(lk.program))

    @jax.jit
    def run():
        seeds = jnp.asarray([seed], jnp.uint32)
        w0, inst = loop.start(loop.seed_keys(seeds)[0], init_scale)
        out = loop.train(opt, seeds, jnp.full((1,), lr_scale, jnp.float32), init_scale=init_scale,
                         observe=lambda w, t: measure(jax.tree.leaves(loop.unravel(w))))
        return out.observed[:, 0], loop.val_losses(w0, inst)[0], loop.val_losses(out.w, inst)[0]

    qs, v0, v1 = jax.device_get(run())
    return Trace(lk.lam * np.asarray(qs, np.float64), lk.lam, float(v0), float(v1))


def plot_trace(trace: Trace, out, title: str, quantity: str) -> Path:
    """``lambda * q`` over the steps as a PNG, with the bound 1 marked."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    v = trace.values
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=120)
    ax.plot(np.arange(len(v)), v, color="tab:blue", lw=1.8, label=f"lambda * {quantity}")
    ax.axhline(1.0, color="tab:red", ls="--", lw=1.3, label="1: the Lion-K bound")
    t = trace.entered
    if t:
        ax.axvline(t, color="0.5", ls=":", lw=1.0, label=f"inside from step {t}")
    finite = v[np.isfinite(v)]
    if len(finite) and finite.max() / max(finite.min(), 1e-12) > 50:
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel(f"lambda * {quantity}")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=9)
    fig.tight_layout()
    try:
        return save_figure(fig, out)  # checked: a failed write is an error, not a path
    finally:
        plt.close(fig)


@dataclasses.dataclass
class Analysis:
    """The simplified program, its Lion-K reading (None: ``reason`` says what differs) and,
    with a task, its constraint trace and PNG."""

    program: Program
    lion_k: Optional[LionK]
    reason: str = ""
    trace: Optional[Trace] = None
    png: Optional[Path] = None
    note: str = ""

    def lines(self) -> List[str]:
        if self.lion_k is None:
            return [self.reason]
        out = list(self.lion_k.lines())
        if self.note:
            out.append(f"  {self.note}")
        if self.trace is not None:
            out += self.trace.lines()
        if self.png is not None:
            out.append(f"  plot: {self.png}")
        return out


def analyze(program: Program, loop=None, out=None, seed: int = 0, lr_scale: float = 1.0,
            init_scale: float = 1.0, weight_decay: Optional[float] = None) -> Analysis:
    """Recognise ``program``; with ``loop`` (the engines' ``TrainLoop`` of a task) and a
    Lion-K program, train it and write the PNG to ``out`` (see the module docstring)."""
    try:
        lk = recognize(program)
    except NotLionK as e:
        return Analysis(simplify_exact(program), None, str(e))
    if loop is None:
        return Analysis(lk.program, lk)
    notes = []
    if weight_decay is not None:
        notes.append(f"lambda set to {weight_decay:g} (the program's: {lk.lam:.4g})")
        lk = dataclasses.replace(lk, lam=float(weight_decay),
                                 program=lk.with_weight_decay(weight_decay))
    if lk.lam == 0:
        return Analysis(lk.program, lk,
                        note="lambda = 0: no constraint to follow (give --weight-decay)")
    if lr_scale != 1.0:
        notes.append(f"lr input x {lr_scale:g}")
    if init_scale != 1.0:
        notes.append(f"initial weights x {init_scale:g}")
    trace = constraint_trace(lk, loop, seed, lr_scale, init_scale)
    kind = "" if lk.member.constraint else " (no bound: K* is finite; for reference)"
    title = f"{lk.member.optimizer} on {loop.task.name}: lambda * {lk.member.quantity}{kind}"
    png = plot_trace(trace, out, title, lk.member.quantity) if out else None
    if not math.isfinite(trace.values[-1]):
        notes.append("the run diverged")
    return Analysis(lk.program, lk, trace=trace, png=png, note="; ".join(notes))

"""What an optimizer costs next to AdamW: its state (floats kept per parameter) and its step.

The Lion paper states both for Lion: one state slot (``m``) where AdamW keeps two, and a step
2-15% faster. For a program the state is its live slots (``dsl.liveness.live_state``: a slot
no update ever reads is not stored by the export); the step is the exported module's
``update`` plus ``apply_updates``, jitted, on a fixed parameter tree (4 matrices of 512 x 512
and their biases: about 1.05M parameters, so the elementwise work dominates as in a real
model), timed against ``optax.adamw`` on the same tree: the median of interleaved repeats
(ours, AdamW, AdamW, ours, ...) after a compile, as ``scripts/bench/export.py`` times Lion.
"""

from __future__ import annotations

import statistics
import time
from typing import Dict

from optevo.dsl.liveness import live_state
from optevo.dsl.program import Program

ADAMW_SLOTS = 2  # optax.adamw keeps mu and nu


def state_text(program: Program) -> str:
    """One line: the floats the optimizer keeps per parameter, against AdamW's."""
    slots = sorted(live_state(program))
    n = len(slots)
    return (f"state: {n} float{'s' if n != 1 else ''} per parameter"
            + (f" ({', '.join(slots)})" if slots else "") + f"; optax AdamW: {ADAMW_SLOTS}")


def step_time(program: Program, reps: int = 21, width: int = 512, layers: int = 4) -> Dict:
    """Median seconds of one jitted optimizer step of ``program`` (its exported module at
    its default learning rate) and of ``optax.adamw(1e-3)``, on the same parameters."""
    import jax
    import jax.numpy as jnp
    import optax
    from optevo.dsl.codegen import module_function, to_module_source
    keys = jax.random.split(jax.random.PRNGKey(0), layers)
    params = [{"w": jax.random.normal(k, (width, width)) / width ** 0.5,
               "b": jnp.zeros(width)} for k in keys]
    grads = jax.tree.map(lambda p: p * 0.01 + 0.001, params)

    def timer(opt):
        @jax.jit
        def step(p, s):
            u, s = opt.update(grads, s, p)
            return optax.apply_updates(p, u), s
        state = opt.init(params)
        p, s = step(params, state)
        jax.block_until_ready(p)

        def once():
            t0 = time.perf_counter()
            jax.block_until_ready(step(p, s)[0])
            return time.perf_counter() - t0
        return once

    ours = timer(module_function(to_module_source(program))())
    theirs = timer(optax.adamw(1e-3))
    a, b = [], []
    for i in range(reps):
        for f, out in ((ours, a), (theirs, b)) if i % 2 == 0 else ((theirs, b), (ours, a)):
            out.append(f())
    t, t0 = statistics.median(a), statistics.median(b)
    n = sum(x.size for x in jax.tree.leaves(params))
    return {"step_s": t, "adamw_step_s": t0, "ratio": t / t0, "parameters": int(n),
            "reps": reps}


def step_text(d: Dict) -> str:
    return (f"step: {d['step_s'] * 1e3:.3f} ms, {d['ratio']:.2f}x optax AdamW's "
            f"{d['adamw_step_s'] * 1e3:.3f} ms (median of {d['reps']} interleaved, "
            f"{d['parameters'] / 1e6:.2f}M parameters, jitted update + apply_updates)")

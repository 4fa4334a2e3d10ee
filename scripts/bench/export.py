"""Is the exported Lion module as fast as ``optax.lion``?

Exports ``configs/programs/lion.py`` with ``optevo.dsl.codegen.to_module_source``, imports the
generated module, and times two things against ``optax.lion(1e-4, b1=0.9, b2=0.99,
weight_decay=0.01)`` on the same MLP (``--layers`` hidden layers of ``--width``: with the
defaults about 1.1M parameters, so the optimizer's elementwise work is not negligible):

* ``opt step``: one jitted ``update`` + ``apply_updates`` (the optimizer alone), looped
  ``--steps`` times in a ``lax.fori_loop``;
* ``train``: ``--steps`` full training steps (forward, backward, optimizer) in one jitted
  ``lax.scan``.

Repetitions are interleaved (ours, theirs, theirs, ours, ...) after a warm-up compile, and
the median time is reported with the ratio ours / optax (<= 1.0: no slower). The two loss
curves are also checked to agree (rtol 1e-5).

    python scripts/bench/export.py                 # defaults: 4 x 512, batch 64, 100 steps
    python scripts/bench/export.py --reps 11 --steps 200
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from optevo.dsl.codegen import to_module_source
from optevo.dsl.library import library_program


def exported_lion():
    source = to_module_source(library_program("lion"), name="lion_exported")
    path = Path(tempfile.mkdtemp(prefix="optevo-bench-")) / "lion_exported.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("lion_exported", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.lion_exported(learning_rate=1e-4)  # optax.lion(1e-4)'s


def make_problem(width, layers, batch, n_in=256, n_out=10):
    key = jax.random.PRNGKey(0)
    sizes = [n_in] + [width] * layers + [n_out]
    params = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        key, k = jax.random.split(key)
        params.append({"w": jax.random.normal(k, (a, b)) / np.sqrt(a), "b": jnp.zeros(b)})
    key, kx, ky = jax.random.split(key, 3)
    x = jax.random.normal(kx, (batch, n_in))
    y = jax.random.randint(ky, (batch,), 0, n_out)

    def loss_fn(p):
        h = x
        for layer in p[:-1]:
            h = jax.nn.relu(h @ layer["w"] + layer["b"])
        logits = h @ p[-1]["w"] + p[-1]["b"]
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    return params, loss_fn


def apply(opt, params, state, grads):
    """One optimizer step, as both measurements take it: ``opt.update``, ``apply_updates``.
    Returns the new ``(params, state)``."""
    updates, state = opt.update(grads, state, params)
    return optax.apply_updates(params, updates), state


def opt_step_fn(opt, steps):
    """Jitted ``run(params, grads)``: ``steps`` steps with fixed ``grads`` in a ``fori_loop``;
    returns the final parameters."""
    @jax.jit
    def run(params, grads):
        def body(_, carry):
            return apply(opt, *carry, grads)
        return jax.lax.fori_loop(0, steps, body, (params, opt.init(params)))[0]
    return run


def train_fn(opt, loss_fn, steps):
    """Jitted ``run(params)``: ``steps`` training steps (forward, backward, ``apply``) in one
    ``lax.scan``; returns the loss before each step."""
    @jax.jit
    def run(params):
        def step(carry, _):
            loss, grads = jax.value_and_grad(loss_fn)(carry[0])
            return apply(opt, *carry, grads), loss
        return jax.lax.scan(step, (params, opt.init(params)), None, length=steps)[1]
    return run


def timed(f, *args):
    t = time.perf_counter()
    jax.block_until_ready(f(*args))
    return time.perf_counter() - t


def compare(name, ours, theirs, args, reps):
    jax.block_until_ready(ours(*args))  # compile both
    jax.block_until_ready(theirs(*args))
    t_ours, t_theirs = [], []
    for r in range(reps):  # interleaved, alternating which goes first
        pair = [(ours, t_ours), (theirs, t_theirs)]
        for f, acc in (pair if r % 2 == 0 else pair[::-1]):
            acc.append(timed(f, *args))
    a, b = statistics.median(t_ours), statistics.median(t_theirs)
    print(f"{name:<9} exported {a * 1e3:9.2f} ms   optax.lion {b * 1e3:9.2f} ms   "
          f"ratio {a / b:.3f}x   (median of {reps}; min {min(t_ours) * 1e3:.2f} / "
          f"{min(t_theirs) * 1e3:.2f} ms)")
    return a / b


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--width", type=int, default=512)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--reps", type=int, default=9)
    args = ap.parse_args(argv)

    params, loss_fn = make_problem(args.width, args.layers, args.batch)
    n = sum(x.size for x in jax.tree.leaves(params))
    print(f"device {jax.devices()[0].device_kind} ({jax.default_backend()}), jax "
          f"{jax.__version__}, optax {optax.__version__}; MLP {args.layers} x {args.width} "
          f"({n / 1e6:.2f}M parameters), batch {args.batch}, {args.steps} steps per call")
    ours_opt = exported_lion()
    theirs_opt = optax.lion(1e-4, b1=0.9, b2=0.99, weight_decay=0.01)
    assert ours_opt.init(params)._fields == ("count", "m"), "Lion exports one state slot"

    l_ours = np.asarray(train_fn(ours_opt, loss_fn, args.steps)(params))
    l_theirs = np.asarray(train_fn(theirs_opt, loss_fn, args.steps)(params))
    np.testing.assert_allclose(l_ours, l_theirs, rtol=1e-5, atol=0)
    print(f"losses agree (rtol 1e-5): {l_ours[0]:.4f} -> {l_ours[-1]:.4f}")

    grads = jax.grad(loss_fn)(params)
    r1 = compare("opt step", opt_step_fn(ours_opt, args.steps),
                 opt_step_fn(theirs_opt, args.steps), (params, grads), args.reps)
    r2 = compare("train", train_fn(ours_opt, loss_fn, args.steps),
                 train_fn(theirs_opt, loss_fn, args.steps), (params,), args.reps)
    print(f"ratio exported / optax.lion: opt step {r1:.3f}x, train {r2:.3f}x "
          f"(<= 1.0: no slower)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

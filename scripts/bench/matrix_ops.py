"""Benchmark: what the matrix ops (``dsl/matrix_ops.py``) cost in the fast interpreter.

Three measurements on one task's parameter shapes (default digits_mlp: 64x32, 32, 32x10, 10):

1. *Per statement*: one compiled interpreter step loop (``Interpreter.step`` in a
   ``fori_loop``, no gradients) runs a base program and the base plus a chain of ``N``
   statements of one op; ``(t(base + N) - t(base)) / N`` is that op's cost per statement
   (``sign`` and ``mul`` for reference: elementwise; ``norm``: a per-leaf reduction).
2. *Before/after*: the same per-statement figures for ordinary ops in an interpreter built
   without the matrix rows in the op table (their switch branches absent) and with them, and
   the compile time of each.
3. *Per training step*: ``FastEngine`` trains Muon (``configs/programs/muon.py``) and the same
   program with ``sign`` in place of ``orthogonalize``; the difference per step is what the
   orthogonalize statement costs, printed as a share of the whole update and of the whole
   training step (gradient included).

    python scripts/bench/matrix_ops.py                 # digits_mlp defaults
    python scripts/bench/matrix_ops.py --hidden 128 --seeds 4 --repeats 7

Times are the minimum over ``--repeats`` runs (the machine may be shared); compile times are
single measurements, noisy on a shared machine, so the optimized HLO size is printed too.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from optevo.dsl import matrix_ops, parse
from optevo.dsl.interpreter import Interpreter
from optevo.dsl.library import library_program
from optevo.dsl.ops import register_op, unregister_op
from optevo.proxy_tasks import get_task
from optevo.proxy_tasks.engine import FastEngine

BASE = "def train(w, g, m, v, lr):\n  m = interp(g, m, 0.9)\n{body}  update = {last} * lr\n" \
       "  return update, m, v\n"
CHAIN_OPS = {"mul": "{x} * 0.5", "sign": "sign({x})", "norm": "norm({x})",
             "row_mean": "row_mean({x})", "col_mean": "col_mean({x})",
             "orthogonalize": "orthogonalize({x})"}


def chain(op: str, n: int):
    """The base program with ``n`` chained statements of ``op`` reading m."""
    body, x = "", "m"
    for i in range(n):
        body += f"  t{i} = {CHAIN_OPS[op].format(x=x)}\n"
        x = f"t{i}"
    return parse(BASE.format(body=body, last=x))


def best(fn, repeats):
    fn()  # warm (compile)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def step_loop(interp: Interpreter, ns: int, p: int, steps: int):
    rng = np.random.default_rng(0)
    w = jnp.asarray(rng.standard_normal((ns, p)), jnp.float32)
    g = jnp.asarray(rng.standard_normal((ns, p)) * 0.01, jnp.float32)
    lr = jnp.full((ns, 1), 0.01, jnp.float32)

    @jax.jit
    def run(code):
        regs = interp.init_regs(code, ns, p)

        def body(_, c):
            regs, w = c
            regs, u = interp.step(code, regs, w, g, lr)
            return regs, w - u

        return lax.fori_loop(0, steps, body, (regs, w))[1]

    return run


def per_statement(shapes, ops, args, label):
    """{op: seconds per statement per step} and the compile time, for the current table."""
    p = sum(int(np.prod(s)) for s in shapes)
    interp = Interpreter(shapes, args.bucket)
    run = step_loop(interp, args.seeds, p, args.steps)
    t0 = time.perf_counter()
    compiled = run.lower(interp.encode(chain("mul", 0))).compile()
    compile_s = time.perf_counter() - t0
    hlo = len(compiled.as_text().splitlines())  # a noise-free proxy of the compile cost
    base = best(lambda: jax.block_until_ready(run(interp.encode(chain("mul", 0)))), args.repeats)
    out = {"base": base / args.steps}
    for op in ops:
        code = interp.encode(chain(op, args.chain))
        t = best(lambda: jax.block_until_ready(run(code)), args.repeats)
        out[op] = (t - base) / (args.steps * args.chain)
    print(f"{label}: compile {compile_s:.1f} s ({hlo} lines of optimized HLO); "
          f"base program {out['base'] * 1e6:.1f} us/step; "
          + ", ".join(f"{op} {out[op] * 1e6:.2f} us/statement" for op in ops), flush=True)
    return out, (compile_s, hlo), (interp, run)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", default="digits_mlp")
    ap.add_argument("--hidden", type=int, default=None, help="digits_mlp hidden width")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--steps", type=int, default=300, help="steps per timed loop")
    ap.add_argument("--bucket", type=int, default=16)
    ap.add_argument("--chain", type=int, default=8, help="statements in each op chain")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    opts = {"hidden": args.hidden} if args.hidden else {}
    task = get_task(args.task, **opts)
    leaves = jax.tree.leaves(task.init_params(jax.random.PRNGKey(0)))
    shapes = [tuple(x.shape) for x in leaves]
    print(f"# {args.task} {opts or ''}: leaves {shapes}, {args.seeds} seeds, "
          f"bucket {args.bucket}, {args.steps} steps per loop, chains of {args.chain}, "
          f"min of {args.repeats}; jax {jax.__version__} on {jax.devices()[0].platform}")

    # 1 and 2: per statement, without and with the matrix rows in the table
    plain = ["mul", "sign", "norm"]
    rows = [unregister_op(n) for n in matrix_ops.MATRIX_OPS]
    try:
        before, c_before, _ = per_statement(shapes, plain, args, "without matrix rows")
    finally:
        for op in rows:
            register_op(op)
    after, c_after, (interp, run) = per_statement(shapes, plain + list(matrix_ops.MATRIX_OPS), args,
                                   "with matrix rows   ")
    for op in plain:
        print(f"  {op}: {before[op] * 1e6:.2f} -> {after[op] * 1e6:.2f} us/statement "
              f"(after/before {after[op] / before[op]:.2f})")
    print(f"  compile: {c_before[0]:.1f} -> {c_after[0]:.1f} s, optimized HLO {c_before[1]} -> "
          f"{c_after[1]} lines; per statement, relative to sign: "
          + ", ".join(f"{op} {after[op] / after['sign']:.1f}x"
                      for op in matrix_ops.MATRIX_OPS))

    # 3: Muon against Muon with sign in place of orthogonalize: the update alone (the
    # interpreter loop above) and the whole training step (FastEngine, gradient included)
    muon = library_program("muon")
    signed = parse(muon.text().replace("orthogonalize(", "sign("))
    u_muon, u_sign = (best(lambda: jax.block_until_ready(run(interp.encode(p))), args.repeats)
                      / args.steps for p in (muon, signed))
    print(f"update alone (interpreter loop, no gradient): Muon {u_muon * 1e6:.1f} us/step, "
          f"with sign instead {u_sign * 1e6:.1f} us/step: orthogonalize "
          f"{(u_muon - u_sign) * 1e6:.1f} us = {(u_muon - u_sign) / u_muon:.0%} of the update "
          f"(ratio Muon/sign {u_muon / u_sign:.2f})")
    engine = FastEngine(task, buckets=(8,))
    seeds = np.arange(args.seeds)
    t_muon = best(lambda: engine.run([muon], seeds), args.repeats) / engine.steps
    t_sign = best(lambda: engine.run([signed], seeds), args.repeats) / engine.steps
    ortho = t_muon - t_sign
    print(f"training step ({engine.steps} steps, {args.seeds} seeds): Muon {t_muon * 1e6:.1f} "
          f"us/step, with sign instead {t_sign * 1e6:.1f} us/step: orthogonalize "
          f"{ortho * 1e6:.1f} us = {ortho / t_muon:.0%} of the training step "
          f"(ratio {t_muon / t_sign:.2f})")

if __name__ == "__main__":
    main()

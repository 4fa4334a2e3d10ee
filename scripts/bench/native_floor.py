"""Experiment: would a native, tiled interpreter step reach #21's floor (1.2x hand-written)?

The fast engine's interpreter runs one ``lax.switch`` per statement over whole vectors, so
every statement reads its operands from memory and writes its result back, twice (BENCHMARKS.md,
"Evaluation engine"). ``native/tiled_step.cc`` is a prototype XLA FFI custom call that runs an
encoded program (the same ``Code`` arrays, no compile per program) tile by tile over the
parameters: a statement's operands and result stay in cache, and only ``w, g, m, v`` and the
update cross memory, as in a hand-written step. It knows only the elementwise ops the AdamW
start and a few library programs use; this script refuses any other program.

It is not used by the engines: this script builds it with the system's C++ compiler
(``g++``), registers it with JAX, and times, interleaved, compile excluded, on the same seeds:
the hand-written optax AdamW start (``scripts/bench/eval.py``), the fast engine, and the
engines' training loop with the native step. It checks that the native step's losses equal
the fast engine's.

    taskset -c 1 python scripts/bench/native_floor.py --seeds 4    # as a search's worker
"""

from __future__ import annotations

import argparse
import ctypes
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from optevo.dsl import parse
from optevo.dsl.interpreter import Interpreter, encoded_form
from optevo.dsl.library import library, start_program
from optevo.dsl.random import random_program
from optevo.proxy_tasks import get_task
from optevo.proxy_tasks.engine import FastEngine, Optimizer, TrainLoop

sys.path.insert(0, str(Path(__file__).parent))
from eval import adamw_start_by_hand, hand_loop  # noqa: E402  (sibling)

HERE = Path(__file__).parent / "native"
# the opcodes of tiled_step.cc
CODES = {"nop": 0, "mov": 1, "add": 2, "sub": 3, "mul": 4, "div": 5, "sqrt": 6, "square": 7,
         "abs": 8, "negative": 9, "sign": 10, "interp": 11}
INTERP_C = 12
UNSUPPORTED = 1000


def build() -> None:
    """Compile ``tiled_step.cc`` and register its handler as ``optevo_tiled_step``."""
    out = Path(tempfile.mkdtemp(prefix="optevo-native-")) / "tiled_step.so"
    subprocess.run(["g++", "-O3", "-march=native", "-ffp-contract=off", "-fno-math-errno", "-std=c++17",
                    "-shared", "-fPIC", f"-I{jax.ffi.include_dir()}",
                    str(HERE / "tiled_step.cc"), "-o", str(out)], check=True)
    lib = ctypes.cdll.LoadLibrary(str(out))
    jax.ffi.register_ffi_target("optevo_tiled_step", jax.ffi.pycapsule(lib.TiledStep),
                                platform="cpu")


def opmap(interp: Interpreter) -> np.ndarray:
    """Each switch branch's opcode: >= 0 a tensor row, -(code + 1) a scalar row."""
    out = []
    for key in interp.branch_keys:
        if key in (("nop",), ("mov",)):
            out.append(CODES[key[0]])
        elif key[0] == "interp" and key[1] in ("TC", "SC"):
            out.append(INTERP_C if key[1] == "TC" else -(INTERP_C + 1))
        elif key[0] in CODES and len(key) == 2 and key[1] in ("T", "S"):
            out.append(CODES[key[0]] if key[1] == "T" else -(CODES[key[0]] + 1))
        else:
            out.append(UNSUPPORTED)
    return np.asarray(out, np.int32)


# runs that diverge: a blow-up (the loop's rule), and one whose statement overflows while
# its update stays finite (the interpreter's check)
DIVERGING = [parse("def train(w, g, m, v, lr):\n  update = w * -3.0\n  return update, m, v\n"),
             parse("def train(w, g, m, v, lr):\n  k = w * 1e30\n  k = k * k\n  c = g / k\n"
                   "  update = g * lr\n  update = update + c\n  return update, m, v\n")]


def supported(interp: Interpreter, ops: np.ndarray, program) -> bool:
    code = interp.encode(program)
    return all(ops[code.rows[i, 0]] != UNSUPPORTED for i in range(int(code.n)))


class NativeEngine:
    """The engines' training loop (``TrainLoop.train``) with the native step: compiled once
    per bucket, the program an argument, as ``FastEngine``."""

    def __init__(self, task, length: int):
        self.loop = TrainLoop(task)
        self.interp = Interpreter(self.loop.leaf_shapes, length, check_finite=True)
        self.ops = opmap(self.interp)
        it = self.interp

        def train(code, ops, seeds, scales):
            def update(regs, w, g, lr):
                T, S = regs
                shapes = (jax.ShapeDtypeStruct(T.shape, T.dtype),
                          jax.ShapeDtypeStruct(S.shape, S.dtype),
                          jax.ShapeDtypeStruct(w.shape, w.dtype))
                T, S, u = jax.ffi.ffi_call("optevo_tiled_step", shapes,
                                           input_output_aliases={7: 0, 8: 1})(
                    code.rows, ops, code.n.reshape(1), code.out.reshape(1), w, g, lr, T, S)
                return u, (T, S)

            init = (lambda w: it.init_regs(code, *w.shape))
            return self.loop.train(Optimizer(init, update), seeds, scales)[:2]

        self.fn = jax.jit(train)

    def run(self, program, seeds):
        seeds = np.asarray(seeds, np.uint32)
        out = self.fn(self.interp.encode(program), self.ops, seeds,
                      np.ones(len(seeds), np.float32))
        return [np.asarray(x) for x in jax.device_get(out)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--random", type=int, default=40, help="random programs checked")
    args = ap.parse_args(argv)
    build()
    task = get_task("digits_mlp")
    seeds = np.arange(args.seeds, dtype=np.uint32)
    fast = FastEngine(task)
    adamw = start_program()
    native = NativeEngine(task, fast.bucket(adamw))

    # the native step computes what the interpreter computes: the library programs it
    # supports, two that diverge, and random programs of its ops
    lib = [p for p in library().values() if len(encoded_form(p).stmts) <= native.interp.length
           and supported(native.interp, native.ops, p)]
    rng, rand = np.random.default_rng(0), []
    while len(rand) < args.random:
        p = random_program(rng, int(rng.integers(4, 24)))
        if 1 <= len(encoded_form(p).stmts) <= native.interp.length \
                and supported(native.interp, native.ops, p):
            rand.append(p)
    progs = lib + DIVERGING + rand
    agree, diverged = 0, 0
    for p in progs:
        (nl, nd), f = native.run(p, seeds), fast.run([p], seeds)[0]
        diverged += bool(f.diverged.all())
        agree += bool(np.array_equal(nd, f.diverged)
                      and np.allclose(nl[~nd], f.losses[~nd], rtol=1e-4))
    print(f"native and fast engine agree on {agree}/{len(progs)} programs: {len(lib)} library "
          f"({', '.join(sorted(n for n, p in library().items() if p in lib))}), "
          f"{len(DIVERGING)} diverging, {len(rand)} random; {diverged} diverged on every seed")

    hand = hand_loop(task, fast.steps, adamw_start_by_hand())
    runs = {"hand-written optax": lambda: hand(jnp.asarray(seeds)).block_until_ready(),
            "fast engine": lambda: fast.run([adamw], seeds),
            "native tiled step": lambda: native.run(adamw, seeds)}
    for f in runs.values():  # compile, then warm
        f(), f()
    times = {k: [] for k in runs}
    for _ in range(args.reps):
        for k, f in runs.items():
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
    h = np.asarray(times["hand-written optax"])
    print(f"AdamW start, digits_mlp, {args.seeds} seeds, {fast.steps} steps, "
          f"{args.reps} interleaved rounds:")
    for k, v in times.items():
        v = np.asarray(v)
        print(f"  {k:20s} best {v.min() * 1e3:6.2f} ms   best / hand {v.min() / h.min():.2f}x   "
              f"median of the pairwise ratios {np.median(v / h):.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Functional fingerprint: what a program *does* on fixed inputs, as a second cache key.

:func:`canon.program_hash` is exact: equal hashes compute equal bits, but programs that
compute the same thing by other means (``x * 1.0``, ``sqrt(square(x))`` and ``abs(x)``,
reassociated sums, two constant outputs written differently) hash apart. The fingerprint
keys a program by its *outputs*: run it for ``K = steps`` training steps on fixed
pseudo-random inputs, round the values, hash them. Programs with equal fingerprints agree
(to about ``digits`` significant digits) on those inputs, and are very likely to train
alike; that "very likely" is measured, not proved (``scripts/bench/fingerprint.py``,
BENCHMARKS.md "Functional fingerprint (second cache key)").

The math. Fixed inputs, drawn once from ``numpy.random.default_rng(SEED)``: a parameter
pytree of two leaves of different shapes (``LEAF_SHAPES``: a 6 x 4 matrix and a vector of 8,
so per-leaf ``norm`` differs from the whole-tree reductions ``global_norm``, ``dot``,
``cosine_sim``, and the matrix ops see a non-square matrix and a vector);
``w_0`` with entries ``N(0, 1)`` on the first leaf and ``0`` on the second (biases start at
zero: ``x / |w| * |w|`` and ``x`` differ only there); gradients ``g_1..g_K`` with entries
``s * N(0, 1)``, ``s = 10^u``, ``u ~ U(-3, 1)`` per element (piecewise ops such as ``clip``
and ``max`` against a constant, and the domains of ``arcsin``/``arccosh``, see both
regimes), exactly ``0`` on a fixed 10% of the elements (inputs that never fire) and on a
fresh 15% at each step (so that ``g = 0`` meets ``m != 0``); learning rates ``LRS`` from
0.004 to 9, none equal to 1 (the engines feed the schedule times a calibrated multiplier
``2^k``, so ``lr`` is far from 1 both ways; ``clip(m, lr)`` against ``clip(m, 1.0)``,
``lr * lr`` against ``lr``). These choices come from the benchmark: with ``lr`` in
``[0.2, 1.3]`` and no zeros, 2-3% of the extra merges were false, mostly of these kinds.
The training loop of ``proxy_tasks/tasks/base.py`` with the gradients given::

    m_0 = v_0 = 0
    for k in 1..K:  u_k, m_k, v_k = program(w_{k-1}, g_k, m_{k-1}, v_{k-1}, lr_k)
                    w_k = w_{k-1} - u_k

The fingerprint is ``H(K, digits, n, R(u_1), R(S_1), ..., R(u_K), R(S_K))`` over ``n``
rows of values, where ``S_k`` are the values of the *live* state slots only
(``liveness.live_state``, in slot order; a dead slot is never read by any live statement at
any step, so its value cannot matter and is not hashed), ``R`` rounds every element
relative to its own magnitude to ``b = round(digits * log2(10))`` significant bits
(``x = f * 2^e``, ``1/2 <= |f| < 1``; ``R(x) = (rint(f * 2^b), e)``, exact in float64, so
scale-free) and maps NaN, +inf and -inf to three fixed tokens (so diverging programs
fingerprint consistently); ``-0`` rounds like ``0``. ``digits=None`` keeps the float32 bits
(NaNs made one token). ``H`` is BLAKE2b, 64 bits, as 16 hex digits: a key space of its
own, never to be compared with program hashes.

Execution. No compile per program (the search fingerprints thousands of children a
minute): the program's encoded form (``interpreter.encoded_form``: literals inlined, dead
statements removed, what the fast engine runs) is run statement by statement as the
reference executor (``execute.run``) runs it, each statement by its op's row (``Op.impl``)
under one ``jax.jit`` of that row, traced once per process for each combination of argument
kinds (tensor or scalar) and reused by every program, as the fast engine has one switch
branch per op and kinds. Tensors are one float32 vector of the 32 parameters (the leaves
concatenated, as the fast engine flattens them); scalars are float32 0-d arrays, a Python
float entering a compiled row as the float32 it would be traced as. A statement on
constants alone runs eagerly, in Python double for the arithmetic rows, as in the
reference (and is remembered, keyed by the constants' bits). The values are the engines'
up to reduction order, fusion and float32 constant arithmetic where the reference uses
double (``1 - a`` in ``interp``): a few float32 ulps (a test holds the raw values to the
jitted reference ``execute.update_fn``), which the rounding absorbs except for values within
an ulp of a rounding boundary (a miss, never a false merge). Scalar outputs are broadcast
over the parameters, as both engines broadcast them. It all runs on the CPU device, also
where an accelerator is the default (tiny arrays; the same kernels anywhere). Measured:
1.5-2x faster than the rows run eagerly op by op by ``execute.run`` itself, where every jnp
call is its own dispatch; the first fingerprints of a process compile the ~100 variants
they meet (about 30 ms each, a few seconds in all, as eager execution compiles its
primitives).

Invariants. (1) *Equal hashes give equal fingerprints, always.* ``program_hash`` is equal
only when the live outputs are the same DAG up to the identities of ``canon.py``
(renaming, statement order, dead code and dead slots, commutative arguments of ``add mul
max min dot cosine_sim``, ``min(x, x)``, ``sign(sign(x))``, ``abs(abs(x))``, ``-(-x)``,
the units ``x * 1.0``, ``x - 0.0``, ``x + (-0.0)``, float32 ``x / 1.0``, ``name = c`` as
``c``); each holds bit for bit for the rows compiled here as in the engines (the flat
``dot`` is ``sum(x * y)`` and ``x * y = y * x``; ``cosine_sim`` multiplies the two norms; a
test runs every commutative row both ways for every kind of argument; the units are IEEE
float32 arithmetic on a constant passed as a float32 argument, exact on every value but a
subnormal, and the fixed inputs hold none while XLA flushes any result to one:
``tests/test_equivalences.py``), and every op is deterministic, so equal DAGs give
identical bits here, hence identical rounded values and digests. (2) *A dead slot or dead
code never matters*: both are stripped before running and dead slots are not hashed.
(3) *Deterministic* within one installation (same inputs, same kernels); across JAX
versions or CPUs a value at a rounding boundary may round the other way: treat
fingerprints as per-run keys, not stored ids. Different programs *can* collide (functions
that agree on these inputs, or agree to ``digits`` digits): that is the false-merge rate
the benchmark measures against training.

Measured (``python scripts/bench/fingerprint.py``; BENCHMARKS.md "Functional fingerprint
(second cache key)"), defaults ``digits=4, steps=6``: over 3000-10000 children of small
searches from AdamW, 1.4-12.6% of the children whose hash is new have a known fingerprint
(the rate depends on where the search wanders); 0-0.4% of those merges are false against
training (a seed's final loss off by more than 1e-4 relative), none beyond the seed noise;
``digits=3`` or ``steps=4`` merge a little more and falsely up to 2.2%. Cost on one core
(shared 2-core machine): 0.6-0.75 ms per child (4-8 live statements) and 1.6-1.9 ms for 20
live statements, against 0.025-0.05 ms for ``program_hash`` and 1.1-1.4 / 3.0-3.8 ms with
the rows run eagerly by ``execute.run``; the first pass over 3000 children (compiling the
variants met) took 7-14 s, eager 7-20 s.
"""

from __future__ import annotations

import functools
import hashlib
import math
import struct
from typing import Callable, Dict, List, NamedTuple, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .interpreter import encoded_form
from .liveness import live_state
from .matrix_ops import flat_leaf_map, leaf_shapes_of
from .ops import OPS, Op, Space
from .program import INPUTS, STATE, Program, check

__all__ = ["DIGITS", "STEPS", "fingerprint", "trajectory"]

DIGITS: Optional[int] = 4  # significant decimal digits kept (None: float32 bits)
STEPS = 6  # update steps run
MAX_STEPS = 8
SEED = 20230213
LEAF_SHAPES: Tuple[Tuple[int, ...], ...] = ((6, 4), (8,))
LRS = (3.1, 0.02, 0.7, 9.0, 0.15, 1.7, 0.004, 5.0)  # lr input of steps 1..MAX_STEPS
G_LOG10_RANGE = (-3.0, 1.0)  # gradient element magnitudes 10^U(lo, hi)
G_ZERO_SHARE = (0.1, 0.15)  # share of gradient elements exactly 0: at every step; per step

_VERSION = b"optevo-fingerprint-1"
_NAN, _PINF, _NINF = 1 << 20, (1 << 20) + 1, (1 << 20) + 2  # exponent tokens (|e| <= 1100)


class VectorSpace(Space):
    """Tensors are 1-D float32 arrays of all parameters (leaves concatenated); scalars are
    0-d arrays or Python floats (the reference executor's). ``leaf_total`` sums each leaf's
    slice and broadcasts it back over that slice; ``leaf_map`` reshapes each slice to its
    leaf's shape (``LEAF_SHAPES``)."""

    def __init__(self, leaf_shapes):
        self.shapes = leaf_shapes_of(leaf_shapes)
        self.bounds = [int(b) for b in np.cumsum([0] + [math.prod(s) for s in self.shapes])]
        self.size = self.bounds[-1]

    def is_tensor(self, x) -> bool:
        return getattr(x, "ndim", 0) == 1

    def map(self, f, *args):
        return f(*args)

    def total(self, x):
        return jnp.sum(x) if self.is_tensor(x) else x

    def leaf_total(self, x):
        if not self.is_tensor(x):
            return x
        parts = [jnp.broadcast_to(jnp.sum(lax.slice(x, (a,), (b,))), (b - a,))
                 for a, b in zip(self.bounds[:-1], self.bounds[1:])]
        return jnp.concatenate(parts)

    def leaf_map(self, f, x, scalar):
        if not self.is_tensor(x):
            return scalar(x)
        return flat_leaf_map(f, x, self.bounds, self.shapes)


class Inputs(NamedTuple):
    w: jnp.ndarray  # (P,) float32
    g: List[jnp.ndarray]  # MAX_STEPS x (P,) float32
    lr: List[jnp.ndarray]  # MAX_STEPS x () float32
    zeros: jnp.ndarray
    device: object  # the CPU: tiny arrays, the same kernels on every machine


@functools.lru_cache(maxsize=None)
def _setup() -> Tuple[VectorSpace, Inputs]:
    """The fixed inputs (drawn once per process, identical in every process)."""
    rng = np.random.default_rng(SEED)
    space = VectorSpace(LEAF_SHAPES)
    n = space.size
    w = rng.standard_normal(n)
    w[space.bounds[-2]:] = 0.0  # the last leaf starts at zero, as biases do
    dead = rng.random(n) < G_ZERO_SHARE[0]  # gradients exactly zero at every step
    lo, hi = G_LOG10_RANGE
    g = [np.where(dead | (rng.random(n) < G_ZERO_SHARE[1]), 0.0,
                  rng.standard_normal(n) * 10.0 ** rng.uniform(lo, hi, n))
         for _ in range(MAX_STEPS)]
    cpu = jax.devices("cpu")[0]
    put = lambda x: jax.device_put(np.asarray(x, np.float32), cpu)
    return space, Inputs(put(w), [put(x) for x in g], [put(lr) for lr in LRS],
                         put(np.zeros(n)), cpu)


_COMPILED: Dict[str, Tuple[Op, Callable]] = {}  # op name -> (its row, the row under jit)


def _apply(op: Op, space: VectorSpace, args):
    """``op.impl(space, *args)``: eagerly when no argument is an array (constants, as the
    reference computes them, in Python double for the arithmetic rows), else through one
    ``jax.jit`` of the row (traced once per op and argument kinds, never per program; a row
    registered anew under the same name gets its own)."""
    if not any(isinstance(a, jax.Array) for a in args):
        return _eager(op, space, args)
    entry = _COMPILED.get(op.name)
    if entry is None or entry[0] is not op:
        entry = _COMPILED[op.name] = (op, jax.jit(functools.partial(op.impl, space)))
    return entry[1](*[_const(a) if isinstance(a, float) else a for a in args])


_CACHE: Dict[tuple, object] = {}  # constants and constant statements, keyed by bits


def _remember(key, make):
    entry = _CACHE.get(key)
    if entry is None:
        entry = make()
        if len(_CACHE) < 100_000:
            _CACHE[key] = entry
    return entry


def _bits(c) -> bytes:
    """A constant's identity: its type and its bits (-0.0 and 0.0 apart; an int or a NumPy
    scalar computes otherwise in the reference, so it stays apart from the same float)."""
    return type(c).__name__.encode() + struct.pack("<d", c)


def _eager(op: Op, space: VectorSpace, args):
    """A statement on Python floats alone, as the reference computes it (remembered)."""
    def make():
        out = op.impl(space, *args)
        return op, (_scalar(out) if isinstance(out, jax.Array) else out)
    entry = _remember((op.name,) + tuple(_bits(a) for a in args), make)
    return entry[1] if entry[0] is op else make()[1]


def _const(c: float) -> jax.Array:
    """A Python float as jit would trace it (float32, the same value), but as one kind of
    scalar argument with the 0-d arrays: fewer variants to compile."""
    return _remember(_bits(c), lambda: _scalar(c))


def _scalar(x) -> jax.Array:
    """A scalar as a (not weakly typed) float32 0-d array on the fingerprint's device."""
    return jax.device_put(np.float32(x), _setup()[1].device)


def _run(program: Program, w, g, m, v, lr, space: VectorSpace):
    """One step, statement by statement, as ``execute.run`` does."""
    env = dict(zip(INPUTS, (w, g, m, v, lr)))
    for s in program.stmts:
        env[s.target] = _apply(OPS[s.op], space,
                               [env[a] if isinstance(a, str) else a for a in s.args])
    return tuple(env[r] for r in program.returns)


def _as_tensor(x, size: int):
    """An output as the engines feed it back: broadcast over the parameters, float32."""
    if getattr(x, "ndim", 0) == 1:
        return x
    return jnp.broadcast_to(jnp.asarray(x, jnp.float32), (size,))


def trajectory(program: Program, steps: int = STEPS, run=None) -> np.ndarray:
    """The values the fingerprint hashes: ``(steps * (1 + n_live), P)`` float32, for each
    step the update, then the live state slots in slot order. Raises ProgramError if the
    program is invalid. ``run``: what executes one step (default the compiled rows; a
    benchmark passes another with the same signature)."""
    run = run or _run
    if not 1 <= steps <= MAX_STEPS:
        raise ValueError(f"steps must be in 1..{MAX_STEPS}, got {steps}")
    check(program)
    prog = encoded_form(program)
    live = [i for i, s in enumerate(STATE) if s in live_state(prog)]
    space, ins = _setup()
    w, state = ins.w, [ins.zeros] * len(STATE)
    rows = []
    with jax.default_device(ins.device):
        for k in range(steps):
            out = run(prog, w, ins.g[k], *state, ins.lr[k], space)
            upd = _as_tensor(out[0], space.size)
            state = [_as_tensor(x, space.size) for x in out[1:]]
            w = w - upd
            rows.append(upd)
            rows.extend(state[i] for i in live)
        return np.stack([np.asarray(r, np.float32) for r in rows])


def _codes(x: np.ndarray, digits: Optional[int]) -> np.ndarray:
    """Rounded values as int64 pairs (mantissa, exponent); see the module docstring."""
    x = np.asarray(x, np.float64)
    nan, pinf, ninf = np.isnan(x), x == np.inf, x == -np.inf
    finite = ~(nan | pinf | ninf)
    x = np.where(finite, x, 0.0)
    if digits is None:  # float32 bits, -0 as 0
        q = (x.astype(np.float32) + np.float32(0.0)).view(np.int32).astype(np.int64)
        e = np.zeros_like(q)
    else:
        bits = int(round(digits * math.log2(10)))
        f, e = np.frexp(x)
        q = np.rint(np.ldexp(f, bits))
        carry = np.abs(q) == 2.0 ** bits  # f rounded up to 1: one bit less, exponent + 1
        q = np.where(carry, q / 2, q).astype(np.int64)
        e = np.where(q == 0, 0, e + carry).astype(np.int64)
    e = np.where(nan, _NAN, np.where(pinf, _PINF, np.where(ninf, _NINF, e)))
    return np.stack([q, e])


def fingerprint(program: Program, digits: Optional[int] = DIGITS, steps: int = STEPS,
                run=None) -> str:
    """16 hex digits of what ``program`` computes over ``steps`` steps on the fixed inputs,
    rounded to ``digits`` significant decimal digits (``None``: exact float32). Equal
    ``program_hash`` implies an equal fingerprint; see the module docstring. ``run``: as
    :func:`trajectory`'s."""
    rows = trajectory(program, steps, run)
    header = _VERSION + f":{steps}:{digits}:{rows.shape[0]}:".encode()
    with np.errstate(all="ignore"):
        data = _codes(rows, digits).tobytes()
    return hashlib.blake2b(header + data, digest_size=8).hexdigest()

"""Canonical hashing: a name-, order- and dead-code-free fingerprint of what a program computes.

The search hashes every child and never trains two programs with the same hash (the cache of
Chen et al. 2023, arXiv 2302.06675, "Efficient search techniques"; AutoML-Zero's functional
equivalence checking, Real et al. 2020), so the one hard requirement is soundness: **equal
hashes imply equal computations**, bit for bit in float32, at every step of training. Missing
an equivalence only costs a cache miss; merging two different programs would be a wrong result.

The math. A program is one step ``(w, g, m, v, lr) -> (update, m', v')``; the loop feeds
``m', v'`` back as the next step's ``m, v`` (starting at zero) and ``w <- w - update``.

1. *Expression DAG.* Read the statements in order, keeping for each variable the node that
   currently holds its value. Leaves are the five inputs and the constants; an inner node is
   ``op(child_1, ..., child_k)``. Each node gets a 128-bit Merkle digest
   ``D(op(c_1..c_k)) = H(op, D(c_1), ..., D(c_k))``. Reassigned names, renamed temporaries
   and the order of independent statements disappear: only the data flow remains. Two
   statements computing the same expression share one digest (hash-consing), which is sound
   because every op is a deterministic function of its arguments' values.
2. *Commutativity.* For the ops whose row in ``dsl/ops.py`` says ``commutative`` (``add``,
   ``mul``, ``max``, ``min``: IEEE-754 ``x + y``, ``x * y`` are exactly commutative; XLA's
   max/min are too, signed zeros and NaN included; ``dot`` and ``cosine_sim``: a sum over
   the elementwise product ``x * y``; the norms enter as a product) the child digests are
   sorted (constants after everything else, then by digest), so swapped arguments hash
   alike. Besides, exact identities that the op rows state are applied over variables
   (never constants): ``min(x, x) = max(x, x) = x`` (idempotent), ``sign(sign(x)) =
   sign(x)``, ``abs(abs(x)) = abs(x)`` and ``negative(negative(x)) = x`` (involution), and
   the *strict units* (``Op.units`` with ``strict``): ``x * 1.0 = 1.0 * x = x``,
   ``x - 0.0 = x``, ``x + (-0.0) = (-0.0) + x = x`` and ``x / 1.0 = x`` (safe division:
   ``x / (1.0 + 1e-8)``, and ``1 + 1e-8`` rounds to ``1.0`` in float32; so only where the
   reference holds ``x`` as float32, not where it holds a Python double computed from
   constants, ``Unit.double``). The statement takes its argument's digest. Per engine:
   IEEE-754 gives these results exactly for every float32 ``x`` that is not subnormal,
   ``-0.0``, infinities and NaN included (``-0.0 - 0.0 = -0.0``, ``0.0 + (-0.0) = 0.0``); on a
   Python double (the reference's constant arithmetic) ``* 1.0``, ``- 0.0``, ``+ (-0.0)``
   are exact too; the jitted reference executor, whose constants are compile-time, has
   XLA's algebraic simplifier drop them outright; the fast interpreter and the fingerprint
   rows, whose constants are run-time values, compute them in IEEE float32. Not applied,
   because they are *not* bit for bit (the tests show each failing):
   ``x + 0.0``, ``0.0 + x``, ``x - (-0.0)`` turn ``-0.0`` into ``+0.0`` in the interpreter
   (yet stay ``-0.0`` in the jitted reference, whose simplifier drops them), and the sign of
   a zero reaches results (``power(-0.0, -1.0) = -inf``); ``interp(x, x, a) = (1 - a) x +
   a x`` rounds (``interp(g, g, 0.9)`` is one ulp off ``g`` for a fifth of normal ``g``;
   ``a = 0.3`` or ``0.5`` flush a tiny ``x`` to 0, and ``a = 0`` or ``1`` turn ``x = inf``
   into NaN); it is ``x`` only up to rounding, which ``simplify.exact`` (not strict)
   applies and the "distinct programs" listing (``search/core/rundir.py``,
   ``best_distinct``) merges on.
   Nothing else is rewritten: no reassociation, no constant folding, no other algebraic
   identity -- each of those can change a float32 result.
3. *Constants* are leaves keyed by their exact value (the bits of the Python float). A
   literal statement ``name = c`` is no node: ``name`` holds the leaf of ``c`` itself, since
   every engine computes with it exactly what it computes with ``c`` written in its place
   (``program.inline_literals``), so ``epsilon = 1e-8`` hashes like the inline ``1e-8``. For
   every constant the mutations produce (float32 values) this is the same as keying by the
   float32 bit pattern the engines load. A constant that is not a float32 value (``0.9`` in
   a hand-written file) keeps its double identity, because the engines use the double: the
   weight of ``interp(x, y, a)`` enters as ``float32(1 - a)`` computed in double (so
   ``interp(g, m, 0.9)`` and ``interp(g, m, float32(0.9))`` differ in float32), and the
   reference executor does constant-only arithmetic on Python floats.
4. *Liveness across steps.* Let ``R(x)`` be the set of inputs node ``x`` reads. The live
   state slots are the least set ``S`` with ``R(update) & {m, v} <= S`` and
   ``R(s') & {m, v} <= S`` for every ``s`` in ``S`` (the fixpoint of
   ``liveness.live_state``, computed here from read masks kept on the DAG). The hash is
   ``H(D(update), D(m') or DEAD, D(v') or DEAD)``. By induction over steps, equal hashes give
   equal updates and equal live state forever from the same start: the live outputs are the
   same functions of the inputs, and no live node reads a dead slot.

:func:`program_hash` returns 16 hex characters (64 bits) of that digest. :func:`canonical_form`
returns the canonical program: live statements only, in single-assignment form with
temporaries ``t0, t1, ...`` numbered in a canonical depth-first order from the outputs,
commutative arguments sorted; it computes the same thing and has the same hash.

What "equal" means. Bit for bit in float32, for each engine (the jitted reference, the fast
interpreter, the fingerprint's rows; two engines need not agree with each other, e.g. on
constant arithmetic), except that any NaN equals any NaN (payloads are not kept), on every
input the engines feed a program: values without subnormals. XLA on the CPU flushes
subnormal results of every arithmetic op to zero of the same sign and reads subnormal
operands as zero (FTZ and DAZ; a backend that keeps subnormals computes the units exactly on
them, as IEEE-754 does), so parameters, gradients and state that come out of XLA never hold
one. Fed a subnormal ``x`` from outside, the interpreter's ``x * 1.0`` is ``x`` flushed to
``+-0.0`` while ``x`` itself passes through as it came: the two are equal after flushing
subnormals, and every later arithmetic op and comparison (``w - update`` too) reads them
alike, so training goes on identically.
"""

from __future__ import annotations

import hashlib
import math
import struct
from typing import Dict, List, Tuple

from .ops import COMMUTATIVE, LITERAL, LITERAL_OP, OPS
from .program import INPUT_BIT, INPUTS, STATE, Program, ProgramError, Stmt

__all__ = ["COMMUTATIVE", "canonical_form", "live_slots", "program_hash"]

_VERSION = b"optevo-canon-1"
_DEAD = b"\x00dead-slot\x00\x00\x00\x00\x00\x00"
_BIT = INPUT_BIT  # the read-mask bit of each input
_STATE_BITS = sum(_BIT[s] for s in STATE)


def _h(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


_INPUT_DIGEST = {name: _h(b"input:" + name.encode()) for name in INPUTS}
_CONST_CACHE: Dict[Tuple[type, float], bytes] = {}


def _const_digest(c) -> bytes:
    key = (type(c), c)
    d = _CONST_CACHE.get(key)
    if d is None:
        if type(c) is float:
            d = _h(b"const:" + struct.pack("<d", c))
        else:  # an int or a numpy scalar behaves differently in the executors: keep it apart
            d = _h(b"const:" + type(c).__name__.encode() + b":" + repr(c).encode())
        if len(_CONST_CACHE) < 100_000:
            _CONST_CACHE[key] = d
    return d


def _unit(op, c):
    """The row's right identity (``Op.units``) that constant ``c`` is, sign of a zero
    included (``x + (-0.0)`` is an identity, ``x + 0.0`` is not), or None."""
    for u in op.units:
        if type(c) is float and c == u.value and \
                math.copysign(1.0, c) == math.copysign(1.0, u.value):
            return u
    return None


def _identity(op, kids, nodes, consts, py):
    """The digest ``op(kids)`` equals bit for bit by an exact identity of its row, or None:
    a strict unit (``x * 1``, ``1 * x``, ``x - 0.0``, ``x + (-0.0)``, ``-0.0 + x``; ``x / 1``
    only where ``x`` is not a Python double in the reference, ``Unit.double``),
    ``f(x, x) = x`` (idempotent binary: min, max), ``f(f(x)) = f(x)`` (idempotent unary:
    sign, abs) and ``f(f(x)) = x`` (involution: negative). Only over variables: on constants
    the engines and the reference differ in precision (float32 against Python doubles)."""
    if op.arity == 2 and op.units:
        for i in ((1, 0) if op.commutative else (1,)):
            (c_is_const, c), (x_is_const, x) = kids[i], kids[1 - i]
            u = _unit(op, consts[c]) if c_is_const else None
            if u is not None and u.strict and not x_is_const and (u.double or not py[x]):
                return x
    if any(is_const for is_const, _ in kids):
        return None
    ds = [d for _, d in kids]
    if op.arity == 2 and op.idempotent and ds[0] == ds[1]:
        return ds[0]
    if op.arity == 1 and ds[0] in nodes and nodes[ds[0]][0] == op.name:
        if op.idempotent:
            return ds[0]
        if op.involution:
            return nodes[ds[0]][1][0]
    return None


def _dag(program: Program):
    """Forward pass: digest and input-read mask of every variable. Returns
    (env digest by name, nodes: digest -> (op, canonical arg digests), reads: digest -> mask,
    leaf args: digest -> constant value)."""
    env = dict(_INPUT_DIGEST)
    reads = {d: _BIT[n] for n, d in _INPUT_DIGEST.items()}
    nodes: Dict[bytes, Tuple[str, Tuple[bytes, ...]]] = {}
    consts: Dict[bytes, object] = {}
    py = {d: False for d in reads}  # held as a Python double by the reference executor
    for s in program.stmts:
        op = OPS.get(s.op)
        if op is None:
            raise ProgramError(f"unknown function {s.op!r}", s.line)
        if len(s.args) != op.arity:
            raise ProgramError(f"{s.op} takes {op.arity} arguments, got {len(s.args)}", s.line)
        kids = []  # (is a constant, digest): constants sort after variables
        mask = 0
        for a in s.args:
            if isinstance(a, str):
                d = env.get(a)
                if d is None:
                    raise ProgramError(f"variable {a!r} is used before it is assigned", s.line)
                mask |= reads[d]
                kids.append((d in consts, d))  # a name holding a literal is its constant
            else:
                d = _const_digest(a)
                consts[d] = a
                reads[d] = 0
                py[d] = True
                kids.append((True, d))
        if op.rule == LITERAL:
            if not kids[0][0]:
                raise ProgramError(f"'{s.target} = ...' must assign a number", s.line)
            env[s.target] = kids[0][1]
            continue
        same = _identity(op, kids, nodes, consts, py)
        if same is not None:  # x * 1, min(x, x), sign(sign(x)), -(-x): the value of x itself
            env[s.target] = same
            continue
        if op.commutative:
            kids.sort()
        kids = tuple(d for _, d in kids)
        d = _h(s.op.encode() + b"(" + b"".join(kids))
        nodes[d] = (s.op, kids)
        reads[d] = mask
        py[d] = op.pyfloat and all(py[k] for k in kids)
        env[s.target] = d
    for r in program.returns:
        if r not in env:
            raise ProgramError(f"returned variable {r!r} is never assigned")
    return env, nodes, reads, consts


def _outputs(program: Program, env, reads) -> Tuple[bytes, List[bytes]]:
    """Digests of update and of each state slot's new value (None for a dead slot)."""
    out = [env[r] for r in program.returns]
    live = reads[out[0]] & _STATE_BITS
    while True:
        new = live
        for i, s in enumerate(STATE):
            if live & _BIT[s]:
                new |= reads[out[1 + i]] & _STATE_BITS
        if new == live:
            break
        live = new
    return out[0], [out[1 + i] if live & _BIT[s] else None for i, s in enumerate(STATE)]


def live_slots(program: Program) -> frozenset:
    """The live state slots (same as ``liveness.live_state``), found on the DAG."""
    env, _, reads, _ = _dag(program)
    _, state = _outputs(program, env, reads)
    return frozenset(s for s, d in zip(STATE, state) if d is not None)


def program_hash(program: Program) -> str:
    """16 hex digits identifying what ``program`` computes (see the module docstring)."""
    env, _, reads, _ = _dag(program)
    upd, state = _outputs(program, env, reads)
    data = _VERSION + upd + b"".join(_DEAD if d is None else d for d in state)
    return hashlib.sha256(data).hexdigest()[:16]


def canonical_form(program: Program) -> Program:
    """The canonical program: live statements only, single assignment, temporaries named
    ``t0, t1, ...`` in depth-first post-order from update, then the live new ``m``, ``v``;
    commutative arguments sorted by digest, constants last, literals inlined (a returned
    constant is a literal statement). A dead slot returns its input name.
    ``program_hash(canonical_form(p)) == program_hash(p)`` and both compute the same."""
    env, nodes, reads, consts = _dag(program)
    upd, state = _outputs(program, env, reads)
    names = {d: n for n, d in _INPUT_DIGEST.items()}
    stmts: List[Stmt] = []

    def arg(d):
        return names[d] if d in names else consts[d]

    def visit(root):
        stack = [(root, False)]  # iterative post-order (programs may be long chains)
        while stack:
            d, done = stack.pop()
            if d in names or d in consts:
                continue
            op, kids = nodes[d]
            if done:
                names[d] = f"t{len(stmts)}"
                stmts.append(Stmt(names[d], op, tuple(arg(k) for k in kids)))
                continue
            stack.append((d, True))
            for k in reversed(kids):
                if k not in names and k not in consts:
                    stack.append((k, False))

    returns = []
    for d, slot in zip([upd] + state, ("update",) + STATE):
        if d is None:
            returns.append(slot)
        elif d in consts:  # a returned literal
            returns.append(f"t{len(stmts)}")
            stmts.append(Stmt(returns[-1], LITERAL_OP, (consts[d],)))
        else:
            visit(d)
            returns.append(names[d])
    return Program(tuple(stmts), tuple(returns))

"""The fast path: programs encoded as arrays, run by one interpreter compiled per length bucket.

A program becomes integer arrays (op variant, argument registers, destination) plus its
constants. The interpreter keeps two register banks for a batch of ``Ns`` seeds at once:

* tensor registers ``T``: ``(NT, Ns, P)``, the parameters flattened to one vector of ``P``
  (the leaves' static shapes are known, so the matrix ops reshape slices of it);
  slots 0-3 hold ``w, g, m, v``; the banks are the loop carry, so ``m`` and ``v`` stay in
  slots 2 and 3 from one step to the next (``w`` and ``g`` are written in each step);
* scalar registers ``S``: ``(NS, Ns, 1)``: ``lr``, statement results and the constants.
  Scalars never occupy full-size registers.

Every statement has its own destination register (static single assignment), except that
the statement computing the returned ``m`` (``v``) writes slot 2 (3) where that is safe;
otherwise a few moves after the statements put them there (:func:`_place_outputs`). So a
bucket of ``L`` statements has ``L + EXTRA_ROWS`` rows and ``L + 8`` tensor registers (the
inputs, one per statement, a scratch register, three move temporaries). Each row is one
``lax.switch`` over the op variants; its index is not batched (all seeds run one program), so
XLA executes only the chosen branch. The branches are built from the op table
(``optevo.dsl.ops``) when an :class:`Interpreter` is created, by each op's output-kind rule
(an op registered before that is in it); implementations run here in a flat-vector space
(``optevo.dsl.flat_space``) instead of the reference executor's pytree space, so both paths
compute the same formulas. Literals (``name = c``) are inlined at encoding
(``program.inline_literals``): reads of ``name`` load ``c`` like a written constant.

The finite check (``check_finite``, the divergence rule for overflow) is a propagation, not a
scan: each branch sets its result to NaN where an operand is not finite (fused into the op's
own loop), and since every encoded statement is live, a non-finite value anywhere reaches
``update``, ``m`` or ``v``; only those three are checked at the end of the step. Measured by
``scripts/bench/eval.py`` (``check_cost``, 20 interleaved pairs): the AdamW start's run costs
1.03x its unchecked time, where scanning every statement row of the bank each step cost 1.16x.
"""

from __future__ import annotations

import functools
import itertools
import operator
from typing import Dict, List, NamedTuple, Sequence, Tuple

import jax.numpy as jnp
import numpy as np
from jax import lax

from .liveness import strip_dead
from .flat_space import FlatSpace
from .ops import CONSTANT, LITERAL, MAX_ARITY, OP_LIST, OPS, SCALAR, TENSOR
from .program import INPUT_KINDS, INPUTS, Program, check, inline_literals

TENSOR_ARG, SCALAR_ARG = 0, 1
N_ARGS = MAX_ARITY + 1  # the arguments and, for interp with a constant weight, its complement


# Columns of a statement's row in Code.rows: one row is read per statement (one small
# dynamic slice instead of five; measured faster per statement).
OP, ARGS, KINDS, DST_T, DST_S = 0, slice(1, 5), slice(5, 9), 9, 10
ROW = 11


class Code(NamedTuple):
    """One program as arrays (a pytree of numpy arrays; stacks along a new leading axis).

    ``rows[i]`` holds row ``i``: branch index, four argument registers (in the bank given
    by the four kinds, TENSOR_ARG / SCALAR_ARG), the tensor destination (scratch for scalar
    results) and the scalar destination (scratch for tensor results). The rows are the live
    statements, then the moves that leave ``m`` and ``v`` in tensor slots 2 and 3 and the
    update in a tensor register (:meth:`Interpreter.encode`)."""

    rows: np.ndarray  # (L + EXTRA_ROWS, 11) int32
    consts: np.ndarray  # (C,) float32
    out: np.ndarray  # () int32 tensor register of the update
    n: np.ndarray  # () int32 number of rows used


# Moves after the statements (``Interpreter.encode``): at most one per output read at the
# end that its slot's new value would overwrite, one broadcast of a scalar update, and the
# two moves into slots 2 and 3.
EXTRA_ROWS = 5
MOVE = ("mov",)
# tensor slots of m and v (the inputs take slots in their order), and their positions among
# the returned values (update, m, v)
M_SLOT, V_SLOT = INPUTS.index("m"), INPUTS.index("v")
STATE_OUTS = ((1, M_SLOT), (2, V_SLOT))


def _fetch(T, S, idx, kind):
    """Argument ``idx`` of the given kind as an array that broadcasts against tensors."""
    s = lax.dynamic_index_in_dim(S, idx, 0, keepdims=False)
    t = lax.dynamic_index_in_dim(T, idx, 0, keepdims=False)
    return jnp.where(kind == SCALAR_ARG, s, t)


def _pick(T, S, idx, kinds, j):
    """Operand ``j`` inside a branch: its tensor register or its broadcast scalar."""
    return _fetch(T, S, idx[j], kinds[j])


def _variant_table(space: FlatSpace, check_finite: bool = False):
    """Branches of the switch, as (key, fn); fn(T, S, idx, kinds) -> (tensor, scalar result).

    Each branch reads its own operands from the banks, so XLA fuses reading, picking tensor
    or scalar, and the op into one loop with no intermediate copies (measured: slicing
    outside the switch costs 1.8x per statement). Keys: ("nop",); (op, "S") scalar result
    from scalars; (op, "T") elementwise tensor result (scalar operands broadcast);
    (op, "T"/"SV", kinds) tensor/scalar result of a non-elementwise op for one combination
    of argument kinds; ("interp", "TC"/"SC") interp whose weight is a constant, with its
    complement precomputed."""

    def scalar(S, idx, j):
        return lax.dynamic_index_in_dim(S, idx[j], 0, keepdims=False)

    def zeros_t(T):
        return jnp.zeros(T.shape[1:], T.dtype)

    def zeros_s(S):
        return jnp.zeros(S.shape[1:], S.dtype)

    def poison(out, xs, elementwise):
        """With ``check_finite``: NaN where an operand is not finite (module docstring)."""
        if not check_finite:
            return out
        fin = [jnp.isfinite(x) if elementwise or x.shape[-1] == 1 else
               jnp.all(jnp.isfinite(x), axis=-1, keepdims=True) for x in xs]
        return jnp.where(functools.reduce(operator.and_, fin), out, jnp.nan) if fin else out

    def operands(T, S, idx, kinds, arity, static_kinds):
        if static_kinds is None:  # elementwise: pick per element, scalars broadcast
            return [_pick(T, S, idx, kinds, j) for j in range(arity)]
        return [scalar(S, idx, j) if k == SCALAR else
                lax.dynamic_index_in_dim(T, idx[j], 0, keepdims=False)
                for j, k in enumerate(static_kinds)]

    def t_branch(op, static_kinds=None):
        def fn(T, S, idx, kinds):
            xs = operands(T, S, idx, kinds, op.arity, static_kinds)
            out = poison(op.impl(space, *xs), xs, static_kinds is None)
            return jnp.broadcast_to(out, T.shape[1:]), zeros_s(S)
        return fn

    def s_branch(op, static_kinds):
        def fn(T, S, idx, kinds):
            xs = operands(T, S, idx, kinds, op.arity, static_kinds)
            out = poison(jnp.asarray(op.impl(space, *xs), S.dtype), xs, False)
            return zeros_t(T), jnp.broadcast_to(out, S.shape[1:])
        return fn

    def interp_tc(T, S, idx, kinds):
        x, y = _pick(T, S, idx, kinds, 0), _pick(T, S, idx, kinds, 1)
        a, c = scalar(S, idx, 2), scalar(S, idx, 3)
        out = poison(c * x + a * y, (x, y, a, c), True)
        return jnp.broadcast_to(out, T.shape[1:]), zeros_s(S)

    def interp_sc(T, S, idx, kinds):
        x, y, a, c = (scalar(S, idx, j) for j in range(4))
        return zeros_t(T), poison(c * x + a * y, (x, y, a, c), True)

    def move(T, S, idx, kinds):  # a copy (a scalar broadcast); values were checked already
        return jnp.broadcast_to(_pick(T, S, idx, kinds, 0), T.shape[1:]), zeros_s(S)

    table: List[Tuple[tuple, callable]] = [
        (("nop",), lambda T, S, idx, kinds: (zeros_t(T), zeros_s(S))), (MOVE, move)]
    for op in OP_LIST:
        all_scalar = (SCALAR,) * op.arity
        table.append(((op.name, "S"), s_branch(op, all_scalar)))
        if op.rule in (CONSTANT, LITERAL):  # no tensor arguments
            continue
        if op.elementwise:  # broadcasting a scalar first gives the same elementwise result
            table.append(((op.name, "T"), t_branch(op)))
            continue
        # Reductions see a scalar as one number, not as a tensor filled with it: one
        # branch per combination of argument kinds.
        for combo in itertools.product((TENSOR, SCALAR), repeat=op.arity):
            if combo != all_scalar:
                out = op.out_kind(combo)
                make = t_branch if out == TENSOR else s_branch
                table.append(((op.name, "T" if out == TENSOR else "SV", combo),
                              make(op, combo)))
    # interp(x, y, a) with constant a: (1 - a) precomputed in double, as the reference does.
    table += [(("interp", "TC"), interp_tc), (("interp", "SC"), interp_sc)]
    return table


class Interpreter:
    """Runs encoded programs of at most ``length`` live statements on flat parameters whose
    leaves have the shapes ``leaf_shapes`` (sizes allowed: a size is a 1-D leaf)."""

    def __init__(self, leaf_shapes: Sequence, length: int, unroll: bool = False,
                 check_finite: bool = False):
        self.space = FlatSpace(leaf_shapes)
        self.length = length
        self.unroll = unroll
        self.check_finite = check_finite
        table = _variant_table(self.space, check_finite)
        self.branch_keys = [k for k, _ in table]
        self.branches = [f for _, f in table]
        self.index: Dict[tuple, int] = {k: i for i, k in enumerate(self.branch_keys)}
        L = length
        self.rows = L + EXTRA_ROWS
        self.n_tensor = L + 8  # w g m v, one per statement, scratch, three move temporaries
        self.t_scratch = L + 4
        self.t_temps = (L + 5, L + 6, L + 7)
        self.s_scratch = L + 1  # lr, one per statement, scratch, constants
        self.const_base = L + 2
        self.n_consts = 4 * L
        self.n_scalar = self.const_base + self.n_consts

    # --- encoding (host side, numpy) ------------------------------------------------------
    def encode(self, program: Program) -> Code:
        """Arrays for ``program`` (literals inlined, dead statements removed). Raises
        ValueError if too long."""
        prog = encoded_form(program)
        kinds = check(prog)
        L = self.length
        if len(prog.stmts) > L:
            raise ValueError(f"program has {len(prog.stmts)} live statements; bucket holds {L}")
        op = np.zeros(self.rows, np.int32)
        args = np.zeros((self.rows, N_ARGS), np.int32)
        akind = np.full((self.rows, N_ARGS), SCALAR_ARG, np.int32)
        dst_t = np.full(self.rows, self.t_scratch, np.int32)
        dst_s = np.full(self.rows, self.s_scratch, np.int32)
        consts: List[float] = []
        # inputs: tensors in slots 0-3 (w g m v), lr in scalar slot 0
        reg = {n: (TENSOR_ARG, i) if INPUT_KINDS[n] == TENSOR else (SCALAR_ARG, 0)
               for i, n in enumerate(INPUTS)}

        def const(c: float) -> Tuple[int, int]:
            consts.append(float(c))
            return SCALAR_ARG, self.const_base + len(consts) - 1

        for i, (s, kind) in enumerate(zip(prog.stmts, kinds)):
            refs = [reg[a] if isinstance(a, str) else const(a) for a in s.args]
            arg_kinds = [TENSOR if k == TENSOR_ARG else SCALAR for k, _ in refs]
            if s.op == "interp" and not isinstance(s.args[2], str):
                refs.append(const(np.float32(1.0 - float(s.args[2]))))
                key = ("interp", "TC" if kind == TENSOR else "SC")
            elif TENSOR not in arg_kinds:
                key = (s.op, "S")
            elif OPS[s.op].elementwise:
                key = (s.op, "T")
            else:
                key = (s.op, "T" if kind == TENSOR else "SV", tuple(arg_kinds))
            op[i] = self.index[key]
            for j, (k, r) in enumerate(refs):
                akind[i, j], args[i, j] = k, r
            if kind == TENSOR:
                dst_t[i] = 4 + i
                reg[s.target] = (TENSOR_ARG, 4 + i)
            else:
                dst_s[i] = 1 + i
                reg[s.target] = (SCALAR_ARG, 1 + i)
        c = np.zeros(self.n_consts, np.float32)
        c[:len(consts)] = consts
        rows = np.concatenate([op[:, None], args, akind, dst_t[:, None], dst_s[:, None]], 1)
        n, upd = _place_outputs(rows, len(prog.stmts), [reg[r] for r in prog.returns],
                                self.t_temps, self.index[MOVE], self.s_scratch)
        return Code(rows.astype(np.int32), c, np.int32(upd), np.int32(n))

    # --- execution (traced) ---------------------------------------------------------------
    def init_regs(self, code: Code, ns: int, p: int):
        """Register banks for ``ns`` seeds of ``p`` parameters, constants loaded."""
        T = jnp.zeros((self.n_tensor, ns, p), jnp.float32)
        S = jnp.zeros((self.n_scalar, ns, 1), jnp.float32)
        S = S.at[self.const_base:].set(jnp.broadcast_to(code.consts[:, None, None],
                                                         (self.n_consts, ns, 1)))
        return T, S

    def step(self, code: Code, regs, w, g, lr):
        """One optimizer step for a batch of seeds: ``w, g`` are ``(Ns, P)``, ``lr`` is
        ``(Ns, 1)``. Returns ``(regs, update)``, the update ``(Ns, P)``; the new ``m, v``
        stay in the bank (:meth:`state`), where the next step reads them.
        With ``check_finite``, each statement's value is NaN where an operand is not finite
        (per coordinate for an elementwise op, per seed for any other) and the update is NaN
        where ``update``, ``m`` or ``v`` is not finite, as ``execute.update_fn``'s
        ``check_finite``: the run diverges exactly when a live statement computed a value
        that is not finite.

        ``m`` and ``v`` live in tensor slots 2 and 3 between steps: the statement that
        computes each writes it there (or a move does, ``encode``), so no step copies them
        in or out (measured: the AdamW start's run 1.27x hand-written optax, from 1.38x with
        the copies, ``scripts/bench/step_cost.py``). ``w`` and ``g`` are written in at the
        start; the update is read from its register at the end."""
        T, S = regs
        T = T.at[0].set(w).at[1].set(g)
        S = S.at[0].set(lr)

        def slot(i, regs):
            T, S = regs
            r = lax.dynamic_index_in_dim(code.rows, i, 0, keepdims=False)
            out_t, out_s = lax.switch(r[OP], self.branches, T, S, r[ARGS], r[KINDS])
            T = lax.dynamic_update_index_in_dim(T, out_t, r[DST_T], 0)
            S = lax.dynamic_update_index_in_dim(S, out_s, r[DST_S], 0)
            return T, S

        if self.unroll:
            for i in range(self.rows):
                T, S = slot(i, (T, S))
        else:
            T, S = lax.fori_loop(0, code.n, slot, (T, S))
        upd = lax.dynamic_index_in_dim(T, code.out, 0, keepdims=False)
        if self.check_finite:  # a non-finite value anywhere has reached an output (poison)
            m, v = self.state((T, S))
            upd = jnp.where(jnp.isfinite(upd) & jnp.isfinite(m) & jnp.isfinite(v), upd, jnp.nan)
        return (T, S), upd

    @staticmethod
    def state(regs):
        """``(m, v)`` after the last step, each ``(Ns, P)``."""
        return regs[0][M_SLOT], regs[0][V_SLOT]


def _place_outputs(rows, n: int, outs, temps, move: int, s_scratch: int):
    """Leave ``m`` in tensor slot 2, ``v`` in slot 3 and the update in a tensor register
    after the ``n`` statement rows of ``rows`` (edited in place); ``outs``: the registers of
    ``update, m, v``. Returns the rows used and the update's register.

    The statement that computes ``m`` (``v``) writes it straight into its slot when no later
    statement reads the old value there and no other output is that old value (the usual
    case: ``m = interp(g, m, b1)``); otherwise a move does, after a copy to a temporary of
    any value read at the end that the move would overwrite (``return u, g, m``: ``v``
    takes the old ``m``). A scalar update is broadcast into a temporary."""
    T = TENSOR_ARG
    outs = list(outs)
    reads = rows[:, KINDS] == T  # tensor argument positions

    def rename(old, new, start):
        sel = reads[start:n] & (rows[start:n, ARGS] == old[1])
        rows[start:n, ARGS][sel] = new[1]
        outs[:] = [new if o == old else o for o in outs]

    for j, k in STATE_OUTS:
        kind, r = outs[j]
        i = r - 4
        if kind != T or r == k or not 0 <= i < n:
            continue
        read_later = (reads[i + 1:n] & (rows[i + 1:n, ARGS] == k)).any()
        if not read_later and (T, k) not in outs:
            rows[i, DST_T] = k
            rename((T, r), (T, k), i + 1)

    def emit(dst, src):
        nonlocal n
        rows[n] = 0
        rows[n, OP], rows[n, ARGS.start], rows[n, KINDS.start] = move, src[1], src[0]
        rows[n, KINDS.start + 1:KINDS.stop] = SCALAR_ARG
        rows[n, DST_T], rows[n, DST_S] = dst, s_scratch
        n += 1

    pending = [k for j, k in STATE_OUTS if outs[j] != (T, k)]  # slots moves write
    free = list(temps)
    for j, (kind, r) in enumerate(outs):  # read at the end but overwritten first, or scalar
        if (kind == T and r in pending) or (j == 0 and kind != T):
            t = free.pop(0)
            emit(t, outs[j])
            outs[j] = (T, t)
    for j, k in STATE_OUTS:
        if k in pending:
            emit(k, outs[j])
    return n, outs[0][1]


def encoded_form(program: Program) -> Program:
    """What the interpreter runs: literals inlined, dead statements removed. Its length
    picks the bucket (:func:`bucket_for`)."""
    return strip_dead(inline_literals(program))


def bucket_for(n: int, buckets: Sequence[int]) -> int:
    """The smallest bucket length that holds ``n`` live statements."""
    for b in sorted(buckets):
        if n <= b:
            return b
    raise ValueError(f"program has {n} live statements; the largest bucket holds {max(buckets)}")

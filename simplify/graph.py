"""The expression DAG behind the exact passes (:mod:`optevo.simplify.exact` documents the
rules and what "the same" means): hash-consed nodes, local rewrite rules applied as nodes are
built, liveness across steps, and writing the DAG back as statements.

Per-op facts come from the op's row (``dsl/ops.py``): ``commutative`` (hash-consing sorts the
arguments), ``fold`` (constant folding, with the float32 rounding checks of
:mod:`optevo.simplify.fold`), ``units`` (``x * 1``, ``x + 0``, ...),
``involution`` (``-(-x)``), ``idempotent`` (``sign(sign(x))``, ``max(x, x)``), ``absorbs``
(``abs(-x)``, ``sqrt(|x|)``) and ``pyfloat`` (which nodes the reference executor holds as
Python doubles); a literal ``name = c`` is its constant. Only the structural rewrites are
written here: the sign rule (``x / sqrt(x * x)``), ``interp(x, x, a) -> x`` and merging
interps (all three not strict). Every walk over the
DAG iterates (an explicit stack, or post-order): a program of ``search.max_length``
statements may be one chain that deep."""

from __future__ import annotations

import math
from typing import Dict, List, Optional, Tuple

import numpy as np

from optevo.dsl.ops import LITERAL, LITERAL_OP, OPS
from optevo.dsl.program import INPUT_BIT, INPUTS, STATE, Program, Stmt, check, format_const

from .fold import f32, fold, unit  # noqa: F401 (f32: part of this module's interface)

IN, CONST = "in", "const"  # node kinds of inputs and constants (not ops)
_BIT = INPUT_BIT  # the read-mask bit of each input


class Graph:
    """An expression DAG with hash-consing; :meth:`make` applies the local rewrite rules.

    Node ``n`` is ``ops[n]`` applied to ``args[n]`` (node ids); inputs are ``("in", name)``
    and constants ``("const", value)``. ``log`` (a list or None) receives one line per rule
    applied."""

    def __init__(self, strict: bool = False, log: Optional[List[str]] = None):
        self.strict = strict
        self.log = log
        self.ops: List[str] = []
        self.args: List[tuple] = []
        self.label: Dict[int, str] = {}
        self._key: Dict[tuple, int] = {}
        self.inputs = {n: self._intern(IN, (n,)) for n in INPUTS}
        for n in INPUTS:
            self.label[self.inputs[n]] = n
        self.outputs: List[int] = []
        self.map: Dict[int, int] = {}  # old -> new ids after copy()
        self._py: Dict[int, bool] = {}
        self.folded: Dict[int, tuple] = {}  # a folded double constant -> (op, args) it was

    # --- building ---------------------------------------------------------------------------
    def _intern(self, op: str, args: tuple, folded: Optional[tuple] = None) -> int:
        if op == CONST:
            c = args[0]
            key = (CONST, type(c).__name__, c.hex() if type(c) is float else repr(c))
            if folded:  # a folded double is not the literal of the same value: see make()
                key += ("folded",)
        elif op != IN and OPS[op].commutative:
            key = (op,) + tuple(sorted(args))
        else:
            key = (op,) + tuple(args)
        n = self._key.get(key)
        if n is None:
            n = len(self.ops)
            self.ops.append(op)
            self.args.append(tuple(args))
            self._key[key] = n
            if folded:
                self.folded[n] = folded
        return n

    def const(self, c) -> int:
        return self._intern(CONST, (c,))

    def value(self, n):
        """The constant held by node ``n``, or None if it is not a constant."""
        return self.args[n][0] if self.ops[n] == CONST else None

    def pyfloat(self, n: int) -> bool:
        """Whether the reference executor holds node ``n`` as a Python float: a constant, or
        an op whose row says ``pyfloat`` (``+ - * /``, ``interp``, ``reciprocal``, ``cube``,
        ``dot``: plain Python arithmetic, in double) of Python floats; everything else goes
        through jnp as float32."""
        py, stack = self._py, [n]  # children first, without recursion (long programs)
        while stack:
            x = stack[-1]
            if x in py:
                stack.pop()
                continue
            op = self.ops[x]
            kids = [] if op in (IN, CONST) else [y for y in self.args[x] if y not in py]
            if kids:
                stack.extend(kids)
                continue
            stack.pop()
            py[x] = op == CONST or op != IN and OPS[op].pyfloat and all(
                py[y] for y in self.args[x])
        return py[n]

    def make(self, op: str, args, label: Optional[str] = None) -> int:
        args = tuple(args)
        if op == "interp" and args[2] in self.folded:
            # interp's weight: the interpreter rounds a literal's 1 - a in double, a computed
            # weight's in float32 -- alike for a float32 weight only, so a folded double
            # stays the statement it was there (and only there)
            args = args[:2] + (self._intern(*self.folded[args[2]]),)
        n = self._rules(op, args)
        if n is None:
            n = self._intern(op, args)
        if label and n not in self.label:
            self.label[n] = label
        return n

    def _did(self, rule: str, op: str, args, n: int) -> int:
        if self.log is not None:
            self.log.append(f"{rule}: {self._fmt(op, args, 2)} -> {self.text(n)}")
        return n

    def _rules(self, op: str, a: tuple) -> Optional[int]:
        spec = OPS[op]
        if spec.rule == LITERAL:  # `name = c` holds the constant itself
            return a[0]
        c = [self.value(x) for x in a]
        fl = [type(x) is float for x in c]
        if a and all(fl):
            r = fold(spec, c)
            if r is not None:
                n = self.const(r) if f32(r) == r else self._intern(CONST, (r,), (op, a))
                return self._did("fold constants", op, a, n)
        sym = spec.infix or op
        if len(a) == 2:  # f(x, u) = x for a unit u; the other side too if commutative
            for i in ((1, 0) if spec.commutative else (1,)):
                u = unit(spec, c[i])
                x = a[1 - i]
                if u is not None and (u.strict or not self.strict) and \
                        (u.double or not self.pyfloat(x)):
                    return self._did(f"x {sym} {format_const(u.value)}", op, a, x)
        # a rewrite to an existing node x must not turn a float32 result into x's double
        kept = (lambda x: spec.pyfloat or not self.pyfloat(x))
        if len(a) == 2 and spec.idempotent and a[0] == a[1] and kept(a[0]):
            return self._did(f"{op}(x, x)", op, a, a[0])
        if len(a) == 1 and self.ops[a[0]] == op:
            inner = self.args[a[0]][0]
            if spec.involution and kept(inner):
                return self._did(f"{op}({op}(x))", op, a, inner)
            if spec.idempotent:
                return self._did(f"{op}({op}(x))", op, a, a[0])
        if len(a) == 1 and self.ops[a[0]] in spec.absorbs:
            inner = self.args[a[0]][0]
            if not (spec.pyfloat and self.pyfloat(inner)):
                return self._did(f"{op}({self.ops[a[0]]}(x))", op, a, self.make(op, (inner,)))
        if self.strict:
            return None
        if op == "div":
            return self._sign_rule(a)
        if op == "interp" and a[0] == a[1]:  # (1 - a) x + a x
            return self._did("interp(x, x, a) (equal up to rounding)", op, a, a[0])
        if op == "interp" and fl[2]:
            return self._interp_rule(a, c[2])
        return None

    def _abs_of(self, d: int) -> Optional[int]:
        """``x`` if node ``d`` is ``abs(x)``, ``sqrt(x * x)`` or ``sqrt(square(x))``."""
        if self.ops[d] == "abs":
            return self.args[d][0]
        if self.ops[d] == "sqrt":
            y = self.args[d][0]
            if self.ops[y] == "square":
                return self.args[y][0]
            if self.ops[y] == "mul" and self.args[y][0] == self.args[y][1]:
                return self.args[y][0]
        return None

    def _sign_rule(self, a) -> Optional[int]:
        num, den = a
        x = self._abs_of(den)
        if x is None or self.ops[x] == CONST:
            return None
        rule = "sign (equal up to the 1e-8 of safe division)"
        if num == x:
            return self._did(rule, "div", a, self.make("sign", (x,)))
        if self.ops[num] == "mul" and x in self.args[num]:
            p, q = self.args[num]
            y = q if p == x else p
            return self._did(rule, "div", a, self.make("mul", (self.make("sign", (x,)), y)))
        return None

    def _interp_rule(self, a, c2: float) -> Optional[int]:
        x, y, _ = a
        rule = "merge interp (equal up to rounding)"
        if self.ops[y] == "interp" and self.args[y][0] == x:
            c1 = self.value(self.args[y][2])
            if type(c1) is float:
                w = self.const(f32(c1 * c2))
                return self._did(rule, "interp", a, self.make("interp", (x, self.args[y][1], w)))
        if self.ops[x] == "interp" and self.args[x][1] == y:
            c1 = self.value(self.args[x][2])
            if type(c1) is float:
                w = self.const(f32(1.0 - (1.0 - c1) * (1.0 - c2)))
                return self._did(rule, "interp", a, self.make("interp", (self.args[x][0], y, w)))
        return None

    # --- reading ----------------------------------------------------------------------------
    def text(self, n: int, depth: int = 2) -> str:
        """``n`` as an expression, nodes below ``depth`` shown by their original names."""
        op = self.ops[n]
        if op == IN:
            return self.args[n][0]
        if op == CONST:
            return format_const(self.args[n][0])
        if depth <= 0 and n in self.label:
            return self.label[n]
        if depth <= -3:
            return "..."
        return self._fmt(op, self.args[n], depth)

    def _fmt(self, op: str, args, depth: int) -> str:
        parts = []
        for x in args:
            s = self.text(x, depth - 1)
            if OPS[op].infix and self.ops[x] in OPS and OPS[self.ops[x]].infix \
                    and s != self.label.get(x):
                s = f"({s})"
            parts.append(s)
        if OPS[op].infix:
            return f"{parts[0]} {OPS[op].infix} {parts[1]}"
        return f"{op}({', '.join(parts)})"

    def postorder(self, roots) -> List[int]:
        """Every node reachable from ``roots``, children before parents (iterative DFS)."""
        seen, order = set(), []
        for root in roots:
            stack = [(root, False)]
            while stack:
                n, done = stack.pop()
                if done:
                    order.append(n)
                    continue
                if n in seen:
                    continue
                seen.add(n)
                stack.append((n, True))
                stack.extend((x, False) for x in reversed(self.args[n])
                             if self.ops[n] not in (IN, CONST) and x not in seen)
        return order

    def roots(self) -> List[Tuple[int, str]]:
        """``(node, slot)`` for the update and each live state slot (liveness across steps)."""
        reads: Dict[int, int] = {}
        for n in self.postorder(self.outputs):
            if self.ops[n] == IN:
                reads[n] = _BIT[self.args[n][0]]
            elif self.ops[n] == CONST:
                reads[n] = 0
            else:
                reads[n] = 0
                for x in self.args[n]:
                    reads[n] |= reads[x]
        live = reads[self.outputs[0]]
        while True:
            new = live
            for i, s in enumerate(STATE):
                if live & _BIT[s]:
                    new |= reads[self.outputs[1 + i]]
            if new == live:
                break
            live = new
        return [(self.outputs[0], "update")] + [
            (self.outputs[1 + i], s) for i, s in enumerate(STATE) if live & _BIT[s]]

    def live_ops(self) -> List[int]:
        return [n for n in self.postorder([r for r, _ in self.roots()])
                if self.ops[n] not in (IN, CONST)]

    def uses(self) -> Dict[int, int]:
        """How many times each live node is read (an argument slot or a returned slot)."""
        count: Dict[int, int] = {}
        for n in self.live_ops():
            for x in self.args[n]:
                count[x] = count.get(x, 0) + 1
        for r, _ in self.roots():
            count[r] = count.get(r, 0) + 1
        return count

    def cost(self) -> int:
        """Statements :meth:`to_program` writes."""
        return len(self.live_ops()) + sum(1 for r, _ in self.roots() if self.ops[r] == CONST)

    # --- writing ----------------------------------------------------------------------------
    def to_program(self) -> Program:
        """Live statements in post-order from update, then the live new ``m``, ``v``;
        outputs named after their slot unless that would clobber an input still needed."""
        roots = self.roots()
        order = self.live_ops()
        pos = {n: i for i, n in enumerate(order)}
        last: Dict[str, float] = {}
        for i, n in enumerate(order):
            for x in self.args[n]:
                if self.ops[x] == IN:
                    last[self.args[x][0]] = i
        for r, _ in roots:
            if self.ops[r] == IN:
                last[self.args[r][0]] = math.inf
        names: Dict[int, str] = {}
        for r, s in roots:
            if r in pos and r not in names and last.get(s, -1) <= pos[r]:
                names[r] = s
        stmts, k = [], 0

        def fresh():
            nonlocal k
            k += 1
            return f"t{k - 1}"

        def arg(x):
            return self.args[x][0] if self.ops[x] in (IN, CONST) else names[x]

        for n in order:
            if n not in names:
                names[n] = fresh()
            stmts.append(Stmt(names[n], self.ops[n], tuple(arg(x) for x in self.args[n])))
        for r, s in roots:  # a constant output: a literal statement `update = 0.25`
            if self.ops[r] == CONST and r not in names:
                names[r] = s if s == "update" or last.get(s, -1) < math.inf else fresh()
                stmts.append(Stmt(names[r], LITERAL_OP, (self.args[r][0],)))
        live = dict((s, r) for r, s in roots)
        ret = (lambda x: names[x] if x in names else arg(x))
        returns = tuple(ret(live[s]) if s in live else s for s in ("update",) + STATE)
        return Program(tuple(stmts), returns)

    @classmethod
    def from_program(cls, program: Program, strict=False, log=None) -> "Graph":
        check(program)
        g = cls(strict, log)
        env = dict(g.inputs)
        for s in program.stmts:
            args = [env[a] if isinstance(a, str) else g.const(a) for a in s.args]
            env[s.target] = g.make(s.op, args, label=s.target)
        g.outputs = [env[r] for r in program.returns]
        return g

    def copy(self, override: Optional[Dict[int, object]] = None, log="same") -> "Graph":
        """Rebuild the live graph through :meth:`make` (so rules apply again), replacing node
        ``n`` by ``override[n]``: an old node id, ``("const", c)`` or ``(op, expr, ...)``
        over old nodes below ``n``. Dead state slots return their inputs."""
        override = override or {}
        new = Graph(self.strict, self.log if log == "same" else log)
        roots = self.roots()
        mp = new.map

        def build(e):  # an override expression, innermost first (it may be a long chain)
            stack, done = [(e, False)], []
            while stack:
                x, ready = stack.pop()
                if isinstance(x, (int, np.integer)):
                    done.append(mp[int(x)])
                elif x[0] == CONST:
                    done.append(new.const(x[1]))
                elif ready:
                    k = len(x) - 1
                    args = done[len(done) - k:]
                    del done[len(done) - k:]
                    done.append(new.make(x[0], args))
                else:
                    stack.append((x, True))
                    stack.extend((y, False) for y in reversed(x[1:]))
            return done[0]

        for n in self.postorder([r for r, _ in roots]):
            if n in override:
                mp[n] = build(override[n])
            elif self.ops[n] == IN:
                mp[n] = new.inputs[self.args[n][0]]
            elif self.ops[n] == CONST:
                mp[n] = new.const(self.args[n][0])
            else:
                mp[n] = new.make(self.ops[n], [mp[x] for x in self.args[n]], self.label.get(n))
        live = dict((s, r) for r, s in roots)
        new.outputs = [mp[live[s]] if s in live else new.inputs[s] for s in ("update",) + STATE]
        return new

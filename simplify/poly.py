"""Polynomials over the atoms of an expression DAG (:class:`~optevo.simplify.graph.Graph`),
as :mod:`optevo.simplify.lion_k` reads a program.

:class:`Reader` expands a node into a :data:`Poly`: ``+ - *``, ``negative``, division by a
constant (the safe division: ``x / (c + 1e-8)``) and ``interp`` with a constant weight are
expanded; any other node is an atom (a monomial of its own id). A product that would expand
to more than :data:`MAX_TERMS` terms, or to a monomial of more than :data:`MAX_DEGREE`
factors, stays one atom too. Coefficients are Python floats; zero terms are dropped.
"""

from __future__ import annotations

from typing import Dict, Tuple

from .graph import CONST, IN, Graph

MAX_TERMS = 32  # a product that expands to more terms stays one atom
MAX_DEGREE = 32  # ... as does one with a monomial of more factors (x_k = x_{k-1} ** 2 chains)
_EXPANDED = ("add", "sub", "negative", "mul", "div", "interp")  # ops whose arguments it reads

Poly = Dict[Tuple[int, ...], float]  # monomial (sorted atom ids) -> coefficient


def _add(a: Poly, b: Poly, sign: float = 1.0) -> Poly:
    out = dict(a)
    for k, c in b.items():
        out[k] = out.get(k, 0.0) + sign * c
    return {k: c for k, c in out.items() if c != 0.0}


def _mul(a: Poly, b: Poly) -> Poly:
    out: Poly = {}
    for ka, ca in a.items():
        for kb, cb in b.items():
            k = tuple(sorted(ka + kb))
            out[k] = out.get(k, 0.0) + ca * cb
    return {k: c for k, c in out.items() if c != 0.0}


def _scale(a: Poly, c: float) -> Poly:
    return {k: v * c for k, v in a.items() if v * c != 0.0}


class Reader:
    """Expands nodes of a :class:`Graph` into polynomials (memoised)."""

    def __init__(self, g: Graph):
        self.g = g
        self.memo: Dict[int, Poly] = {}

    def poly(self, n: int) -> Poly:
        """Node ``n`` expanded; the nodes it expands are read first with an explicit stack
        (no recursion: a chain may be as long as the program)."""
        stack = [n]
        while stack:
            x = stack[-1]
            todo = [y for y in self.g.args[x] if y not in self.memo] \
                if self.g.ops[x] in _EXPANDED else []
            if todo:
                stack.extend(todo)
                continue
            stack.pop()
            if x not in self.memo:
                self.memo[x] = self._poly(x)
        return self.memo[n]

    def _poly(self, n: int) -> Poly:
        g, op, a, p = self.g, self.g.ops[n], self.g.args[n], self.memo
        if op == CONST:
            return {(): float(a[0])} if a[0] != 0 else {}
        cs = [g.value(x) for x in a] if op not in (IN, CONST) else []
        if op in ("add", "sub"):
            return _add(p[a[0]], p[a[1]], 1.0 if op == "add" else -1.0)
        if op == "negative":
            return _scale(p[a[0]], -1.0)
        if op == "mul":
            out = _mul(p[a[0]], p[a[1]])
            if len(out) <= MAX_TERMS and all(len(k) <= MAX_DEGREE for k in out):
                return out
        if op == "div" and type(cs[1]) is float and cs[1] != 0:  # safe division: x / (c + 1e-8)
            return _scale(p[a[0]], 1.0 / (cs[1] + 1e-8))
        if op == "interp" and type(cs[2]) is float:
            return _add(_scale(p[a[0]], 1.0 - cs[2]), _scale(p[a[1]], cs[2]))
        return {(n,): 1.0}

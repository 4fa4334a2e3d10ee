"""Recognise a Lion-K program and say what it solves (``optevo analyze``).

Lion-K (Chen, Liang, Liu, Liu 2023, "Lion Secretly Solves Constrained Optimization: As
Lyapunov Predicts", arXiv 2310.05898) is Lion with ``sign`` replaced by the (sub)gradient of
a convex ``K``::

    c = interp(g, m, b1);  w <- w - eps * (grad K(c) + lambda * w);  m <- interp(g, m, b2)

It minimises ``f(w) + (1/lambda) K*(lambda w)`` (``K*`` the convex conjugate): a ``K`` whose
conjugate is an indicator gives a constraint (``K = |x|_1``: Lion, ``|w|_inf <= 1/lambda``),
a finite ``K*`` a regulariser (``K = |x|^2 / 2``: momentum with weight decay). Muon with
decoupled weight decay is the member with ``K`` the nuclear norm (``||W||_op <= 1/lambda``).

:func:`recognize` reads the program after the exact simplification
(``simplify.exact``) as polynomials in its atoms (``simplify.poly``): ``+ - *``,
``negative``, division by a constant and ``interp`` with a constant weight are expanded; any
other node is an atom. It accepts the shape

* update ``= s * lr * (phi(c) + lambda * w)``, any arrangement of the products (``lr``
  optional: a constant step), ``phi`` from :data:`MEMBERS`, ``lambda >= 0``;
* ``c = a G + b M``, ``a, b >= 0``: a positive multiple of ``interp(G, m_hat, b1)``;
* one live state slot (``m`` or ``v``), ``M' = alpha G + beta M``, ``0 <= beta < 1``,
  ``alpha > 0``: ``M = kappa m_hat`` with ``m_hat = interp(G, m_hat, b2)``, ``b2 = beta``,
  ``kappa = alpha / (1 - beta)`` (optax.sgd's trace ``g + 0.9 m`` is ``10 m_hat``). With no
  state ``c = G`` (``b1 = 0``);
* ``G`` the gradient, or an odd increasing elementwise map of it (:data:`GRADIENT_MAPS`,
  e.g. ``arcsin(clip(g, lr))`` in the paper's raw search output): Lion-K on that gradient,
  reported as such.

Anything else raises :class:`NotLionK`, one line naming the part that differs. Scale factors
inside ``phi`` are normalised away (``sign(a c) = sign(c)``; ``clip(a c, d) = d clip(k c, 1)``
with ``k = a / d``), so ``s`` and ``lambda`` are those of ``grad K`` as :data:`MEMBERS` writes
it.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, Dict, Optional

import jax.numpy as jnp

from optevo.dsl.errors import OptevoError
from optevo.dsl.matrix_ops import matrix_view
from optevo.dsl.program import Program, Stmt, check

from .exact import simplify_exact
from .graph import CONST, IN, Graph
from .poly import MAX_DEGREE, MAX_TERMS, Poly, Reader  # noqa: F401 (MAX_*: re-exported)

GRADIENT_MAPS = ("clip", "arcsin", "arctan", "tanh", "arcsinh", "sinh", "cbrt")


class NotLionK(OptevoError, ValueError):
    """The program is not of the Lion-K shape (one line: what differs)."""

    def __str__(self):
        return f"not a Lion-K program: {self.args[0]}"


@dataclasses.dataclass(frozen=True)
class Member:
    """One K of the table: its name, formulas, and the quantity its constraint bounds."""

    key: str
    label: str  # how K is named in reports ("L1", "nuclear norm", ...)
    optimizer: str
    K: str
    grad: str
    K_star: str
    implied: str  # the problem, with {lam} and {bound}
    quantity: str  # what lambda * quantity <= 1 bounds (text)
    measure: Callable  # params leaves -> the quantity (jnp scalar)
    constraint: bool = True  # False: K* is finite, a regulariser (no bound)


def _inf_norm(leaves):
    return jnp.max(jnp.stack([jnp.max(jnp.abs(x)) for x in leaves]))


def _l2(leaves):
    return jnp.sqrt(sum(jnp.sum(jnp.square(x)) for x in leaves))


def _leaf_l2(leaves):
    return jnp.max(jnp.stack([jnp.sqrt(jnp.sum(jnp.square(x))) for x in leaves]))


def _spectral(leaves):
    """The largest spectral norm of a leaf's matrix view (a vector as diag: its |x|_inf)."""
    out = []
    for x in leaves:
        if x.ndim < 2:
            out.append(jnp.max(jnp.abs(x)))
        else:
            out.append(jnp.linalg.norm(x.reshape(matrix_view(x.shape)), ord=2))
    return jnp.max(jnp.stack(out))


MEMBERS: Dict[str, Member] = {m.key: m for m in (
    Member("L1", "L1", "Lion", "||x||_1", "sign(x)", "0 if ||y||_inf <= 1, else +inf",
           "minimise f(w) subject to ||w||_inf <= 1/lambda = {bound}", "||w||_inf",
           _inf_norm),
    Member("half_sq_L2", "half squared L2", "momentum with weight decay", "||x||_2^2 / 2", "x",
           "||y||_2^2 / 2", "minimise f(w) + (lambda/2) ||w||_2^2 with lambda = {lam} "
           "(an L2 regulariser: no constraint)", "||w||_2", _l2, constraint=False),
    Member("L2_leaf", "L2 (per leaf)", "normalised momentum (per leaf)",
           "sum over leaves of ||x_leaf||_2",
           "x_leaf / ||x_leaf||_2", "0 if every ||y_leaf||_2 <= 1, else +inf",
           "minimise f(w) subject to ||w_leaf||_2 <= 1/lambda = {bound} for every leaf",
           "max over leaves of ||w_leaf||_2", _leaf_l2),
    Member("L2", "L2", "normalised momentum", "||x||_2 (all parameters)", "x / ||x||_2",
           "0 if ||y||_2 <= 1, else +inf",
           "minimise f(w) subject to ||w||_2 <= 1/lambda = {bound}", "||w||_2", _l2),
    Member("huber", "Huber", "Huber-Lion (clipped sign)",
           "sum_i h(x_i), h(x) = k x^2/2 for |x| <= 1/k, |x| - 1/(2k) beyond (k = {k})",
           "clip(k x, -1, 1)", "||y||_2^2 / (2k) if ||y||_inf <= 1, else +inf",
           "minimise f(w) + lambda/(2k) ||w||_2^2 subject to ||w||_inf <= 1/lambda = {bound}",
           "||w||_inf", _inf_norm),
    Member("nuclear", "nuclear norm", "Muon",
           "sum over matrix leaves of ||X||_* (singular values summed; a vector as diag(x): "
           "||x||_1)", "U V^T (X = U S V^T; orthogonalize: 5 "
           "Newton-Schulz steps, singular values ~0.7-1.2)",
           "0 if ||Y||_op <= 1, else +inf",
           "minimise f(W) subject to ||W||_op <= 1/lambda = {bound} for every leaf "
           "(approximately: Newton-Schulz is not the exact polar factor)",
           "max over leaves of ||W||_op", _spectral),
)}


@dataclasses.dataclass(frozen=True)
class LionK:
    """A recognised Lion-K program: ``update = scale * lr * (grad K(c) + lam * w)``,
    ``c = interp(G, m_hat, b1)``, ``m_hat = interp(G, m_hat, b2)``."""

    member: Member
    b1: float
    b2: Optional[float]  # None: no state (c = G)
    lam: float
    scale: float
    uses_lr: bool
    gradient: str  # "g", or the map of g the program feeds in
    slot: Optional[str]  # the state slot holding the momentum
    k: Optional[float]  # Huber: the slope of grad K at 0
    program: Program  # the simplified program

    @property
    def bound(self) -> float:
        return math.inf if self.lam == 0 else 1.0 / self.lam

    def lines(self):
        """The report: K, K*, the update, the implied problem (a list of lines)."""
        m = self.member
        k = f"{self.k:.4g}" if self.k else ""
        lr = "lr * " if self.uses_lr else ""
        st = (f"{self.slot} = interp(G, {self.slot}, {self.b2:.4g})" if self.slot
              else "no state (c = G)")
        ms = self.slot or "m"
        out = [f"Lion-K program: {m.optimizer}, K = {m.label}",
               f"  K(x)   = {m.K.format(k=k)}",
               f"  grad K = {m.grad}",
               f"  K*(y)  = {m.K_star}",
               f"  update = {self.scale:.4g} * {lr}(grad K(c) + {self.lam:.4g} * w), "
               f"c = interp(G, {ms}, {self.b1:.4g}); {st}",
               f"  G      = {self.gradient}" + ("" if self.gradient == "g" else
                                                "  (an odd, increasing map of g: Lion-K on "
                                                "that gradient)")]
        if self.lam == 0:
            out.append("  implied: lambda = 0 (no weight decay): minimise f(w), no constraint")
        else:
            out.append("  implied: " + m.implied.format(lam=f"{self.lam:.4g}",
                                                       bound=f"{self.bound:.4g}"))
        return out

    def with_weight_decay(self, lam: float) -> Program:
        """The program with ``lambda`` replaced by ``lam``: its update plus
        ``scale * lr * (lam - lambda) * w`` (equal up to rounding; the state is kept)."""
        p = self.program
        stmts = [Stmt("lk_dw", "mul", ("w", (float(lam) - self.lam) * self.scale))]
        if self.uses_lr:
            stmts.append(Stmt("lk_dw", "mul", ("lk_dw", "lr")))
        stmts.append(Stmt("lk_update", "add", (p.returns[0], "lk_dw")))
        out = p.replace(stmts=p.stmts + tuple(stmts), returns=("lk_update",) + p.returns[1:])
        check(out)
        return out


# --- reading the graph ---------------------------------------------------------------------

def _linear(p: Poly, what: str) -> Dict[int, float]:
    """``p`` as ``{atom: coefficient}``; NotLionK if it has a constant or a product."""
    out = {}
    for k, c in p.items():
        if len(k) != 1:
            raise NotLionK(f"{what} is not linear in the gradient and the state")
        out[k[0]] = c
    return out


def _gradient_term(g: Graph, n: int) -> Optional[str]:
    """The text of ``n`` if it is ``g`` or an odd increasing elementwise map of it."""
    x = n
    while g.ops[x] != IN:
        if g.ops[x] not in GRADIENT_MAPS:
            return None
        if g.ops[x] == "clip":
            lim = g.args[x][1]
            if not (g.ops[lim] == CONST and g.value(lim) != 0 or
                    g.ops[lim] == IN and g.args[lim][0] == "lr"):
                return None
        x = g.args[x][0]
    return g.text(n, 6) if g.args[x][0] == "g" else None


# --- recognition -------------------------------------------------------------------------------

def recognize(program: Program) -> LionK:
    """The Lion-K reading of ``program`` (exactly simplified first); raises :class:`NotLionK`
    with what differs. See the module docstring for the accepted shape."""
    simple = simplify_exact(program)
    g = Graph.from_program(simple, strict=True)
    rd = Reader(g)
    roots = g.roots()
    upd = roots[0][0]
    slots = [(n, s) for n, s in roots[1:]]
    if len(slots) > 1:
        raise NotLionK("two live state slots (m and v): Lion-K keeps one momentum")
    lr_id, w_id = g.inputs["lr"], g.inputs["w"]

    # the update: s * lr^p * (phi + lam w)
    terms: Dict[int, float] = {}
    powers = set()
    for mono, c in rd.poly(upd).items():
        rest = [x for x in mono if x != lr_id]
        powers.add(len(mono) - len(rest))
        if len(rest) != 1:
            what = "a constant" if not rest else " * ".join(g.text(x, 1) for x in rest)
            raise NotLionK(f"the update has a term {what} (expected phi(c) and w, each "
                           f"times a scaled lr)")
        terms[rest[0]] = terms.get(rest[0], 0.0) + c
    if len(powers) > 1 or powers - {0, 1}:
        raise NotLionK("the update's terms are not all scaled by the same lr")
    uses_lr = powers == {1}
    w_coef = terms.pop(w_id, 0.0)

    # the state: M' = alpha G + beta M
    slot, grad_atom, kappa, b2 = None, None, 1.0, None
    if slots:
        n_state, slot = slots[0]
        m_id = g.inputs[slot]
        lin = _linear(rd.poly(n_state), f"the new {slot} = {g.text(n_state, 2)}")
        beta = lin.pop(m_id, 0.0)
        if len(lin) != 1:
            raise NotLionK(f"the new {slot} = {g.text(n_state, 2)} is not an average of "
                           f"one gradient term and {slot}")
        grad_atom, alpha = next(iter(lin.items()))
        if not (0.0 <= beta < 1.0 and alpha > 0.0):
            raise NotLionK(f"the new {slot} = {g.text(n_state, 2)} is not an average "
                           f"(needs {slot}' = a G + b {slot}, a > 0, 0 <= b < 1)")
        kappa, b2 = alpha / (1.0 - beta), beta
    else:
        m_id = None

    # the direction: phi(c), or c itself
    if not slots and len(terms) == 1 and _gradient_term(g, next(iter(terms))) is not None:
        grad_atom = next(iter(terms))  # no state: update = s lr (G + lam w)
    atoms = set(terms) - {grad_atom, m_id}
    if len(atoms) > 1 or (atoms and set(terms) & {grad_atom, m_id} - {None}):
        raise NotLionK("the update's direction has several parts: "
                       + " + ".join(g.text(x, 1) for x in terms))
    if not terms:
        raise NotLionK("the update has no direction (only the weight decay)")
    if atoms:
        phi = atoms.pop()
        coef = terms[phi]
        member, inner, factor, k = _phi(g, rd, phi)
    else:  # identity: c = terms over G and M
        member, inner, factor, k = MEMBERS["half_sq_L2"], terms, 1.0, None
        coef = 1.0
    # inner: c = a G + b M = sigma * interp(G, m_hat, b1)
    a_g = inner.get(grad_atom, 0.0) if grad_atom is not None else 0.0
    if grad_atom is None:  # no state: the gradient term is whatever c reads
        others = [x for x in inner if x != m_id]
        if len(others) != 1:
            raise NotLionK("c reads no gradient term")
        grad_atom = others[0]
        a_g = inner[grad_atom]
    b_m = inner.get(m_id, 0.0) * kappa if m_id is not None else 0.0
    if set(inner) - {grad_atom, m_id}:
        raise NotLionK("c reads more than the gradient term and the state: "
                       + " + ".join(g.text(x, 1) for x in inner))
    gtext = _gradient_term(g, grad_atom)
    if gtext is None:
        raise NotLionK(f"the gradient enters as {g.text(grad_atom, 2)}, not g or an odd "
                       f"increasing map of g ({', '.join(GRADIENT_MAPS)})")
    sigma = a_g + b_m
    if a_g < 0 or b_m < 0 or sigma <= 0:
        raise NotLionK("c is not a positive average of the gradient and the momentum")
    if member.key == "half_sq_L2":
        scale = sigma
    elif member.key == "huber":
        k = sigma * k  # clip(a c', d) with c' = sigma c_hat: k = a sigma / d
        scale = coef * factor
    else:
        scale = coef * factor
    if scale <= 0:
        raise NotLionK(f"the update moves along +{member.grad} (a negative step size)")
    lam = w_coef / scale
    if lam < 0:
        raise NotLionK(f"the weight term grows the weights (lambda = {lam:.4g} < 0)")
    return LionK(member, b_m / sigma, b2, lam, scale, uses_lr, gtext, slot, k, simple)


def _phi(g: Graph, rd: Reader, n: int):
    """(member, linear form of c, factor, k) for the direction node ``n``: ``phi(c) =
    factor * grad K(c_hat)``; NotLionK if ``n`` is not a known gradient of K."""
    op, a = g.ops[n], g.args[n]
    known = ("not the gradient of a known K (sign, identity, x / norm(x), clip, "
             "orthogonalize)")
    if op == "sign" or op == "orthogonalize":
        return MEMBERS["L1" if op == "sign" else "nuclear"], \
            _linear(rd.poly(a[0]), f"c = {g.text(a[0], 2)}"), 1.0, None
    if op == "div" and g.ops[a[1]] in ("norm", "global_norm"):
        c, d = _linear(rd.poly(a[0]), "c"), _linear(rd.poly(g.args[a[1]][0]), "the norm's c")
        ratios = {x: d.get(x, 0.0) / v for x, v in c.items()}
        r = next(iter(ratios.values()))
        if set(c) != set(d) or r <= 0 or any(not math.isclose(q, r, rel_tol=1e-6)
                                             for q in ratios.values()):
            raise NotLionK(f"the update's direction {g.text(n, 2)} divides c by the norm "
                           f"of something else")
        key = "L2_leaf" if g.ops[a[1]] == "norm" else "L2"
        return MEMBERS[key], c, 1.0 / r, None
    if op == "clip" and g.ops[a[1]] == CONST and g.value(a[1]) != 0:
        d = abs(g.value(a[1]))
        return MEMBERS["huber"], _linear(rd.poly(a[0]), "c"), d, 1.0 / d
    raise NotLionK(f"the update's direction {g.text(n, 2)} is {known}")

"""Where a program decays its weights: the sites a tuner scales, and decoupled decay for a
program that has none.

A weight-decay term is ``c * f(w)``: a numeric constant ``c`` times the weights input ``w``
or an odd function of it (an op row with ``odd=True``: ``sinh``, ``tanh``, ``arctan``,
``sign``, ``cube``, ...; compositions too, and products with scalars such as ``lr``), whose
value reaches the update additively: through ``+`` and ``-``, negation, and multiplication
or division by scalars (the ``lr`` input, constants). Its *site* is the statement and
argument of ``c`` (a literal argument of ``mul``); scaling every site by ``k`` scales every
decay term by ``k`` and changes nothing else. A 90-minute search "discovered"
``sinh(w) * 0.958`` in place of AdamW's ``w * 0.01``; tuned on its decay, the start beat it:
an untuned constant is found by the search as the learning rate once was. So every tuner
(the search's calibration, the held-out re-check, the funnel, ``optevo eval --tune``) scales
the sites it finds here.

A program with no site gets decoupled decay as optax's ``adamw`` adds it, in the lr's units:
``update + lr * c * w`` with ``lr`` the input (schedule times tuned multiplier) and
``c = DECOUPLED`` (the AdamW start's ``0.01 * 0.001`` per unit of ``lr``), a site like any
other (:func:`with_decoupled_decay`); reports say when the decay was added.
"""

from __future__ import annotations

from typing import Dict, FrozenSet, List, Tuple

from .ops import OPS, SCALAR
from .program import Program, Stmt, check
from .liveness import update_mask
from .random import fresh_name

DECOUPLED = 1e-5  # the AdamW start's decay per unit of the lr input: 0.01 * 0.001
ADDED = 3  # statements with_decoupled_decay adds (engines size their buckets for them)
RATIO = 3.0  # the step between decay factors a tuner tries (search.core.tuning.WEIGHT_DECAY)
Site = Tuple[int, int]  # (statement index, argument index) of a decay constant

W, DECAY, HOLDS = "w", "decay", "holds"  # odd in w; a decay term; a sum that holds one


def decay_sites(program: Program) -> List[Site]:
    """The decay sites of ``program`` (see the module docstring), in statement order."""
    kinds = check(program)
    live = update_mask(program)
    # inputs: w; lr a scalar; g, m, v plain tensors (a statement a live one reads is live)
    env: Dict[str, Tuple[str, FrozenSet[Site]]] = {"w": (W, frozenset()),
                                                   "lr": (SCALAR, frozenset())}
    for i, (s, kind) in enumerate(zip(program.stmts, kinds)):
        tags = [("const", frozenset()) if not isinstance(a, str) else
                env.get(a, ("", frozenset())) for a in s.args]
        env[s.target] = _rule(s, i, tags, kind) if live[i] else ("", frozenset())
    tag, sites = env.get(program.returns[0], ("", frozenset()))
    return sorted(sites) if tag in (DECAY, HOLDS) else []


def _rule(s: Stmt, i: int, tags, kind: str):
    op = OPS[s.op]
    names = [t for t, _ in tags]
    sites = frozenset().union(*(x for _, x in tags)) if tags else frozenset()
    scalar = {SCALAR, "const"}
    if op.odd and len(tags) == 1 and names[0] in (W, DECAY, HOLDS):
        return (names[0], sites) if s.op == "negative" or names[0] == W else ("", frozenset())
    if s.op in ("mul", "div") and len(tags) == 2:
        a, b = names
        if s.op == "mul" and {a, b} == {W, "const"}:
            return DECAY, frozenset({(i, names.index("const"))})
        for x, y in ((a, b), (b, a)) if s.op == "mul" else ((a, b),):
            if x in (W, DECAY, HOLDS) and y in scalar:
                return x, sites
    if s.op in ("add", "sub") and any(n in (DECAY, HOLDS) for n in names):
        return HOLDS, sites
    return (SCALAR if kind == SCALAR else ""), frozenset()


def _at_sites(program: Program, new) -> Program:
    """``program`` with each decay constant ``c`` replaced by ``new(c)``."""
    stmts = list(program.stmts)
    for i, a in decay_sites(program):
        args = list(stmts[i].args)
        args[a] = new(float(args[a]))
        stmts[i] = Stmt(stmts[i].target, stmts[i].op, tuple(args), stmts[i].line)
    return program.replace(stmts=tuple(stmts))


def scale_decay(program: Program, factor: float) -> Program:
    """``program`` with every decay constant times ``factor`` (0: decay off)."""
    return _at_sites(program, lambda c: c * factor)


def set_decay(program: Program, value: float) -> Program:
    """``program`` with every decay constant set to ``value`` (a decay that is off, each
    constant 0, switched back on: no factor moves a 0)."""
    return _at_sites(program, lambda c: value)


def with_decoupled_decay(program: Program, c: float = DECOUPLED) -> Program:
    """``program`` plus ``lr * c * w`` added to its update (inputs read before anything is
    reassigned; the sum a new name, so a state returned under the update's name keeps its
    value), as optax's ``adamw`` adds decay; its one decay site is ``c``."""
    used = [s.target for s in program.stmts] + ["w", "g", "m", "v", "lr"]
    a = fresh_name(used)
    b = fresh_name(used + [a])
    out = fresh_name(used + [a, b])
    stmts = [Stmt(a, "mul", ("w", float(c))), Stmt(b, "mul", (a, "lr")), *program.stmts,
             Stmt(out, "add", (program.returns[0], b))]
    return program.replace(stmts=tuple(stmts), returns=(out, *program.returns[1:]))


def at_factor(program: Program, factor: float) -> Tuple[Program, bool]:
    """``program`` at decay factor ``factor`` as every tuner applies it: its sites scaled, or
    decoupled decay added and scaled where it has none, except that factor 0 of added decay
    is the program as it was; and whether decay was added."""
    p, added = tunable_decay(program)
    return (program if factor == 0 and added else scale_decay(p, factor)), added


def tunable_decay(program: Program) -> Tuple[Program, bool]:
    """``program`` ready for the decay axis: itself if it has a decay site, else with
    decoupled decay added (whose constant is then a site: checked); and whether it was
    added."""
    if decay_sites(program):
        return program, False
    return with_decoupled_decay(program), True

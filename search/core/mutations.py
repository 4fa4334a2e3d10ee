"""Mutations: an open registry of weighted program edits, and the retry loop around them.

The paper's four mutations (Chen et al. 2023, section 2): insert a random statement at a
random position; delete a statement; change one argument to another variable or a new
N(0, 1) constant; scale a constant by ``2^a``, ``a ~ N(0, 1)``. The return is never mutated.
:func:`mutate` retries until the child is valid, within the length limit, and computes
something different from its parent (its hash differs); every rejection is counted by
reason, as SymbolicRegression.jl does.

Register a new mutation with ``@register_mutation("name")``: a function
``(rng, program) -> Program`` that raises :class:`NoSite` when it cannot apply. Its default
sampling weight (``weight=``, stored in :data:`WEIGHTS`) is 0.0, i.e. a user mutation is OFF
until a config enables it (``search.mutations: {name: 1.0}``), so registering one never
changes what existing configs do; the four built-ins default to 1.0. The search config reads
the registry when a config is loaded, so register before loading it.
:func:`unregister_mutation` removes one again (e.g. in a test's teardown).
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Callable, Dict, Mapping, Optional

import numpy as np

from optevo.dsl.decay import RATIO, decay_sites, scale_decay, set_decay
from optevo.dsl.liveness import live_state, reads_lr, update_mask
from optevo.dsl.matrix_ops import set_searchable
from optevo.dsl.program import INPUTS, STATE, Program, ProgramError, Stmt, check
from optevo.dsl.random import (defined_before, fresh_name, random_const, random_statement,
                               searchable_ops)

MutationFn = Callable[[np.random.Generator, Program], Program]
MUTATIONS: Dict[str, MutationFn] = {}
WEIGHTS: Dict[str, float] = {}  # default sampling weight of each registered mutation


class NoSite(Exception):
    """The mutation has nowhere to apply (e.g. no constant to scale)."""


def register_mutation(name: str, weight: float = 0.0):
    """Decorator: register ``fn`` as mutation ``name`` with default sampling ``weight``."""
    if not (isinstance(weight, (int, float)) and weight >= 0):
        raise ValueError(f"mutation {name!r}: weight must be a number >= 0, got {weight!r}")

    def deco(fn: MutationFn) -> MutationFn:
        if name in MUTATIONS:
            raise ValueError(f"mutation {name!r} is already registered")
        MUTATIONS[name] = fn
        WEIGHTS[name] = float(weight)
        return fn
    return deco


def unregister_mutation(name: str) -> None:
    """Remove mutation ``name`` from the registry (KeyError if it is not registered)."""
    del MUTATIONS[name]
    del WEIGHTS[name]


def default_weights() -> Dict[str, float]:
    """The default sampling weight of every registered mutation, in registration order."""
    return dict(WEIGHTS)


def _with_stmt(program: Program, i: int, stmt: Optional[Stmt]) -> Program:
    stmts = list(program.stmts)
    if stmt is None:
        del stmts[i]
    else:
        stmts[i] = stmt
    return program.replace(stmts=stmts)


@register_mutation("insert", weight=1.0)
def insert(rng, program):
    """Insert a random statement at a random position (reading variables defined there)."""
    i = int(rng.integers(len(program.stmts) + 1))
    stmt = random_statement(rng, defined_before(program, i))
    stmts = list(program.stmts)
    stmts.insert(i, stmt)
    return program.replace(stmts=stmts)


@register_mutation("delete", weight=1.0)
def delete(rng, program):
    """Delete a random statement."""
    if not program.stmts:
        raise NoSite("no statement to delete")
    return _with_stmt(program, int(rng.integers(len(program.stmts))), None)


@register_mutation("change_arg", weight=1.0)
def change_arg(rng, program):
    """Change one argument to another variable defined there, or a new N(0, 1) constant."""
    sites = [(i, j) for i, s in enumerate(program.stmts) for j in range(len(s.args))]
    if not sites:
        raise NoSite("no argument to change")
    i, j = sites[int(rng.integers(len(sites)))]
    s = program.stmts[i]
    names = [n for n in defined_before(program, i) if n != s.args[j]]
    if names and rng.random() < 0.5:
        new = names[int(rng.integers(len(names)))]
    else:
        new = random_const(rng)
    args = s.args[:j] + (new,) + s.args[j + 1:]
    return _with_stmt(program, i, dataclasses.replace(s, args=args))


@register_mutation("scale_const", weight=1.0)
def scale_const(rng, program):
    """Multiply one constant by 2^a, a ~ N(0, 1)."""
    sites = [(i, j) for i, s in enumerate(program.stmts)
             for j, a in enumerate(s.args) if not isinstance(a, str)]
    if not sites:
        raise NoSite("no constant to scale")
    i, j = sites[int(rng.integers(len(sites)))]
    s = program.stmts[i]
    value = float(np.float32(s.args[j] * 2.0 ** rng.standard_normal()))
    args = s.args[:j] + (value,) + s.args[j + 1:]
    return _with_stmt(program, i, dataclasses.replace(s, args=args))


@register_mutation("wrap")
def wrap(rng, program):
    """Apply a random one-argument op to a variable where it is assigned: after statement
    ``i`` (target ``x``) insert ``x = op(x)``. One draw reaches what ``insert`` finds only
    by also choosing the position, the argument and the target: ``update = sign(update)``
    right after AdamW's ``update = m / sqrt_v`` is about 1 in 40,000 inserts and 1 in 270
    wraps. SymbolicRegression.jl's "prepend a node", in the language of statements. Off
    unless a config gives it a weight."""
    if not program.stmts:
        raise NoSite("no statement to wrap")
    unary = [op for op in searchable_ops() if op.arity == 1]
    i = int(rng.integers(len(program.stmts)))
    x = program.stmts[i].target
    stmts = list(program.stmts)
    stmts.insert(i + 1, Stmt(x, unary[int(rng.integers(len(unary)))].name, (x,)))
    return program.replace(stmts=stmts)


# the ema mutation's choices: what is averaged (f(g); None: g itself), its decays, and how a
# value that feeds the update uses the average (op, h(s); None: s itself)
EMA_OF = ("square", "abs", None)
EMA_DECAYS = (0.9, 0.99, 0.999)
EMA_USE = (("div", "sqrt"), ("div", None), ("mul", "sqrt"), ("mul", None))


def _pick(rng, items):
    return items[int(rng.integers(len(items)))]


@register_mutation("ema")
def ema(rng, program):
    """Give a free state slot ``s`` (one the update does not read) a running average of a
    function of ``g``, and make a value ``x`` that feeds the update use it, right after the
    statement that assigns ``x``::

        t = f(g)                 # f: square, abs, or g itself (EMA_OF)
        s = interp(t, s, beta)   # beta: 0.9, 0.99 or 0.999
        u = h(s)                 # h: sqrt, or s itself
        x = x op u               # op: div or mul (EMA_USE)

    A subprogram inserted at once, as ``wrap`` inserts ``x = op(x)``: Adam's normalization
    (``square``, ``div``, ``sqrt``) is 1 of the 12 choices of (f, op, h), at a site that
    feeds the update, where ``insert`` needs four coordinated statements, each worthless
    alone; from SGD with momentum about 1 draw in 12 is judged Adam-like
    (``tests/test_ema_mutation.py``). Off unless a config gives it a weight (BENCHMARKS.md,
    "Planted rediscovery")."""
    free = [slot for slot in STATE if slot not in live_state(program)
            and program.returns[1 + STATE.index(slot)] == slot]
    feeds = update_mask(program)
    sites = [i for i, st in enumerate(program.stmts) if feeds[i]]
    if not free or not sites:
        raise NoSite("no free state slot, or nothing feeds the update")
    slot, i = _pick(rng, free), _pick(rng, sites)
    if any(st.target == slot for st in program.stmts[i + 1:]):
        raise NoSite(f"{slot} is assigned after the site")  # it would not be returned
    used = list(INPUTS) + [st.target for st in program.stmts]
    f, (op, h) = _pick(rng, EMA_OF), _pick(rng, EMA_USE)
    new = []
    avg = "g"
    if f is not None:
        avg = fresh_name(used)
        new.append(Stmt(avg, f, ("g",)))
    new.append(Stmt(slot, "interp", (avg, slot, float(_pick(rng, EMA_DECAYS)))))
    scale = slot
    if h is not None:
        scale = fresh_name(used + [avg])
        new.append(Stmt(scale, h, (slot,)))
    x = program.stmts[i].target
    new.append(Stmt(x, op, (x, scale)))
    stmts = list(program.stmts)
    stmts[i + 1:i + 1] = new
    return program.replace(stmts=stmts)


# the decay mutation's moves: powers of the decay tuner's ratio (3), and the log10 range of a
# decay constant switched back on (the AdamW start's 0.01 sits inside it)
DECAY_STEPS = (-2, -1, 1, 2)
DECAY_ON = (-3.0, 1.0)


@register_mutation("decay")
def decay(rng, program):
    """Move the program along its weight-decay axis (``dsl.decay``): every decay site times
    ``3^k``, ``k`` in -2, -1, 1, 2 (3: the decay tuners' ratio, ``dsl.decay.RATIO``); where the
    decay is off (every site's constant 0, as a calibration that found decay useless leaves the
    start), every site set to one constant ``10^U(-3, 1)``, positive: a decay where the term is
    added to the update as AdamW's is. Why: a calibrated start with its decay off (the sign
    check's AdamW, whose tuned factor is 0) gives ``scale_const`` a 0 it cannot move, so the
    search writes its box in ``w`` (``sign(sin(-2.66 w))``, ``0.43^(w^18)``) instead of
    reaching Lion's ``sign + lambda w`` (BENCHMARKS.md, "The decay mutation"). Off unless a
    config gives it a weight."""
    try:
        sites = decay_sites(program)
    except ProgramError:  # an invalid parent has no sites to read; mutate() never gives one
        raise NoSite("not a valid program") from None
    if not sites:
        raise NoSite("no decay site")
    if all(program.stmts[i].args[j] == 0 for i, j in sites):
        return set_decay(program, float(np.float32(10.0 ** rng.uniform(*DECAY_ON))))
    return scale_decay(program, RATIO ** _pick(rng, DECAY_STEPS))


@dataclasses.dataclass
class MutationResult:
    child: Program
    mutation: str
    hash: str
    tries: int


class MutationFailed(Exception):
    """No acceptable child within ``max_tries``."""


def mutate(rng: np.random.Generator, parent: Program, parent_hash: str,
           weights: Mapping[str, float], hash_fn: Callable[[Program], str],
           max_length: int, max_tries: int,
           rejected: Optional[collections.Counter] = None,
           refuse: Optional[Callable[[Program], Optional[str]]] = None) -> MutationResult:
    """A child of ``parent`` that is valid, at most ``max_length`` statements long, and whose
    hash differs from ``parent_hash``. Rejections are counted in ``rejected`` by reason:
    ``invalid``, ``too_long``, ``same_hash`` (e.g. an edit of dead code) and ``no_site``;
    ``refuse(child)`` may name one more (``ignores_lr``: ``search.ignores_lr: reject``)."""
    names = [n for n, w in weights.items() if w > 0]
    unknown = [n for n in names if n not in MUTATIONS]
    if unknown:
        raise KeyError(f"unknown mutation {unknown[0]!r}; registered: {', '.join(MUTATIONS)}")
    p = np.array([weights[n] for n in names], np.float64)
    p /= p.sum()
    rejected = collections.Counter() if rejected is None else rejected
    for tries in range(1, max_tries + 1):
        name = names[int(rng.choice(len(names), p=p))]
        try:
            child = MUTATIONS[name](rng, parent)
        except NoSite:
            rejected["no_site"] += 1
            continue
        if len(child.stmts) > max_length:
            rejected["too_long"] += 1
            continue
        try:
            check(child)
        except ProgramError:
            rejected["invalid"] += 1
            continue
        h = hash_fn(child)
        if h == parent_hash:
            rejected["same_hash"] += 1
            continue
        reason = refuse(child) if refuse else None
        if reason:
            rejected[reason] += 1
            continue
        return MutationResult(child, name, h, tries)
    raise MutationFailed(f"no valid, different child in {max_tries} tries")


@dataclasses.dataclass
class Mutator:
    """The search's mutation options in one place: the registry's weights, the length limit,
    the retries, and the op table random statements draw from (``matrix_ops``: whether
    ``orthogonalize``, ``row_mean`` and ``col_mean`` may be drawn; set for this process when
    the mutator is made, as mutations run in the driver only)."""

    weights: Mapping[str, float]
    max_length: int
    max_tries: int
    matrix_ops: bool = False
    ignores_lr: str = "keep"  # "reject": a child whose update never reads lr is refused

    def __post_init__(self):
        set_searchable(self.matrix_ops)

    def __call__(self, rng: np.random.Generator, parent: Program, parent_hash: str,
                 hash_fn: Callable[[Program], str],
                 rejected: Optional[collections.Counter] = None) -> MutationResult:
        return mutate(rng, parent, parent_hash, self.weights, hash_fn, self.max_length,
                      self.max_tries, rejected,
                      _refuse_lr_free if self.ignores_lr == "reject" else None)


def _refuse_lr_free(child: Program) -> Optional[str]:
    return None if reads_lr(child) else "ignores_lr"

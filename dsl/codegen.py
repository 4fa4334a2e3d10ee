"""Write a program out as a self-contained, readable Python module: an optax transformation.

``to_module_source(program, name="discovered")`` returns the text of a module that needs only
``jax`` and ``optax`` (it never imports optevo) and defines

* ``DiscoveredState``: a NamedTuple with the step count and **one slot per live state
  variable** (``dsl.liveness``): a program that never reads ``v`` (Lion) stores only ``m``;
* ``discovered(learning_rate=..., b1=..., ..., weight_decay=...) ->
  optax.GradientTransformation``: ``learning_rate`` in optax's units (the program's lr unit
  folded in) and every constant a named hyperparameter (``dsl.hyper``), so
  ``optax.inject_hyperparams(discovered)`` sets any of them; the defaults are the program as
  written, or a run's tuning (``codegen_tuning.Tuning``: the tuned peak and the schedule it
  was tuned under, written as ``tuned_schedule()``).

Dead statements are removed first (``liveness.strip_dead``). Each remaining statement becomes
one line of ``jax.tree.map``/``jnp`` code written by its op's row (``Op.export`` in
``dsl/ops.py``, next to the implementation it spells out; nothing here names an op): a
string template is an elementwise formula, applied with ``jax.tree.map`` over the tensor
arguments (scalars are closed over), e.g. safe forms inlined (``x / (y + 1e-08)``,
``sqrt(|x|)``), ``interp(x, y, a) = (1.0 - a) * x + a * y``; a function writes a reduction
with the writer's helpers (``mapped``, ``total``, ``global_norm``, ``let``, ``per_leaf``:
a matrix op's per-leaf function, its source copied into the module). Constants stay
Python floats, so constant arithmetic happens in double as in the reference executor; a
literal ``epsilon = 1e-8`` becomes the Python float assignment ``epsilon = 1e-08``.
Scalars (``lr``, constants, reductions) are broadcast at the end. The module's updates
equal ``dsl.execute.update_fn``'s (negated, as optax adds updates to parameters).
"""

from __future__ import annotations

import json
import keyword
import math
import unicodedata
from typing import Dict, List, Optional, Sequence, Tuple

from . import ops
from .codegen_tuning import (Schedule, Tuning, arg_doc, copied_source,  # noqa: F401 (API)
                             schedule_lines)
from .hyper import named_hyperparameters
from .liveness import live_state, strip_dead
from .ops import OPS, SCALAR, TENSOR, OpSet
from .program import INPUT_KINDS, INPUTS, STATE, Program, check, format_const

SUPPORTED = OpSet(lambda op: op.export is not None)  # live: ops with an export template

# Names the generated update function uses itself: program variables never take them.
_RESERVED = frozenset({
    "jax", "jnp", "optax", "Any", "NamedTuple", "params", "updates", "state", "learning_rate",
    "init_fn", "update_fn", "new_updates", "new_m", "new_v", "callable", "float", "sum",
    "ValueError", "print", "len", "self",
}) | frozenset(keyword.kwlist) | frozenset(getattr(keyword, "softkwlist", ()))

_HELPERS = {
    "_total": '''def _total(x):
    """Sum of every element of a pytree: a scalar."""
    return sum(jnp.sum(leaf) for leaf in jax.tree.leaves(x))
''',
    "_global_norm": '''def _global_norm(x):
    """sqrt(sum of x**2 over the whole pytree): a scalar."""
    return jnp.sqrt(_total(jax.tree.map(jnp.square, x)))
''',
}


def _nfkc(name: str) -> str:
    """The name Python binds for identifier ``name`` (it normalises identifiers to NFKC)."""
    return unicodedata.normalize("NFKC", name)


def _camel(name: str) -> str:
    return "".join(p[:1].upper() + p[1:] for p in name.split("_") if p) or "Program"


class _Writer:
    """Turns statements into lines of code, tracking each variable's kind."""

    def __init__(self, program: Program, taken=frozenset()):
        self.kinds: Dict[str, str] = dict(INPUT_KINDS)
        names = set(INPUTS) | {s.target for s in program.stmts}
        reserved = {_nfkc(n) for n in _RESERVED | frozenset(taken)}  # also the module's own
        # Python reads identifiers in NFKC ('ｊｎｐ' is jnp): a name that is not in that form
        # is written in it, a reserved one or one with a leading '_' takes another
        kept = {n for n in names if _nfkc(n) == n and n not in reserved and n[:1] != "_"}
        self.rename: Dict[str, str] = {}
        for n in sorted(names - kept):
            new = _nfkc(n).strip("_")
            new = new if new.isidentifier() else "x"
            while new in kept or new in reserved or new in self.rename.values():
                new += "_"
            self.rename[n] = new
        self.helpers: List[str] = []
        self.defs: Dict[str, str] = {}  # per-leaf helpers copied from their source (per_leaf)
        self.lines: List[str] = []  # lines written by ``let`` for the current statement
        self.tmp = 0
        self.named: Dict[Tuple[int, int], Tuple[str, Optional[float]]] = {}

    def name(self, var: str) -> str:
        return self.rename.get(var, var)

    def arg(self, a, site=None) -> Tuple[str, str]:
        """(code, kind) of a statement argument (``site``: its (statement, argument), for
        a constant that is a named hyperparameter, ``dsl.hyper``)."""
        if isinstance(a, str):
            return self.name(a), self.kinds[a]
        if site in self.named:
            hp, scale = self.named[site]
            return (hp if scale is None else f"({format_const(scale)} * {hp})"), SCALAR
        return format_const(a), SCALAR

    def need(self, helper: str):
        for h in (("_total", "_global_norm") if helper == "_global_norm" else (helper,)):
            if h not in self.helpers:
                self.helpers.append(h)

    def let(self, code: str) -> str:
        """Assign ``code`` to a fresh temporary (a line before the statement's); its name."""
        self.tmp += 1
        name = f"_t{self.tmp}"
        self.lines.append(f"{name} = {code}")
        return name

    @staticmethod
    def mapped(template: str, args: Sequence[Tuple[str, str]]) -> Tuple[str, str]:
        """``template`` applied elementwise: over the tensor arguments' leaves with
        ``jax.tree.map`` (scalars are closed over), or directly when all are scalars."""
        code = template.format(*[c for c, _ in args], eps=repr(ops.EPS))
        tensors = list(dict.fromkeys(c for c, k in args if k == TENSOR))
        if not tensors:
            return code, SCALAR
        if len(tensors) == 1 and template.startswith("jnp.") and \
                template == template.split("(")[0] + "({0})":
            return f"jax.tree.map({template.split('(')[0]}, {tensors[0]})", TENSOR
        params = ", ".join(tensors)
        return f"jax.tree.map(lambda {params}: {code}, {params})", TENSOR

    def total(self, x: Tuple[str, str]) -> str:
        """The sum of every element of ``x`` (a scalar is its own total)."""
        if x[1] == TENSOR:
            self.need("_total")
            return f"_total({x[0]})"
        return x[0]

    def per_leaf(self, fn, x: Tuple[str, str], scalar_template: str) -> str:
        """``fn`` applied to each leaf of tensor ``x``: ``fn`` is a self-contained function
        of one array (it uses only ``jnp``; e.g. ``matrix_ops.orthogonalize_leaf``), whose
        source is copied into the module as the helper ``_`` + its name, so the export runs
        the very code the engines run; a scalar ``x`` gets ``scalar_template`` instead."""
        code, kind = x
        if kind != TENSOR:
            return scalar_template.format(code)
        name = "_" + fn.__name__
        if name not in self.defs:
            self.defs[name] = copied_source(fn)[1]
        return f"jax.tree.map({name}, {code})"

    def global_norm(self, x: Tuple[str, str]) -> str:
        if x[1] == TENSOR:
            self.need("_global_norm")
            return f"_global_norm({x[0]})"
        return f"jnp.sqrt(jnp.square({x[0]}))"

    def stmt(self, s, i: int = -1) -> List[str]:
        """The lines of statement ``s`` (the ``i``-th): its op's export, by rule (see the
        module docstring)."""
        op = OPS[s.op]
        args = [self.arg(a, (i, k)) for k, a in enumerate(s.args)]
        kind = op.out_kind([k for _, k in args])
        self.lines = []
        if callable(op.export):
            code = op.export(self, *args)
        else:
            code, got = self.mapped(op.export, args)
            assert got == kind, (s, got, kind)
        self.kinds[s.target] = kind
        return self.lines + [f"{self.name(s.target)} = {code}"]


def _docstring_program(program: Program) -> str:
    return "\n".join("    " + line for line in program.text().rstrip("\n").split("\n"))


def _check_function_name(name) -> None:
    as_read = _nfkc(name) if isinstance(name, str) else name  # what Python binds
    if not name.isidentifier() or not as_read.isidentifier() or keyword.iskeyword(as_read) \
            or as_read in _RESERVED or as_read.startswith("_"):
        also = f" (Python reads it as {as_read!r})" if as_read != name else ""
        raise ValueError(f"{name!r} is not a usable Python function name{also}")


def exported_defaults(program: Program, tuning: Optional[Tuning] = None) -> Dict[str, float]:
    """The keyword defaults of the exported function (``learning_rate``: its peak, in true
    units; the named hyperparameters of ``dsl.hyper``), as the module writes them."""
    hp = named_hyperparameters(strip_dead(program))
    return {"learning_rate": (tuning or Tuning()).lr_multiplier * hp.unit, **hp.defaults()}


def to_module_source(program: Program, name: str = "discovered",
                     source: Optional[str] = None, tuning: Optional[Tuning] = None) -> str:
    """The text of a self-contained Python module defining ``name(learning_rate=..., b1=...,
    ...)``, an ``optax.GradientTransformation`` that runs ``program`` (see the module
    docstring), with ``tuning``'s defaults (none: the program as written, at a constant
    learning rate)."""
    tuning = tuning or Tuning()
    mult = tuning.lr_multiplier
    if not (isinstance(mult, (int, float)) and math.isfinite(mult) and mult > 0):
        raise ValueError(f"the lr multiplier must be a finite number > 0, got {mult}")
    _check_function_name(name)
    check(program)
    missing = sorted({s.op for s in program.stmts if s.op not in SUPPORTED})
    if missing:
        raise ValueError(f"codegen does not support {', '.join(missing)}")
    live = strip_dead(program)
    hp = named_hyperparameters(live)
    slots = [s for s in STATE if s in live_state(program)]
    state_cls = _camel(name) + "State"
    wr = _Writer(live, taken={state_cls, name, *hp.defaults()})
    wr.named = hp.arg_names()
    read = {a for s in live.stmts for a in s.vars()} | {live.returns[0]} | \
        {live.returns[1 + STATE.index(s)] for s in slots}

    body: List[str] = []
    if "lr" in read:
        body += ["lr = learning_rate(state.count) if callable(learning_rate) else learning_rate",
                 "lr = jnp.asarray(lr, jnp.float32)"]
    sources = {"w": "params", "g": "updates", **{s: f"state.{s}" for s in STATE}}
    for var, src in sources.items():
        if var in read:
            body.append(f"{wr.name(var)} = {src}")
    for i, s in enumerate(live.stmts):
        if i == hp.unit_stmt:  # x = lr * unit: learning_rate is that product
            wr.kinds[s.target] = SCALAR
            if wr.name(s.target) != wr.name("lr"):
                body.append(f"{wr.name(s.target)} = {wr.name('lr')}  # learning_rate is lr * "
                            f"{format_const(hp.unit)}")
            continue
        body += wr.stmt(s, i)

    def out(var: str, neg: str = "") -> str:
        code, kind = wr.name(var), wr.kinds[var]
        if kind == TENSOR:
            return f"jax.tree.map(lambda _x, _p: {neg}_x.astype(_p.dtype), {code}, params)"
        return (f"jax.tree.map(lambda _p: {neg}jnp.broadcast_to(jnp.asarray({code}, _p.dtype), "
                f"_p.shape), params)")

    body += ["# optax adds updates to the parameters: emit -update, in the parameters' dtypes",
             f"new_updates = {out(live.returns[0], '-')}"]
    for s in slots:
        body.append(f"new_{s} = {out(live.returns[1 + STATE.index(s)])}")
    fields = ", ".join(["count=optax.safe_int32_increment(state.count)"] +
                       [f"{s}=new_{s}" for s in slots])
    body.append(f"return new_updates, {state_cls}({fields})")

    lines = _module_head(program, live, slots, name, state_cls, source, hp, tuning)
    for h in ("_total", "_global_norm"):
        if h in wr.helpers:
            lines += [_HELPERS[h], ""]
    for src in wr.defs.values():
        lines += [src, ""]
    lines += schedule_lines(tuning.schedule, mult * hp.unit)
    lr_default = "None" if tuning.schedule else repr(float(mult * hp.unit))
    params = ", ".join([f"learning_rate={lr_default}"] +
                       [f"{h.name}={format_const(h.value)}" for h in hp.named])
    lines += [
        f"def {name}({params}) -> optax.GradientTransformation:",
        '    """The program as a GradientTransformation (``update`` needs ``params``).',
        "",
        *["    " + x for x in arg_doc(hp, tuning, mult)],
        '    """',
    ]
    if tuning.schedule:
        lines += ["    if learning_rate is None:", "        learning_rate = tuned_schedule()"]
    lines += [
        "",
        "    def init_fn(params):",
        f"        return {state_cls}(",
        "            count=jnp.zeros([], jnp.int32),",
        *[f"            {s}=jax.tree.map(jnp.zeros_like, params)," for s in slots],
        "        )",
        "",
        "    def update_fn(updates, state, params=None):",
        "        if params is None:",
        '            raise ValueError("this optimizer reads the weights: pass params to update()")',
        *["        " + b for b in body],
        "",
        "    return optax.GradientTransformation(init_fn, update_fn)",
        "",
    ]
    return "\n".join(lines)


def module_function(source: str, name: str = "discovered", filename: str = "<optevo export>"):
    """The function ``name`` of a module text :func:`to_module_source` wrote, run in a
    fresh module (the API's ``to_optax`` uses the very module ``optevo export`` writes)."""
    import types
    module = types.ModuleType(name)
    exec(compile(source, filename, "exec"), module.__dict__)  # noqa: S102 - our own output
    return getattr(module, name)


def _module_head(program, live, slots, name, state_cls, source, hp, tuning) -> List[str]:
    removed = len(program.stmts) - len(live.stmts)
    dropped = [s for s in STATE if s not in slots]
    slot_text = ", ".join(slots) if slots else "none"
    notes = [f"Live state slots: {slot_text}" + (
        f" ({' and '.join(dropped)}: never read by an update, not stored)" if dropped else "")
        + f": {len(slots)} float{'s' if len(slots) != 1 else ''} per parameter (optax "
        "AdamW keeps 2)."]
    if removed:
        notes.append(f"{removed} dead statement{'s' if removed != 1 else ''} removed.")
    from .canon import program_hash  # provenance only; the module does not import optevo
    # text from outside (a file name, a run directory) enters the docstring escaped as a JSON
    # string body: no quote, backslash or newline of it can end or break the literal
    src = f" from {json.dumps(str(source))[1:-1]}" if source else ""
    tuned = [json.dumps(tuning.note)[1:-1]] if tuning.note else []
    return [
        f'"""An optimizer program{src}, exported as an optax transformation.',
        "",
        "Generated by optevo (``optevo export --format optax``); self-contained: it needs only",
        "jax and optax. The program (w: weights, g: gradient, m and v: state that starts at",
        "zero, lr: the learning rate this step; the training loop does w = w - update)::",
        "",
        _docstring_program(program),
        "",
        f"Program hash {program_hash(program)}. " + " ".join(notes),
        *tuned,
        f"Safe forms as in the search: division adds {ops.EPS!r} to the denominator, sqrt and",
        "log act on |x|; constants are Python floats, so constant arithmetic is in double.",
        '"""',
        "",
        "from typing import Any, NamedTuple",
        "",
        "import jax",
        "import jax.numpy as jnp",
        "import optax",
        "",
        "",
        f"class {state_cls}(NamedTuple):",
        f'    """State of ``{name}``: the step count and one slot per live state variable."""',
        "",
        "    count: jax.Array",
        *[f"    {s}: Any" for s in slots],
        "",
        "",
    ]
